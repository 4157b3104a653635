"""Carry out a Plan: re-read live state, write one upsertBucket per run, journal every write."""
from __future__ import annotations

import copy
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from runsync import codec
from runsync.backend.wandb import IDS_PER_QUERY, WandbBackend
from runsync.errors import BackendError
from runsync.journal import Journal, encode_value
from runsync.model import ABSENT, CONFIG_PREFIX, Action, Change, Plan, RunRecord, Skip
from runsync.plan import RUNNING, live_value, same

# Writes in flight at once: chosen in benchmarks/ (README "Performance").
DEFAULT_CONCURRENCY = 8
# Attempts per run after the client's own retries gave up (it already honours 429 Retry-After).
DEFAULT_ATTEMPTS = 4
# Runs failing every attempt one after another before the rest are not even tried: a server that is
# down would otherwise cost attempts x the client's deadline for every remaining run.
DEFAULT_STOP_AFTER_FAILURES = 5


@dataclass
class ApplyReport:
    applied: list[Change] = field(default_factory=list)
    already: list[Change] = field(default_factory=list)  # W&B already held the new value
    conflicts: list[Change] = field(default_factory=list)  # moved in W&B between plan and write
    failed: dict[str, str] = field(default_factory=dict)  # run id -> why, after every retry
    failed_changes: list[Change] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # deleted in W&B between plan and write
    skipped: list[Skip] = field(default_factory=list)  # started running between plan and write
    warnings: list[str] = field(default_factory=list)
    journal: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failed and not self.conflicts and not self.missing


@dataclass(frozen=True)
class ApplyOptions:
    journal: str
    concurrency: int = DEFAULT_CONCURRENCY
    attempts: int = DEFAULT_ATTEMPTS
    force: bool = False
    backoff_seconds: float = 1.0
    stop_after_failures: int = DEFAULT_STOP_AFTER_FAILURES
    read_chunk: int = IDS_PER_QUERY  # runs re-read per query just before their writes
    include_running: bool = False  # write runs whose state is "running" too
    # Extra begin-line fields naming where the plan came from: sheet, exported_at (journal.export_header);
    # an undo adds undo_of. Planning the sheet again finds its journals by them (journal.journal_base).
    header: dict[str, Any] = field(default_factory=dict)


class _Backoff:
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


class _Breaker:
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


def apply_plan(
    plan: Plan,
    backend: WandbBackend,
    options: ApplyOptions,
    *,
    on_run_done: Callable[[str], None] | None = None,
) -> ApplyReport:
    """Write the plan's changes; safe to re-run: fields W&B already holds are skipped."""
    if plan.include_running and not options.include_running:
        options = replace(options, include_running=True)  # the plan already chose to write running runs
    report = ApplyReport(journal=options.journal)
    by_run: dict[str, list[Change]] = {}
    for change in plan.changes:
        by_run.setdefault(change.run_id, []).append(change)
    if not by_run:
        return report
    backoff = _Backoff(options.backoff_seconds)
    breaker = _Breaker(options.stop_after_failures)
    lock = threading.Lock()
    with Journal(options.journal) as journal:
        journal.append({"op": "begin", "v": 1, "project": plan.project, "source": plan.source, **options.header,
                        "runs": len(by_run), "fields": len(plan.changes)})
        run_ids = list(by_run)
        with ThreadPoolExecutor(max_workers=max(1, options.concurrency)) as pool:
            for start in range(0, len(run_ids), options.read_chunk):
                chunk = run_ids[start : start + options.read_chunk]
                if breaker.open:
                    _give_up(report, [c for r in chunk for c in by_run[r]], _stopped(breaker), lock)
                    continue
                try:
                    fresh = _read_fresh(backend, plan.project, chunk, backoff)
                except BackendError as exc:
                    _give_up(report, [c for r in chunk for c in by_run[r]], f"reading W&B failed: {exc.message}", lock)
                    breaker.record(False)
                    continue
                jobs = [
                    pool.submit(_write_run, backend, journal, options, backoff, breaker, by_run[run_id],
                                fresh.get(run_id), report, lock)
                    for run_id in chunk
                ]
                for job, run_id in zip(jobs, chunk):
                    job.result()
                    if on_run_done:
                        on_run_done(run_id)
        journal.append({"op": "end", "applied": len(report.applied), "failed": len(report.failed)})
    return report


def _read_fresh(backend: WandbBackend, project: str, ids: list[str], backoff: _Backoff) -> dict[str, RunRecord]:
    backoff.wait()
    return backend.fetch_by_ids(project, ids)  # the backend retries reads itself


