"""The connection to an MLflow tracking server: the `MlflowClient` (mlflow imported here, lazily), one-line
errors, retries of transient failures, and the experiment a project address names."""
from __future__ import annotations

import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from runsync.backend.base import ProjectAddress
from runsync.backend.lazy import LazyClient
from runsync.backend.mlflow.address import BY_ID, project_address
from runsync.errors import BackendError, ConfigError

if TYPE_CHECKING:
    from mlflow import MlflowClient

T = TypeVar("T")

ATTEMPTS = 3  # tries per request, on top of the client's own HTTP retries (MLFLOW_HTTP_REQUEST_MAX_RETRIES)
BACKOFF_SECONDS = 1.0  # before the second try; doubled each time
PROBE_SECONDS = 5.0  # how long `/health` may take to answer before "nothing answers at ..."
# MLflow's error codes for "try again later" (mlflow/protos/databricks.proto); anything else is the server's answer.
TRANSIENT_CODES = frozenset({"INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED",
                             "DEADLINE_EXCEEDED", "ABORTED", "SERVICE_UNDER_MAINTENANCE", "IO_ERROR"})


class Connection:
    """An MLflow tracking server, reached through `mlflow.MlflowClient`, connected on first use; thread-safe.

    The server is `tracking_uri`, else MLFLOW_TRACKING_URI; without either runsync refuses to guess (MLflow's
    default would create a local store in the current directory).
    """

    def __init__(self, *, tracking_uri: str | None = None, attempts: int = ATTEMPTS,
                 backoff: float = BACKOFF_SECONDS) -> None:
        self._tracking_uri = tracking_uri
        self._attempts = max(1, attempts)
        self._backoff = backoff
        self._client: LazyClient[MlflowClient] = LazyClient(self._connect)
        self._lock = threading.Lock()  # for the experiments cache and the request count
        self._requests_sent = 0
        self._experiments: dict[str, str] = {}  # project path -> experiment id
        self.experiment_names: dict[str, str] = {}  # experiment id -> its name (RunRecord.experiment)

    @property
    def tracking_uri(self) -> str:
        uri = self._tracking_uri or os.environ.get("MLFLOW_TRACKING_URI", "")
        if not uri.strip():
            raise ConfigError("no MLflow tracking server given", hint="set MLFLOW_TRACKING_URI (e.g. "
                              "http://127.0.0.1:5000), or pass the backend's tracking_uri")
        return uri.strip().rstrip("/")

    @property
    def base_url(self) -> str:
        """The tracking server, for messages (credentials in the URI are left out)."""
        try:
            uri = self.tracking_uri
        except ConfigError:
            return "(no MLFLOW_TRACKING_URI)"
        from urllib.parse import urlsplit

        parts = urlsplit(uri)
        return parts._replace(netloc=parts.hostname or "").geturl() if parts.username else uri

    @property
    def client(self) -> MlflowClient:
        return self._client.get()

    @property
    def requests_sent(self) -> int:
        """Requests made through `call` so far, each try counted."""
        return self._requests_sent

    def login(self) -> None:
        """Connect now: check that the server answers and the credentials are taken (one small search)."""
        _ = self.client

    def connect_in_background(self) -> None:
        """Start `login` on a thread (importing mlflow takes a while); the first use waits for it."""
        self._client.start("runsync-mlflow-connect")

    def _connect(self) -> MlflowClient:
        uri = self.tracking_uri
        if uri.lower().startswith(("http://", "https://")):
            _probe(uri, self.base_url)
        try:
            from mlflow import MlflowClient
        except ImportError:
            raise ConfigError("MLflow's client is not installed",
                              hint="pip install 'runsync[mlflow]' (or pip install mlflow)") from None
        client = MlflowClient(tracking_uri=uri)
        self.call(lambda: client.search_experiments(max_results=1), "reach the tracking server", client=client)
        return client

    def call(self, request: Callable[[], T], doing: str, *, client: Any = None) -> T:
        """`request()`, tried again after a transient failure; BackendError (one line) saying what failed."""
        delay = self._backoff
        for attempt in range(1, self._attempts + 1):
            with self._lock:
                self._requests_sent += 1
            try:
                return request()
            except Exception as exc:
                if attempt == self._attempts or not is_transient(exc):
                    raise BackendError(f"MLflow at {self.base_url}: cannot {doing}: {describe(exc)}") from None
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")  # the loop returns or raises

    def experiment_id(self, project: str) -> str:
        """The id of the experiment a project address names; BackendError if the server has none such."""
        address = project_address(project)
        with self._lock:
            known = self._experiments.get(address.path)
        if known is not None:
            return known
        found = self._find_experiment(address)
        with self._lock:
            self._experiments[address.path] = found
        return found

    def _find_experiment(self, address: ProjectAddress) -> str:
        client = self.client
        if address.owner == BY_ID:
            def by_id() -> Any:
                try:
                    return client.get_experiment(address.name)
                except Exception as exc:
                    if error_code(exc) == "RESOURCE_DOES_NOT_EXIST":
                        return None
                    raise
            experiment = self.call(by_id, f"read experiment {address.name}")
        else:
            experiment = self.call(lambda: client.get_experiment_by_name(address.name),
                                   f"read experiment {address.name!r}")
        if experiment is None:
            raise BackendError(f"MLflow at {self.base_url} has no experiment {address.path}")
        if getattr(experiment, "lifecycle_stage", "active") != "active":
            raise BackendError(f"MLflow at {self.base_url}: experiment {address.path} is deleted",
                               hint="restore it in MLflow first")
        with self._lock:
            self.experiment_names[str(experiment.experiment_id)] = str(experiment.name)
        return str(experiment.experiment_id)


def error_code(exc: BaseException) -> str | None:
    """An MlflowException's error code name (e.g. INVALID_PARAMETER_VALUE), else None."""
    code = getattr(exc, "error_code", None)
    return code if isinstance(code, str) else None


def is_transient(exc: BaseException) -> bool:
    """Worth trying again: the server was down, slow, overloaded or failed inside, not "no" to the request."""
    code = error_code(exc)
    if code is not None:
        return code in TRANSIENT_CODES
    # The client's own HTTP errors (requests' ConnectionError, Timeout, retries exhausted) carry no code.
    return isinstance(exc, OSError) or type(exc).__module__.startswith(("requests", "urllib3"))


def describe(exc: BaseException) -> str:
    """An exception as one line: MLflow's message without its code prefix repeated, or the error's type."""
    message = getattr(exc, "message", None)
    text = message if isinstance(message, str) and message else str(exc)
    text = " ".join(text.split()) or type(exc).__name__
    code = error_code(exc)
    if code and not text.startswith(code):
        text = f"{code}: {text}"
    return text if len(text) <= 400 else text[:397] + "..."


def _probe(uri: str, shown: str) -> None:
    """Ask the server's `/health` once, briefly: nothing listening fails in seconds, not after the client's
    minutes of retries with backoff."""
    try:
        with urllib.request.urlopen(f"{uri}/health", timeout=PROBE_SECONDS):
            return
    except urllib.error.HTTPError:
        return  # something answers (an auth proxy may refuse /health): the real request tells the rest
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise BackendError(f"nothing answers at MLflow tracking server {shown}: {reason}",
                           hint="start it, or check MLFLOW_TRACKING_URI") from None
