"""Carry out a Plan: re-read live state, write the runs in batches (several aliased upsertBuckets per request),
journal every run's write, read them back (verify.py). How the runs are written: batches.py.

A batch the server does not take (refused, or one run in it failed: the client raises on any GraphQL error, so
which runs landed is unknown) is sent again one run per request, and later batches are smaller. Each run keeps
its own journal lines, verification and report entries whatever request carried it.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace

from runsync.backend import Backend
from runsync.errors import BackendError, Interrupted
from runsync.journal.events import Journal, planned_keys
from runsync.model import ApplyReport, Change, Plan, RunRecord
from runsync.writer.batches import (
    MERGE,
    REPLACE,
    Backoff,
    BatchSize,
    Breaker,
    RunWrite,
    WriteContext,
    give_up,
    has_config,
    has_summary,
    probe_write,
    read_fresh,
    still_to_write,
    stopped,
    stopped_before,
    write_batch,
)
from runsync.writer.options import ApplyOptions
from runsync.writer.patches import write_fields
from runsync.writer.verify import verify_writes

__all__ = ["ApplyOptions", "ApplyReport", "MERGE", "REPLACE", "apply_plan", "write_fields"]

def apply_plan(
    plan: Plan,
    backend: Backend,
    options: ApplyOptions,
    *,
    on_run_done: Callable[[str], None] | None = None,
) -> ApplyReport:
    """Write the plan's changes; safe to re-run: fields W&B already holds are skipped."""
    if plan.include_running and not options.include_running:
        options = replace(options, include_running=True)  # the plan already chose to write running runs
    report = ApplyReport(journal=options.journal, tracker=backend.capabilities.tracker)
    by_run: dict[str, list[Change]] = {}
    for change in plan.changes:
        by_run.setdefault(change.run_id, []).append(change)
    if not by_run:
        return report
    backoff = Backoff(options.backoff_seconds)
    breaker = Breaker(options.stop_after_failures)
    lock = threading.Lock()
    with Journal(options.journal) as journal:
        ctx = WriteContext(backend, plan.project, journal, options, backoff, breaker, report, lock,
                           batch=BatchSize(options.batch_size), with_summary=has_summary(plan.changes))
        journal.append({"op": "begin", "v": 1, "project": plan.project, "source": plan.source, **options.header,
                        "runs": len(by_run), "fields": len(plan.changes)})
        if options.header.get("exported_at") and not plan.undo:
            # What this import set out to write: a re-run after Ctrl-C continues it when its plan is part of this.
            journal.append({"op": "planned", "changes": planned_keys(plan.changes)})
        try:
            _write_all(plan, ctx, by_run, options, on_run_done)
        except KeyboardInterrupt:
            # The requests in flight have ended (the pool waited for them): count what W&B confirmed.
            written = len({c.run_id for c in report.applied})
            journal.append({"op": "interrupted", "runs_written": written, "applied": len(report.applied)})
            raise Interrupted(options.journal, written, len(by_run), undo=plan.undo,
                              continues=bool(options.header.get("exported_at"))) from None
        journal.append({"op": "end", "applied": len(report.applied), "failed": len(report.failed),
                        "did_not_stick": len(report.did_not_stick)})
    return report


def _write_all(plan: Plan, ctx: WriteContext, by_run: dict[str, list[Change]], options: ApplyOptions,
               on_run_done: Callable[[str], None] | None) -> None:
    """Read and write the runs chunk by chunk, then read them back (verify)."""
    backend, report, breaker, backoff, lock = ctx.backend, ctx.report, ctx.breaker, ctx.backoff, ctx.lock
    run_ids = list(by_run)
    with ThreadPoolExecutor(max_workers=max(1, options.concurrency)) as pool:
        read_chunk = options.read_chunk or backend.capabilities.ids_per_query
        for start in range(0, len(run_ids), read_chunk):
            chunk = run_ids[start : start + read_chunk]
            if breaker.open:
                give_up(report, [c for r in chunk for c in by_run[r]], stopped(breaker, backend.capabilities.tracker), lock)
                continue
            try:
                fresh = read_fresh(backend, plan.project, chunk, backoff, ctx.with_summary)
            except BackendError as exc:
                give_up(report, [c for r in chunk for c in by_run[r]], f"reading {backend.capabilities.tracker} failed: {exc.message}",
                        lock)
                breaker.record(False)
                continue
            _write_chunk(ctx, pool, [(r, by_run[r], fresh.get(r)) for r in chunk], time.monotonic(),
                         on_run_done)
    shrunk = ctx.batch.warning()
    if shrunk:
        report.warnings.append(shrunk)
    if options.verify and ctx.sent:
        verify_writes(ctx)
    report.config_writes = ctx.mode.mode


def _write_chunk(ctx: WriteContext, pool: ThreadPoolExecutor, runs: list[tuple[str, list[Change], RunRecord | None]],
                 read_at: float, on_run_done: Callable[[str], None] | None) -> None:
    """Write one chunk of runs read together: batches of runs without config edits go at once; while the server's
    handling of config is unknown, config edits wait for the probe (the first config write, sent alone)."""
    writes: list[RunWrite] = []
    for run_id, changes, record in runs:
        to_write = still_to_write(ctx, changes, record)
        if to_write and record is not None:
            writes.append(RunWrite(record, to_write))
        elif on_run_done:
            on_run_done(run_id)
    waiting = [w for w in writes if has_config(w.changes)] if ctx.mode.mode is None else []
    ready = [w for w in writes if not (waiting and has_config(w.changes))]
    jobs: list[tuple[Future[None], list[RunWrite]]] = []
    try:
        probe, probing = _next_probe(ctx, pool, waiting, read_at)  # before the batches: its read is fresh
        jobs = [(pool.submit(write_batch, ctx, batch), batch) for batch in _batches(ready, ctx.batch.size)]
        while probing is not None and probe is not None:
            probing.result()
            if on_run_done:
                on_run_done(probe.record.id)
            probe, probing = _next_probe(ctx, pool, waiting, read_at)
        jobs += [(pool.submit(write_batch, ctx, batch), batch) for batch in _batches(waiting, ctx.batch.size)]
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


def _next_probe(ctx: WriteContext, pool: ThreadPoolExecutor, waiting: list[RunWrite],
                read_at: float) -> tuple[RunWrite | None, Future[None] | None]:
    """Start the probe with the first config write waiting, while the server's handling of config is unknown."""
    if stopped_before(ctx, waiting):
        waiting.clear()
    if not waiting or ctx.mode.mode is not None:
        return None, None
    probe = waiting.pop(0)
    return probe, pool.submit(probe_write, ctx, probe, read_at)


def _batches(writes: list[RunWrite], size: int) -> list[list[RunWrite]]:
    return [writes[i : i + size] for i in range(0, len(writes), max(1, size))]


