"""Carry out a Plan: re-read live state, write one upsertBucket per run, journal every write, read them back.

Config writes send only the changed top-level keys (W&B merges config: wandb/wandb#11055), so a key someone
else set meanwhile is never sent back stale. Older self-hosted servers replace the whole config instead
(REAL_WANDB.md "Writing runs"): the first config write is made alone, with the run's whole config journaled,
and read back; if the server dropped the keys not sent, that run is restored and every later config write
sends the whole config, re-read just before it.
"""
from __future__ import annotations

import copy
import math
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
from runsync.model import ABSENT, CONFIG_PREFIX, SUMMARY_PREFIX, Action, Change, Plan, RunRecord, Skip
from runsync.classify import RUNNING, live_value, same

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
    # Written (W&B confirmed it), yet read back holding another value: `live` is what W&B holds.
    did_not_stick: list[Change] = field(default_factory=list)
    verified_runs: int = 0  # runs read back after writing (0: verification off, or nothing written)
    verify_requests: int = 0  # reads that cost: one per page of ids
    unverified: str | None = None  # why the read-back failed, when it did
    config_writes: str | None = None  # MERGE or REPLACE once the server's handling of config is known

    @property
    def ok(self) -> bool:
        return (not self.failed and not self.conflicts and not self.missing and not self.did_not_stick
                and self.unverified is None)


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
    verify: bool = True  # read the written runs back (a page of ids per request) and report what did not stick
    # Extra begin-line fields naming where the plan came from: sheet, exported_at (journal.export_header);
    # an undo adds undo_of. Planning the sheet again finds its journals by them (journal.journal_base).
    header: dict[str, Any] = field(default_factory=dict)


# How the server takes a config input (REAL_WANDB.md "Writing runs").
MERGE = "merge"  # merged into the stored config: send only the changed keys
REPLACE = "replace"  # replaces it (older self-hosted servers): send the whole config, re-read just before


class _ConfigMode:
    """MERGE, REPLACE or None (unknown yet). While unknown, config writes go one at a time (`lock`)."""

    def __init__(self) -> None:
        self.mode: str | None = None
        self.lock = threading.Lock()


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


@dataclass
class _Run:
    """What one apply shares between its workers."""

    backend: WandbBackend
    project: str
    journal: Journal
    options: ApplyOptions
    backoff: _Backoff
    breaker: _Breaker
    report: ApplyReport
    lock: threading.Lock
    mode: _ConfigMode = field(default_factory=_ConfigMode)
    sent: dict[str, list[Change]] = field(default_factory=dict)  # run id -> the changes its write line records
    with_summary: bool = False  # the plan edits summary metrics: every read asks for the summary too


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
        ctx = _Run(backend, plan.project, journal, options, backoff, breaker, report, lock,
                   with_summary=_has_summary(plan.changes))
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
                    fresh = _read_fresh(backend, plan.project, chunk, backoff, ctx.with_summary)
                except BackendError as exc:
                    _give_up(report, [c for r in chunk for c in by_run[r]], f"reading W&B failed: {exc.message}", lock)
                    breaker.record(False)
                    continue
                jobs = [pool.submit(_write_run, ctx, by_run[run_id], fresh.get(run_id)) for run_id in chunk]
                try:
                    for job, run_id in zip(jobs, chunk):
                        job.result()
                        if on_run_done:
                            on_run_done(run_id)
                except KeyboardInterrupt:
                    # Ctrl-C: the runs not started yet are not written (a re-run finishes them); the writes in
                    # flight end with their request, journaled as always.
                    for job in jobs:
                        job.cancel()
                    raise
        if options.verify and ctx.sent:
            _verify(ctx)
        report.config_writes = ctx.mode.mode
        journal.append({"op": "end", "applied": len(report.applied), "failed": len(report.failed),
                        "did_not_stick": len(report.did_not_stick)})
    return report


def _read_fresh(backend: WandbBackend, project: str, ids: list[str], backoff: _Backoff,
                with_summary: bool = False) -> dict[str, RunRecord]:
    backoff.wait()
    return backend.fetch_by_ids(project, ids, with_summary=with_summary)  # the backend retries reads itself


