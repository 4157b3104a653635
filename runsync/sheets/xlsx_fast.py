"""A fast XLSX reader (python-calamine) for sheets that hold nothing calamine can't show.

calamine reads cell values ~10x faster than openpyxl but shows no formulas, error cells or merged ranges, so
a byte scan of the sheet's XML decides first: any of those and the caller reads with openpyxl instead.
Values are mapped to what openpyxl gives for the same file, so both readers yield the same SheetData.
"""
from __future__ import annotations

import datetime as dt
import re
import zipfile
from typing import Any

# What only openpyxl shows: formulas (<f>), error cells (t="e"), merged ranges, and a worksheet whose
# XML uses a namespace prefix (then these plain patterns could miss the tags).
_NEEDS_OPENPYXL = re.compile(rb'<(?:\w+:)?f[ >/]|\bt="e"|<(?:\w+:)?mergeCell[ >]|<\w+:sheetData')
_MAX_EXACT = 2**53


def _sheet_paths(zf: zipfile.ZipFile) -> dict[str, str]:
    """Sheet name -> worksheet XML path inside the zip, from workbook.xml and its relationships."""
    workbook = zf.read("xl/workbook.xml").decode("utf-8", "replace")
    rels = zf.read("xl/_rels/workbook.xml.rels").decode("utf-8", "replace")
    targets = {m.group(1): m.group(2) for m in re.finditer(r'<Relationship[^>]*?Id="([^"]+)"[^>]*?Target="([^"]+)"', rels)}
    targets.update({m.group(2): m.group(1) for m in re.finditer(r'<Relationship[^>]*?Target="([^"]+)"[^>]*?Id="([^"]+)"', rels)})
    paths = {}
    for m in re.finditer(r'<sheet\b[^>]*?name="([^"]+)"[^>]*?r:id="([^"]+)"', workbook):
        target = targets.get(m.group(2), "")
        paths[_unescape(m.group(1))] = target.lstrip("/") if target.startswith("/") else "xl/" + target
    return paths


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&apos;", "'").replace("&amp;", "&")


def plain_values_only(path: str, sheet: str) -> bool:
    """Whether `sheet` holds only values (no formula, error cell or merged range) that calamine shows as is."""
    try:
        with zipfile.ZipFile(path) as zf:
            member = _sheet_paths(zf).get(sheet)
            if member is None or member not in zf.namelist():
                return False
            with zf.open(member) as fh:
                tail = b""
                while block := fh.read(1 << 20):
                    if _NEEDS_OPENPYXL.search(tail + block):
                        return False
                    tail = block[-64:]  # a tag split across two blocks is seen in the next search
    except (KeyError, zipfile.BadZipFile, OSError):
        return False
    return True


def openpyxl_like(value: Any) -> Any:
    """A calamine value as openpyxl reads the same cell: None for empty, ints for whole numbers, datetimes."""
    if value == "" or value is None:
        return None
    if type(value) is float and value.is_integer() and abs(value) < _MAX_EXACT:
        return int(value)  # Excel and LibreOffice store 3.0 as "3", which openpyxl reads as an int
    if type(value) is dt.date:
        return dt.datetime(value.year, value.month, value.day)
    return value


def open_workbook(path: str) -> Any:
    from python_calamine import CalamineWorkbook

    return CalamineWorkbook.from_path(path)


def read_rows(workbook: Any, sheet: str) -> list[list[Any]]:
    """Every row of `sheet` from A1, cells mapped with `openpyxl_like`; trailing empty cells kept as None."""
    rows = workbook.get_sheet_by_name(sheet).to_python(skip_empty_area=False)
    return [[openpyxl_like(v) for v in row] for row in rows]
