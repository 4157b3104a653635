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

import secrets
import socket
import string
import threading
from typing import Any

from .faults import DEFAULT_MAX_PAGE_SIZE, Faults
from .handler import SandboxHTTPServer
from .live import LiveProcesses
from .resolvers import Resolvers
from .stats import Stats
from .store import Store


def generate_api_key() -> str:
    """Return a fresh 40-character key of [A-Za-z0-9] (the client refuses keys under 40)."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(40))


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
        self._server = SandboxHTTPServer((host, port), self)
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
