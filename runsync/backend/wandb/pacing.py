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
  the `data` JSON only; a failure carries `ApiErrorResponse.http_status`, but a 429 reaches Python only once the
  sidecar's retries are spent. The sidecar waits out each 429 itself (`Retry-After`, else ~2 s doubling), so
  the closest honest signal is a request held about that long when answers take milliseconds. Rule "held
  requests": the first hold sets the rate to what the server let through in the seconds before it, a later
  hold cuts it by a third, and every few seconds of waiting without a hold raise it a little, to find the
  quota again.

RUNSYNC_PACING=off sends at full speed (the benchmarks' baseline).
"""
from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Mapping

PACING_ENV = "RUNSYNC_PACING"

# A request held this much longer than usual was waited out by the client: the sidecar's shortest wait for a
# 429 is ~2 s, a `Retry-After` at least 1 s.
HELD_SECONDS = 0.9
# How far back "what the server let through" is counted when the first hold sets the rate.
SPAN_SECONDS = 10.0
# The rate after a hold is this share of what got through (the margin keeps a window's end from overflowing).
MARGIN = 0.9
CUT = 2 / 3  # a hold while already paced: the rate drops to this share
PROBE_SECONDS = 3.0  # this long paced without a hold: the rate rises by PROBE_STEP (up to below the last cut's)
PROBE_STEP = 1.1
SMOOTHING = 0.5  # weight of the old estimate of a request's cost in quota units
# The "held requests" rule is off: the sidecar waits out a 500 or a hung request with the same ~2 s backoff it
# gives a 429, so under server errors the rule took every retried error for a quota and paced an import of
# 1,000 changes (20% 500s, 2% hangs, a 20/s limit: tests/test_faults.py) from 40 s to over 150 s. Without the
# headers, the client's own backoff stays alone, as the issue asks. RUNSYNC_PACING=held turns it on to try it.
HELD_RULE = os.environ.get("RUNSYNC_PACING", "").strip().lower() == "held"


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

    `before()` waits for the request's slot and returns its start time; `after()` reports how it went
    (the "held requests" rule); `observe_headers()` feeds an answer's RateLimit-* (the "headers" rule).
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.sees_headers = False  # the transport hands answers' headers to observe_headers (classic)
        self.signal: str | None = None  # "headers" or "held requests", once one was seen
        self.waits = 0  # requests that waited for their slot
        self.waited_seconds = 0.0
        self.holds = 0  # requests the client held (the sidecar waited out pushback)
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
        # "held requests"
        self._typical: dict[str, float] = {}  # per query: a usual answer time
        self._done: deque[float] = deque()  # when recent requests finished
        self._rate: float | None = None  # requests per second; None: not paced
        self._ceiling: float | None = None  # the rate a hold cut: probing stays below it
        self._last_hold = 0.0
        self._last_change = 0.0
        self._paced_since_change = False

    # -- sending -------------------------------------------------------------------------------------------
    def before(self, *, retry: bool = False) -> float:
        """Wait for this request's slot; return its start time. `retry`: the client sends a request again (it is
        in flight already)."""
        if not self.enabled:
            return time.monotonic()
        with self._lock:
            now = time.monotonic()
            self._probe(now)
            slot = max(now, self._next, self._hold_until)
            self._next = slot + self._interval
            self._in_flight += 0 if retry else 1
            if slot > now:
                self.waits += 1
                self.waited_seconds += slot - now
                self._paced_since_change = True
        if slot > now:
            time.sleep(slot - now)
        return slot

    def after(self, query: str, started: float, *, status: int | None = None) -> None:
        """A request sent at `started` ended (`status`: the HTTP status of a failure, if known)."""
        if not self.enabled:
            return
        now = time.monotonic()
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
            if self.sees_headers or not HELD_RULE:
                return  # the headers say more; without them the client's own backoff stays alone (as before)
            took = now - started
            usual = self._typical.get(query, min(self._typical.values(), default=0.0))
            held = status == 429 or took > usual + HELD_SECONDS
            if not held:
                self._typical[query] = took if query not in self._typical else (usual + took) / 2
                self._done.append(now)
                while self._done and self._done[0] < now - SPAN_SECONDS:
                    self._done.popleft()
                return
            self.holds += 1
            if started < self._last_hold:
                return  # sent before the last hold was seen: the same pushback
            while self._done and self._done[0] < now - SPAN_SECONDS:
                self._done.popleft()
            self.signal = "held requests"
            if self._rate is None:
                if len(self._done) < 2:
                    return  # nothing went through lately to measure (a first request slow for other reasons)
                # What the server let through, the wait included: below the quota, so the next windows hold.
                self._rate = MARGIN * (len(self._done) + 1) / max(1.0, now - self._done[0])
            else:
                self._ceiling = self._rate if self._ceiling is None else min(self._ceiling, self._rate)
                self._rate = max(0.1, self._rate * CUT)
            self._last_hold = self._last_change = now
            self._paced_since_change = False
            self._interval = 1 / self._rate

    def _probe(self, now: float) -> None:
        """Paced for a while without a hold: allow a little more (the quota may be higher than learnt)."""
        if (self.signal == "held requests" and self._rate is not None and self._paced_since_change
                and now - self._last_change >= PROBE_SECONDS):
            higher = self._rate * PROBE_STEP
            if self._ceiling is not None:
                higher = min(higher, MARGIN * self._ceiling)
            self._rate = max(self._rate, higher)
            self._interval = 1 / self._rate
            self._last_change = now
            self._paced_since_change = False

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
