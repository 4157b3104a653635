"""What one apply's workers share while they write: the server's config mode (learnt by the probe), the batch
size, one backoff and one breaker, gathered in a WriteContext (batches.py writes with it)."""
from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from runsync.backend import Backend
from runsync.journal.events import Journal
from runsync.model import Change
from runsync.words import counted

if TYPE_CHECKING:
    from runsync.model import ApplyReport
    from runsync.writer.options import ApplyOptions

# How the server takes a config input (REAL_WANDB.md "Writing runs").
MERGE = "merge"  # merged into the stored config: send only the changed keys
REPLACE = "replace"  # replaces it (older self-hosted servers): send the whole config, re-read just before


class ConfigMode:
    """MERGE, REPLACE or None (unknown yet: config writes wait for the probe)."""

    def __init__(self) -> None:
        self.mode: str | None = None


class BatchSize:
    """Runs per write request, shared by the workers. A failed batch is sent again in halves; when both halves
    land, the size was the trouble: later batches are at most the larger half."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self.first_failure: tuple[int, str] | None = None  # (runs, error) of the first batch halves then took
        self._lock = threading.Lock()

    def halves_landed(self, tried: int, error: str, larger_half: int) -> None:
        with self._lock:
            self.size = max(1, min(self.size, larger_half))
            if self.first_failure is None:
                self.first_failure = (tried, error)

    def warning(self) -> str | None:
        """What the report says once when batches had to shrink."""
        if self.first_failure is None:
            return None
        tried, error = self.first_failure
        return (f"W&B did not take {tried} runs in one request ({error}); runsync sent them again in smaller "
                f"requests, and then at most {counted(self.size, 'run')} per request")


class Backoff:
    """One shared pause: when the server pushes back, every worker waits, not just the one that saw it."""

    def __init__(self, base: float) -> None:
        self.base = base
        self._until = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        while True:
            with self._lock:
                delay = self._until - time.monotonic()
            if delay <= 0:
                return
            time.sleep(delay)

    def push_back(self, attempt: int) -> None:
        delay = self.base * (2**attempt) * (0.5 + random.random())
        with self._lock:
            self._until = max(self._until, time.monotonic() + delay)


class Breaker:
    """Counts runs that failed every attempt in a row; open once there were too many."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_a_row = 0
        self._lock = threading.Lock()

    def record(self, ok: bool) -> None:
        with self._lock:
            self.in_a_row = 0 if ok else self.in_a_row + 1

    @property
    def open(self) -> bool:
        return self.in_a_row >= self.limit


@dataclass
class WriteContext:
    """What one apply shares between its workers."""

    backend: Backend
    project: str
    journal: Journal
    options: ApplyOptions
    backoff: Backoff
    breaker: Breaker
    report: ApplyReport
    lock: threading.Lock
    mode: ConfigMode = field(default_factory=ConfigMode)
    batch: BatchSize = field(default_factory=lambda: BatchSize(1))  # apply_plan gives the size asked for
    sent: dict[str, list[Change]] = field(default_factory=dict)  # run id -> the changes its write line records
    with_summary: bool = False  # the plan edits summary metrics: every read asks for the summary too
