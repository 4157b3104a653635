"""The connection to a W&B server through the official client's own transport: login, the authenticated
GraphQL call every read and write goes through, and the deadlines they share."""
from __future__ import annotations

import os
import threading
from typing import Any

from runsync.backend.lazy import LazyClient
from runsync.backend.wandb.login import (
    find_credentials,
    not_an_api,
    probe,
    resolve_host,
)
from runsync.backend.wandb.pacing import Pacer, enabled_by_env
from runsync.backend.wandb.transport import (
    Transport,
    TransportError,
    connect,
    http_status,
)
from runsync.errors import BackendError

# A listing whose pages keep failing gives up once this long has passed without a page answered (at most
# four of the client's deadlines), and says which page sizes it tried.
LISTING_STALL_SECONDS = 60.0
CLIENT_DEADLINE_SECONDS = 19.0  # wandb.Api's default timeout (or WANDB_HTTP_TIMEOUT)
# Tries per page read, on top of the client's own retries (which end at its deadline).
READ_ATTEMPTS = 3
# The first page of a listing with the user's filters: W&B answers some filters with HTTP 500, which the
# client retries until its deadline; give up sooner than that, once, and say whether the filter or the server
# failed (REAL_WANDB.md "Filters").
FILTERED_FIRST_PAGE_SECONDS = 12.0


