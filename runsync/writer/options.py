"""How an apply runs: its options and their defaults (each default chosen in benchmarks/, docs/performance.md)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Writes in flight at once: chosen in benchmarks/ (docs/performance.md).
DEFAULT_CONCURRENCY = 8
# Runs per write request (aliased upsertBuckets), chosen in benchmarks/ (docs/performance.md). The server
# runs a request's mutations one after another, so a big batch is one long request: this many must finish
# well within the client's deadline even at a slow server's pace per write.
DEFAULT_BATCH_SIZE = 25
# Attempts per run after the client's own retries gave up (it already honours 429 Retry-After).
DEFAULT_ATTEMPTS = 4
# Runs failing every attempt one after another before the rest are not even tried: a server that is
# down would otherwise cost attempts x the client's deadline for every remaining run.
DEFAULT_STOP_AFTER_FAILURES = 5


@dataclass(frozen=True)
class ApplyOptions:
    journal: str
    concurrency: int = DEFAULT_CONCURRENCY
    batch_size: int = DEFAULT_BATCH_SIZE  # runs per write request (1: one run per request)
    attempts: int = DEFAULT_ATTEMPTS
    force: bool = False
    backoff_seconds: float = 1.0
    stop_after_failures: int = DEFAULT_STOP_AFTER_FAILURES
    read_chunk: int | None = None  # runs re-read per query just before their writes (None: the backend's ids per query)
    include_running: bool = False  # write runs whose state is "running" too
    verify: bool = True  # read the written runs back (a page of ids per request) and report what did not stick
    # Extra begin-line fields naming where the plan came from: sheet, exported_at (journal.export_header);
    # an undo adds undo_of. Planning a sheet of that export finds its journals by them (runsync.journal.history).
    header: dict[str, Any] = field(default_factory=dict)
