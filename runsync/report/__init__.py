"""Plan reports people review before saying yes: an XLSX copy of the sheet with changes marked, or an HTML page.

Each takes a Plan (import, undo, or any command that makes one) and, for XLSX, the sheet it came from.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

from runsync.model import PLAN_VIEWS, Plan, SheetData

if TYPE_CHECKING:
    import pandas as pd

REPORT_EXTENSIONS = (".xlsx", ".html", ".htm")


def check_report_path(path: str) -> None:
    """Refuse, before any work, a report name whose format can't be told (ValueError)."""
    if not path.lower().endswith(REPORT_EXTENSIONS):
        raise ValueError(f"{path}: a report is .xlsx or .html")
    if os.path.isdir(path):
        raise ValueError(f"{path}: is a folder")


def write_report(plan: Plan, path: str, *, sheet: SheetData | None = None) -> None:
    """Write the plan report to `path`, XLSX or HTML by its extension; atomically."""
    check_report_path(path)
    if path.lower().endswith(".xlsx"):
        from runsync.report.xlsx import write_report_xlsx

        write_report_xlsx(plan, path, sheet)
    else:
        from runsync.report.html import write_report_html

        write_report_html(plan, path)


def plan_frame(plan: Plan) -> pd.DataFrame:
    """One row per change, conflict, W&B-only change, skipped run and error: `Plan.to_frame()`."""
    import pandas as pd

    from runsync.report.common import FRAME_COLUMNS, plan_rows

    return pd.DataFrame(plan_rows(plan), columns=list(FRAME_COLUMNS), dtype=object)


def _text(plan: Plan) -> str:
    from runsync.report.text import plan_text

    return plan_text(plan)


def _print(plan: Plan) -> None:
    from runsync.report.text import print_plan

    print_plan(plan)


def _html(plan: Plan) -> str:
    from runsync.report.html import plan_html

    return plan_html(plan, max_runs=200)


PLAN_VIEWS.update(frame=plan_frame, text=_text, print=_print, html=_html)

__all__ = ["check_report_path", "plan_frame", "write_report"]
