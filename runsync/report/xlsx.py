"""A plan as an XLSX workbook: a "Plan" summary sheet first, then the sheet as read with its changes marked.

Every changed cell is filled (CHANGE_FILL; CONFLICT_FILL for a conflict, ERROR_FILL for a cell error) and
carries a comment with the value in W&B now. No cell is ever a formula: text is always a text cell.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime, time, timezone
from typing import Any

from runsync.fields import TagTick, kind_of
from runsync.model import ID, Plan, SheetData
from runsync.report.common import (
    CHANGE,
    CONFLICT,
    ERROR,
    Cell,
    cell_note,
    counts,
    run_table,
    run_url,
    skip_reason,
    summary_line,
)
from runsync.report.text import show, tracker_name

SUMMARY_SHEET = "Plan"
TABLE_SHEET = "runs"
CHANGE_FILL = "FFFFEB9C"  # Excel's "Neutral" yellow
CONFLICT_FILL = "FFFFC7CE"  # Excel's "Bad" light red
ERROR_FILL = "FFE4DFEC"  # lavender: a cell the import refuses
FILLS = {CHANGE: CHANGE_FILL, CONFLICT: CONFLICT_FILL, ERROR: ERROR_FILL}
MAX_WIDTH = 50


class _Writer:
    """Cells for one write-only worksheet, text always as text, styles shared."""

    def __init__(self, ws: Any) -> None:
        from openpyxl.styles import Font, PatternFill

        self.ws = ws
        self.bold = Font(bold=True)
        self.fills = {k: PatternFill("solid", start_color=v, end_color=v) for k, v in FILLS.items()}

    def cell(self, value: Any, *, bold: bool = False, kind: str | None = None, note: str | None = None,
             link: str | None = None) -> Any:
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.comments import Comment

        from runsync.sheets.xlsx_io import escape_text

        if value is not None and not isinstance(value, (str, bool, int, float, datetime, date, time)):
            value = str(value)
        if isinstance(value, float) and not math.isfinite(value):
            value = str(value)  # not a number a cell can hold
        if value is None and not (bold or kind or note):
            return None
        cell = WriteOnlyCell(self.ws, value=escape_text(value) if isinstance(value, str) else value)
        if isinstance(value, str):
            cell.data_type = "s"  # never a formula, even for "=1+1"
        if bold:
            cell.font = self.bold
        if kind:
            cell.fill = self.fills[kind]
        if note:
            cell.comment = Comment(escape_text(note), "runsync", width=320, height=110)
        if link:
            cell.hyperlink = link
        return cell

    def row(self, *values: Any, bold: bool = False) -> None:
        self.ws.append([self.cell(v, bold=bold) for v in values])


def write_report_xlsx(plan: Plan, path: str, sheet: SheetData | None = None) -> None:
    """The summary sheet, then `sheet` (the rows and columns as read) marked; without a sheet, runs × fields."""
    from openpyxl import Workbook

    from runsync.sheets import atomic_output

    wb = Workbook(write_only=True)
    _summary(wb.create_sheet(SUMMARY_SHEET), plan)
    table = wb.create_sheet(TABLE_SHEET)
    if sheet is not None and sheet.rows is not None and sheet.columns:
        _sheet_copy(table, plan, sheet)
    else:
        _plan_table(table, plan)
    with atomic_output(path, "wb") as fh:
        wb.save(fh)


def _summary(ws: Any, plan: Plan) -> None:
    from openpyxl.utils import get_column_letter

    for i, width in enumerate((28, 24, 22, 30, 30, 30, 40), start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    w = _Writer(ws)
    w.row("runsync plan report", bold=True)
    w.row("project", plan.project)
    w.row("source", plan.source)
    w.row("made", datetime.now(timezone.utc).isoformat(timespec="seconds"))
    tracker = tracker_name(plan.project)
    w.row("diff", f"3-way: at export, the sheet, {tracker} now" if plan.three_way
          else f"2-way against {tracker}: conflicts cannot be detected")
    w.row("result", summary_line(plan))
    for name, n in counts(plan):
        w.row(name, n)
    w.row()
    w.row("Colours in the runs sheet", bold=True)
    ws.append([w.cell("change", kind=CHANGE), w.cell(f"will be written; the comment says what {tracker} holds now")])
    ws.append([w.cell("conflict", kind=CONFLICT),
               w.cell(f"changed in the sheet and in {tracker} since the export: not written (--force lets the sheet "
                      "win)")])
    ws.append([w.cell("error", kind=ERROR), w.cell("the import refuses this cell: nothing is written until fixed")])

    fields: dict[str, list[int]] = {}
    for i, items in enumerate((plan.changes, plan.conflicts)):
        for c in items:
            fields.setdefault(c.field, [0, 0])[i] += 1
    if fields:
        w.row()
        w.row("field", "runs changing it", "conflicts", bold=True)
        for name in sorted(fields):
            w.row(name, *fields[name])

    def section(title: str, header: tuple[str, ...], rows: list[list[Any]]) -> None:
        if rows:
            w.row()
            w.row(title, bold=True)
            w.row(*header, bold=True)
            for values in rows:
                ws.append(values)

    def run(run_id: str) -> Any:
        url = run_url(plan, run_id)
        return w.cell(run_id, link=url)

    section("Changes", ("run", "run name", "field", f"{tracker} now", "new"),
            [[run(c.run_id), w.cell(c.run_name), w.cell(c.field), w.cell(show(c.live)), w.cell(show(c.sheet))]
             for c in plan.changes])
    section("Conflicts", ("run", "run name", "field", "at export", f"{tracker} now", "sheet"),
            [[run(c.run_id), w.cell(c.run_name), w.cell(c.field, kind=CONFLICT), w.cell(show(c.base)),
              w.cell(show(c.live)), w.cell(show(c.sheet))] for c in plan.conflicts])
    section("Skipped runs (left as they are)", ("run", "run name", "reason"),
            [[run(k.run_id), w.cell(k.run_name), w.cell(skip_reason(k.reason))] for k in plan.skipped])
    section(f"Changed only in {tracker} since the export (kept)",
            ("run", "run name", "field", "at export", f"{tracker} now"),
            [[run(c.run_id), w.cell(c.run_name), w.cell(c.field), w.cell(show(c.base)), w.cell(show(c.live))]
             for c in plan.infos])
    section("Errors", ("row", "run", "column", "problem"),
            [[w.cell(x.row), w.cell(x.run_id), w.cell(x.column), w.cell(x.message, kind=ERROR)] for x in plan.errors])
    section("Warnings", ("warning",), [[w.cell(x)] for x in plan.warnings])


def _marks(plan: Plan, sheet: SheetData) -> dict[tuple[int, str], Cell]:
    """(row, column) -> how the cell is marked: its change or conflict, or the error in it."""
    row_of: dict[str, int] = {}
    for row_no, cells in sheet.rows:
        rid = cells.get(ID)
        if rid not in (None, ""):
            row_of.setdefault(str(rid).strip(), row_no)
    tag_columns = {c: tick.tag(c) for c in sheet.columns if isinstance((tick := kind_of(c)), TagTick)}
    marks: dict[tuple[int, str], Cell] = {}
    for kind, items in ((CHANGE, plan.changes), (CONFLICT, plan.conflicts)):
        for c in items:
            if c.run_id not in row_of:
                continue
            row_no = row_of[c.run_id]
            cell = Cell(kind, cell_note(kind, c, tracker_name(plan.project)), c)
            if c.field in sheet.columns:
                marks[(row_no, c.field)] = cell
            if c.field == "tags":  # ticked tag:NAME columns: mark each one that flips
                old, new = set(c.live or ()), set(c.sheet or ())
                for column, tag in tag_columns.items():
                    if (tag in old) != (tag in new):
                        marks[(row_no, column)] = cell
    for x in plan.errors:
        if x.row is not None and x.column in sheet.columns:
            marks[(x.row, x.column)] = Cell(ERROR, x.message)
    for k in plan.skipped:
        if k.run_id in row_of:
            marks.setdefault((row_of[k.run_id], ID), Cell("", f"skipped: {skip_reason(k.reason)}"))
    return marks


def _sheet_copy(ws: Any, plan: Plan, sheet: SheetData) -> None:
    """The sheet as read, at the same row numbers (so "row 7" in an error is row 7 here), marked."""
    from openpyxl.utils import get_column_letter

    columns = sheet.columns
    _widths(ws, columns, [cells for _, cells in sheet.rows[:500]])
    ws.freeze_panes = "B2"
    last = max([1] + [row_no for row_no, _ in sheet.rows])
    ws.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{last}"
    w = _Writer(ws)
    ws.append([w.cell(c, bold=True) for c in columns])
    marks = _marks(plan, sheet)
    at = 2
    for row_no, cells in sheet.rows:
        while at < row_no:  # blank rows the reader skipped
            ws.append([])
            at += 1
        out = []
        for column in columns:
            mark = marks.get((row_no, column))
            if mark is None:
                out.append(w.cell(cells.get(column)))
            else:
                out.append(w.cell(cells.get(column), kind=mark.kind or None, note=mark.text))
        ws.append(out)
        at += 1


def _plan_table(ws: Any, plan: Plan) -> None:
    """No sheet (an undo, a DataFrame): runs as rows, each changed field's new value, marked."""
    fields, runs = run_table(plan)
    columns = [ID, "run name", *fields]
    _widths(ws, columns, [{ID: rid, "run name": name} for rid, name, _ in runs[:500]])
    ws.freeze_panes = "B2"
    w = _Writer(ws)
    ws.append([w.cell(c, bold=True) for c in columns])
    for run_id, name, cells in runs:
        out = [w.cell(run_id, link=run_url(plan, run_id)), w.cell(name)]
        for f in fields:
            mark = cells.get(f)
            out.append(None if mark is None or mark.change is None
                       else w.cell(show(mark.change.sheet), kind=mark.kind, note=mark.text))
        ws.append(out)


def _widths(ws: Any, columns: list[str], sample: list[Mapping[str, Any]]) -> None:
    from openpyxl.utils import get_column_letter

    for i, column in enumerate(columns, start=1):
        width = max([len(column) + 2] + [len(str(r.get(column) or "")) for r in sample])
        ws.column_dimensions[get_column_letter(i)].width = min(MAX_WIDTH, max(10, width + 2))
