"""The sandbox's HTTP side: routes, auth, faults and limits applied to each request, the answer sent."""
from __future__ import annotations

import base64
import gzip
import hmac
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from graphql import GraphQLError

from .faults import Faults
from .filters import service_refusal
from .limits import GatewayTimeout, request_projects
from .query import decode_filters
from .resolvers import PageTooLarge, Resolvers
from .stats import Stats
from .store import Store

HANG_SECONDS = 60.0  # a hung request is dropped after this, or when the server stops


class SandboxState(Protocol):
    """What the handler uses of the Sandbox (server.py) that serves it."""

    api_key: str
    strict_filters: bool
    request_hooks: list[Any]
    store: Store
    faults: Faults
    resolvers: Resolvers
    _stats: Stats
    _stopping: threading.Event

    def stats(self) -> dict[str, Any]: ...

    def reset_stats(self) -> None: ...

    def set_faults(self, **kw: Any) -> None: ...


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # The listen backlog: socketserver's 5 makes a burst of parallel clients (runsync's writers, several
    # processes) meet connection resets; the service holds them. 64 concurrent clients must all be served.
    request_queue_size = 256

    def __init__(self, addr: tuple[str, int], sandbox: SandboxState) -> None:
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
    server: SandboxHTTPServer

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
