"""Deterministic fault injection for /graphql: latency, HTTP 500s, 429 rate limiting, hangs, lost answers;
the service's paging strictness: a page-size limit (HTTP 504 beyond it), pages that repeat or skip runs; and its
write costs: server time per executed mutation, a limit on mutations per request. The service's own charges (read
time per run, a gateway deadline, a per-project quota, size limits) are in limits.py, set through the same `set`."""
from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import dataclass
from typing import Any

from .limits import LIMIT_SETTINGS, Limits


@dataclass(frozen=True)
class Decision:
    """What to do with one request, decided before it executes (a faulted mutation never applies)."""

    latency_s: float = 0.0
    status: int = 200  # 200, 500 or 429
    retry_after: int | None = None  # seconds, for 429 (sent as `Retry-After` only when the switch is on)
    hang: bool = False
    rate_limit_headers: dict[str, str] | None = None  # for 429: RateLimit-Limit/-Remaining/-Reset, as W&B sends


# The page-size limit by default: W&B's is not documented; runsync's start size (250) is well under it, a
# `per_page=1000` listing is answered, anything bigger gets HTTP 504 as from a load balancer's deadline.
DEFAULT_MAX_PAGE_SIZE = 1000
PAGING_SETTINGS = ("max_page_size", "overlap_rate", "retry_after", "max_mutations", "write_ms")


