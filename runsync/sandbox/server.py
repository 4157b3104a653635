"""The sandbox HTTP server: POST /graphql for the wandb client, /_sandbox/* to steer and inspect it.

Routes: POST /graphql (auth; faults apply), POST /sdk/otel/v1/metrics (no auth; the sidecar's
telemetry, dropped), GET /_sandbox/stats, POST /_sandbox/stats/reset, POST /_sandbox/faults
(JSON {"latency_ms", "error_rate", "rate_limit", "hang_rate", "seed"}), GET /_sandbox/health.
Auth everywhere but otel and health: `Authorization: Basic base64("api:" + key)` (or `Bearer key`);
a wrong or missing key is HTTP 401 and is not counted in the stats. Faults never apply to
/_sandbox/*.

Batches: a mutation request may carry several aliased upsertBuckets; graphql-core executes them in turn and
reports an error per alias path (the others are applied); `mutations` in the stats counts each one executed.
`max_mutations` refuses a request with more of them whole (a GraphQL error, nothing applied); `write_ms` is the
server time each one costs.

Lost answers (`lost_answer_rate`): a mutation is applied, then answered HTTP 502, as when a proxy times out
after the server wrote. Config writes merge (`config_merge="merge"`, W&B today) or replace the stored config
(`"replace"`, older self-hosted servers). `live_process_interval`: every running run has a simulated process
re-sending its stale config that often (sandbox/live.py). `request_hooks`: callables run on the handler
thread before each GraphQL request executes (label, variables, is_mutation), for tests.

Strict filters (the default; `strict_filters=False` / `serve --lenient-filters` turns them off): a `filters`
variable the real service answers with HTTP 500 gets HTTP 500 here too, on every try — `tags` with `$all`,
a bare list on `tags`, a `$regex` that RE2 cannot compile (filters.service_refusal).

Paging as the service (faults.py): a page of more than `max_page_size` runs is HTTP 504 (default 1000);
`overlap_rate` makes follow-up pages repeat or skip a few runs; a 429 carries `RateLimit-Limit`,
`RateLimit-Remaining`, `RateLimit-Reset`, and `Retry-After` only with `retry_after` on. The service's own
charges and limits (read time per run, gateway deadline, per-project quota, config and body size) are limits.py's.
"""
from __future__ import annotations

import base64
import gzip
import hmac
import json
import secrets
import socket
import string
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from graphql import GraphQLError

from .faults import DEFAULT_MAX_PAGE_SIZE, Faults
from .filters import service_refusal
from .limits import GatewayTimeout, request_projects
from .live import LiveProcesses
from .query import decode_filters
from .resolvers import PageTooLarge, Resolvers
from .stats import Stats
from .store import Store

HANG_SECONDS = 60.0  # a hung request is dropped after this, or when the server stops


