"""runsync: curate Weights & Biases runs in a spreadsheet.

    runsync.export("e/p", "runs.xlsx")     # write the runs to a sheet
    plan = runsync.plan("runs.xlsx")       # what an import would change (3-way diff)
    runsync.apply(plan)                    # write it, journaled; runsync.undo(journal) restores
    runsync.set("e/p", filters={"group": "a"}, set={"group": "b"})  # a Plan for a bulk edit, no sheet
"""
from __future__ import annotations

__version__ = "0.1.0"

from runsync.api import ExportResult, Selection, apply, export, frame, plan, read, undo  # noqa: E402
from runsync.bulk import set_runs as set  # noqa: E402,A001  (an attribute: runsync.set)
from runsync.apply import ApplyReport  # noqa: E402
from runsync.errors import ExitCode, RunsyncError  # noqa: E402
from runsync.export import ExportShape  # noqa: E402
from runsync.model import Change, Plan  # noqa: E402

__all__ = [
    "ApplyReport", "Change", "ExitCode", "ExportResult", "ExportShape", "Plan", "RunsyncError", "Selection",
    "apply", "export", "frame", "plan", "read", "set", "undo", "__version__",
]
