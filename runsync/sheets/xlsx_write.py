"""Writing an XLSX sheet: the "runs" sheet's layout, header and styles, the hidden metadata, the saved file."""
from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any

from runsync.fields import kind_of
from runsync.fields.codec import GUARD_CHARS, decode_cell, type_name
from runsync.model import ABSENT, ID, SheetMeta
from runsync.sheets.common import BaseRows, Rows, atomic_output, cell_value, column_note
from runsync.sheets.meta import FORMAT_MARKER, dumps, meta_header
from runsync.sheets.xlsx_guides import add_guides
from runsync.sheets.xlsx_text import (
    DATA_SHEET,
    MAX_CELL_CHARS,
    META_SHEET,
    escape_text,
    stored_chunks,
    utf16_len,
)
from runsync.words import counted

GUIDES_ENV = "RUNSYNC_XLSX_GUIDES"  # "0" turns the drop-downs and input messages off (benchmarks/guides.py)
MAX_WIDTH = 60
LARGE_CELLS = 5_000_000  # beyond this many cells a sheet's XML may pass 2 GiB: written with ZIP64 records
WIDTH_SAMPLE = 2_000  # rows measured for column widths; enough to size a column, cheap at 50k runs
SPECIAL_MEMO = 100_000  # texts whose quote-prefix answer is remembered (~120 bytes each, names included)
GREY = "FFE7E6E6"
GREY_TEXT = "FF595959"


def _looks_special(text: str) -> bool:
    """Text Excel would turn into something else if a person re-entered it (number, date, bool, formula)."""
    if text.startswith(GUARD_CHARS) or text.strip() != text:
        return True
    first = text[:1]
    # Most text (names, URLs, groups) is answered here: what the codec reads as a number, a date, a bool or
    # JSON starts with a digit, a sign (a guard char), ".", "{" or "[", or is true/false. A quarter of an
    # export's time went to decoding such text (tests/test_xlsx_write.py checks both answers agree).
    if first and not first.isdecimal() and first not in ".{[" and text.lower() not in ("true", "false"):
        return False
    return _reads_as_other(text)


def _reads_as_other(text: str) -> bool:
    """Whether `text`, typed into an empty cell, is read as something other than that text (or a date)."""
    inferred = decode_cell(text, column="", base=None)
    return not isinstance(inferred, str) or bool(re.match(r"\d{1,4}[-/.]\d{1,2}", text))


def write_xlsx(path: str, columns: list[str], records: Rows, meta: SheetMeta,
               *, notes: dict[str, str] | None = None, guides: bool | None = None, base: BaseRows | None = None) -> None:
    """Write the workbook: openpyxl (write-only) for its structure and header rows, xlsx_rows for the data rows.

    `guides` (default: on unless RUNSYNC_XLSX_GUIDES=0): drop-downs on group/job_type and read-only columns
    in grey text with an input message. `records` are gone through more than once (guides, rows, a refusal);
    `base` (default: `meta.base.items()`), the hidden sheet's base rows, once.
    """
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill

    from runsync.sheets.xlsx_rows import RowRenderer

    if guides is None:
        guides = os.environ.get(GUIDES_ENV, "1") != "0"
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(DATA_SHEET)
    grey = PatternFill("solid", start_color=GREY, end_color=GREY)
    readonly = [kind_of(c, meta.editable_summary).readonly for c in columns]
    sample = list(islice(records, WIDTH_SAMPLE))
    _lay_out(ws, columns, sample, len(records))
    ws.append(_header_cells(ws, columns, readonly, grey, notes, meta))
    style_ids = _data_styles(ws, grey, Font(color=GREY_TEXT) if guides else None)
    renderer = RowRenderer(columns, readonly, _text_columns(columns, readonly, sample), lambda *key: style_ids[key],
                           cell_value=cell_value, stored=_cell_storer(columns, records), special=_special_memo())
    hidden = wb.create_sheet(META_SHEET)
    if guides:
        add_guides(wb, ws, columns, records, readonly)
    hidden.sheet_state = "hidden"
    hidden.append(_meta_header_cells(hidden, meta))
    _save(path, wb, ws, hidden, renderer.rows(records, 2), meta.base.items() if base is None else base,
          large=len(records) * len(columns) > LARGE_CELLS)


def _lay_out(ws: Any, columns: list[str], sample: list[dict[str, Any]], runs: int) -> None:
    """Column widths (measured on `sample`), the frozen header and id column, the filter over every run."""
    from openpyxl.utils import get_column_letter

    for i, column in enumerate(columns):
        width = max([len(column) + 2] + [len(str(cell_value(column, r.get(column, "")) or "")) for r in sample])
        ws.column_dimensions[get_column_letter(i + 1)].width = min(MAX_WIDTH, width + 2)
    ws.freeze_panes = "B2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{runs + 1}"


def _text_columns(columns: list[str], readonly: list[bool], sample: list[dict[str, Any]]) -> list[bool]:
    """Which columns are text: their empty editable cells get the Text format, so a person typing 007 keeps 007."""
    return [
        not ro and sum(type_name(r.get(c)) == "str" for r in sample) * 2 > sum(
            r.get(c, ABSENT) not in (None, ABSENT) for r in sample)
        for c, ro in zip(columns, readonly, strict=True)
    ]


