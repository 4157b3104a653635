"""How a GraphQL document reaches W&B: through the installed wandb client's own authenticated transport.

runsync supports wandb 0.17 to 0.31, two generations of the public API's transport (see docs/internals.md "Supported
wandb versions"). Which one is used is decided by what the constructed `wandb.Api` offers (feature
detection), never by the version number:

- `ServiceTransport`: `Api._service_api.execute_graphql(query, variables)`, the wandb-core sidecar sends the
  request (wandb >= 0.27; `api.client` is gone by 0.31). 0.26 has `_service_api` without `execute_graphql`.
- `ClassicTransport`: `Api.client.execute(gql(query), variable_values=...)`, Python sends the request with
  `requests` (wandb < 0.27).

Both entry points are private to wandb: they are touched only here, and tests/test_transport.py fails when
the one the installed wandb needs disappears. This module knows nothing about runs; backend/wandb.py
builds the queries and turns `TransportError` into runsync's errors.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

# How long the classic client retries a request (its RETRY_TIMEDELTA in every classic release: 20 s). As for the
# sidecar, `Api(timeout=...)` or WANDB_HTTP_TIMEOUT, when set, is the overall deadline instead.
CLASSIC_DEADLINE_SECONDS = 20.0


class TransportError(Exception):
    """A request that failed; `timed_out`: the client's retries ran out (server errors, 429s, slowness)."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


class Pacing(Protocol):
    """What a transport tells the pacer (pacing.Pacer): each answer's headers, and each retry before it is sent."""

    def observe_headers(self, headers: Mapping[str, str]) -> None: ...

    def before(self, *, retry: bool = False) -> float: ...


class Transport(Protocol):
    """One GraphQL request at a time, through an authenticated `wandb.Api`."""

    name: str
    api: Any  # the wandb.Api, for what runsync needs from it beyond requests (its api_key)

    @property
    def base_url(self) -> str: ...

    @property
    def app_url(self) -> str: ...

    def execute(self, query: str, variables: dict[str, Any], *, timeout: float | None = None) -> dict[str, Any]:
        """Return the response's `data`; raise TransportError (or the client's own error) on failure."""
        ...

    def watch(self, pacing: Pacing) -> bool:
        """Hand `pacing` what this client lets runsync see of each answer; whether that includes the headers."""
        ...


def _settings_base_url(api: Any) -> str:
    return str(api.settings["base_url"]).rstrip("/")


class ServiceTransport:
    """wandb >= 0.27: the wandb-core sidecar sends every request (`_service_api.execute_graphql`)."""

    name = "service"

    def __init__(self, api: Any) -> None:
        self.api = api
        self._service = api._service_api

    @classmethod
    def fits(cls, api: Any) -> bool:
        return callable(getattr(getattr(api, "_service_api", None), "execute_graphql", None))

    @property
    def base_url(self) -> str:
        return _settings_base_url(self.api)

    @property
    def app_url(self) -> str:
        return str(self._service.app_url).rstrip("/")

    def watch(self, pacing: Pacing) -> bool:
        # The sidecar answers with the `data` JSON only (GraphQLResponse.data_json): no headers, no status; it
        # waits out 429s itself. The pacer judges by how long a request was held (pacing.py).
        return False

    def execute(self, query: str, variables: dict[str, Any], *, timeout: float | None = None) -> dict[str, Any]:
        try:
            if timeout is None:
                return self._service.execute_graphql(query, variables)
            return self._service.execute_graphql(query, variables, timeout=timeout)
        except Exception as exc:
            # The sidecar's wording when its deadline passed (the cause is the server, not the local process).
            if "service process is busy" in " ".join(str(exc).split()):
                raise TransportError(str(exc), timed_out=True) from exc
            raise


