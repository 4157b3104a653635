"""Carry out a Plan: re-read live state, write the runs in batches (several aliased upsertBuckets per request),
journal every run's write, read them back.

A batch the server does not take (refused, or one run in it failed: the client raises on any GraphQL error, so
which runs landed is unknown) is sent again one run per request, and later batches are smaller. Each run keeps
its own journal lines, verification and report entries whatever request carried it.

Config writes send only the changed top-level keys (W&B merges config: wandb/wandb#11055), so a key someone
else set meanwhile is never sent back stale. Older self-hosted servers replace the whole config instead
(REAL_WANDB.md "Writing runs"): the first config write is made alone, with the run's whole config journaled,
and read back; if the server dropped the keys not sent, that run is restored and every later config write
sends the whole config, re-read just before it.
"""
from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from runsync.backend.wandb import IDS_PER_QUERY, WandbBackend
from runsync.classify import RUNNING, live_value, same
from runsync.errors import BackendError
from runsync.journal import Journal, encode_value
from runsync.model import CONFIG_PREFIX, SUMMARY_PREFIX, Action, Change, Plan, RunRecord, Skip
from runsync.verify import verify_writes
from runsync.write_fields import would_replace, write_fields

__all__ = ["ApplyOptions", "ApplyReport", "MERGE", "REPLACE", "apply_plan", "write_fields"]

# Writes in flight at once: chosen in benchmarks/ (README "Performance").
DEFAULT_CONCURRENCY = 8
# Runs per write request (aliased upsertBuckets), chosen in benchmarks/ (README "Performance"). The server
# runs a request's mutations one after another, so a big batch is one long request: this many must finish
# well within the client's deadline even at a slow server's pace per write.
DEFAULT_BATCH_SIZE = 25
# The first config write (the probe) uses the runs read for its batch when that read is this recent; older,
# it reads its run again (the config journaled must be the one the write replaces).
PROBE_REREAD_AFTER_SECONDS = 2.0
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
    write_requests: int = 0  # requests that carried writes (a batch counts once; a run sent again alone, once more)

    @property
    def ok(self) -> bool:
        return (not self.failed and not self.conflicts and not self.missing and not self.did_not_stick
                and self.unverified is None)


@dataclass(frozen=True)
class ApplyOptions:
    journal: str
    concurrency: int = DEFAULT_CONCURRENCY
    batch_size: int = DEFAULT_BATCH_SIZE  # runs per write request (1: one run per request)
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
    """MERGE, REPLACE or None (unknown yet: config writes wait for the probe)."""

    def __init__(self) -> None:
        self.mode: str | None = None


class _BatchSize:
    """Runs per write request, shared by the workers; halved when the server did not take a batch."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self.shrunk = False
        self._lock = threading.Lock()

    def shrink(self, tried: int) -> bool:
        """Make later batches at most half of `tried`; whether this is the first time."""
        with self._lock:
            first = not self.shrunk
            self.size, self.shrunk = max(1, min(self.size, tried // 2)), True
            return first


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
    batch: _BatchSize = field(default_factory=lambda: _BatchSize(DEFAULT_BATCH_SIZE))
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
                   batch=_BatchSize(options.batch_size), with_summary=_has_summary(plan.changes))
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
                _write_chunk(ctx, pool, [(r, by_run[r], fresh.get(r)) for r in chunk], time.monotonic(),
                             on_run_done)
        if options.verify and ctx.sent:
            verify_writes(ctx)
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
        elif would_replace(record, change):
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




@dataclass
class _Write:
    """One run's changes still to send, judged against `record` (W&B as last read)."""

    record: RunRecord
    changes: list[Change]