def _header_cells(ws: Any, columns: list[str], readonly: list[bool], grey: Any, notes: dict[str, str] | None,
                  meta: SheetMeta) -> list[Any]:
    """The header row: bold names (grey when read-only), each with a note saying what the column holds."""
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.comments import Comment
    from openpyxl.styles import Font

    bold = Font(bold=True)
    header = []
    for column, ro in zip(columns, readonly, strict=True):
        cell = WriteOnlyCell(ws, value=escape_text(column))
        cell.data_type = "s"
        cell.font = bold
        if ro:
            cell.fill = grey
        cell.comment = Comment(column_note(column, notes, meta.editable_summary), "runsync", width=300, height=100)
        header.append(cell)
    return header


def _data_styles(ws: Any, grey: Any, grey_text: Any) -> dict[tuple[bool, str | None, bool], int]:
    """Every style a data cell can take, registered now: the workbook's styles are saved before the rows."""
    from openpyxl.cell import WriteOnlyCell

    style_ids: dict[tuple[bool, str | None, bool], int] = {}
    for ro in (False, True):
        for fmt in (None, "0", "@"):
            for quote in (False, True):
                cell = WriteOnlyCell(ws)
                if ro:
                    cell.fill = grey
                    if grey_text is not None:
                        cell.font = grey_text
                if fmt:
                    cell.number_format = fmt
                cell.quotePrefix = quote  # text Excel would read as something else if re-entered
                style_ids[(ro, fmt, quote)] = cell.style_id if cell.has_style else 0
    return style_ids


def _special_memo() -> Callable[[str], bool]:
    """_looks_special, remembered for the text that repeats."""
    special: dict[str, bool] = {}

    def looks_special(text: str) -> bool:
        hit = special.get(text)
        if hit is None:
            hit = _looks_special(text)
            if len(special) < SPECIAL_MEMO:  # most text repeats (groups, datasets, states); names don't
                special[text] = hit
        return hit

    return looks_special


def _cell_storer(columns: list[str], records: Rows) -> Callable[[Any, str, str], str]:
    """A text cell as stored (escape_text); one over Excel's size limit refuses the export, naming every such cell."""

    def stored(rid: Any, column: str, text: str) -> str:
        out = escape_text(text)
        size = utf16_len(text)
        if size > MAX_CELL_CHARS or len(out) > MAX_CELL_CHARS:  # stored: control characters take 7 each
            # Rare: only now look for every other such cell, so that one refusal names them all.
            over = _cells_over_limit(columns, records, cell_value) or [(rid, column, size, len(out))]
            shown = "; ".join(f"run {r}: column {c!r}: {n:,} characters"
                              + (f" ({k:,} as stored)" if n <= MAX_CELL_CHARS else "") for r, c, n, k in over[:20])
            more = f"; and {len(over) - 20} more" if len(over) > 20 else ""
            raise ValueError(f"{counted(len(over), 'cell')} too long for XLSX ({shown}{more}): over Excel's "
                             f"{MAX_CELL_CHARS:,}-character cell limit; leave those columns out (--columns, "
                             "--config-keys) or export to .csv")
        return out

    return stored


def _meta_header_cells(hidden: Any, meta: SheetMeta) -> list[Any]:
    """The hidden sheet's first row: the format marker and version, then the metadata header as JSON text."""
    from openpyxl.cell import WriteOnlyCell

    first = WriteOnlyCell(hidden, value=FORMAT_MARKER)
    first.data_type = "s"
    return [first, meta.format_version, *_text_cells(hidden, stored_chunks(dumps(meta_header(meta))))]


def _save(path: str, wb: Any, ws: Any, hidden: Any, data_rows: Iterator[str], base: BaseRows, *,
          large: bool) -> None:
    """Save openpyxl's workbook (header rows only), then splice in the runs' rows and the base's, to `path`."""
    from runsync.sheets.xlsx_rows import splice_rows, text_rows

    with tempfile.TemporaryFile() as skeleton:
        wb.save(skeleton)
        skeleton.seek(0)
        base_rows = ([escape_text(str(rid)), *stored_chunks(dumps(values))] for rid, values in base)
        with atomic_output(path, "wb") as fh:
            splice_rows(skeleton, fh, {ws.path.lstrip("/"): data_rows, hidden.path.lstrip("/"): text_rows(base_rows, 2)},
                        large=large)


def _text_cells(ws: Any, texts: list[str]) -> list[Any]:
    from openpyxl.cell import WriteOnlyCell

    cells = []
    for text in texts:
        cell = WriteOnlyCell(ws, value=text)
        cell.data_type = "s"  # never a formula
        cells.append(cell)
    return cells


def _cells_over_limit(columns: list[str], records: Rows,
                      cell_value: Any) -> list[tuple[Any, str, int, int]]:
    """(run id, column, characters, characters as stored) of every cell over the limit, in sheet order."""
    from runsync.fields.codec import to_xlsx_cell

    out = []
    for record in records:
        for column in columns:
            cell = to_xlsx_cell(cell_value(column, record.get(column, ABSENT)))
            if cell.is_text and isinstance(cell.value, str):
                size, stored = utf16_len(cell.value), len(escape_text(cell.value))
                if max(size, stored) > MAX_CELL_CHARS:
                    out.append((record.get(ID), column, size, stored))
    return out
