"""Undoing an import (`runsync.undo`): the undo of one journal as a Plan, and applying it."""
from __future__ import annotations

import os

from runsync.api.imports import apply
from runsync.api.provenance import remember_backend, remember_header
from runsync.backend import Backend, backend_for
from runsync.errors import RunsyncError
from runsync.fields import SummaryMetric, kind_of
from runsync.journal.events import read_journal, undo_journal_path
from runsync.journal.history import later_writes
from runsync.model import ApplyReport, Plan
from runsync.planner.undo import plan_undo
from runsync.writer.options import DEFAULT_BATCH_SIZE, DEFAULT_CONCURRENCY


def plan_undo_journal(journal: str | os.PathLike[str], *, force: bool = False,
                      backend: Backend | None = None, tracking_uri: str | None = None) -> Plan:
    """The undo of one journal's import as a Plan against W&B now; `undo(journal, plan=...)` applies it."""
    contents = read_journal(journal)
    if not contents.project:
        raise RunsyncError(f"{journal}: the journal names no project")
    ids = sorted({h.run_id for h in contents.fields})
    with_summary = any(isinstance(kind_of(h.field), SummaryMetric) for h in contents.fields)
    backend = backend_for(contents.project, backend, tracking_uri=tracking_uri)  # the journal's tracker
    live = backend.fetch_by_ids(contents.project, ids, with_summary=with_summary) if ids else {}
    # The undo's journal names the same sheet and export as the import's: planning that sheet again
    # then sees the restored values as its base.
    header = {k: contents.begin[k] for k in ("sheet", "exported_at") if contents.begin.get(k)}
    later = later_writes(journal, contents.project, contents.begin.get("at"))  # to name what changed a field since
    return remember_backend(remember_header(plan_undo(str(journal), live, force=force, contents=contents, later=later)
                            .with_run_urls(live),
                            {**header, "undo_of": os.path.abspath(journal)}), backend)


def undo(
    journal: str | os.PathLike[str],
    *,
    plan: Plan | None = None,
    dry_run: bool = False,
    force: bool = False,
    concurrency: int = DEFAULT_CONCURRENCY,
    backend: Backend | None = None,
    verify: bool = True,
    batch_size: int = DEFAULT_BATCH_SIZE,
    tracking_uri: str | None = None,
) -> tuple[Plan, ApplyReport | None]:
    """Restore the values an import replaced; refuses fields changed since, unless `force`.

    `plan`: the one `plan_undo_journal(journal)` returned (e.g. shown and confirmed): exactly that is
    applied, not a fresh plan. The undo is journaled in JOURNAL.undo.jsonl (a re-run resumes it).
    Returns (the undo's Plan, the ApplyReport of its writes): the report is None for `dry_run` or an empty plan.
    """
    if plan is not None and plan.source != str(journal):
        raise RunsyncError(f"the plan given is the undo of {plan.source}, not of {journal}")
    undo_plan = plan if plan is not None else plan_undo_journal(journal, force=force, backend=backend,
                                                                tracking_uri=tracking_uri)
    if dry_run or undo_plan.empty:
        return undo_plan, None
    return undo_plan, apply(undo_plan, journal=undo_journal_path(journal), concurrency=concurrency, force=force,
                            backend=backend, verify=verify, batch_size=batch_size, tracking_uri=tracking_uri)