def _write_chunk(ctx: _Run, pool: ThreadPoolExecutor, runs: list[tuple[str, list[Change], RunRecord | None]],
                 read_at: float, on_run_done: Callable[[str], None] | None) -> None:
    """Write one chunk of runs read together: batches of runs without config edits go at once; while the server's
    handling of config is unknown, config edits wait for the probe (the first config write, sent alone)."""
    writes: list[_Write] = []
    for run_id, changes, record in runs:
        to_write = _to_write(ctx, changes, record)
        if to_write and record is not None:
            writes.append(_Write(record, to_write))
        elif on_run_done:
            on_run_done(run_id)
    waiting = [w for w in writes if _has_config(w.changes)] if ctx.mode.mode is None else []
    ready = [w for w in writes if not (waiting and _has_config(w.changes))]
    jobs: list[tuple[Future[None], list[_Write]]] = []
    try:
        probe, probing = _next_probe(ctx, pool, waiting, read_at)  # before the batches: its read is fresh
        jobs = [(pool.submit(_write_batch, ctx, batch), batch) for batch in _batches(ready, ctx.batch.size)]
        while probing is not None and probe is not None:
            probing.result()
            if on_run_done:
                on_run_done(probe.record.id)
            probe, probing = _next_probe(ctx, pool, waiting, read_at)
        jobs += [(pool.submit(_write_batch, ctx, batch), batch) for batch in _batches(waiting, ctx.batch.size)]
        for job, batch in jobs:
            job.result()
            if on_run_done:
                for write in batch:
                    on_run_done(write.record.id)
    except KeyboardInterrupt:
        # Ctrl-C: the batches not started yet are not written (a re-run finishes them); the requests in flight
        # end with their answer, journaled as always.
        for job, _ in jobs:
            job.cancel()
        raise


def _next_probe(ctx: _Run, pool: ThreadPoolExecutor, waiting: list[_Write],
                read_at: float) -> tuple[_Write | None, Future[None] | None]:
    """Start the probe with the first config write waiting, while the server's handling of config is unknown."""
    if not waiting or ctx.mode.mode is not None:
        return None, None
    probe = waiting.pop(0)
    return probe, pool.submit(_probe_write, ctx, probe, read_at)


def _batches(writes: list[_Write], size: int) -> list[list[_Write]]:
    return [writes[i : i + size] for i in range(0, len(writes), max(1, size))]


def _write_batch(ctx: _Run, writes: list[_Write]) -> None:
    """Send runs, as many per request as the batch size allows; runs whose write sends their whole summary or
    (on a replacing server) whole config are read again first, together, right before."""
    if ctx.breaker.open:
        for write in writes:
            _give_up(ctx.report, write.changes, _stopped(ctx.breaker), ctx.lock)
        return
    again = [w for w in writes if _sends_whole(ctx, w.changes)]
    if again:
        writes = [w for w in writes if not _sends_whole(ctx, w.changes)] + _read_again(ctx, again)
    while writes:
        size = ctx.batch.size  # read once per request: a refused batch halves it meanwhile
        _send_batch(ctx, writes[:size])
        writes = writes[size:]


def _sends_whole(ctx: _Run, changes: list[Change]) -> bool:
    """Whether the write sends a whole document that must be read just before: the summary (as the client sends
    it: a metric the run logged meanwhile is kept) or, on a replacing server, the config."""
    return _has_summary(changes) or (_has_config(changes) and ctx.mode.mode == REPLACE)


def _read_again(ctx: _Run, writes: list[_Write]) -> list[_Write]:
    """These runs read again in one request, and what is still to write for each (the rest is reported)."""
    ids = [w.record.id for w in writes]
    try:
        fresh = _read_fresh(ctx.backend, ctx.project, ids, ctx.backoff, ctx.with_summary)
    except BackendError as exc:
        for write in writes:
            _give_up(ctx.report, write.changes, f"reading W&B failed: {exc.message}", ctx.lock)
        ctx.breaker.record(False)
        return []
    out: list[_Write] = []
    for write in writes:
        record = fresh.get(write.record.id)
        to_write = _to_write(ctx, write.changes, record)
        if to_write and record is not None:
            out.append(_Write(record, to_write))
    return out


def _send_batch(ctx: _Run, writes: list[_Write]) -> None:
    """Journal every run's write, send them in one request, and record each run's outcome.

    When the request fails, which runs landed is unknown (the client raises on any GraphQL error): each run is
    sent again alone, with the usual retries (a write sets values: sending a landed one again changes nothing).
    """
    if len(writes) == 1:
        _send(ctx, writes[0].record, writes[0].changes)
        return
    fields = [_fields(ctx, w) for w in writes]
    for write in writes:
        _journal_write(ctx, write.record, write.changes, config_before=_journals_config(ctx, write.changes))
    ctx.backoff.wait()
    try:
        _count_request(ctx)
        ctx.backend.upsert_runs([(w.record.storage_id, f) for w, f in zip(writes, fields)])
    except BackendError as exc:
        landed = [_deliver(ctx, w.record, w.changes, f) for w, f in zip(writes, fields)]
        if all(landed) and ctx.batch.shrink(len(writes)):
            with ctx.lock:
                ctx.report.warnings.append(
                    f"W&B did not take {len(writes)} runs in one request ({exc.message}); they were sent one run "
                    f"per request, and later requests carry at most {ctx.batch.size} runs")
        return
    for write in writes:
        _landed(ctx, write.record, write.changes)


