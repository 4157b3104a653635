"""Plan reports people review before saying yes: an XLSX copy of the sheet with changes marked, or an HTML page.

Each takes a Plan (import, undo, or any command that makes one) and, for XLSX, the sheet it came from.
"""
from __future__ import annotations

import os

from runsync.model import Plan, SheetData

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


__all__ = ["check_report_path", "write_report"]
