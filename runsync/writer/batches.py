"""How one apply writes its runs (with the state its workers share: context.py): a run's changes judged against W&B now, batches
(several aliased upsertBuckets per request) with their fallback to one run per request, the journal lines around
each write, and the config-merge probe.

Config writes send only the changed top-level keys (W&B merges config: wandb/wandb#11055), so a key someone
else set meanwhile is never sent back stale. Older self-hosted servers replace the whole config instead
(REAL_WANDB.md "Writing runs"): the first config write is made alone, with the run's whole config journaled,
and read back; if the server dropped the keys not sent, that run is restored and every later config write
sends the whole config, re-read just before it.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runsync.backend import Backend, RunPatch
from runsync.errors import BackendError
from runsync.fields import kind_of
from runsync.fields.classify import RUNNING, live_value, same
from runsync.fields.kinds import WRITE_CONFIG, WRITE_SUMMARY
from runsync.fields.limits import max_request_bytes
from runsync.journal.events import encode_value
from runsync.model import Action, Change, RunRecord, Skip
from runsync.writer.context import MERGE, REPLACE, Backoff, Breaker, WriteContext
from runsync.writer.context import BatchSize as BatchSize  # apply.py imports it from here, as before
from runsync.writer.context import ConfigMode as ConfigMode
from runsync.writer.patches import would_replace, write_fields
from runsync.writer.sizes import by_body_limit, size_refusal

if TYPE_CHECKING:
    from runsync.model import ApplyReport

# The first config write (the probe) uses the runs read for its batch when that read is this recent; older,
# it reads its run again (the config journaled must be the one the write replaces).
PROBE_REREAD_AFTER_SECONDS = 2.0


def read_fresh(backend: Backend, project: str, ids: list[str], backoff: Backoff,
                with_summary: bool = False) -> dict[str, RunRecord]:
    backoff.wait()
    return backend.fetch_by_ids(project, ids, with_summary=with_summary)  # the backend retries reads itself


def stopped(breaker: Breaker, tracker: str = "W&B") -> str:
    return f"not attempted: {tracker} failed {breaker.in_a_row} runs in a row, so runsync stopped writing"


def give_up(report: ApplyReport, changes: list[Change], why: str, lock: threading.Lock) -> None:
    with lock:
        for change in changes:
            report.failed.setdefault(change.run_id, why)
        report.failed_changes.extend(changes)


def still_to_write(ctx: WriteContext, changes: list[Change], record: RunRecord | None) -> list[Change]:
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
class RunWrite:
    """One run's changes still to send, judged against `record` (W&B as last read)."""

    record: RunRecord
    changes: list[Change]


def stopped_before(ctx: WriteContext, writes: list[RunWrite]) -> bool:
    """Whether the breaker is open; if so, these runs are given up as not attempted."""
    if not ctx.breaker.open:
        return False
    for write in writes:
        give_up(ctx.report, write.changes, stopped(ctx.breaker, ctx.backend.capabilities.tracker), ctx.lock)
    return True


def write_batch(ctx: WriteContext, writes: list[RunWrite]) -> None:
    """Send runs, as many per request as the batch size allows; runs whose write sends their whole summary or
    (on a replacing server) whole config are read again first, together, right before."""
    if stopped_before(ctx, writes):
        return
    again = [w for w in writes if _sends_whole(ctx, w.changes)]
    if again:
        writes = [w for w in writes if not _sends_whole(ctx, w.changes)] + _read_again(ctx, again)
    while writes:
        size = ctx.batch.size  # read once per request: a batch the server did not take makes it smaller
        _send_batch(ctx, writes[:size])
        writes = writes[size:]


def _sends_whole(ctx: WriteContext, changes: list[Change]) -> bool:
    """Whether the write sends a whole document that must be read just before: the summary (as the client sends
    it: a metric the run logged meanwhile is kept) or, on a replacing server, the config."""
    return has_summary(changes) or (has_config(changes) and ctx.mode.mode == REPLACE)