class Faults:
    """Fault settings, changeable at runtime; random draws come from one seeded RNG under a lock."""

    def __init__(self, latency_ms: float = 0, error_rate: float = 0.0, rate_limit: float | None = None,
                 hang_rate: float = 0.0, seed: int = 0, lost_answer_rate: float = 0.0, *,
                 max_page_size: int | None = DEFAULT_MAX_PAGE_SIZE, overlap_rate: float = 0.0,
                 retry_after: bool = False, max_mutations: int | None = None, write_ms: float = 0.0,
                 **limits: Any) -> None:
        self._lock = threading.Lock()
        self.limits = Limits()  # read time per run, gateway deadline, per-project quota, size limits
        self._rng = random.Random(seed)
        # Overlapping pages draw from their own RNG too (see lost answers below).
        self._page_rng = random.Random(f"pages-{seed}")
        self.max_page_size: int | None = None
        self.overlap_rate = 0.0
        self.retry_after = False
        # A request with more root mutations than this is refused whole (a GraphQL error, nothing applied), as a
        # server with a query-complexity limit would; None: no limit (W&B's is not documented).
        self.max_mutations: int | None = None
        # Server time each executed mutation costs, one after another within a request (a GraphQL server runs
        # a request's mutations in turn): batching saves round trips, not the server's work.
        self.write_ms = 0.0
        # Lost answers draw from their own RNG, so turning them on leaves the other faults' sequence as it was.
        self._lost_rng = random.Random(seed)
        self.lost_answer_rate = 0.0
        self.latency_ms = 0.0
        self.error_rate = 0.0
        self.rate_limit: float | None = None
        self.hang_rate = 0.0
        self._tokens = 0.0
        self._last = time.monotonic()
        self.set(latency_ms=latency_ms, error_rate=error_rate, rate_limit=rate_limit,
                 hang_rate=hang_rate, lost_answer_rate=lost_answer_rate)
        self.set(max_page_size=max_page_size, overlap_rate=overlap_rate, retry_after=retry_after,
                 max_mutations=max_mutations, write_ms=write_ms, **limits)

    def set(self, **kw: float | None) -> None:
        """Change settings: latency_ms, error_rate, rate_limit (requests/s, None/0 = off), hang_rate,
        lost_answer_rate (applied mutations answered 502); max_page_size (runs per page before HTTP 504,
        None/0 = no limit), overlap_rate (share of follow-up pages that repeat or skip runs), retry_after
        (send `Retry-After` with 429s; W&B may not); max_mutations (root mutations per request before the
        request is refused, None/0 = no limit), write_ms (server time per executed mutation); and limits.py's
        LIMIT_SETTINGS (read_ms_per_run, gateway_timeout_s, quota_*, max_config_bytes, max_body_bytes)."""
        unknown = set(kw) - {"latency_ms", "error_rate", "rate_limit", "hang_rate", "seed", "lost_answer_rate",
                             *PAGING_SETTINGS, *LIMIT_SETTINGS}
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(sorted(unknown))}")
        self.limits.set(**{k: kw.pop(k) for k in LIMIT_SETTINGS if k in kw})
        with self._lock:
            if "seed" in kw:
                self._rng = random.Random(kw["seed"])
                self._lost_rng = random.Random(kw["seed"])
                self._page_rng = random.Random(f"pages-{kw['seed']}")
            self._set_paging(kw)
            if "latency_ms" in kw:
                self.latency_ms = max(0.0, float(kw["latency_ms"] or 0))
            for name in ("error_rate", "hang_rate", "lost_answer_rate"):
                if name in kw:
                    value = float(kw[name] or 0)
                    if not 0.0 <= value <= 1.0:
                        raise ValueError(f"{name} must be between 0 and 1, got {value}")
                    setattr(self, name, value)
            if "rate_limit" in kw:
                rate = kw["rate_limit"]
                self.rate_limit = float(rate) if rate else None
                self._tokens = self._capacity()
                self._last = time.monotonic()

    def settings(self) -> dict[str, float | None]:
        """Return the current settings."""
        with self._lock:
            return {"latency_ms": self.latency_ms, "error_rate": self.error_rate,
                    "rate_limit": self.rate_limit, "hang_rate": self.hang_rate,
                    "lost_answer_rate": self.lost_answer_rate,
                    "max_page_size": self.max_page_size, "overlap_rate": self.overlap_rate,
                    "retry_after": self.retry_after, "max_mutations": self.max_mutations,
                    "write_ms": self.write_ms, **self.limits.settings()}

    def _set_paging(self, kw: dict[str, Any]) -> None:
        """The paging settings of `set` (under the lock)."""
        for name in ("max_page_size", "max_mutations"):  # a limit: a whole number, None/0 = none
            if name in kw:
                limit = kw[name]
                if limit is not None and (isinstance(limit, bool) or not float(limit).is_integer() or limit < 0):
                    raise ValueError(f"{name} must be a whole number >= 0, got {limit!r}")
                setattr(self, name, int(limit) if limit else None)
        if "overlap_rate" in kw:
            rate = float(kw["overlap_rate"] or 0)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"overlap_rate must be between 0 and 1, got {rate}")
            self.overlap_rate = rate
        if "retry_after" in kw:
            self.retry_after = bool(kw["retry_after"])
        if "write_ms" in kw:
            self.write_ms = max(0.0, float(kw["write_ms"] or 0))

    def _capacity(self) -> float:
        # A burst of one second's worth of requests (at least one) before throttling starts.
        return max(1.0, self.rate_limit or 0.0)

    def decide(self) -> Decision:
        """Draw the fate of one request: hang, then 500, then the token bucket (429)."""
        with self._lock:
            latency = self.latency_ms / 1000.0
            # Always draw both numbers so the sequence for a seed doesn't depend on the settings.
            hang_draw, error_draw = self._rng.random(), self._rng.random()
            if hang_draw < self.hang_rate:
                return Decision(latency, hang=True)
            if error_draw < self.error_rate:
                return Decision(latency, status=500)
            if self.rate_limit:
                now = time.monotonic()
                self._tokens = min(self._capacity(), self._tokens + (now - self._last) * self.rate_limit)
                self._last = now
                if self._tokens < 1.0:
                    wait = max(1, math.ceil((1.0 - self._tokens) / self.rate_limit))
                    # W&B's 429s carry RateLimit-* (documented); Retry-After may be absent, so it is sent only
                    # with the switch on. The sidecar honours Retry-After exactly; W&B sends whole seconds.
                    headers = {"RateLimit-Limit": str(math.ceil(self._capacity())), "RateLimit-Remaining": "0",
                               "RateLimit-Reset": str(wait)}
                    if self.retry_after:
                        headers["Retry-After"] = str(wait)
                    return Decision(latency, status=429, retry_after=wait, rate_limit_headers=headers)
                self._tokens -= 1.0
            return Decision(latency)

    def refuses_batch(self, mutations: int) -> bool:
        """Whether a request carrying `mutations` root mutations is over the limit (refused whole)."""
        with self._lock:
            return self.max_mutations is not None and mutations > self.max_mutations

    def too_large(self, first: int | None) -> bool:
        """Whether a page of `first` runs is over the page-size limit (answered HTTP 504)."""
        with self._lock:
            return bool(self.max_page_size) and (50 if first is None else first) > self.max_page_size  # type: ignore[operator]

    def page_shift(self, first: int) -> int:
        """Where a follow-up page starts, relative to its cursor: 0 as asked; -k repeats the previous page's
        last k runs, +k skips k runs (a live table re-sorted while paging, wandb/wandb#6614). Seeded."""
        with self._lock:
            if not self.overlap_rate or self._page_rng.random() >= self.overlap_rate:
                return 0
            k = self._page_rng.randint(1, max(1, first // 4))
            return -k if self._page_rng.random() < 0.5 else k

    def lose_answer(self) -> bool:
        """Whether a mutation, once applied, is answered HTTP 502 ("write applied, answer lost": a proxy
        timed out). Drawn once per applied mutation, from its own seeded RNG."""
        with self._lock:
            return self.lost_answer_rate > 0 and self._lost_rng.random() < self.lost_answer_rate
