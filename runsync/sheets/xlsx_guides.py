"""The guides an exported XLSX offers: drop-downs of the values a project uses, and read-only columns' input messages."""
from __future__ import annotations

from typing import Any

from runsync.sheets.common import Rows
from runsync.sheets.xlsx_text import LISTS_SHEET, escape_text

LIST_COLUMNS = ("group", "job_type")  # columns with a drop-down of the values the project already uses


def list_values(columns: list[str], records: Rows) -> dict[str, list[str]]:
    """For each drop-down column, the distinct non-empty text values the runs hold, sorted."""
    seen: dict[str, set[Any]] = {column: set() for column in LIST_COLUMNS if column in columns}
    if seen:
        for r in records:  # one pass: the rows may be read back from a spill file
            for column, found in seen.items():
                found.add(r.get(column))
    out: dict[str, list[str]] = {}
    for column, found in seen.items():
        values = sorted((v for v in found if isinstance(v, str) and v != ""), key=lambda v: (v.casefold(), v))
        if values:
            out[column] = values
    return out


def add_guides(wb: Any, ws: Any, columns: list[str], records: Rows,
                readonly: list[bool]) -> None:
    """Drop-downs on group/job_type (a new value still allowed) and an input message on read-only columns.

    Data validations only guide: a person can type anything, and the import checks as before.
    """
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    last = len(records) + 1
    if last < 2:
        return
    lists = list_values(columns, records)
    if lists:
        helper = wb.create_sheet(LISTS_SHEET)
        helper.sheet_state = "hidden"
        longest = max(len(v) for v in lists.values())
        names = list(lists)
        for i in range(-1, longest):
            row = []
            for column in names:
                value = column if i < 0 else (lists[column][i] if i < len(lists[column]) else None)
                cell = None
                if value is not None:
                    cell = WriteOnlyCell(helper, value=escape_text(value))
                    cell.data_type = "s"  # a group "=x" is text here too
                row.append(cell)
            helper.append(row)
        for j, column in enumerate(names):
            letter, at = get_column_letter(j + 1), get_column_letter(columns.index(column) + 1)
            dv = DataValidation(type="list", formula1=f"'{LISTS_SHEET}'!${letter}$2:${letter}${len(lists[column]) + 1}",
                                allow_blank=True, showErrorMessage=False, errorStyle="information",
                                showInputMessage=True, promptTitle=column,
                                prompt="Pick a value this project already uses, or type a new one.")
            dv.add(f"{at}2:{at}{last}")
            ws.data_validations.append(dv)
    ranges = [f"{get_column_letter(i + 1)}2:{get_column_letter(i + 1)}{last}" for i, ro in enumerate(readonly) if ro]
    if ranges:
        dv = DataValidation(showErrorMessage=False, showInputMessage=True, promptTitle="Read-only",
                            prompt="W&B's own value, for reference: don't edit it. runsync import refuses a "
                                   "sheet where it was changed.")
        dv.sqref = " ".join(ranges)
        ws.data_validations.append(dv)
