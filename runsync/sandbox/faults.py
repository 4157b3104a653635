"""Deterministic fault injection for /graphql: latency, HTTP 500s, 429 rate limiting, hangs."""
from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    """What to do with one request, decided before it executes (a faulted mutation never applies)."""

    latency_s: float = 0.0
    status: int = 200  # 200, 500 or 429
    retry_after: int | None = None  # seconds, for 429
    hang: bool = False


class Faults:
    """Fault settings, changeable at runtime; random draws come from one seeded RNG under a lock."""

    def __init__(self, latency_ms: float = 0, error_rate: float = 0.0, rate_limit: float | None = None,
                 hang_rate: float = 0.0, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self.latency_ms = 0.0
        self.error_rate = 0.0
        self.rate_limit: float | None = None
        self.hang_rate = 0.0
        self._tokens = 0.0
        self._last = time.monotonic()
        self.set(latency_ms=latency_ms, error_rate=error_rate, rate_limit=rate_limit,
                 hang_rate=hang_rate)

    def set(self, **kw: float | None) -> None:
        """Change settings: latency_ms, error_rate, rate_limit (requests/s, None/0 = off), hang_rate."""
        unknown = set(kw) - {"latency_ms", "error_rate", "rate_limit", "hang_rate", "seed"}
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(sorted(unknown))}")
        with self._lock:
            if "seed" in kw:
                self._rng = random.Random(kw["seed"])
            if "latency_ms" in kw:
                self.latency_ms = max(0.0, float(kw["latency_ms"] or 0))
            for name in ("error_rate", "hang_rate"):
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
                    "rate_limit": self.rate_limit, "hang_rate": self.hang_rate}

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
                    wait = (1.0 - self._tokens) / self.rate_limit
                    # The sidecar honours Retry-After exactly; W&B sends whole seconds.
                    return Decision(latency, status=429, retry_after=max(1, math.ceil(wait)))
                self._tokens -= 1.0
            return Decision(latency)
