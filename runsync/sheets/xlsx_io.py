"""XLSX sheets: a "runs" sheet people edit, and a hidden "_runsync" sheet with the metadata and base."""
from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import warnings as pywarnings
import zipfile
from collections.abc import Callable
from typing import Any

from runsync.errors import CellError, SheetError
from runsync.fields.codec import GUARD_CHARS, decode_cell, type_name
from runsync.model import ABSENT, ID, SheetData, SheetMeta, is_readonly
from runsync.sheets import xlsx_fast
from runsync.sheets.common import (
    assemble,
    atomic_output,
    cell_value,
    column_note,
    header_name,
    id_text,
)
from runsync.sheets.meta import FORMAT_MARKER, dumps, loads, meta_from_json, meta_header
from runsync.words import counted

DATA_SHEET = "runs"
META_SHEET = "_runsync"
LISTS_SHEET = "_lists"  # hidden: the values each drop-down offers (a list validation's inline text caps at 255)
LIST_COLUMNS = ("group", "job_type")  # columns with a drop-down of the values the project already uses
GUIDES_ENV = "RUNSYNC_XLSX_GUIDES"  # "0" turns the drop-downs and input messages off (benchmarks/guides.py)
MAX_CELL_CHARS = 32_767  # Excel's limit, in UTF-16 units
CHUNK = 30_000
MAX_WIDTH = 60
LARGE_CELLS = 5_000_000  # beyond this many cells a sheet's XML may pass 2 GiB: written with ZIP64 records
WIDTH_SAMPLE = 2_000  # rows measured for column widths; enough to size a column, cheap at 50k runs
GREY = "FFE7E6E6"
GREY_TEXT = "FF595959"

log = logging.getLogger(__name__)

# OOXML's own escape for characters XML can't hold (ECMA-376 Part 1, 22.9.2.19 ST_Xstring): U+0001 is
# stored as `_x0001_`, and a literal `_xHHHH_` typed by a person as `_x005F_xHHHH_`. Excel and calamine
# decode it; openpyxl leaves cell text as stored (hence unescape_text); LibreOffice keeps both forms on re-save.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_LITERAL_ESCAPE = re.compile(r"_(?=x[0-9A-Fa-f]{4}_)")
_ESCAPED = re.compile(r"_x([0-9A-Fa-f]{4})_")


def escape_text(text: str) -> str:
    """Text as an XLSX cell stores it: control characters (and literal `_xHHHH_`) in OOXML's `_xHHHH_` form."""
    if "_x" in text:
        text = _LITERAL_ESCAPE.sub("_x005F_", text)
    return _CONTROL.sub(lambda m: f"_x{ord(m.group()):04X}_", text)


def unescape_text(text: str) -> str:
    """Inverse of escape_text, as Excel and calamine read a cell."""
    if "_x" not in text:
        return text
    return _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)), text)


def _chunks(text: str) -> list[str]:
    return [text[i:i + CHUNK] for i in range(0, len(text), CHUNK)] or [""]


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


def _utf16_len(text: str) -> int:
    return len(text) if len(text) * 2 <= MAX_CELL_CHARS else len(text.encode("utf-16-le")) // 2


def list_values(columns: list[str], records: list[dict[str, Any]]) -> dict[str, list[str]]:
    """For each drop-down column, the distinct non-empty text values the runs hold, sorted."""
    out: dict[str, list[str]] = {}
    for column in LIST_COLUMNS:
        if column in columns:
            seen = {r.get(column) for r in records}
            values = sorted((v for v in seen if isinstance(v, str) and v != ""), key=lambda v: (v.casefold(), v))
            if values:
                out[column] = values
    return out