def _stopped(breaker: _Breaker) -> str:
    return f"not attempted: W&B failed {breaker.in_a_row} runs in a row, so runsync stopped writing"


def _give_up(report: ApplyReport, changes: list[Change], why: str, lock: threading.Lock) -> None:
    with lock:
        for change in changes:
            report.failed.setdefault(change.run_id, why)
        report.failed_changes.extend(changes)


def _to_write(ctx: _Run, changes: list[Change], record: RunRecord | None) -> list[Change]:
    """The changes still to send, judged against `record` (W&B now); the rest go to the report."""
    report, lock, options = ctx.report, ctx.lock, ctx.options
    if record is None:
        with lock:
            report.missing.append(changes[0].run_id)
            report.failed_changes.extend(changes)
        return []
    if record.state == RUNNING and not options.include_running:
        with lock:  # it was not running at plan time; its process would re-send its config over the edit
            report.skipped.append(Skip(record.id, record.name, RUNNING))
        return []
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
    return to_write


def _write_run(ctx: _Run, changes: list[Change], record: RunRecord | None) -> None:
    if ctx.breaker.open:
        _give_up(ctx.report, changes, _stopped(ctx.breaker), ctx.lock)
        return
    to_write = _to_write(ctx, changes, record)
    if not to_write or record is None:
        return
    if _has_summary(to_write):
        # The whole summary goes out (as the client sends it), so it is read again right before the write:
        # a metric the run logged meanwhile is kept, whether the server merges or replaces the summary.
        record, to_write = _just_before(ctx, to_write)
        if record is None:
            return
    if _has_config(to_write) and ctx.mode.mode != MERGE:
        with ctx.mode.lock:  # until the server's handling of config is known, one config write at a time
            if ctx.mode.mode is None:
                _probe_write(ctx, to_write, record)
                return
    if _has_config(to_write) and ctx.mode.mode == REPLACE:
        # The whole config goes out, so it is read again right before the write, run by run.
        record, to_write = _just_before(ctx, to_write)
        if record is not None:
            _send(ctx, record, to_write, whole_config=True)
        return
    _send(ctx, record, to_write)


def _just_before(ctx: _Run, to_write: list[Change]) -> tuple[RunRecord | None, list[Change]]:
    """The run read again right before its write, and what is still to write; (None, []) when nothing is."""
    try:
        record = _reread(ctx, to_write)
    except _GaveUp:
        return None, []
    to_write = _to_write(ctx, to_write, record)
    return (record, to_write) if to_write and record is not None else (None, [])


def _has_config(changes: list[Change]) -> bool:
    return any(c.field.startswith(CONFIG_PREFIX) for c in changes)


def _has_summary(changes: list[Change] | tuple[Change, ...]) -> bool:
    return any(c.field.startswith(SUMMARY_PREFIX) for c in changes)


def _reread(ctx: _Run, changes: list[Change]) -> RunRecord | None:
    """The run read again just before its write; on a failed read the run is given up (and None returned)."""
    run_id = changes[0].run_id
    try:
        fresh = _read_fresh(ctx.backend, ctx.project, [run_id], ctx.backoff, ctx.with_summary)
    except BackendError as exc:
        _give_up(ctx.report, changes, f"reading W&B failed: {exc.message}", ctx.lock)
        ctx.breaker.record(False)
        raise _GaveUp() from None
    return fresh.get(run_id)


class _GaveUp(Exception):
    """The run was given up (already in the report)."""


def _journal_write(ctx: _Run, record: RunRecord, to_write: list[Change], config_before: bool) -> None:
    event: dict[str, Any] = {
        "op": "write", "run": record.id, "run_name": record.name, "storage_id": record.storage_id,
        "fields": [{"field": c.field, "path": list(c.path), "before": encode_value(c.live),
                    "after": encode_value(c.sheet)} for c in to_write],
    }
    if config_before:
        # The whole config before this write: what restores the run if the server replaces configs.
        event["config_before"] = record.raw_config
    with ctx.lock:
        ctx.sent[record.id] = list(to_write)
    ctx.journal.append(event)  # on disk before the write goes out


