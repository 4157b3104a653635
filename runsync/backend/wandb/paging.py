"""A listing's page reads, sized by how the server answers: pages grow while they come back well inside the
client's deadline, and a page that is slow, or not answered, makes the next one half the size."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from runsync.backend.wandb.queries import RUNS_QUERY
from runsync.errors import BackendError

if TYPE_CHECKING:
    from runsync.backend.wandb.connection import Connection

log = logging.getLogger("runsync")

# A page that fails is asked again at half the size, down to this; the size that answered is kept.
MIN_PER_PAGE = 25
READ_RETRY_SECONDS = 1.0
# Pages that grow stop here (docs/performance.md "Pages"): at 1,000 runs a page the round trip costs ~0.1 ms a
# run at 100 ms latency, about the client's own cost per run, so bigger pages save little (~1 s per 20,000 runs)
# while a page that fails costs more; 1,000 is also the size the service is known to answer with small configs
# (REAL_WANDB.md "Reading runs") and the bare paging runsync is measured against (`Api().runs(per_page=1000)`).
MAX_PER_PAGE = 1000
# Server time grows about linearly with the runs a page returns: a page answered in under a quarter of the
# client's deadline (~4.75 s of 19 s) is doubled, so the next should take under half of it, the other half left
# for a server that varies or runs with bigger configs. One answered in over half of it is halved: one more such
# step (a busier server) would reach the deadline, where the page fails and costs a whole deadline. Between the
# two the size is kept; a page and its half can never fall on opposite sides, so sizes do not swing.
GROW_BELOW = 0.25
SLOW_ABOVE = 0.5


class PageSize:
    """The runs the next page (or query of ids) asks for, from how the pages so far were answered; thread-safe
    (the queries of one read by ids share one, from several threads).

    `grow=False` keeps `start` (a size the caller asked for): only a failure makes it smaller. `ceiling()` is
    the most a page may grow to (the backend's size that answered after a failure, and MAX_PER_PAGE).
    """

    def __init__(self, start: int, client_deadline: float, *, grow: bool, ceiling: Callable[[], int | None]) -> None:
        self.size = max(1, start)
        self.client_deadline = client_deadline
        self.grow = grow
        self._ceiling = ceiling
        self._lock = threading.Lock()
        self._shrunk_at = float("-inf")  # when the size was last made smaller
        self.sizes: list[tuple[int, str]] = []  # (size, "" | "failed" | "slow") at each change of outcome, in order

    def _note(self, size: int, outcome: str) -> None:
        if not self.sizes or self.sizes[-1] != (size, outcome):
            self.sizes.append((size, outcome))

    def answered(self, asked: int, seconds: float, what: str) -> None:
        """A page of `asked` runs answered in `seconds`: the next is doubled, halved or kept (see GROW_BELOW)."""
        with self._lock:
            before = self.size
            now = time.monotonic()
            slow = self.grow and seconds > SLOW_ABOVE * self.client_deadline and asked > MIN_PER_PAGE
            self._note(asked, "slow" if slow else "")
            if slow:
                self.size = min(self.size, max(MIN_PER_PAGE, asked // 2))
                self._shrunk_at = now
            # Only a page asked at the current size, and sent after the last shrink, is news: a page sent before
            # a slow answer (several queries are in flight at once) says nothing about the server now.
            elif (self.grow and seconds < GROW_BELOW * self.client_deadline and asked >= self.size
                  and now - seconds > self._shrunk_at):
                cap = min(MAX_PER_PAGE, self._ceiling() or MAX_PER_PAGE)
                self.size = max(self.size, min(cap, asked * 2))
            after = self.size
        if after != before:
            log.debug("%s: a page of %d runs took %.2f s (client deadline %g s): asking for %d next", what, asked,
                      seconds, self.client_deadline, after)

    def failed(self, asked: int) -> None:
        with self._lock:
            self._note(asked, "failed")

    def shrink(self, size: int) -> None:
        with self._lock:
            self.size = min(self.size, size)
            self._shrunk_at = time.monotonic()

    def describe(self) -> str:
        """E.g. "250, 500, 1000 failed, 500": every page size asked, in order."""
        with self._lock:
            return ", ".join(f"{size}{' ' + outcome if outcome else ''}" for size, outcome in self.sizes) or "none"


class Pager:
    """The page reads of one listing: a page the service does not answer is asked again at half the size.

    "No answer" is the client giving up (its retries of 502/504/5xx, 429s and per-attempt timeouts ran out:
    `timed_out`). The page is asked again at half the size, down to MIN_PER_PAGE, from the same cursor, and
    the size that answered is kept for the rest of the listing (and the backend's later listings: pages never
    grow past it again). Other failures are tried again at the same size (reads change nothing),
    `read_attempts` times in all. Once `deadline` seconds pass without an answered page, it gives up with one
    line saying what failed. With `grow`, answered pages also size the next one (PageSize); `sizes` may be
    shared with other listings (the queries of one read by ids).
    """

    def __init__(self, backend: Connection, size: int, what: str, *, grow: bool = False,
                 sizes: PageSize | None = None) -> None:
        self.backend = backend
        self.what = what  # "entity/project", for messages
        self.requests = 0
        self.client_deadline = backend._client_deadline()
        self.deadline = min(backend._page_deadline, 4 * self.client_deadline)
        self.sizes = sizes or PageSize(size, self.client_deadline, grow=grow, ceiling=lambda: backend._page_cap)

    @property
    def size(self) -> int:
        return self.sizes.size

    def answer(self, size: int, seconds: float = 0.0) -> None:
        self.sizes.answered(size, seconds, self.what)

    def fail(self, size: int, exc: BackendError) -> None:
        log.debug("%s: a page of %d runs failed: %s", self.what, size, exc.message)
        self.sizes.failed(size)

    def shrink(self, size: int) -> None:
        self.sizes.shrink(size)
        with self.backend._lock:
            cap = self.backend._page_cap
            self.backend._page_cap = size if cap is None else min(cap, size)

    def describe(self) -> str:
        """E.g. "250 failed, 125 failed, 62": every page size asked, in order."""
        return self.sizes.describe()

    def read(self, variables: dict[str, Any]) -> dict[str, Any]:
        """One page (`variables["perPage"]` runs, or fewer after failures); BackendError when it can't be had."""
        asked = variables["perPage"]
        started = time.monotonic()
        failures = 0
        while True:
            remaining = self.deadline - (time.monotonic() - started)
            # Always explicit: the sidecar, shared by the process, may have started with another deadline.
            timeout = max(1.0, min(self.client_deadline, remaining))
            self.requests += 1
            try:
                _ = self.backend.api  # connected first: a page's time is the server's, not the login's
                sent = time.monotonic()
                data = self.backend.execute(RUNS_QUERY, {**variables, "perPage": asked}, timeout=timeout)
            except BackendError as exc:
                if getattr(exc, "no_retry", False):
                    raise
                self.fail(asked, exc)
                elapsed = time.monotonic() - started
                if getattr(exc, "timed_out", False) and asked > MIN_PER_PAGE and elapsed < self.deadline:
                    asked = max(MIN_PER_PAGE, asked // 2)
                    self.shrink(min(self.size, asked))
                    log.debug("%s: asking for %d runs per page from the same cursor", self.what, asked)
                    continue
                failures += 1
                if failures >= self.backend._read_attempts or elapsed >= self.deadline:
                    raise self._give_up(exc, elapsed) from None
                time.sleep(min(READ_RETRY_SECONDS * 2 ** (failures - 1), max(0.0, self.deadline - elapsed)))
                continue
            self.answer(asked, time.monotonic() - sent)
            return data

    def _give_up(self, exc: BackendError, elapsed: float) -> BackendError:
        error = BackendError(f"{exc.message}; listing runs of {self.what}: no page answered in {elapsed:.0f} s "
                             f"(runs per page: {self.describe()})", hint=exc.hint)
        error.timed_out = getattr(exc, "timed_out", False)  # type: ignore[attr-defined]
        return error