def _stopped(breaker: _Breaker) -> str:
    return f"not attempted: W&B failed {breaker.in_a_row} runs in a row, so runsync stopped writing"


def _give_up(report: ApplyReport, changes: list[Change], why: str, lock: threading.Lock) -> None:
    with lock:
        for change in changes:
            report.failed.setdefault(change.run_id, why)
        report.failed_changes.extend(changes)


def _write_run(backend: WandbBackend, journal: Journal, options: ApplyOptions, backoff: _Backoff, breaker: _Breaker,
               changes: list[Change], record: RunRecord | None, report: ApplyReport, lock: threading.Lock) -> None:
    run_id = changes[0].run_id
    if breaker.open:
        _give_up(report, changes, _stopped(breaker), lock)
        return
    if record is None:
        with lock:
            report.missing.append(run_id)
            report.failed_changes.extend(changes)
        return
    if record.state == RUNNING and not options.include_running:
        with lock:  # it was not running at plan time; its process would re-send its config over the edit
            report.skipped.append(Skip(run_id, record.name, RUNNING))
        return
    to_write: list[Change] = []
    for change in changes:
        now = live_value(record, change.field, change.path)
        if same(change.field, now, change.sheet):
            with lock:
                report.already.append(change)
        elif _would_replace(record, change):
            # The key above (or the key itself) changed shape in W&B since the plan: writing would destroy it.
            with lock:
                report.conflicts.append(Change(change.run_id, change.run_name, change.field, change.base,
                                               change.sheet, now, Action.CONFLICT, change.path))
        elif same(change.field, now, change.live) or options.force:
            to_write.append(Change(change.run_id, change.run_name, change.field, change.base, change.sheet,
                                   now, Action.UPDATE, change.path))
        else:
            with lock:
                report.conflicts.append(Change(change.run_id, change.run_name, change.field, change.base,
                                               change.sheet, now, Action.CONFLICT, change.path))
    if not to_write:
        return
    fields = write_fields(record, to_write)
    journal.append({
        "op": "write", "run": run_id, "run_name": record.name, "storage_id": record.storage_id,
        "fields": [{"field": c.field, "path": list(c.path), "before": encode_value(c.live),
                    "after": encode_value(c.sheet)} for c in to_write],
    })
    error = ""
    for attempt in range(options.attempts):
        backoff.wait()
        try:
            backend.upsert_run(record.storage_id, fields)
        except BackendError as exc:
            error = exc.message
            backoff.push_back(attempt)
            continue
        journal.append({"op": "done", "run": run_id})
        breaker.record(True)
        with lock:
            report.applied.extend(to_write)
        return
    breaker.record(False)
    _give_up(report, to_write, error, lock)


def _would_replace(record: RunRecord, change: Change) -> bool:
    if not change.field.startswith(CONFIG_PREFIX) or change.sheet is ABSENT:
        return False
    held = codec.get_path(record.config, change.path)
    return codec.blocking_ancestor(record.config, change.path) is not None or (isinstance(held, dict) and bool(held))


def write_fields(record: RunRecord, changes: list[Change]) -> dict[str, Any]:
    """The upsertBucket inputs for these changes: only what changed, config as live + changed keys."""
    fields: dict[str, Any] = {}
    config: dict[str, Any] | None = None
    for change in changes:
        value = None if change.sheet is ABSENT else change.sheet
        if change.field.startswith(CONFIG_PREFIX):
            if config is None:
                config = copy.deepcopy(record.raw_config)
            _set_config_value(config, change.path, value)
        elif change.field == "tags":
            fields["tags"] = list(value or ())
        else:
            # W&B reads a null input as "leave as is"; an emptied cell must be sent as "".
            fields[change.field] = "" if value is None else value
    if config is not None:
        fields["raw_config"] = config
    return fields


def _set_config_value(raw_config: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    """Set a key inside W&B's wrapped config, keeping the key's description."""
    top, rest = path[0], path[1:]
    entry = raw_config.get(top)
    if isinstance(entry, dict) and "value" in entry:
        wrapped = dict(entry)
    else:
        wrapped = {"value": entry if top in raw_config else None, "desc": None}
    if rest:
        inner = wrapped["value"] if isinstance(wrapped["value"], dict) else {}
        wrapped["value"] = codec.set_path(inner, rest, value)
    else:
        wrapped["value"] = value
    raw_config[top] = wrapped
