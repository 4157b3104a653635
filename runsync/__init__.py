"""runsync: curate Weights & Biases runs in a spreadsheet.

    runsync.export("e/p", "runs.xlsx")     # write the runs to a sheet
    plan = runsync.plan("runs.xlsx")       # what an import would change (3-way diff)
    runsync.apply(plan)                    # write it, journaled; runsync.undo(journal) restores
    runsync.set("e/p", filters={"group": "a"}, set={"group": "b"})  # a Plan for a bulk edit, no sheet
"""
from __future__ import annotations

import runsync.report  # noqa: F401  (puts Plan's views in place: str(plan), plan.show(), plan.to_frame())
from runsync.api import ExportResult, Selection, apply, export, frame, plan, read, undo
from runsync.errors import ExitCode, RunsyncError
from runsync.exporter.table import ExportShape
from runsync.model import ApplyReport, Change, Plan
from runsync.planner.set_edits import set_runs as set  # noqa: A001  (an attribute: runsync.set)
from runsync.version import __version__

__all__ = [
    "ApplyReport", "Change", "ExitCode", "ExportResult", "ExportShape", "Plan", "RunsyncError", "Selection",
    "apply", "export", "frame", "plan", "read", "set", "undo", "__version__",
]