def _read_again(ctx: WriteContext, writes: list[RunWrite]) -> list[RunWrite]:
    """These runs read again in one request, and what is still to write for each (the rest is reported)."""
    ids = [w.record.id for w in writes]
    try:
        fresh = read_fresh(ctx.backend, ctx.project, ids, ctx.backoff, ctx.with_summary)
    except BackendError as exc:
        for write in writes:
            give_up(ctx.report, write.changes, f"reading {ctx.backend.capabilities.tracker} failed: {exc.message}",
                    ctx.lock)
        ctx.breaker.record(False)
        return []
    out: list[RunWrite] = []
    for write in writes:
        record = fresh.get(write.record.id)
        to_write = still_to_write(ctx, write.changes, record)
        if to_write and record is not None:
            out.append(RunWrite(record, to_write))
    return out


def _send_batch(ctx: WriteContext, writes: list[RunWrite]) -> None:
    """Journal every run's write, then send them in as few requests as the service's body limit allows (see
    _send_journaled); a run the service would refuse for its size is not sent (nor journaled)."""
    sends: list[tuple[RunWrite, dict[str, Any]]] = []
    sizes: list[int] = []
    body_limit = max_request_bytes()
    for write in writes:
        fields = _fields(ctx, write)
        size, why = size_refusal(ctx.backend, write.record, fields, body_limit)
        if why is not None:
            give_up(ctx.report, write.changes, why, ctx.lock)  # a refusal, not a failure of W&B: no breaker count
            continue
        sends.append((write, fields))
        sizes.append(size)
    requests = [(w.record.storage_id, f) for w, f in sends]
    for group in by_body_limit(ctx.backend, requests, sizes, body_limit):
        chosen = [sends[i] for i in group]
        # The request's write lines reach the disk together (one fsync), all before the request goes out.
        ctx.journal.append_many([_write_event(ctx, w.record, w.changes, config_before=_journals_config(ctx, w.changes))
                                 for w, _ in chosen])
        _send_journaled(ctx, chosen)


def _send_journaled(ctx: WriteContext, sends: list[tuple[RunWrite, dict[str, Any]]]) -> bool:
    """Send journaled writes in one request and record each run's outcome; whether all landed.

    When the request fails, which runs landed is unknown (the client raises on any GraphQL error): the runs are
    sent again in two halves, and so on down to one run per request with the usual retries (a write sets
    values: sending a landed one again changes nothing). A run that fails alone is isolated in a few requests.
    """
    if stopped_before(ctx, [write for write, _ in sends]):
        return False
    if len(sends) == 1:
        write, fields = sends[0]
        return _deliver(ctx, write.record, write.changes, fields)
    ctx.backoff.wait()
    _count_request(ctx)
    outcomes = ctx.backend.write_runs([RunPatch(w.record.storage_id, f) for w, f in sends])
    error = next((o.error for o in outcomes if o.error is not None), None)
    if error is not None:
        half = (len(sends) + 1) // 2
        landed = [_send_journaled(ctx, part) for part in (sends[:half], sends[half:])]
        if all(landed):
            ctx.batch.halves_landed(len(sends), error, half)
        return all(landed)
    _landed_together(ctx, [(write.record, write.changes) for write, _ in sends])
    return True


def _fields(ctx: WriteContext, write: RunWrite) -> dict[str, Any]:
    return write_fields(write.record, write.changes,
                        whole_config=has_config(write.changes) and ctx.mode.mode == REPLACE)


def _journals_config(ctx: WriteContext, changes: list[Change]) -> bool:
    """Whether the write line keeps the run's whole config (it restores the run on a replacing server)."""
    return has_config(changes) and ctx.mode.mode != MERGE


def has_config(changes: list[Change]) -> bool:
    return any(kind_of(c.field).write_to == WRITE_CONFIG for c in changes)


def has_summary(changes: list[Change] | tuple[Change, ...]) -> bool:
    return any(kind_of(c.field).write_to == WRITE_SUMMARY for c in changes)