def _upsert(ctx: _Run, storage_id: str, fields: dict[str, Any]) -> str | None:
    """One write, tried `attempts` times; None once W&B confirmed it, else why it failed."""
    error = ""
    for attempt in range(ctx.options.attempts):
        ctx.backoff.wait()
        try:
            ctx.backend.upsert_run(storage_id, fields)
        except BackendError as exc:
            error = exc.message
            ctx.backoff.push_back(attempt)
            continue
        return None
    return error


def _send(ctx: _Run, record: RunRecord, to_write: list[Change], *, whole_config: bool = False) -> bool:
    """Journal, write and confirm one run's changes; whether W&B confirmed the write."""
    fields = write_fields(record, to_write, whole_config=whole_config)
    _journal_write(ctx, record, to_write, config_before=_has_config(to_write) and ctx.mode.mode != MERGE)
    error = _upsert(ctx, record.storage_id, fields)
    if error is not None:
        ctx.breaker.record(False)
        _give_up(ctx.report, to_write, error, ctx.lock)
        return False
    ctx.journal.append({"op": "done", "run": record.id})
    ctx.breaker.record(True)
    with ctx.lock:
        ctx.report.applied.extend(to_write)
    return True


def _probe_write(ctx: _Run, to_write: list[Change], record: RunRecord) -> None:
    """The first config write: only the changed keys, its run's whole config journaled, then read back.

    Keys not sent that are gone afterwards mean the server replaced the config (an older self-hosted W&B):
    the run gets them back from the config journaled before the write, and later writes send whole configs.
    """
    try:
        fresh = _reread(ctx, to_write)  # the config to restore from must be the one the write replaces
    except _GaveUp:
        return
    to_write = _to_write(ctx, to_write, fresh)
    if not to_write or fresh is None:
        return
    if not _has_config(to_write):  # its config edits turned out to be in W&B already: nothing to learn from
        _send(ctx, fresh, to_write)
        return
    fields = write_fields(fresh, to_write)
    _journal_write(ctx, fresh, to_write, config_before=True)
    error = _upsert(ctx, fresh.storage_id, fields)
    if error is not None:
        ctx.breaker.record(False)
        _give_up(ctx.report, to_write, error, ctx.lock)
        return
    ctx.breaker.record(True)
    untouched = [k for k in fresh.raw_config if k not in fields.get("raw_config", {})]
    try:
        after = _read_fresh(ctx.backend, ctx.project, [fresh.id], ctx.backoff, ctx.with_summary).get(fresh.id)
    except BackendError:
        after = None  # not known yet: the next config write asks again
    if after is not None and untouched:
        lost = [k for k in untouched if k not in after.raw_config]
        ctx.mode.mode = REPLACE if lost else MERGE
        if lost:
            _restore(ctx, fresh, after, to_write, lost)
            return
    ctx.journal.append({"op": "done", "run": fresh.id})
    with ctx.lock:
        ctx.report.applied.extend(to_write)


def _restore(ctx: _Run, before: RunRecord, after: RunRecord, to_write: list[Change], lost: list[str]) -> None:
    """Put back the config keys a replacing server dropped: the journaled config, under what W&B holds now."""
    shown = ", ".join(k for k in lost if not k.startswith("_")) or ", ".join(lost)
    restored = {**before.raw_config, **after.raw_config}
    ctx.journal.append({"op": "restore", "run": before.id, "storage_id": before.storage_id, "keys": lost})
    error = _upsert(ctx, before.storage_id, {"raw_config": restored})
    with ctx.lock:
        ctx.report.warnings.append(
            f"W&B at {ctx.backend.base_url} replaces a run's whole config on write (an older server) instead of "
            f"merging it: run {before.id} lost its other config keys ({shown}) with the first write"
            + (" and got them back from the journal" if error is None else f"; restoring them failed: {error}")
            + "; every other config write sent the run's whole config, read again just before its write")
    if error is not None:
        ctx.breaker.record(False)
        _give_up(ctx.report, to_write, f"W&B dropped config keys {shown} and restoring them failed ({error}); "
                 f"their values are in the journal's write line (config_before)", ctx.lock)
        return
    ctx.journal.append({"op": "done", "run": before.id})
    with ctx.lock:
        ctx.report.applied.extend(to_write)