class ClassicTransport:
    """wandb < 0.27: Python sends the request with `requests` (`Api.client.execute(gql(query))`)."""

    name = "classic"

    def __init__(self, api: Any, deadline: float | None = None) -> None:
        from wandb_gql import gql  # the vendored gql 0.2 the classic client is built on

        self.api = api
        self._client = api.client  # RetryingClient: retries 429/5xx/timeouts for ~20 s, as wandb.Api does
        if deadline is None:
            try:
                deadline = float(os.environ.get("WANDB_HTTP_TIMEOUT") or CLASSIC_DEADLINE_SECONDS)
            except ValueError:
                deadline = CLASSIC_DEADLINE_SECONDS
        self._deadline = deadline
        self._gql = gql
        self._docs: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._pacing: Pacing | None = None

    @classmethod
    def fits(cls, api: Any) -> bool:
        try:
            import wandb_gql  # noqa: F401
        except ImportError:
            return False
        return callable(getattr(getattr(api, "client", None), "execute", None))

    @property
    def base_url(self) -> str:
        return _settings_base_url(self.api)

    @property
    def app_url(self) -> str:
        return str(self._client.app_url).rstrip("/")

    def watch(self, pacing: Pacing) -> bool:
        """Every answer's headers (429s too), by a response hook on the client's `requests.Session`
        (GraphQLSession in 0.17 to 0.26); a client without one shows them on failures only (HTTPError)."""
        self._pacing = pacing
        session = getattr(getattr(self._client._client, "transport", None), "session", None)
        hooks = getattr(session, "hooks", None)
        if not isinstance(hooks, dict):
            return False

        def on_answer(response: Any, *args: Any, **kwargs: Any) -> None:
            pacing.observe_headers(response.headers)

        hooks.setdefault("response", []).append(on_answer)
        return True

    def _document(self, query: str) -> Any:
        with self._lock:
            doc = self._docs.get(query)
            if doc is None:
                doc = self._docs[query] = self._gql(query)
            return doc

    def execute(self, query: str, variables: dict[str, Any], *, timeout: float | None = None) -> dict[str, Any]:
        import requests

        doc = self._document(query)
        try:
            return self._send(doc, variables, timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise TransportError(str(exc), timed_out=True) from exc
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else None
            raise TransportError(str(exc), timed_out=status in (429, 500, 502, 503, 504)) from exc

    def _send(self, doc: Any, variables: dict[str, Any], timeout: float | None) -> dict[str, Any]:
        """`RetryingClient.execute` with its own retry policy, but `timeout` (when given) as the overall deadline,
        and a refused connection not retried (the sidecar fails that at once too: "cannot connect")."""
        import datetime

        import requests
        from wandb import util
        from wandb.sdk.lib import retry
        from wandb_gql.client import RetryError

        def check_retry(exc: Any) -> bool:
            if isinstance(exc, requests.ConnectionError) and "refused" in str(exc).lower():
                return False
            return bool(util.no_retry_auth(exc))  # type: ignore[attr-defined]  # wandb < 0.27 only

        raw = self._client._client  # the un-retried gql Client underneath RetryingClient
        attempts = 0

        def attempt(*args: Any, **kwargs: Any) -> Any:
            nonlocal attempts
            attempts += 1
            if attempts > 1 and self._pacing is not None:
                self._pacing.before(retry=True)  # a retry waits for its slot too (a spent window: its Reset)
            return raw.execute(*args, **kwargs)

        send = retry.retriable(
            retry_timedelta=datetime.timedelta(seconds=self._deadline if timeout is None else timeout),
            check_retry_fn=check_retry,
            retryable_exceptions=(RetryError, requests.RequestException),
        )(attempt)
        if timeout is None:
            return send(doc, variable_values=variables)
        return send(doc, variable_values=variables, timeout=timeout)


def select(api: Any, deadline: float | None = None) -> Transport:
    """The adapter for this `wandb.Api`, by what it offers; TransportError when none fits.

    `deadline`: the `timeout` the Api was made with (the sidecar knows it already).
    """
    if ServiceTransport.fits(api):  # newest first: a client offering both uses the newer one
        return ServiceTransport(api)
    if ClassicTransport.fits(api):
        return ClassicTransport(api, deadline)
    raise TransportError(
        "the installed wandb client offers neither `Api._service_api.execute_graphql` nor `Api.client.execute`; "
        f"runsync supports wandb 0.17 to 0.31 (installed: {client_version()})")


def connect(**kwargs: Any) -> Transport:
    """Construct `wandb.Api(**kwargs)` (overrides, api_key, timeout: the same in every supported release)."""
    import wandb  # lazily: importing wandb costs ~1 s, `runsync --help` must not pay it

    _start_sidecar(wandb.__file__)
    chosen = select(wandb.Api(**kwargs), kwargs.get("timeout"))
    if isinstance(chosen, ClassicTransport):
        # Newer clients check the key when `Api()` is made, 0.17 at its first request: check it now, so a
        # refused key is an AuthenticationError here in every version.
        chosen.execute("query Viewer { viewer { id } }", {})
    return chosen


def _start_sidecar(wandb_init: str | None) -> None:
    """Start the wandb-core sidecar on a thread, as `wandb.Api()` would start it (a client whose public API
    goes through the sidecar: `wandb/apis/public/service_api.py`), so that its start (~0.3 s, mostly waiting
    for the process) overlaps the import of `wandb.apis.public` (~0.3-0.6 s of CPU) that `wandb.Api` triggers;
    `Api()` then finds it running. A classic client (its Api sends requests itself) starts none; when starting
    fails, nothing happens here: `Api()` starts it, and says what fails, as always."""
    # Looked for as a file: importing wandb.apis.public to ask is the very import this overlaps.
    if not wandb_init or not os.path.exists(os.path.join(os.path.dirname(wandb_init), "apis", "public",
                                                         "service_api.py")):
        return
    try:
        from wandb.sdk import wandb_setup

        ensure = getattr(wandb_setup.singleton(), "ensure_service", None)
    except Exception:
        return
    if not callable(ensure):
        return

    def start() -> None:
        try:
            ensure()
        except BaseException:  # noqa: BLE001  # Api() meets it again, and raises it where it is handled
            pass

    threading.Thread(target=start, name="runsync-sidecar", daemon=True).start()


def http_status(exc: BaseException) -> int | None:
    """The HTTP status of the answer a client error carries, if any: the sidecar's `ApiErrorResponse.http_status`
    (wandb >= 0.27) or the `requests` response's `status_code` (classic), looked for along the exception chain."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        response = getattr(current, "response", None)
        for name in ("http_status", "status_code"):
            status = getattr(response, name, None)
            if isinstance(status, int) and status > 0:
                return status
        current = current.__cause__ or current.__context__
    return None


def client_version() -> str:
    """The installed wandb's version, for messages only (never to choose behaviour)."""
    try:
        from importlib.metadata import version

        return version("wandb")
    except Exception:
        return "unknown"


def classic_key_source(host: str) -> tuple[str, str] | None:
    """Where a client without `wandb.sdk.lib.wbauth` finds its key, asked without its login prompt.

    Returns (where, key); key "" when it has none (`wandb.Api()` would then prompt on a terminal), None
    when the client's lookup cannot be asked. WANDB_API_KEY is checked before this, by the caller.
    """
    import requests

    netrc_file = os.environ.get("NETRC") or os.path.join("~", ".netrc")
    auth = requests.utils.get_netrc_auth(host)  # what the classic client itself reads (InternalApi.api_key)
    if auth and auth[-1]:
        return f"{netrc_file} (machine {urlsplit(host).hostname})", auth[-1]
    try:
        from wandb.apis import InternalApi

        key = InternalApi().api_key  # also the settings file and SageMaker secrets
    except Exception:
        return None
    return ("wandb settings", key) if key else (netrc_file, "")


def classic_base_url() -> str | None:
    """The host a client without `wandb_setup.singleton()` uses when WANDB_BASE_URL is unset: its settings file
    (`wandb login --host`), else its default. None when the client cannot be asked."""
    try:
        from wandb.apis import InternalApi

        url = InternalApi().settings("base_url")
    except Exception:
        return None
    return str(url).rstrip("/") if url else None
