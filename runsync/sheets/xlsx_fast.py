"""A fast XLSX reader (python-calamine) for sheets that hold nothing calamine can't show.

calamine reads cell values ~10x faster than openpyxl but shows no formulas, error cells or merged ranges, so
a byte scan of the sheet's XML decides first: any of those and the caller reads with openpyxl instead.
Values are mapped to what openpyxl gives for the same file, so both readers yield the same SheetData.
"""
from __future__ import annotations

import datetime as dt
import re
import zipfile
from collections.abc import Iterator
from typing import Any

# What only openpyxl shows: formulas (<f>), error cells (t="e"), merged ranges, and a worksheet whose
# XML uses a namespace prefix (then these plain patterns could miss the tags).
_NEEDS_OPENPYXL = re.compile(rb'<(?:\w+:)?f[ >/]|\bt="e"|<(?:\w+:)?mergeCell[ >]|<\w+:sheetData')
# calamine trims the text of a <t> without xml:space="preserve", so " " reads as "" and " x" as "x";
# openpyxl writes whitespace-only text without it. Such text needs the openpyxl reader.
_EDGE_SPACE = re.compile(rb'<(?:\w+:)?t>(?:\s[^<]*|[^<]*\s)</(?:\w+:)?t>')
# Each pattern above scans a sheet at ~50 MB/s: no literal to jump to. Every match holds one of these parts,
# found at the speed of a literal search; only a block holding one gets the full pattern. "Whitespace before
# </t>" has no literal start forwards: it is looked for in the reversed block.
_MUST_HOLD = {
    _NEEDS_OPENPYXL: tuple(map(re.compile, (rb'<f[ >/]', rb':f[ >/]', rb't="e"', rb'mergeCell[ >]', rb':sheetData'))),
    _EDGE_SPACE: (re.compile(rb't>\s'),),
}
_EDGE_SPACE_BEFORE_CLOSE = re.compile(rb'>t(?::\w+)?/<\s')  # reversed `\s</t>` or `\s</x:t>`
_MAX_EXACT = 2**53


def sheet_paths(zf: zipfile.ZipFile) -> dict[str, str]:
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
    """Whether `sheet` holds only values that calamine shows as they are.

    Not: formulas, error cells, merged ranges, or text with edge whitespace and no xml:space="preserve".
    """
    try:
        with zipfile.ZipFile(path) as zf:
            member = sheet_paths(zf).get(sheet)
            if member is None or member not in zf.namelist():
                return False
            if _found(zf, member, (_NEEDS_OPENPYXL, _EDGE_SPACE)):
                return False
            if "xl/sharedStrings.xml" in zf.namelist() and _found(zf, "xl/sharedStrings.xml", (_EDGE_SPACE,)):
                return False
    except (KeyError, zipfile.BadZipFile, OSError):
        return False
    return True


def _found(zf: zipfile.ZipFile, member: str, patterns: tuple[re.Pattern[bytes], ...]) -> bool:
    """Whether any of `patterns` matches in `member`, read in blocks (one pass for all of them)."""
    with zf.open(member) as fh:
        tail = b""
        while block := fh.read(1 << 20):
            data = tail + block
            if any(_may_hold(pattern, data) and pattern.search(data) for pattern in patterns):
                return True
            # Keep the unfinished element (text holds no raw "<"), so a match split across blocks is seen next.
            cut = data.rfind(b"<")
            tail = data[cut:] if cut >= 0 and len(data) - cut < (1 << 20) else data[-64:]
    return False


def _may_hold(pattern: re.Pattern[bytes], data: bytes) -> bool:
    """False only when `pattern` can't match in `data`: no part that every match holds is there."""
    if any(part.search(data) for part in _MUST_HOLD[pattern]):
        return True
    return pattern is _EDGE_SPACE and _EDGE_SPACE_BEFORE_CLOSE.search(data[::-1]) is not None


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
    for row in rows:
        _map_row(row)
    return rows


def iter_rows(workbook: Any, sheet: str) -> Iterator[list[Any]]:
    """read_rows, a row at a time: a reader that lets each row go holds one, not the sheet, in Python objects
    (the hidden sheet of 100,000 runs is ~60 MiB of JSON text; issue 20 §4). Raises as read_rows does."""
    found = workbook.get_sheet_by_name(sheet)
    if found.start not in (None, (0, 0)):  # calamine's rows start at the first cell used, not at A1
        return iter(read_rows(workbook, sheet))
    return (_map_row(row) for row in found.iter_rows())


def _map_row(row: list[Any]) -> list[Any]:
    """`row` with its cells mapped with `openpyxl_like`, in place."""
    for i, value in enumerate(row):  # inlined: a 50,000-run sheet has 1.5 million cells
        kind = type(value)
        if kind is str:
            if not value:
                row[i] = None
        elif kind is float:
            if value.is_integer() and -_MAX_EXACT < value < _MAX_EXACT:
                row[i] = int(value)
        elif kind is not bool:
            row[i] = openpyxl_like(value)
    return row
