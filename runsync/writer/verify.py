"""Read written runs back and say which fields did not stick (a live process re-sent its config, someone wrote
over it), and which unanswered writes W&B holds after all."""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from runsync.errors import BackendError
from runsync.fields import kind_of
from runsync.fields.classify import same
from runsync.journal.events import encode_value
from runsync.model import ABSENT, Change, RunRecord

if TYPE_CHECKING:
    from runsync.writer.batches import WriteContext


def _sent_value(change: Change) -> Any:
    """The value a field holds once its write landed (what write_fields sends, as live_value reads it)."""
    return kind_of(change.field).sent(change.sheet)


def _held_value(record: RunRecord, change: Change) -> Any:
    # config: a dict written is a value here, not columns
    return kind_of(change.field).held(record, change.field, change.path)


def verify_writes(ctx: WriteContext) -> None:
    """Read the written runs back, a page of ids per request, and compare every field sent.

    A confirmed write whose field holds another value "did not stick" (a live process re-sent its config,
    someone wrote over it); an unanswered write W&B holds after all (its answer was lost) counts as applied.
    The journal records each run's outcome in a `verify` line.
    """
    report = ctx.report
    ids = list(ctx.sent)
    sent_before = ctx.backend.requests_sent  # nothing else is in flight: the writes have ended
    try:
        ctx.backoff.wait()
        found = ctx.backend.fetch_by_ids(ctx.project, ids, with_summary=ctx.with_summary)
    except BackendError as exc:
        report.unverified = exc.message
        ctx.journal.append({"op": "verify_failed", "runs": ids, "error": exc.message})
        return
    report.verified_runs = len(ids)
    report.verify_requests = ctx.backend.requests_sent - sent_before
    verified: list[dict[str, Any]] = []  # journaled together at the end: one fsync, not one a run
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
        verified.append({
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
    ctx.journal.append_many(verified)