def generate_api_key() -> str:
    """Return a fresh 40-character key of [A-Za-z0-9] (the client refuses keys under 40)."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(40))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # The listen backlog: socketserver's 5 makes a burst of parallel clients (runsync's writers, several
    # processes) meet connection resets; the service holds them. 64 concurrent clients must all be served.
    request_queue_size = 256

    def __init__(self, addr: tuple[str, int], sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.connections: set[socket.socket] = set()
        self.conn_lock = threading.Lock()
        super().__init__(addr, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        # Clients hang up (timeouts, the sidecar exiting, stop() dropping connections): not news.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)) or self.sandbox._stopping.is_set():
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the sidecar expects
    disable_nagle_algorithm = True  # without it every request costs ~44 ms (Nagle + delayed ACK)
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.conn_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.conn_lock:
            self.server.connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # quiet, and never risk logging credentials

    # -- plumbing --------------------------------------------------------------------------------
    def _body(self) -> bytes:
        data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.headers.get("Content-Encoding", "").lower() == "gzip":
            data = gzip.decompress(data)
        return data

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in {**self.quota_headers, **(headers or {})}.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _authorized(self) -> bool:
        auth = self.headers.get("Authorization", "")
        scheme, _, value = auth.partition(" ")
        key = ""
        if scheme.lower() == "basic":
            try:
                user, _, key = base64.b64decode(value).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return False
        elif scheme.lower() == "bearer":
            key = value
        return hmac.compare_digest(key.encode(), self.server.sandbox.api_key.encode())

    def _unauthorized(self) -> None:
        self._send(401, {"errors": [{"message": "invalid or missing API key"}]})

    # -- routes ----------------------------------------------------------------------------------
    quota_headers: dict[str, str] = {}  # RateLimit-* of the GraphQL request being answered

    def do_GET(self) -> None:  # noqa: N802
        self.quota_headers = {}
        if self.path == "/_sandbox/stats":
            if not self._authorized():
                return self._unauthorized()
            return self._send(200, self.server.sandbox.stats())
        if self.path == "/_sandbox/health":
            return self._send(200, {"ok": True})
        self._send(404, {"errors": [{"message": f"no route {self.path}"}]})

    def do_POST(self) -> None:  # noqa: N802
        self.quota_headers = {}
        sb = self.server.sandbox
        if self.path == "/graphql" and self._refused_body(int(self.headers.get("Content-Length") or 0)):
            return None
        body = self._body()
        if self.path.startswith("/sdk/otel/"):
            return self._send(200, {})  # the sidecar's telemetry; accepted and dropped
        if not self._authorized():
            return self._unauthorized()
        if self.path == "/graphql":
            return self._graphql(body)
        if self.path == "/_sandbox/stats/reset":
            sb.reset_stats()
            return self._send(200, sb.stats())
        if self.path == "/_sandbox/faults":
            try:
                sb.set_faults(**json.loads(body or b"{}"))
            except (ValueError, TypeError) as e:
                return self._send(400, {"error": str(e)})
            return self._send(200, sb.faults.settings())
        self._send(404, {"errors": [{"message": f"no route {self.path}"}]})

    def _refused_body(self, length: int) -> bool:
        """Answer HTTP 413 to a body over the size limit, as the service's proxy (read and dropped unparsed)."""
        sb = self.server.sandbox
        message = sb.faults.limits.body_too_large(length)
        if message is None:
            return False
        while length > 0:  # read it all, so the client sees the answer rather than a reset connection
            chunk = self.rfile.read(min(length, 1 << 20))
            if not chunk:
                break
            length -= len(chunk)
        sb._stats.add(requests=1, fault="413")
        self._send(413, {"errors": [{"message": message}]})
        return True

    def _graphql(self, body: bytes) -> None:
        sb = self.server.sandbox
        sb._stats.add(requests=1)
        sb.faults.limits.begin_request()
        try:
            req = json.loads(body)
            text, variables = req["query"], req.get("variables") or {}
            if not isinstance(variables, dict):
                raise ValueError("variables must be an object")
        except (ValueError, KeyError, TypeError) as e:
            return self._send(400, {"errors": [{"message": f"bad GraphQL request: {e}"}]})
        try:
            prepared = sb.resolvers.prepare(text, req.get("operationName") or None)
        except GraphQLError as e:
            return self._send(200, {"data": None, "errors": [{"message": e.message}]})
        sb._stats.add(operation=prepared.label)
        # The quota is charged first: a request the backend then fails still counted (and its answer says so).
        keys = request_projects(prepared.document, prepared.operation_name, variables, sb.resolvers.entity, sb.store)
        within_quota, self.quota_headers = sb.faults.limits.charge(keys, prepared.mutations, sb.faults.retry_after)
        # Decide the fault before executing, so a failed request never applies its mutation.
        decision = sb.faults.decide()
        if decision.latency_s:
            time.sleep(decision.latency_s)
        if decision.hang:
            sb._stats.add(fault="hang")
            sb._stopping.wait(HANG_SECONDS)
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return None
        if decision.status == 500:
            sb._stats.add(fault="500")
            return self._send(500, {"errors": [{"message": "injected server error"}]})
        if decision.status == 429:
            sb._stats.add(fault="429", rate_limited=1)
            return self._send(429, {"errors": [{"message": "rate limit exceeded"}]},
                              decision.rate_limit_headers or {"Retry-After": str(decision.retry_after)})
        if not within_quota:
            sb._stats.add(rate_limited=1)
            return self._send(429, {"errors": [{"message": "rate limit exceeded (project quota)"}]})
        refusal = _refused_filter(variables) if sb.strict_filters else None
        if refusal:
            return self._send(500, {"errors": [{"message": f"internal server error (filter with {refusal})"}]})
        if sb.faults.refuses_batch(prepared.mutations):
            sb._stats.add(fault="batch_refused")
            return self._send(200, {"data": None, "errors": [{"message": (
                f"query too complex: {prepared.mutations} mutations in one request, the limit is "
                f"{sb.faults.max_mutations}")}]})
        for hook in list(sb.request_hooks):
            hook(prepared.label, variables, prepared.is_mutation)
        try:
            status, result = sb.resolvers.run(prepared, variables)
        except (PageTooLarge, GatewayTimeout) as e:  # as from a load balancer whose deadline the page outlasted
            sb._stats.add(fault="504")
            return self._send(504, {"errors": [{"message": f"gateway timeout ({e})"}]})
        applied = sum(1 for value in (result.get("data") or {}).values() if value is not None)
        if prepared.is_mutation and applied:
            sb._stats.add(mutations=applied)  # each aliased mutation that was executed without error
        if status == 400:
            sb._stats.add(fault="config_too_large")
        if sb.faults.limits.past_deadline():  # the writes were applied; the gateway had given up on the answer
            sb._stats.add(fault="504")
            return self._send(504, {"errors": [{"message": "gateway timeout (the request outlasted the deadline)"}]})
        if prepared.is_mutation and not result.get("errors"):
            if sb.faults.lose_answer():  # applied, then the answer is lost on its way back
                sb._stats.add(fault="502")
                return self._send(502, {"errors": [{"message": "bad gateway (injected: the write was applied, "
                                                               "its answer lost)"}]})
        self._send(status, result)