def _journal_write(ctx: WriteContext, record: RunRecord, to_write: list[Change], config_before: bool) -> None:
    ctx.journal.append(_write_event(ctx, record, to_write, config_before))  # on disk before the write goes out


def _write_event(ctx: WriteContext, record: RunRecord, to_write: list[Change], config_before: bool) -> dict[str, Any]:
    """A run's `write` line, to journal before its write goes out (its changes are remembered for the read-back)."""
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
    return event


def _count_request(ctx: WriteContext) -> None:
    with ctx.lock:
        ctx.report.write_requests += 1


def _upsert(ctx: WriteContext, storage_id: str, fields: dict[str, Any]) -> str | None:
    """One run's write, tried `attempts` times; None once W&B confirmed it, else why it failed."""
    error = ""
    for attempt in range(ctx.options.attempts):
        ctx.backoff.wait()
        _count_request(ctx)
        outcome = ctx.backend.write_runs([RunPatch(storage_id, fields)])[0]
        if outcome.error is not None:
            error = outcome.error
            ctx.backoff.push_back(attempt)
            continue
        return None
    return error


def _deliver(ctx: WriteContext, record: RunRecord, to_write: list[Change], fields: dict[str, Any]) -> bool:
    """Send one run's journaled write alone; record its outcome."""
    error = _upsert(ctx, record.storage_id, fields)
    if error is not None:
        ctx.breaker.record(False)
        give_up(ctx.report, to_write, error, ctx.lock)
        return False
    _landed(ctx, record, to_write)
    return True


def _landed(ctx: WriteContext, record: RunRecord, to_write: list[Change]) -> None:
    _landed_together(ctx, [(record, to_write)])


def _landed_together(ctx: WriteContext, runs: list[tuple[RunRecord, list[Change]]]) -> None:
    """Runs W&B confirmed (one request's): their `done` lines on disk together, then counted as applied."""
    ctx.journal.append_many([{"op": "done", "run": record.id} for record, _ in runs])
    for _, to_write in runs:
        ctx.breaker.record(True)
        with ctx.lock:
            ctx.report.applied.extend(to_write)


def probe_write(ctx: WriteContext, write: RunWrite, read_at: float) -> None:
    """The first config write: only the changed keys, its run's whole config journaled, then read back.

    Keys not sent that are gone afterwards mean the server replaced the config (an older self-hosted W&B):
    the run gets them back from the config journaled before the write, and later writes send whole configs.
    The config to restore from must be the one the write replaces: the run is read again unless its batch was
    read just now.
    """
    if stopped_before(ctx, [write]):
        return
    record, to_write = write.record, write.changes
    if time.monotonic() - read_at > PROBE_REREAD_AFTER_SECONDS or has_summary(to_write):
        again = _read_again(ctx, [write])
        if not again:
            return
        record, to_write = again[0].record, again[0].changes
    if not has_config(to_write):  # its config edits turned out to be in W&B already: nothing to learn from
        _send_batch(ctx, [RunWrite(record, to_write)])
        return
    fields = write_fields(record, to_write)
    if (why := size_refusal(ctx.backend, record, fields, max_request_bytes())[1]) is not None:
        give_up(ctx.report, to_write, why, ctx.lock)  # not sent: the next config write is the probe
        return
    _journal_write(ctx, record, to_write, config_before=True)
    error = _upsert(ctx, record.storage_id, fields)
    if error is not None:
        ctx.breaker.record(False)
        give_up(ctx.report, to_write, error, ctx.lock)
        return
    untouched = [k for k in record.raw_config if k not in fields.get("raw_config", {})]
    try:
        after = read_fresh(ctx.backend, ctx.project, [record.id], ctx.backoff, ctx.with_summary).get(record.id)
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


def _restore(ctx: WriteContext, before: RunRecord, after: RunRecord, to_write: list[Change], lost: list[str]) -> None:
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
        give_up(ctx.report, to_write, f"W&B dropped config keys {shown} and restoring them failed ({error}); "
                 f"their values are in the journal's write line (config_before)", ctx.lock)
        return
    _landed(ctx, before, to_write)
