"""A value as runsync writes it into a cell: the CSV text (with its formula guard) or the XLSX cell."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from runsync.fields.scalars import MAX_EXACT_INT
from runsync.fields.scalars import float_text as _float_text
from runsync.model import ABSENT

GUARD_CHARS = ("=", "+", "-", "@", "\t", "\r", "'")


@dataclass(frozen=True)
class XlsxCell:
    """What to store in one XLSX cell."""

    value: Any  # None, bool, int, float or str
    is_text: bool = False
    number_format: str | None = None



def to_json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def to_xlsx_cell(value: Any) -> XlsxCell:
    """How `value` is stored in an XLSX cell: numbers as numbers unless a spreadsheet would round them."""
    if value is None or value is ABSENT:
        return XlsxCell(None)
    if isinstance(value, bool):
        return XlsxCell(value)
    if isinstance(value, int):
        if abs(value) <= MAX_EXACT_INT:
            return XlsxCell(value, number_format="0")
        return XlsxCell(str(value), is_text=True, number_format="@")
    if isinstance(value, float):
        # A number cell keeps 15 significant digits in every spreadsheet program (openpyxl writes 16), so a
        # float that needs more is text: exact through any re-save. So are NaN and infinities.
        if math.isfinite(value) and _significant_digits(value) <= 15:
            return XlsxCell(value)
        return XlsxCell(_float_text(value), is_text=True, number_format="@")
    if isinstance(value, str):
        return XlsxCell(value, is_text=True, number_format="@")
    if isinstance(value, (list, tuple, dict)):
        return XlsxCell(to_json_text(value), is_text=True, number_format="@")
    raise TypeError(f"cannot put a {type(value).__name__} in a cell: {value!r}")


def _significant_digits(x: float) -> int:
    """Digits in the shortest text that reads back as exactly `x` (repr's)."""
    mantissa = repr(x).lstrip("-").split("e")[0].replace(".", "")
    return len(mantissa.strip("0")) or 1


def to_csv_cell(value: Any) -> str:
    """The CSV text for `value` (see the module docstring for the rules)."""
    if value is None or value is ABSENT:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, str):
        return "'" + value if value.startswith(GUARD_CHARS) else value
    if isinstance(value, (list, tuple, dict)):
        return to_json_text(value)
    raise TypeError(f"cannot put a {type(value).__name__} in a cell: {value!r}")