def _refused_filter(variables: dict[str, Any]) -> str | None:
    """What in a `filters` variable the real service answers with HTTP 500 (None: nothing)."""
    raw = variables.get("filters")
    if raw is None:
        return None
    try:
        spec = decode_filters(raw)
    except ValueError:
        return None  # not JSON: the resolver reports it as a GraphQL error
    return service_refusal(spec)


class Sandbox:
    """A running sandbox server; stop it with stop() or use it as a context manager.

    `strict_filters` (settable while serving): answer HTTP 500, as W&B does, to filters it cannot run.
    """

    def __init__(self, store: Store, api_key: str, host: str, port: int, faults: Faults,
                 entity: str = "e", owns_store: bool = True, strict_filters: bool = True,
                 config_merge: str = "merge", live_process_interval: float | None = None) -> None:
        if config_merge not in ("merge", "replace"):
            raise ValueError(f"config_merge must be 'merge' or 'replace', got {config_merge!r}")
        self.strict_filters = strict_filters
        store.config_merge = config_merge
        self.request_hooks: list[Any] = []
        self.live: LiveProcesses | None = None
        self.store = store
        self.api_key = api_key
        self.faults = faults
        self.resolvers = Resolvers(store, entity)
        self.resolvers.faults = faults  # the page-size limit and overlapping pages
        self._stats = Stats()
        self._stopping = threading.Event()
        faults.limits.stopping = self._stopping  # a slow read ends when the server stops
        store.max_config_bytes = lambda: faults.limits.max_config_bytes
        self._owns_store = owns_store
        self._server = _Server((host, port), self)
        self.host, self.port = self._server.server_address[:2]
        self._thread = threading.Thread(target=self._server.serve_forever, name="runsync-sandbox",
                                        kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        self.set_live_process(live_process_interval)

    @property
    def config_merge(self) -> str:
        """"merge" (W&B today) or "replace" (older self-hosted servers); settable while serving."""
        return self.store.config_merge

    @config_merge.setter
    def config_merge(self, value: str) -> None:
        if value not in ("merge", "replace"):
            raise ValueError(f"config_merge must be 'merge' or 'replace', got {value!r}")
        self.store.config_merge = value

    def set_live_process(self, interval: float | None) -> None:
        """Give every running run a process re-sending its stale config every `interval` s (None: none)."""
        if self.live is not None:
            self.live.stop()
            self.live = None
        if interval:
            self.live = LiveProcesses(self.store, interval)

    @property
    def url(self) -> str:
        """The base URL for WANDB_BASE_URL."""
        host = str(self.host)
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    def env(self) -> dict[str, str]:
        """Return the environment the wandb client needs to talk to this sandbox."""
        return {"WANDB_BASE_URL": self.url, "WANDB_API_KEY": self.api_key}

    def stats(self) -> dict[str, Any]:
        """Return request counters: requests, operations by name, mutations, faults by kind."""
        return self._stats.as_dict()

    def reset_stats(self) -> None:
        """Zero the counters."""
        self._stats.reset()

    def set_faults(self, **kw: Any) -> None:
        """Change fault injection at runtime: latency_ms, error_rate, rate_limit, hang_rate, seed, lost_answer_rate,
        max_page_size, overlap_rate, retry_after, max_mutations, write_ms; and limits.py's LIMIT_SETTINGS."""
        self.faults.set(**kw)

    def stop(self) -> None:
        """Stop serving, drop open connections (and hung requests), close the store if we opened it."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self.set_live_process(None)
        self._server.shutdown()
        self._server.server_close()
        with self._server.conn_lock:
            conns = list(self._server.connections)
        for conn in conns:  # keep-alive connections would otherwise keep being served
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=5)
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:  # never show the key
        return f"<Sandbox {self.url}>"


def start(db: str | Store = ":memory:", api_key: str | None = None, host: str = "127.0.0.1",
          port: int = 0, latency_ms: float = 0, error_rate: float = 0.0,
          rate_limit: float | None = None, hang_rate: float = 0.0, seed: int = 0,
          entity: str = "e", strict_filters: bool = True, config_merge: str = "merge",
          lost_answer_rate: float = 0.0, live_process_interval: float | None = None,
          max_page_size: int | None = DEFAULT_MAX_PAGE_SIZE, overlap_rate: float = 0.0,
          retry_after: bool = False, max_mutations: int | None = None, write_ms: float = 0.0,
          **limits: Any) -> Sandbox:
    """Start a sandbox in a background thread; return once it is listening.

    `db` is a SQLite path, ":memory:", or an open Store. `entity` is the viewer's default entity.
    `strict_filters=False` accepts filters the real service answers with HTTP 500 (`tags` + `$all`, ...).
    `config_merge="replace"` behaves as an older self-hosted server (a config sent replaces the stored one);
    `lost_answer_rate` answers that share of applied mutations with HTTP 502; `live_process_interval` gives
    every running run a process re-sending its stale config that often (seconds).
    Paging as the service: a page over `max_page_size` runs is HTTP 504 (None/0: no limit); `overlap_rate` makes
    that share of follow-up pages repeat or skip a few runs (a live table re-sorted while paging); 429s carry
    RateLimit-* headers, and `Retry-After` only with `retry_after=True`. Writes: a request with more than
    `max_mutations` root mutations is refused whole; each executed mutation costs `write_ms` of server time.
    `limits`: the service's charges (limits.py): read_ms_per_run, gateway_timeout_s, quota_per_s, quota_window_s,
    quota_unit, max_config_bytes (default 15 MB), max_body_bytes (default 10 MB).
    """
    if api_key is not None and len(api_key) < 40:
        raise ValueError("api_key must be at least 40 characters (the wandb client refuses shorter)")
    owns = not isinstance(db, Store)
    store = db if isinstance(db, Store) else Store(str(db))
    faults = Faults(latency_ms, error_rate, rate_limit, hang_rate, seed, lost_answer_rate=lost_answer_rate,
                    max_page_size=max_page_size, overlap_rate=overlap_rate, retry_after=retry_after,
                    max_mutations=max_mutations, write_ms=write_ms, **limits)
    return Sandbox(store, api_key or generate_api_key(), host, port, faults, entity, owns, strict_filters,
                   config_merge, live_process_interval)
