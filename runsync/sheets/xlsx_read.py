"""Reading an XLSX sheet: calamine for plain values, openpyxl for the rest, and the hidden metadata sheet."""
from __future__ import annotations

import itertools
import json
import logging
import re
import warnings as pywarnings
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from runsync.errors import CellError, SheetError
from runsync.fields import kind_of
from runsync.model import ID, SheetData, SheetMeta
from runsync.sheets import xlsx_fast
from runsync.sheets.common import assemble, header_name, id_text
from runsync.sheets.compact import Compactor
from runsync.sheets.meta import FORMAT_MARKER, loads, meta_from_json
from runsync.sheets.xlsx_text import DATA_SHEET, LISTS_SHEET, META_SHEET, unescape_text

log = logging.getLogger(__name__)


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
        refs: list[bytes] = []
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
        # The hidden sheet a row at a time (its base is parsed run by run later): here only its header.
        meta_rows = xlsx_fast.iter_rows(workbook, META_SHEET) if META_SHEET in workbook.sheet_names else None
        first = next(meta_rows, None) if meta_rows is not None else None
    except Exception:  # e.g. XML calamine rejects: the readers below say what is wrong
        return None
    if meta_rows is not None and first is not None:
        meta_rows = itertools.chain([first], meta_rows)
    try:
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
    # Each calamine row is let go once assembled: what a read holds at its peak is then about one copy of
    # the cells, not two (issue 20 §4).
    numbered: Iterator[tuple[int, list[Any]]]
    if early is None:
        workbook = xlsx_fast.open_workbook(path)
        data_rows = xlsx_fast.iter_rows(workbook, DATA_SHEET)
        header = next(data_rows, None)
        numbered = enumerate(data_rows, start=2)
    else:
        workbook, rows, early_meta_rows = early
        header = rows[0] if rows else None
        numbered = _taken(rows)
    if header is None:
        raise _EmptySheet()
    columns, out = assemble(path, header, numbered, errors, warnings)
    has_meta = META_SHEET in workbook.sheet_names
    if early is not None and has_meta:
        meta_rows = iter(early_meta_rows)
    else:
        meta_rows = xlsx_fast.iter_rows(workbook, META_SHEET) if has_meta else iter(())
    meta = _read_meta(path, has_meta, meta_rows, warnings, out)
    return SheetData(path=path, columns=columns, rows=out, meta=meta, warnings=warnings, errors=errors)


def _taken(rows: list[list[Any]]) -> Iterator[tuple[int, list[Any]]]:
    """(row number, cells) of every row after the header, each let go from `rows` as it is taken."""
    for at in range(1, len(rows)):
        cells, rows[at] = rows[at], None  # type: ignore[call-overload]
        yield at + 1, cells


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
            titles = ", ".join(repr(s.title) for s in (candidates or visible))
            raise _fail(path, f"no sheet named {DATA_SHEET!r}, and {len(candidates) or 'none'} of the sheets "
                              f"{titles} could be the exported one: rename the exported sheet back to {DATA_SHEET!r}")
        ws = candidates[0]
        warnings.append(f"{path}: no sheet named {DATA_SHEET!r}; reading {ws.title!r}")
    ws.reset_dimensions()  # some programs write a wrong <dimension>; read what is there
    for ref in _merged_ranges(path, ws):
        row_text = re.search(r"\d+", ref)
        errors.append(CellError(path, int(row_text.group()) if row_text else None, None, None,
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
    meta = _read_meta(path, has_meta, meta_rows, warnings, out)
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
    if column is None or not (kind := kind_of(column)).readonly or kind.name in ("id", "summary"):
        rid = cells[names.index(ID)].value if ID in names and names.index(ID) < len(cells) else None
        errors.append(CellError(path, row_no, None if rid is None else str(rid), column,
                                f"formula in an editable cell ({formula}): type the value itself, "
                                "or make the cell text", formula))
    return formula


def _read_meta(path: str, has_meta: bool, rows: Any, warnings: list[str],
               sheet_rows: Iterable[tuple[int, Mapping[str, Any]]] = ()) -> SheetMeta | None:
    """The hidden sheet's header and base; a base's values equal to its run's cells in `sheet_rows` are theirs."""
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
        base: dict[str, Mapping[str, Any]] = {}
        # Each column name once (json.loads copies every key per run), values in a tuple, shared with the row's.
        compactor = Compactor(sheet_rows)
        for row in rows:
            if not row or row[0] is None:
                continue
            run_id, values = compactor.base(str(row[0]), _loads_base("".join(c for c in row[1:] if isinstance(c, str))))
            base[run_id] = values
    except ValueError as exc:
        raise _fail(path, f"the hidden {META_SHEET} sheet is damaged: {exc}") from None
    return meta_from_json(header, source=path, base=base)


def _loads_base(text: str) -> Any:
    """meta.loads, without its walk for tagged values ({"$f": ...}, {"$d": ...}) where the text holds none."""
    if '"$' in text or "\\u0024" in text:
        return loads(text)
    return json.loads(text)
