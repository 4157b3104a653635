"""A listing's page reads: a page the service does not answer is asked again at half the size."""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from runsync.backend.wandb.queries import RUNS_QUERY
from runsync.errors import BackendError

if TYPE_CHECKING:
    from runsync.backend.wandb.connection import Connection

log = logging.getLogger("runsync")

# A page that fails is asked again at half the size, down to this; the size that answered is kept.
MIN_PER_PAGE = 25
READ_RETRY_SECONDS = 1.0


class Pager:
    """The page reads of one listing: a page the service does not answer is asked again at half the size.

    "No answer" is the client giving up (its retries of 502/504/5xx, 429s and per-attempt timeouts ran out:
    `timed_out`). The page is asked again at half the size, down to MIN_PER_PAGE, from the same cursor, and
    the size that answered is kept for the rest of the listing (and the backend's later listings). Other
    failures are tried again at the same size (reads change nothing), `read_attempts` times in all. Once
    `deadline` seconds pass without an answered page, it gives up with one line saying what failed.
    """

    def __init__(self, backend: Connection, size: int, what: str) -> None:
        self.backend = backend
        self.size = max(1, size)
        self.what = what  # "entity/project", for messages
        self.requests = 0
        self.client_deadline = backend._client_deadline()
        self.deadline = min(backend._page_deadline, 4 * self.client_deadline)
        self._sizes: list[tuple[int, bool]] = []  # (size, answered) of each change of outcome, in order

    def answer(self, size: int) -> None:
        if not self._sizes or self._sizes[-1] != (size, True):
            self._sizes.append((size, True))

    def fail(self, size: int, exc: BackendError) -> None:
        log.debug("%s: a page of %d runs failed: %s", self.what, size, exc.message)
        if not self._sizes or self._sizes[-1] != (size, False):
            self._sizes.append((size, False))

    def shrink(self, size: int) -> None:
        self.size = size
        with self.backend._lock:
            cap = self.backend._page_cap
            self.backend._page_cap = size if cap is None else min(cap, size)

    def describe(self) -> str:
        """E.g. "250 failed, 125 failed, 62": every page size asked, in order."""
        return ", ".join(f"{size}{'' if ok else ' failed'}" for size, ok in self._sizes) or "none"

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
            self.answer(asked)
            return data

    def _give_up(self, exc: BackendError, elapsed: float) -> BackendError:
        error = BackendError(f"{exc.message}; listing runs of {self.what}: no page answered in {elapsed:.0f} s "
                             f"(runs per page: {self.describe()})", hint=exc.hint)
        error.timed_out = getattr(exc, "timed_out", False)  # type: ignore[attr-defined]
        return error
