"""The Python API: everything the CLI does, importable (`runsync.export`, `plan`, `apply`, `undo`, `frame`)."""
from __future__ import annotations

from runsync.api.exports import ExportResult, Selection, export, sheet_differs_from_base
from runsync.api.frames import frame
from runsync.api.imports import apply, continued_import, new_keys_refusal
from runsync.api.journals import default_journal
from runsync.api.plans import plan, plan_sheet
from runsync.api.reading import read
from runsync.api.undos import plan_undo_journal, undo

__all__ = [
    "ExportResult", "Selection", "apply", "continued_import", "default_journal", "export", "frame",
    "new_keys_refusal", "plan", "plan_sheet", "plan_undo_journal", "read", "sheet_differs_from_base", "undo",
]
