"""CSV sheets: UTF-8 with BOM and CRLF (what Excel opens right), metadata in a JSON sidecar."""
from __future__ import annotations

import csv
import io
import json
import os
from typing import Any

from runsync.errors import CellError, SheetError
from runsync.fields.codec import to_csv_cell
from runsync.model import ABSENT, SheetData, SheetMeta
from runsync.sheets.common import (
    BaseRows,
    Rows,
    assemble,
    atomic_output,
    cell_value,
    header_name,
    sidecar_path,
)
from runsync.sheets.compact import compact_base
from runsync.sheets.encodings import ADVICE, NAMES, choose_encoding
from runsync.sheets.meta import meta_from_json, meta_json_text

DELIMITERS = (",", ";", "\t")


def write_csv(path: str, columns: list[str], records: Rows, meta: SheetMeta, *, base: BaseRows | None = None) -> None:
    """Write the CSV and its sidecar (its base from `base`, default `meta.base.items()`); the CSV replaces its
    file once both are fully written, then the sidecar replaces its own."""
    with atomic_output(sidecar_path(path), "w", encoding="utf-8", newline="\n") as side, \
            atomic_output(path, "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
        writer.writerow(columns)
        for record in records:
            writer.writerow([to_csv_cell(cell_value(c, record.get(c, ABSENT))) for c in columns])
        side.writelines(meta_json_text(meta, base))  # streamed: a CSV of 100,000 runs never holds its base
        side.write("\n")


def _fail(path: str, message: str) -> SheetError:
    return SheetError([CellError(path, None, None, None, message)])


def decode_bytes(data: bytes, path: str, warnings: list[str], meta: SheetMeta | None = None,
                 errors: list[CellError] | None = None) -> str:
    """Text of a CSV from whichever program saved it (see README "Sheet format" for the order).

    BOM or valid UTF-8 is read as such. Any other encoding is decided from the exported values by
    `runsync.sheets.encodings.choose_encoding`: untouched cells must read back exactly. When the exported
    values fit no candidate, this raises. With nothing to decide by (no base) a file that doesn't read as
    Japanese cp932 gets a file-level error in `errors` (the plan then writes nothing; `read_sheet` still
    shows the rows, as Latin-1).
    """
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if b"\x00" in data[:4096]:
        raise _fail(path, "not a text file (it contains NUL bytes): save the sheet as .csv or .xlsx")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    decision = choose_encoding(data, meta.base if meta else None, _texts, header_name)
    if decision.encoding is not None:
        if decision.warn:
            warnings.append(f"{path}: not UTF-8; guessed {NAMES[decision.encoding]} ({decision.reason}). If "
                            "non-ASCII text looks wrong in the plan, save the CSV as UTF-8.")
        return decision.text  # type: ignore[return-value]
    message = f"not UTF-8, and its encoding can't be told: {decision.reason}; {ADVICE}"
    if decision.evidence or errors is None:
        raise _fail(path, message)
    errors.append(CellError(path, None, None, None, message))
    warnings.append(f"{path}: not UTF-8; guessed Latin-1 only to show the rows: nothing will be written.")
    return data.decode("latin-1")


def _texts(value: Any) -> list[str]:
    """An exported value's non-ASCII texts: the evidence for an encoding (a str, or each tag of a list)."""
    return [t for t in (value if isinstance(value, list) else [value]) if isinstance(t, str) and not t.isascii()]


def sniff_delimiter(text: str) -> str:
    """`,` `;` or TAB: whichever splits the header line most (outside quotes)."""
    first = text.split("\n", 1)[0]
    counts = {d: 0 for d in DELIMITERS}
    quoted = False
    for ch in first:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def read_csv(path: str, *, base_path: str | None = None) -> SheetData:
    """Raw text cells of a CSV, plus its sidecar metadata when there is one."""
    with open(path, "rb") as fh:
        data = fh.read()
    if not data.strip():
        raise _fail(path, "the file is empty")
    if data.startswith(b"PK\x03\x04"):
        raise _fail(path, "this is a zip (XLSX?) file, not a CSV: give it a .xlsx name")
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise _fail(path, "this is an Excel .xls (or encrypted) file, not a CSV: save as .xlsx or .csv")
    warnings: list[str] = []
    errors: list[CellError] = []
    meta = _read_sidecar(path, base_path)
    text = decode_bytes(data, path, warnings, meta, errors)
    delimiter = sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
    try:
        table = list(reader)
    except csv.Error as exc:
        raise _fail(path, f"not a readable CSV: {exc}") from None
    if not table:
        raise _fail(path, "the file is empty")
    header = table[0]
    width = len(header)
    while width and not header[width - 1].strip():
        width -= 1

    def rows():
        for i, cells in enumerate(table[1:]):
            row_no = i + 2  # a quoted multi-line cell is still one spreadsheet row
            extra = cells[width:]
            if any(c != "" for c in extra):
                errors.append(CellError(path, row_no, None, None,
                                        f"row has {len(cells)} cells but the header has {width} "
                                        f"(a stray delimiter or unquoted comma?)", extra))
            cells = cells[:width] + [""] * (width - len(cells))
            yield row_no, cells

    columns, out = assemble(path, header[:width], rows(), errors, warnings)
    if meta is not None:
        meta.base = compact_base(meta.base, out)  # read before the cells: the encoding is judged by it
    return SheetData(path=path, columns=columns, rows=out, meta=meta, warnings=warnings, errors=errors,
                     delimiter=delimiter, exported_as="csv")


def _read_sidecar(path: str, base_path: str | None) -> SheetMeta | None:
    source = base_path or sidecar_path(path)
    if not os.path.exists(source):
        if base_path:
            raise _fail(base_path, "base file not found")
        return None  # the planner warns that a 3-way diff isn't possible
    try:
        with open(source, encoding="utf-8-sig") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        raise _fail(source, f"cannot read runsync metadata: {exc}") from None
    return meta_from_json(data, source=source)