def _fields(ctx: _Run, write: _Write) -> dict[str, Any]:
    return write_fields(write.record, write.changes,
                        whole_config=_has_config(write.changes) and ctx.mode.mode == REPLACE)


def _journals_config(ctx: _Run, changes: list[Change]) -> bool:
    """Whether the write line keeps the run's whole config (it restores the run on a replacing server)."""
    return _has_config(changes) and ctx.mode.mode != MERGE


def _has_config(changes: list[Change]) -> bool:
    return any(c.field.startswith(CONFIG_PREFIX) for c in changes)


def _has_summary(changes: list[Change] | tuple[Change, ...]) -> bool:
    return any(c.field.startswith(SUMMARY_PREFIX) for c in changes)


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


def _count_request(ctx: _Run) -> None:
    with ctx.lock:
        ctx.report.write_requests += 1


def _upsert(ctx: _Run, storage_id: str, fields: dict[str, Any]) -> str | None:
    """One run's write, tried `attempts` times; None once W&B confirmed it, else why it failed."""
    error = ""
    for attempt in range(ctx.options.attempts):
        ctx.backoff.wait()
        try:
            _count_request(ctx)
            ctx.backend.upsert_run(storage_id, fields)
        except BackendError as exc:
            error = exc.message
            ctx.backoff.push_back(attempt)
            continue
        return None
    return error


def _send(ctx: _Run, record: RunRecord, to_write: list[Change]) -> bool:
    """Journal, write and confirm one run's changes; whether W&B confirmed the write."""
    fields = write_fields(record, to_write, whole_config=_has_config(to_write) and ctx.mode.mode == REPLACE)
    _journal_write(ctx, record, to_write, config_before=_journals_config(ctx, to_write))
    return _deliver(ctx, record, to_write, fields)


def _deliver(ctx: _Run, record: RunRecord, to_write: list[Change], fields: dict[str, Any]) -> bool:
    """Send one run's journaled write alone; record its outcome."""
    error = _upsert(ctx, record.storage_id, fields)
    if error is not None:
        ctx.breaker.record(False)
        _give_up(ctx.report, to_write, error, ctx.lock)
        return False
    _landed(ctx, record, to_write)
    return True


def _landed(ctx: _Run, record: RunRecord, to_write: list[Change]) -> None:
    ctx.journal.append({"op": "done", "run": record.id})
    ctx.breaker.record(True)
    with ctx.lock:
        ctx.report.applied.extend(to_write)


def _probe_write(ctx: _Run, write: _Write, read_at: float) -> None:
    """The first config write: only the changed keys, its run's whole config journaled, then read back.

    Keys not sent that are gone afterwards mean the server replaced the config (an older self-hosted W&B):
    the run gets them back from the config journaled before the write, and later writes send whole configs.
    The config to restore from must be the one the write replaces: the run is read again unless its batch was
    read just now.
    """
    record, to_write = write.record, write.changes
    if time.monotonic() - read_at > PROBE_REREAD_AFTER_SECONDS or _has_summary(to_write):
        again = _read_again(ctx, [write])
        if not again:
            return
        record, to_write = again[0].record, again[0].changes
    if not _has_config(to_write):  # its config edits turned out to be in W&B already: nothing to learn from
        _send(ctx, record, to_write)
        return
    fields = write_fields(record, to_write)
    _journal_write(ctx, record, to_write, config_before=True)
    error = _upsert(ctx, record.storage_id, fields)
    if error is not None:
        ctx.breaker.record(False)
        _give_up(ctx.report, to_write, error, ctx.lock)
        return
    untouched = [k for k in record.raw_config if k not in fields.get("raw_config", {})]
    try:
        after = _read_fresh(ctx.backend, ctx.project, [record.id], ctx.backoff, ctx.with_summary).get(record.id)
    except BackendError:
        after = None  # not known yet: the next config write asks again
    if after is not None and untouched:
        lost = [k for k in untouched if k not in after.raw_config]
        ctx.mode.mode = REPLACE if lost else MERGE
        if lost:
            ctx.breaker.record(True)
            _restore(ctx, record, after, to_write, lost)
            return
    _landed(ctx, record, to_write)


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
    _landed(ctx, before, to_write)