def _sent_value(change: Change) -> Any:
    """The value a field holds once its write landed (what write_fields sends, as live_value reads it)."""
    if change.field.startswith(CONFIG_PREFIX):
        return None if change.sheet is ABSENT else change.sheet
    if change.field == "tags":
        return tuple(change.sheet or ())
    return None if change.sheet is ABSENT else change.sheet


def _held_value(record: RunRecord, change: Change) -> Any:
    if change.field.startswith(CONFIG_PREFIX):
        return codec.get_path(record.config, change.path)  # a dict written is a value here, not columns
    return live_value(record, change.field, change.path)


def _verify(ctx: _Run) -> None:
    """Read the written runs back, a page of ids per request, and compare every field sent.

    A confirmed write whose field holds another value "did not stick" (a live process re-sent its config,
    someone wrote over it); an unanswered write W&B holds after all (its answer was lost) counts as applied.
    The journal records each run's outcome in a `verify` line.
    """
    report = ctx.report
    ids = list(ctx.sent)
    report.verify_requests = math.ceil(len(ids) / max(1, IDS_PER_QUERY))  # fetch_by_ids: a page of ids per query
    try:
        ctx.backoff.wait()
        found = ctx.backend.fetch_by_ids(ctx.project, ids, with_summary=ctx.with_summary)
    except BackendError as exc:
        report.unverified = exc.message
        ctx.journal.append({"op": "verify_failed", "runs": ids, "error": exc.message})
        return
    report.verified_runs = len(ids)
    for run_id in ids:
        record = found.get(run_id)
        held: list[Change] = []
        lost: list[Change] = []
        for change in ctx.sent[run_id]:
            now = ABSENT if record is None else _held_value(record, change)
            if record is not None and same(change.field, now, _sent_value(change)):
                held.append(change)
            else:
                lost.append(replace(change, live=now))
        confirmed = run_id not in report.failed
        ctx.journal.append({
            "op": "verify", "run": run_id, "confirmed": confirmed, "held": [c.field for c in held],
            "did_not_stick": [{"field": c.field, "path": list(c.path), "sent": encode_value(_sent_value(c)),
                               "now": encode_value(c.live)} for c in lost],
        })
        if confirmed:
            if lost:
                gone = {c.field for c in lost}
                report.applied = [c for c in report.applied if not (c.run_id == run_id and c.field in gone)]
                report.did_not_stick.extend(lost)
        elif not lost:
            # W&B holds the write although no answer said so (a proxy lost it): it is applied.
            report.failed.pop(run_id, None)
            report.failed_changes = [c for c in report.failed_changes if c.run_id != run_id]
            report.applied.extend(held)
            report.warnings.append(f"run {run_id}: no answer confirmed the write, yet W&B holds every field "
                                   "written (the answer was lost): counted as applied")


def _would_replace(record: RunRecord, change: Change) -> bool:
    if not change.field.startswith(CONFIG_PREFIX) or change.sheet is ABSENT:
        return False
    held = codec.get_path(record.config, change.path)
    return codec.blocking_ancestor(record.config, change.path) is not None or (isinstance(held, dict) and bool(held))


def write_fields(record: RunRecord, changes: list[Change], *, whole_config: bool = False) -> dict[str, Any]:
    """The upsertBucket inputs for these changes: only what changed.

    Config: only the changed top-level keys, each with its whole value as `record` holds it (wrapped, its
    description kept) and the edit applied; W&B merges them into the stored config, so keys someone else
    set since `record` was read are left alone. `whole_config`: all of `record`'s config with the edits
    (for a server that replaces the config; `record` must then be read just before the write).
    """
    fields: dict[str, Any] = {}
    config: dict[str, Any] | None = None
    for change in changes:
        value = None if change.sheet is ABSENT else change.sheet
        if change.field.startswith(SUMMARY_PREFIX):
            # The whole summary, as read just before the write, with only this metric changed.
            fields.setdefault("summary", copy.deepcopy(record.raw_summary))[change.path[0]] = value
        elif change.field.startswith(CONFIG_PREFIX):
            if config is None:
                config = copy.deepcopy(record.raw_config) if whole_config else {}
            top = change.path[0]
            if top not in config and top in record.raw_config:
                config[top] = copy.deepcopy(record.raw_config[top])
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
