"""Pacing every request by the service's own signal, so a long import under a quota meets a handful of 429s.

W&B meters requests per user and per project in fixed windows; its answers carry `RateLimit-Limit` and
`RateLimit-Remaining` (both scaled 0–1000) and `RateLimit-Reset` (seconds), and a 429 may come without
`Retry-After` (REAL_WANDB.md "Limits"). What runsync can see of that depends on the client generation
(transport.py):

- classic (wandb < 0.27, `requests`): every answer's headers, through a response hook on the client's
  `requests.Session`. Rule "headers": the cost of one request in quota units is learnt from how much
  `Remaining` fell per answer within a window (as wandb-core's filestream does, core/internal/api/
  ratelimittracker.go); what is left is spread evenly over the `Reset` seconds; when less than one request
  (plus the ones in flight) is left, every request waits for `Reset`. No headers: no pacing (the client's
  own backoff, as before).
- sidecar (wandb >= 0.27, `_service_api.execute_graphql`): no headers and no status on success — the answer is
  the `data` JSON only; a 429 reaches Python only once the sidecar's retries are spent. The sidecar waits out
  each 429 itself (`Retry-After`, else ~2 s doubling): that backoff stays alone, as before. (Pacing by how
  long the sidecar held a request was tried and dropped: it waits out a 500 or a hung request with the same
  backoff it gives a 429, so under server errors it took every retried error for a quota and slowed an import
  of 1,000 changes with 20% 500s, tests/test_faults.py, from 40 s to over 150 s.)

RUNSYNC_PACING=off sends at full speed (the benchmarks' baseline).
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping

PACING_ENV = "RUNSYNC_PACING"
SMOOTHING = 0.5  # weight of the old estimate of a request's cost in quota units


def enabled_by_env() -> bool:
    return os.environ.get(PACING_ENV, "").strip().lower() not in ("off", "0", "false", "no")


def _number(value: str | None) -> float | None:
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and number >= 0 else None


class Pacer:
    """Hands out send times to every request of one backend; thread-safe.

    `before()` waits for the request's slot and returns its start time; `after()` says it ended;
    `observe_headers()` feeds an answer's RateLimit-*.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.sees_headers = False  # the transport hands answers' headers to observe_headers (classic)
        self.signal: str | None = None  # "headers", once an answer carried them
        self.waits = 0  # requests that waited for their slot
        self.waited_seconds = 0.0
        self._lock = threading.Lock()
        self._interval = 0.0  # seconds between two sends; 0: full speed
        self._next = 0.0  # the earliest next send
        self._hold_until = 0.0  # nothing is sent before this (a window spent)
        self._in_flight = 0
        # "headers": a request's cost in quota units, and the current window's lowest Remaining and answers.
        self._cost: float | None = None
        self._window_low: float | None = None
        self._window_answers = 0
        self._window_end = 0.0

    # -- sending -------------------------------------------------------------------------------------------
    def before(self, *, retry: bool = False) -> float:
        """Wait for this request's slot; return its start time. `retry`: the client sends a request again (it is
        in flight already)."""
        if not self.enabled:
            return time.monotonic()
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next, self._hold_until)
            self._next = slot + self._interval
            self._in_flight += 0 if retry else 1
            if slot > now:
                self.waits += 1
                self.waited_seconds += slot - now
        if slot > now:
            time.sleep(slot - now)
        return slot

    def after(self) -> None:
        """A request ended (answered or failed): it is no longer in flight."""
        if not self.enabled:
            return
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)

    # -- the headers rule ----------------------------------------------------------------------------------
    def observe_headers(self, headers: Mapping[str, str]) -> None:
        """An answer's headers (any status); without RateLimit-Remaining and -Reset nothing changes."""
        if not self.enabled:
            return
        remaining, reset = _number(headers.get("RateLimit-Remaining")), _number(headers.get("RateLimit-Reset"))
        if remaining is None or reset is None:
            return
        limit = _number(headers.get("RateLimit-Limit")) or 1000.0
        now = time.monotonic()
        with self._lock:
            self.signal = "headers"
            new_window = (self._window_low is None or now >= self._window_end
                          or remaining > self._window_low + (self._cost or 0.0))
            if new_window:
                self._window_low, self._window_answers = remaining, 1
                self._window_end = now + reset
            else:
                self._window_low = min(self._window_low or remaining, remaining)
                self._window_answers += 1
                # Reset is in whole seconds (rounded up): the earliest end any answer of the window implies.
                self._window_end = min(self._window_end, now + reset)
            until_reset = max(0.05, self._window_end - now)
            spent = (limit - (self._window_low or 0.0)) / self._window_answers
            if spent > 0:
                self._cost = spent if self._cost is None else SMOOTHING * self._cost + (1 - SMOOTHING) * spent
            cost = self._cost or max(1.0, limit - remaining)
            left = remaining / cost - self._in_flight  # requests this window still takes, beyond those in flight
            if left < 1:
                self._hold_until = max(self._hold_until, now + until_reset)
                self._interval = 0.0
            else:
                self._interval = until_reset / left
