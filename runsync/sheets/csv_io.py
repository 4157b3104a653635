"""CSV sheets: UTF-8 with BOM and CRLF (what Excel opens right), metadata in a JSON sidecar."""
from __future__ import annotations

import csv
import io
import json
import os
from typing import Any

from runsync.codec import to_csv_cell
from runsync.errors import CellError, SheetError
from runsync.model import ABSENT, SheetData, SheetMeta
from runsync.sheets import assemble, atomic_output, cell_value, sidecar_path
from runsync.sheets.meta import meta_from_json, meta_to_json

DELIMITERS = (",", ";", "\t")


def write_csv(path: str, columns: list[str], records: list[dict[str, Any]], meta: SheetMeta) -> None:
    """Write the CSV and its sidecar; each replaces its file only once fully written."""
    sidecar = json.dumps(meta_to_json(meta), ensure_ascii=False, allow_nan=False, indent=1)
    with atomic_output(path, "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
        writer.writerow(columns)
        for record in records:
            writer.writerow([to_csv_cell(cell_value(c, record.get(c, ABSENT))) for c in columns])
    with atomic_output(sidecar_path(path), "w", encoding="utf-8", newline="\n") as fh:
        fh.write(sidecar + "\n")


def _fail(path: str, message: str) -> SheetError:
    return SheetError([CellError(path, None, None, None, message)])


def decode_bytes(data: bytes, path: str, warnings: list[str], meta: SheetMeta | None = None) -> str:
    """Text of a CSV from whichever program saved it (see README "Sheet format" for the order)."""
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
    # Not UTF-8: Japanese Excel saves cp932, Western Excel cp1252, and many byte strings decode as both
    # (b"cr\xe8me" is valid cp932). The exported values, when known, tell which one reads them back.
    candidates = {}
    for encoding in ("cp932", "cp1252"):
        try:
            candidates[encoding] = data.decode(encoding)
        except UnicodeDecodeError:
            continue
    if not candidates:
        candidates["latin-1"] = data.decode("latin-1")  # decodes any bytes: the last resort
    known = _non_ascii_texts(meta)
    score = {e: sum(t in text for t in known) for e, text in candidates.items()}
    ranked = sorted(candidates, key=lambda e: -score[e])  # stable: cp932 first on a tie
    chosen = ranked[0]
    decisive = chosen != "latin-1" and (len(ranked) == 1 or score[ranked[0]] > score[ranked[1]])
    if not decisive:  # Latin-1 decodes anything, so reading with it is never evidence of being right
        names = {"cp932": "cp932 (Shift-JIS, Japanese Excel's CSV)", "cp1252": "cp1252 (Western Windows)",
                 "latin-1": "Latin-1"}
        warnings.append(f"{path}: not UTF-8; guessed {names[chosen]}. If non-ASCII text looks wrong in the plan, "
                        "save the CSV as UTF-8.")
    return candidates[chosen]


def _non_ascii_texts(meta: SheetMeta | None, limit: int = 2000) -> list[str]:
    """Exported text values with non-ASCII characters: the evidence for guessing an encoding."""
    found: list[str] = []
    for base in (meta.base.values() if meta else ()):
        for value in base.values():
            for text in (value if isinstance(value, list) else [value]):
                if isinstance(text, str) and not text.isascii():
                    found.append(text)
                    if len(found) >= limit:
                        return found
    return found


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
    text = decode_bytes(data, path, warnings, meta)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sniff_delimiter(text), strict=False)
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
    return SheetData(path=path, columns=columns, rows=out, meta=meta, warnings=warnings, errors=errors)


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
