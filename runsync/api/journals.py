"""Where an import's journal goes, and the earlier imports of an export that count as its base."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from runsync.journal.events import journal_dir, new_journal_path
from runsync.journal.history import ExportHistory, export_history
from runsync.model import RunRecord, SheetData
from runsync.sheets.frame_cells import FRAME_SOURCE


def advance_base(sheet: SheetData, live: Mapping[str, RunRecord]) -> ExportHistory | None:
    """Count runsync's own earlier writes to this sheet's export (its imports' journals) as part of the base.

    Without them a value fixed again after an import would look "changed in W&B", and a re-export would
    take the imported cells for unsaved edits. Returns what each import wrote over, for the planner to
    tell a sheet that predates an import (runsync.journal.history).
    """
    if sheet.meta is None:
        return None
    folder = journal_dir(frame_home(sheet.meta.project)) if sheet.path == FRAME_SOURCE else None
    history = export_history(sheet.path, sheet.meta.project, sheet.meta.exported_at, sheet.meta.base, live,
                             folder=folder)
    if history.moved:
        merged = dict(sheet.meta.base)
        for run_id, values in history.moved.items():
            merged[run_id] = {**merged.get(run_id, {}), **values}
        sheet.meta = replace(sheet.meta, base=merged)  # a copy: a DataFrame's attrs keep the export's
    return history


def default_journal(source: str, project: str | None = None) -> str:
    """A new, empty journal for one import of `source`: SOURCE.runsync-journals/<UTC time>-<n>.jsonl.

    A `runsync set` plan has no file to sit beside: runsync's state folder (set_edits.new_set_journal).
    """
    from runsync.planner.set_edits import is_set_source, new_set_journal

    if project and is_set_source(source):
        return new_set_journal(project)
    if project and source == FRAME_SOURCE:
        return new_journal_path(frame_home(project))
    return new_journal_path(source)


def frame_home(project: str) -> Path:
    """A DataFrame has no file for its journals to sit beside: STATE/ENTITY/PROJECT/frame(.runsync-journals)."""
    from runsync.planner.set_edits import project_home

    return project_home(project, "frame")