class Connection:
    """A W&B server reached through `wandb.Api`, connected on first use; thread-safe.

    Credentials and host are found as `wandb.Api()` finds them: `api_key`, else WANDB_API_KEY, else what
    `wandb login` stored (netrc `machine HOST`); host: `base_url`, else WANDB_BASE_URL, else the host
    `wandb login --host` recorded in wandb's settings file.
    """

    def __init__(self, *, base_url: str | None = None, api_key: str | None = None, timeout: float | None = None,
                 read_attempts: int = READ_ATTEMPTS, filter_timeout: float = FILTERED_FIRST_PAGE_SECONDS,
                 page_deadline: float = LISTING_STALL_SECONDS) -> None:
        self._base_url = base_url
        self._read_attempts = max(1, read_attempts)
        self._page_deadline = page_deadline  # a listing gives up after this long without an answered page
        self._page_cap: int | None = None  # the page size that answered after a failure: later listings keep it
        # ids per query the last sized read by ids ended with: a plan reads its runs a chunk at a time
        # (planner/live_runs.py), and each chunk goes on at the size the server kept up with
        self._ids_per_query: int | None = None
        self._api_key = api_key
        self._timeout = timeout
        self._filter_timeout = filter_timeout if timeout is None else min(filter_timeout, timeout)
        self._client: LazyClient[Transport] = LazyClient(self._connect_once)
        self._lock = threading.Lock()  # for the page sizes and the request count kept beside the client
        self._requests_sent = 0
        self._host: str | None = None  # the host as resolved before connecting
        self._host_origin = "the wandb default"
        self._secrets: list[str] = [k for k in (api_key,) if k]
        # Spaces every read and write by the server's rate-limit signal (pacing.py); RUNSYNC_PACING=off: full speed.
        self.pacing = Pacer(enabled=enabled_by_env())

    @property
    def api(self) -> Transport:
        """The transport of a connected `wandb.Api` (backend/transport.py: one adapter per client generation)."""
        return self._client.get()

    @property
    def requests_sent(self) -> int:
        """GraphQL operations sent so far (the client's own retries of one are not seen: one each)."""
        return self._requests_sent

    def login(self) -> None:
        """Connect now: import wandb, start its sidecar, check the key (BackendError naming the host if not)."""
        _ = self.api

    def connect_in_background(self) -> None:
        """Start connecting (import wandb, start its sidecar, check the key: ~0.7 s) while the caller does other
        work, e.g. reads a sheet; the first use of the connection waits for it, and raises what it raised."""
        self._client.start("runsync-connect")

    def _connect_once(self) -> Transport:
        try:
            return self._connect()
        except BackendError as exc:
            exc.no_retry = True  # type: ignore[attr-defined]  # the client already retried, or nothing listens
            raise

    def _connect(self) -> Transport:
        host, self._host_origin = resolve_host(self._base_url)
        self._host = host
        source = find_credentials(host, self._host_origin, self._api_key, self._secrets, self._scrub)
        if host:
            probe(host)
        kwargs: dict[str, Any] = {}
        if self._api_key:  # else wandb.Api() finds the key itself, as for any wandb user
            kwargs["api_key"] = self._api_key
        if self._base_url:
            kwargs["overrides"] = {"base_url": self._base_url}
        if self._timeout is not None:
            kwargs["timeout"] = self._timeout
        try:
            transport = connect(**kwargs)
        except TransportError as exc:  # no adapter fits this client, or (wandb < 0.27) its key check got no answer
            if host and (wrong := not_an_api(host, self._host_origin, self._scrub(exc), http_status(exc))):
                raise wrong from None
            if exc.timed_out:
                raise BackendError(f"W&B at {host or 'the wandb default host'} did not answer in time while checking "
                                   "the credentials (server errors, rate limiting or slowness outlasted the "
                                   "client's retries)") from None
            raise BackendError(self._scrub(exc)) from None
        except Exception as exc:  # the client raises several unrelated types for "cannot log in"
            where = host or "the wandb default host"
            text = self._scrub(exc)
            if "service process is busy" in text:
                raise BackendError(f"W&B at {where} did not answer in time while checking the credentials "
                                   "(server errors, rate limiting or slowness outlasted the client's retries)") from None
            if host and (wrong := not_an_api(host, self._host_origin, text, http_status(exc))):
                raise wrong from None  # a UI address or a proxy's page: not "refused credentials" with its HTML
            if type(exc).__name__ in ("AuthenticationError", "UsageError"):
                raise BackendError(
                    f"W&B at {where} did not accept the credentials from {source or 'wandb'}: {text}",
                    hint=f"run `wandb login --relogin --host {where}`, or set WANDB_API_KEY",
                ) from None
            raise BackendError(f"cannot connect to W&B at {where}: {text}") from None
        self.pacing.sees_headers = transport.watch(self.pacing)
        key = getattr(transport.api, "api_key", None)
        if isinstance(key, str) and key and key not in self._secrets:
            self._secrets.append(key)
        return transport

    @property
    def base_url(self) -> str:
        """The W&B host this backend talks to (as the client resolved it, once connected)."""
        if (api := self._client.made) is not None:
            try:
                return api.base_url
            except Exception:
                pass
        host = self._host or resolve_host(self._base_url)[0]
        return host or "(wandb default host)"

    def _scrub(self, exc: BaseException) -> str:
        text = _scrub(exc, None)
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def execute(self, query: str, variables: dict[str, Any], *, timeout: float | None = None) -> dict[str, Any]:
        """Send one GraphQL operation through the client's authenticated transport (backend/transport.py)."""
        transport = self.api
        with self._lock:
            self._requests_sent += 1
        self.pacing.before()
        try:
            data = transport.execute(query, variables, timeout=timeout)
        except Exception as exc:
            self.pacing.after()
            message = self._scrub(exc)
            timed_out = getattr(exc, "timed_out", False)
            if timed_out:
                try:
                    probe(self.base_url)
                except BackendError as down:
                    raise down from None
                # The client's wording when its deadline passed; the cause is the server, not the local process.
                message = (f"W&B at {self.base_url} did not answer in time (server errors, rate limiting or "
                           "slowness outlasted the client's retries)")
            error = BackendError(message)
            error.timed_out = timed_out  # type: ignore[attr-defined]
            raise error from None
        self.pacing.after()
        return data

    def _client_deadline(self) -> float:
        """How long one request may take with the client's retries (`Api(timeout=)`, WANDB_HTTP_TIMEOUT, 19 s)."""
        if self._timeout is not None:
            return float(self._timeout)
        try:
            return float(os.environ.get("WANDB_HTTP_TIMEOUT") or CLIENT_DEADLINE_SECONDS)
        except ValueError:
            return CLIENT_DEADLINE_SECONDS



def _scrub(exc: BaseException, api_key: str | None) -> str:
    """An exception's message, one line, with the API key removed wherever it appears."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if api_key:
        text = text.replace(api_key, "***")
    return text
