"""The text of runsync's XLSX workbooks: the sheets' names, and a cell's text as stored (OOXML's escape, Excel's limit)."""
from __future__ import annotations

import re

DATA_SHEET = "runs"
META_SHEET = "_runsync"
LISTS_SHEET = "_lists"  # hidden: the values each drop-down offers (a list validation's inline text caps at 255)
MAX_CELL_CHARS = 32_767  # Excel's limit, in UTF-16 units
CHUNK = 30_000

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


def utf16_len(text: str) -> int:
    """The length of `text` as Excel counts it (UTF-16 units)."""
    return len(text) if len(text) * 2 <= MAX_CELL_CHARS else len(text.encode("utf-16-le")) // 2


def stored_chunks(text: str) -> list[str]:
    """`text` in cells of at most MAX_CELL_CHARS as stored (escape_text), to be joined back after reading."""
    stored = [escape_text(chunk) for chunk in _chunks(text)]
    if all(len(s) <= MAX_CELL_CHARS for s in stored):
        return stored
    half = CHUNK // 2  # escaping at most doubles a text (`_x0041_` -> `_x005F_x0041_`)
    return [escape_text(text[i:i + half]) for i in range(0, len(text), half)]