def _add_guides(wb: Any, ws: Any, columns: list[str], records: list[dict[str, Any]],
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
        dv.sqref = " ".join(ranges)  # type: ignore[assignment]
        ws.data_validations.append(dv)


def write_xlsx(path: str, columns: list[str], records: list[dict[str, Any]], meta: SheetMeta,
               *, notes: dict[str, str] | None = None, guides: bool | None = None) -> None:
    """Write the workbook: openpyxl (write-only) for its structure and header rows, xlsx_rows for the data rows.

    `guides` (default: on unless RUNSYNC_XLSX_GUIDES=0): drop-downs on group/job_type and read-only columns
    in grey text with an input message.
    """
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.comments import Comment
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter

    from runsync.sheets.xlsx_rows import RowRenderer, splice_rows, text_rows

    if guides is None:
        guides = os.environ.get(GUIDES_ENV, "1") != "0"
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(DATA_SHEET)
    grey = PatternFill("solid", start_color=GREY, end_color=GREY)
    grey_text = Font(color=GREY_TEXT) if guides else None
    bold = Font(bold=True)
    readonly = [is_readonly(c, meta.editable_summary) for c in columns]
    sample = records[:WIDTH_SAMPLE]
    # Empty editable cells of a text column get the Text format, so a person typing 007 keeps 007.
    text_column = [
        not ro and sum(type_name(r.get(c)) == "str" for r in sample) * 2 > sum(
            r.get(c, ABSENT) not in (None, ABSENT) for r in sample)
        for c, ro in zip(columns, readonly)
    ]
    for i, column in enumerate(columns):
        width = max([len(column) + 2] + [len(str(cell_value(column, r.get(column, "")) or "")) for r in sample])
        ws.column_dimensions[get_column_letter(i + 1)].width = min(MAX_WIDTH, width + 2)
    ws.freeze_panes = "B2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{len(records) + 1}"

    header = []
    for column, ro in zip(columns, readonly):
        cell = WriteOnlyCell(ws, value=escape_text(column))
        cell.data_type = "s"
        cell.font = bold
        if ro:
            cell.fill = grey
        cell.comment = Comment(column_note(column, notes, meta.editable_summary), "runsync", width=300, height=100)
        header.append(cell)
    ws.append(header)

    # Every style a data cell can take, registered now: the workbook's styles are saved before the rows.
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

    special: dict[str, bool] = {}

    def looks_special(text: str) -> bool:
        hit = special.get(text)
        if hit is None:
            hit = _looks_special(text)
            if len(special) < 100_000:  # most text repeats (groups, datasets, states); names don't
                special[text] = hit
        return hit

    def stored(rid: Any, column: str, text: str) -> str:
        out = escape_text(text)
        size = _utf16_len(text)
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

    renderer = RowRenderer(columns, readonly, text_column, lambda *key: style_ids[key], cell_value=cell_value,
                           stored=stored, special=looks_special)

    hidden = wb.create_sheet(META_SHEET)
    if guides:
        _add_guides(wb, ws, columns, records, readonly)
    hidden.sheet_state = "hidden"
    first = WriteOnlyCell(hidden, value=FORMAT_MARKER)
    first.data_type = "s"
    hidden.append([first, meta.format_version, *_text_cells(hidden, _stored_chunks(dumps(meta_header(meta))))])
    with tempfile.TemporaryFile() as skeleton:
        wb.save(skeleton)
        skeleton.seek(0)
        base_rows = ([escape_text(str(rid)), *_stored_chunks(dumps(base))] for rid, base in meta.base.items())
        with atomic_output(path, "wb") as fh:
            splice_rows(skeleton, fh, {ws.path.lstrip("/"): renderer.rows(records, 2),
                                       hidden.path.lstrip("/"): text_rows(base_rows, 2)},
                        large=len(records) * len(columns) > LARGE_CELLS)


def _stored_chunks(text: str) -> list[str]:
    """`text` in cells of at most MAX_CELL_CHARS as stored (escape_text), to be joined back after reading."""
    stored = [escape_text(chunk) for chunk in _chunks(text)]
    if all(len(s) <= MAX_CELL_CHARS for s in stored):
        return stored
    half = CHUNK // 2  # escaping at most doubles a text (`_x0041_` -> `_x005F_x0041_`)
    return [escape_text(text[i:i + half]) for i in range(0, len(text), half)]


def _text_cells(ws: Any, texts: list[str]) -> list[Any]:
    from openpyxl.cell import WriteOnlyCell

    cells = []
    for text in texts:
        cell = WriteOnlyCell(ws, value=text)
        cell.data_type = "s"  # never a formula
        cells.append(cell)
    return cells


# --- reading ------------------------------------------------------------------------------------------

def _fail(path: str, message: str) -> SheetError:
    return SheetError([CellError(path, None, None, None, message)])


def _check_container(path: str) -> None:
    with open(path, "rb") as fh:
        head = fh.read(8)
    if not head:
        raise _fail(path, "the file is empty")
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise _fail(path, "the file is password-protected (encrypted) or an old .xls: "
                          "remove the password / save as .xlsx")
    if not head.startswith(b"PK"):
        raise _fail(path, "not an XLSX file (not a zip archive): save the sheet as .xlsx or .csv")
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
    except zipfile.BadZipFile as exc:
        raise _fail(path, f"damaged XLSX file ({exc})") from None
    if "content.xml" in names and "xl/workbook.xml" not in names:
        raise _fail(path, "unsupported format .ods: save as .xlsx or .csv")
    if "xl/workbook.xml" not in names:
        raise _fail(path, "not an XLSX file (a zip without an Excel workbook)")


def _merged_ranges(path: str, ws: Any) -> list[str]:
    # Read-only worksheets don't expose merged cells; they are <mergeCell ref=.../> after the data.
    with zipfile.ZipFile(path) as zf, zf.open(ws._worksheet_path) as fh:
        tail = b""
        refs: list[str] = []
        while block := fh.read(1 << 20):
            data = tail + block
            refs += re.findall(rb'<(?:\w+:)?mergeCell [^>]*ref="([A-Z0-9:]+)"', data)
            tail = data[-300:]  # a tag split across blocks is found next time (duplicates dropped)
        return list(dict.fromkeys(r.decode() for r in refs))


def read_xlsx(path: str, on_ids: Callable[[dict[str, Any], list[str], list[str]], None] | None = None) -> SheetData:
    """Raw cell values of the "runs" sheet, structural errors, and the hidden metadata.

    `on_ids(header, ids, columns)`, if given, is told the metadata header, the run ids the id column seems to
    hold and the column names as soon as calamine has read the file, before the rest is worked out: a plan
    reads W&B meanwhile. Only a guess (the caller compares it with the SheetData); it is skipped when the file
    does not show both.
    """
    _check_container(path)
    early = _read_early(path, on_ids) if on_ids is not None else None
    if not xlsx_fast.plain_values_only(path, DATA_SHEET):
        log.debug("%s: formulas, error cells or merged ranges: reading with openpyxl", path)
        return read_with_openpyxl(path)
    from python_calamine import CalamineError

    try:
        return read_fast(path, early)
    except (CalamineError, _EmptySheet) as exc:  # XML calamine rejects; the openpyxl reader words the error
        log.debug("%s: the fast reader failed (%s: %s): reading with openpyxl", path, type(exc).__name__, exc)
    return read_with_openpyxl(path)


def _read_early(path: str, on_ids: Callable[[dict[str, Any], list[str], list[str]], None]
                ) -> tuple[Any, Any, Any] | None:
    """calamine's reading of the file (workbook, runs rows, metadata rows), after telling `on_ids`; or None."""
    try:
        workbook = xlsx_fast.open_workbook(path)
        rows = xlsx_fast.read_rows(workbook, DATA_SHEET)
        meta_rows = xlsx_fast.read_rows(workbook, META_SHEET) if META_SHEET in workbook.sheet_names else None
    except Exception:  # e.g. XML calamine rejects: the readers below say what is wrong
        return None
    try:
        first = meta_rows[0] if meta_rows else None
        header = loads("".join(c for c in first[2:] if isinstance(c, str))) if first and first[0] == FORMAT_MARKER \
            else None
        names = [header_name(h) for h in rows[0]] if rows else []
    except ValueError:
        header, names = None, []
    if isinstance(header, dict) and ID in names:
        at = names.index(ID)  # the first id column, as assemble reads it
        ids = [id_text(row[at]) for row in rows[1:] if at < len(row) and row[at] not in (None, "")]
        on_ids(header, ids, names)
    return workbook, rows, meta_rows


class _EmptySheet(Exception):
    """The runs sheet has no rows: the openpyxl reader says so in the user's terms."""


def read_with_openpyxl(path: str) -> SheetData:
    """The reader that sees everything (formulas, error cells, merged ranges); slower than calamine."""
    _check_container(path)
    from openpyxl import load_workbook

    try:
        with pywarnings.catch_warnings():
            pywarnings.simplefilter("ignore")  # openpyxl warns about extensions it drops; nothing of ours
            wb = load_workbook(path, read_only=True, data_only=False)
        _use_raw_shared_strings(path, wb)
    except Exception as exc:  # openpyxl raises many kinds for damaged files
        raise _fail(path, f"cannot read XLSX: {type(exc).__name__}: {exc}") from None
    try:
        return _read_workbook(path, wb)
    finally:
        wb.close()


def _use_raw_shared_strings(path: str, wb: Any) -> None:
    """Give openpyxl's read-only sheets the shared strings as stored, for unescape_text to decode.

    openpyxl deletes every "x005F_" from shared strings (a shortcut for the `_x005F_` escape), which turns a
    person's literal `_x0041_` (stored `_x005F_x0041_`) into an escape and mangles any text holding "x005F_".
    Excel and LibreOffice write shared strings, so every re-saved sheet would be read wrong.
    """
    strings = next((ws._shared_strings for ws in wb.worksheets if hasattr(ws, "_shared_strings")), None)
    if not strings:
        return
    with zipfile.ZipFile(path) as zf:
        types = zf.read("[Content_Types].xml").decode("utf-8", "replace")
        part = re.search(r'PartName="/([^"]+)"[^>]*ContentType="[^"]*sharedStrings\+xml"', types)
        raw = _read_shared_strings(zf, part.group(1) if part else "xl/sharedStrings.xml")
    if len(raw) == len(strings):  # the same table openpyxl read; anything else: keep openpyxl's reading
        strings[:] = raw


def _read_shared_strings(zf: zipfile.ZipFile, member: str) -> list[str]:
    """The text of each <si>, as openpyxl's Text.content joins it (plain <t>, then rich-text runs), undecoded."""
    from xml.etree.ElementTree import iterparse

    ns = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
    out = []
    with zf.open(member) as fh:
        for _, node in iterparse(fh):
            if node.tag == ns + "si":
                parts = [node.findtext(ns + "t") or ""]
                parts += [run.findtext(ns + "t") or "" for run in node.findall(ns + "r")]
                out.append("".join(parts))
                node.clear()
    return out


def read_fast(path: str, early: tuple[Any, Any, Any] | None = None) -> SheetData:
    """The same SheetData as the openpyxl reader, through calamine (a sheet of plain values only).

    `early`: calamine's reading of this file already made (`_read_early`).
    """
    errors: list[CellError] = []
    warnings: list[str] = []
    if early is None:
        workbook = xlsx_fast.open_workbook(path)
        rows = xlsx_fast.read_rows(workbook, DATA_SHEET)
    else:
        workbook, rows, early_meta_rows = early
    if not rows:
        raise _EmptySheet()
    numbered = ((row_no, cells) for row_no, cells in enumerate(rows[1:], start=2))
    columns, out = assemble(path, rows[0], numbered, errors, warnings)
    has_meta = META_SHEET in workbook.sheet_names
    if early is not None and has_meta:
        meta_rows = iter(early_meta_rows)
    else:
        meta_rows = iter(xlsx_fast.read_rows(workbook, META_SHEET)) if has_meta else iter(())
    meta = _read_meta(path, has_meta, meta_rows, warnings)
    return SheetData(path=path, columns=columns, rows=out, meta=meta, warnings=warnings, errors=errors)


def _first_row(ws: Any) -> list[Any]:
    for row in ws.iter_rows(min_row=1, max_row=1, values_only=True):
        return [header_name(v) for v in row]
    return []


def _read_workbook(path: str, wb: Any) -> SheetData:
    errors: list[CellError] = []
    warnings: list[str] = []
    if DATA_SHEET in wb.sheetnames:
        ws = wb[DATA_SHEET]
    else:
        visible = [s for s in wb.worksheets if s.sheet_state == "visible" and s.title not in (META_SHEET, LISTS_SHEET)]
        if not visible:
            raise _fail(path, f"no {DATA_SHEET!r} sheet")
        # The exported sheet renamed: read it only when no other sheet could be it (another sheet with an id
        # column, an overview a person added, would otherwise be planned as the runs).
        candidates = [s for s in visible if ID in _first_row(s)] if len(visible) > 1 else visible
        if len(candidates) != 1:
            names = ", ".join(repr(s.title) for s in (candidates or visible))
            raise _fail(path, f"no sheet named {DATA_SHEET!r}, and {len(candidates) or 'none'} of the sheets "
                              f"{names} could be the exported one: rename the exported sheet back to {DATA_SHEET!r}")
        ws = candidates[0]
        warnings.append(f"{path}: no sheet named {DATA_SHEET!r}; reading {ws.title!r}")
    ws.reset_dimensions()  # some programs write a wrong <dimension>; read what is there
    for ref in _merged_ranges(path, ws):
        errors.append(CellError(path, int(re.search(r"\d+", ref).group()), None, None,
                                f"merged cells {ref}: unmerge them (each run needs its own cells)"))
    rows_iter = ws.iter_rows()
    try:
        header_cells = next(rows_iter)
    except StopIteration:
        raise _fail(path, f"sheet {ws.title!r} is empty") from None
    header = [_text_value(c.value) for c in header_cells]
    names = [None if h is None else header_name(h) for h in header]

    def rows():
        for row_no, cells in enumerate(rows_iter, start=2):
            values = []
            for i, cell in enumerate(cells):
                value, kind = cell.value, cell.data_type
                if kind == "f" and isinstance(value, str):
                    value = _formula_value(path, row_no, names, i, value, cells, errors)
                elif kind == "e":
                    errors.append(CellError(path, row_no, None, _name(names, i),
                                            f"error value {value} in the cell: type a value", value))
                elif isinstance(value, str):
                    value = unescape_text(value)
                values.append(value)
            yield row_no, values

    try:
        columns, out = assemble(path, header, rows(), errors, warnings)
    except Exception as exc:
        raise _fail(path, f"cannot read XLSX: {type(exc).__name__}: {exc}") from None
    has_meta = META_SHEET in wb.sheetnames
    meta_rows = ([_text_value(v) for v in row] for row in wb[META_SHEET].iter_rows(values_only=True)) \
        if has_meta else iter(())
    meta = _read_meta(path, has_meta, meta_rows, warnings)
    return SheetData(path=path, columns=columns, rows=out, meta=meta, warnings=warnings, errors=errors)


def _text_value(value: Any) -> Any:
    return unescape_text(value) if isinstance(value, str) else value


def _name(names: list[str | None], i: int) -> str | None:
    return names[i] if i < len(names) else None


def _formula_value(path: str, row_no: int, names: list[str | None], i: int, formula: str,
                   cells: Any, errors: list[CellError]) -> Any:
    # LibreOffice saves a boolean as the formula =TRUE() / =FALSE().
    compact = formula.replace(" ", "").upper()
    if compact in ("=TRUE()", "=TRUE"):
        return True
    if compact in ("=FALSE()", "=FALSE"):
        return False
    column = _name(names, i)
    # Summary columns may be editable (--edit-summary; the metadata is read later): a formula is refused there too.
    if column is None or not is_readonly(column) or column == ID or column.startswith("summary."):
        rid = cells[names.index(ID)].value if ID in names and names.index(ID) < len(cells) else None
        errors.append(CellError(path, row_no, None if rid is None else str(rid), column,
                                f"formula in an editable cell ({formula}): type the value itself, "
                                "or make the cell text", formula))
    return formula


def _read_meta(path: str, has_meta: bool, rows: Any, warnings: list[str]) -> SheetMeta | None:
    if not has_meta:
        warnings.append(f"{path}: the hidden {META_SHEET} sheet is missing (deleted, or the file was re-saved "
                        "by a program that drops it): no base snapshot, so changes made in W&B since the "
                        "export can't be told apart from edits")
        return None
    first = next(rows, None)
    if not first or first[0] != FORMAT_MARKER:
        raise _fail(path, f"the hidden {META_SHEET} sheet is damaged (no {FORMAT_MARKER} marker)")
    try:
        header = loads("".join(c for c in first[2:] if isinstance(c, str)))
        if isinstance(header, dict):
            header.setdefault("format_version", first[1])
        base: dict[str, dict[str, Any]] = {}
        for row in rows:
            if not row or row[0] is None:
                continue
            base[str(row[0])] = _loads_base("".join(c for c in row[1:] if isinstance(c, str)))
    except ValueError as exc:
        raise _fail(path, f"the hidden {META_SHEET} sheet is damaged: {exc}") from None
    return meta_from_json(header, source=path, base=base)


def _loads_base(text: str) -> Any:
    """meta.loads, without its walk for tagged values ({"$f": ...}, {"$d": ...}) where the text holds none."""
    if '"$' in text or "\\u0024" in text:
        return loads(text)
    return json.loads(text)


def _cells_over_limit(columns: list[str], records: list[dict[str, Any]],
                      cell_value: Any) -> list[tuple[Any, str, int, int]]:
    """(run id, column, characters, characters as stored) of every cell over the limit, in sheet order."""
    from runsync.fields.codec import to_xlsx_cell

    out = []
    for record in records:
        for column in columns:
            cell = to_xlsx_cell(cell_value(column, record.get(column, ABSENT)))
            if cell.is_text and isinstance(cell.value, str):
                size, stored = _utf16_len(cell.value), len(escape_text(cell.value))
                if max(size, stored) > MAX_CELL_CHARS:
                    out.append((record.get(ID), column, size, stored))
    return out
