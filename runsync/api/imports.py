"""Applying a plan (`runsync.apply`): its refusals, its journal (a new one or the interrupted import's), the writes."""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace

from runsync.api.journals import default_journal, frame_home
from runsync.api.provenance import backend_of, header_of
from runsync.backend import Backend, backend_for, capabilities
from runsync.errors import RunsyncError, SheetError
from runsync.journal.events import check_can_append, journal_dir, planned_keys
from runsync.journal.imports import Continuation, find_continuation
from runsync.model import ApplyReport, Plan
from runsync.sheets.frame_cells import FRAME_SOURCE
from runsync.words import counted
from runsync.writer.apply import apply_plan
from runsync.writer.options import DEFAULT_BATCH_SIZE, DEFAULT_CONCURRENCY, ApplyOptions


def apply(
    plan: Plan,
    *,
    journal: str | os.PathLike[str] | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    force: bool = False,
    backend: Backend | None = None,
    on_run_done: Callable[[str], None] | None = None,
    verify: bool = True,
    batch_size: int = DEFAULT_BATCH_SIZE,
    new_keys: bool = False,
    tracking_uri: str | None = None,
) -> ApplyReport:
    """Write a plan's changes to W&B; refuses a plan with errors, conflicts unless `force`, and one that creates
    config keys (`Plan.new_key_counts`) unless `new_keys` here or when planning.

    `verify`: read the written runs back (one request per page of ids) and report, in `did_not_stick`,
    every field that does not hold what was written. `batch_size`: runs per write request (1: one per request).
    Returns the ApplyReport: what was written, refused, skipped, and the journal.
    """
    if plan.errors:
        raise SheetError(list(plan.errors))
    if plan.conflicts and not force:
        raise RunsyncError(f"{counted(len(plan.conflicts), 'conflict')}: nothing written",
                           hint="--force lets the sheet win")
    if any(not c.overridable for c in plan.conflicts):  # the sheet predates an import: --force would revert it
        raise RunsyncError(f"{counted(len(plan.conflicts), 'conflict')}: nothing written",
                           hint="the sheet predates an import of its export (see each conflict): --force does not "
                                "override that; put the import's value back in the cell, or re-export")
    if not new_keys and (refusal := new_keys_refusal(plan, force=force)):
        raise RunsyncError(refusal)
    if not plan.changes:
        return ApplyReport()  # nothing to write: no journal either
    header = header_of(plan)
    if journal is None:
        found = continued_import(plan)
        if found is not None and found.continues:  # the re-run of an interrupted import: one journal, one undo
            path, header = found.entry.journal, {**header, "continues": True}
        else:
            path = default_journal(plan.source, plan.project)
    else:
        path = str(journal)
        check_can_append(path, plan.project, header)  # the same import re-run may add to it; another may not
    options = ApplyOptions(journal=path, concurrency=concurrency, batch_size=batch_size, force=force, header=header,
                           include_running=plan.include_running, verify=verify)
    # The plan's project names its tracker: the backend that read it, or `backend` when it is that tracker's.
    chosen = backend_for(plan.project, backend if backend is not None else backend_of(plan), tracking_uri=tracking_uri)
    return apply_plan(plan, chosen, options, on_run_done=on_run_done)


def continued_import(plan: Plan) -> Continuation | None:
    """The interrupted import of this plan's sheet and export that `apply(plan)` (no journal given) meets, if any:
    continued when it planned every change of `plan` (runsync.journal.imports); else `plan` gets a journal of its own."""
    header = header_of(plan)
    if plan.undo or not header.get("exported_at"):
        return None
    home = frame_home(plan.project) if plan.source == FRAME_SOURCE else plan.source
    return find_continuation(journal_dir(home), plan.project, header.get("sheet"), header["exported_at"],
                             planned_keys(plan.changes))


def new_keys_refusal(plan: Plan, *, force: bool = False) -> str | None:
    """Why `plan` may not be applied as it stands: it creates config keys (which W&B cannot delete) and the
    user did not ask for them by name (--new-keys); one line naming the columns, or None."""
    if plan.new_keys_allowed or plan.undo:  # an undo puts back what was there: it asks for nothing new
        return None
    # What apply writes: the changes, and the conflicts when forced.
    written = replace(plan, conflicts=plan.conflicts if force else ()).new_key_counts
    if not written:
        return None
    shown = ", ".join(f"{field!r} ({counted(n, 'run')})" for field, n in written.items())
    if capabilities(plan.project).add_only:  # MLflow's params: logged once, never changed nor deleted
        return (f"{plan.source}: the plan adds params {capabilities(plan.project).tracker} cannot change or delete "
                f"(undo cannot take them back): {shown}; nothing written: pass --new-keys to add them")
    return (f"{plan.source}: the plan creates config keys W&B cannot delete (undo only sets them to null): "
            f"{shown}; nothing written: pass --new-keys to create them")
