"""Cell <-> typed value: how runsync writes values into sheet cells and reads them back. Pure, no I/O.

Reading back lives here; writing in cell_encoding, the names of value types in value_types (both re-exported).

Rules (docs/sheet-format.md):
- The exported (base) value of a cell is the type hint when reading it back: a str stays a str ('007',
  '1e5', 'TRUE', 'null'), an int stays an int, a float a float (typing 10 over 10.0 is no change).
- Empty cell = null. Only "" is empty; whitespace is a value. The text `null` is the string "null".
- Booleans in CSV are `true`/`false`; TRUE/FALSE/True/False/1/0 are read too.
- Lists and dicts are JSON: `json.dumps(v, ensure_ascii=False, separators=(", ", ": "))`.
- CSV formula guard: a str starting with = + - @ TAB CR or ' is written with one extra leading '.
  Reading a CSV, one leading ' is removed when the exported value was a str, or when the text after
  it starts with one of those characters. XLSX stores text cells as they are (no guard).
- Line breaks inside cells are kept; CRLF vs LF alone is no change.
"""
from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from runsync.fields.cell_encoding import (  # re-exported: callers spell them codec.to_csv_cell etc.
    GUARD_CHARS as GUARD_CHARS,
)
from runsync.fields.cell_encoding import (
    XlsxCell as XlsxCell,
)
from runsync.fields.cell_encoding import (
    to_csv_cell as to_csv_cell,
)
from runsync.fields.cell_encoding import (
    to_json_text as to_json_text,
)
from runsync.fields.cell_encoding import (
    to_xlsx_cell as to_xlsx_cell,
)
from runsync.fields.paths import (  # re-exported: callers spell them codec.config_column etc.
    blocking_ancestor as blocking_ancestor,
)
from runsync.fields.paths import (
    cell_value_at as cell_value_at,
)
from runsync.fields.paths import (
    config_column as config_column,
)
from runsync.fields.paths import (
    config_path as config_path,
)
from runsync.fields.paths import (
    flatten_config as flatten_config,
)
from runsync.fields.paths import (
    get_path as get_path,
)
from runsync.fields.paths import (
    key_path as key_path,
)
from runsync.fields.paths import (
    set_path as set_path,
)
from runsync.fields.paths import (
    summary_path as summary_path,
)
from runsync.fields.scalars import (
    FLOAT_RE as _FLOAT_RE,
)
from runsync.fields.scalars import (
    FloatOverflow,
)
from runsync.fields.scalars import (
    as_text as _as_text,
)
from runsync.fields.scalars import (
    exact_number as _exact_number,
)
from runsync.fields.scalars import (
    number_text as _number_text,
)
from runsync.fields.scalars import (
    parse_bool as _parse_bool,
)
from runsync.fields.scalars import (
    parse_float as _parse_float,
)
from runsync.fields.scalars import (
    parse_int as _parse_int,
)
from runsync.fields.scalars import (
    parse_json as _parse_json,
)
from runsync.fields.value_types import (  # re-exported: callers spell them codec.type_name etc.
    TYPE_FAMILY as TYPE_FAMILY,
)
from runsync.fields.value_types import (
    family_of as family_of,
)
from runsync.fields.value_types import (
    type_family as type_family,
)
from runsync.fields.value_types import (
    type_name as type_name,
)
from runsync.model import ABSENT

TAGS_COLUMN = "tags"


@dataclass(frozen=True)
class CellProblem:
    """A cell that cannot be decoded; the planner adds file/row/run/column."""

    message: str


# --- tags ---------------------------------------------------------------------------------------------

def format_tags(tags: Sequence[str]) -> str:
    """`a, b, c`; a tag with a comma, a double quote or outer spaces is quoted CSV-style."""
    parts = []
    for tag in tags:
        if not tag or "," in tag or '"' in tag or tag != tag.strip():
            tag = '"' + tag.replace('"', '""') + '"'
        parts.append(tag)
    return ", ".join(parts)


def parse_tags(text: Any) -> tuple[str, ...] | CellProblem:
    """Inverse of format_tags; empty items are dropped, spaces around unquoted tags stripped."""
    if text is None or text == "":
        return ()
    if not isinstance(text, str):
        text = _number_text(text) if isinstance(text, (int, float)) and not isinstance(text, bool) else str(text)
    tags: list[str] = []
    i, n = 0, len(text)
    while i <= n:
        while i < n and text[i].isspace():
            i += 1
        if i < n and text[i] == '"':
            j, buf = i + 1, []
            while True:
                k = text.find('"', j)
                if k < 0:
                    return CellProblem(f"unbalanced double quote in tags: {text[i:]!r}")
                buf.append(text[j:k])
                if k + 1 < n and text[k + 1] == '"':
                    buf.append('"')
                    j = k + 2
                    continue
                break
            end = text.find(",", k + 1)
            end = n if end < 0 else end
            if text[k + 1:end].strip():
                return CellProblem(f"text after a closing double quote in tags: {text[i:end]!r}")
            tags.append("".join(buf))
        else:
            end = text.find(",", i)
            end = n if end < 0 else end
            item = text[i:end].strip()
            if '"' in item:
                return CellProblem(f"stray double quote in tag {item!r}: write a tag with quotes as "
                                   f'"a ""quoted"" tag"')
            if item:
                tags.append(item)
        i = end + 1
    return tuple(tags)


# --- decoding -----------------------------------------------------------------------------------------


def _as_int(raw: Any) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float):
        return int(raw) if raw.is_integer() else None
    if isinstance(raw, str):
        return _parse_int(raw)
    return None


def _as_float(raw: Any) -> float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, (int, float)):
        return float(raw)
    if isinstance(raw, str):
        return _parse_float(raw)
    return None


def _infer(raw: Any, column_type: str | None, source: str = "csv") -> Any | CellProblem:
    """A value typed into a cell that had none: guided by the column's type, then by its look.

    In XLSX a number or boolean typed into a cell is stored as one, so a text cell is text a person chose
    (`'007` or a Text-formatted cell): with no type from the column, only its JSON look is read.
    """
    if column_type in ("int", "float", "bool", "list", "dict", "str"):
        typed = _decode_as(raw, column_type)
        if typed is not None:
            return typed
    if isinstance(raw, (bool, int, float)):
        return raw
    if not isinstance(raw, str):
        return _as_text(raw)
    if source == "xlsx" and column_type in (None, "number") and raw.lstrip()[:1] not in ("{", "["):
        # "number": the column's other cells are numbers, so the exact text of a number here is one (runsync
        # writes a float of 16-17 digits as text, and a copy of that cell is still that float).
        number = _exact_number(raw) if column_type == "number" else None
        if number is None and column_type == "number":
            _parse_float(raw)  # text spelling a float beyond the largest is refused (FloatOverflow), not kept
        return raw if number is None else number
    if (i := _parse_int(raw)) is not None:
        return i
    if (x := _parse_float(raw)) is not None and _FLOAT_RE.fullmatch(raw.strip()):
        return x
    if raw.strip().lower() in ("true", "false"):
        return raw.strip().lower() == "true"
    if raw.lstrip()[:1] in ("{", "["):
        try:
            return _parse_json(raw)
        except FloatOverflow:
            raise
        except ValueError:
            pass
    return raw


def _decode_as(raw: Any, kind: str) -> Any | None:
    """`raw` read as `kind`, or None if it isn't one."""
    if kind == "str":
        return _as_text(raw)
    if kind == "int":
        return _as_int(raw)
    if kind == "float":
        return _as_float(raw)
    if kind == "bool":
        return _parse_bool(raw)
    if kind in ("list", "dict"):
        try:
            return _parse_json(_as_text(raw))
        except ValueError:
            return None
    return None


def _normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


_SCALAR_TYPES = ("int", "float", "bool", "number")


def quoted_text(raw: str) -> str | None:
    """The text a cell typed as a JSON string holds (`"0,01"` -> `0,01`), or None when it is not one."""
    text = raw.strip()
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, str) else None


def decode_cell(raw: Any, *, column: str, base: Any = ABSENT, column_type: str | None = None,
                source: str = "csv") -> Any | CellProblem:
    """The typed value a cell holds, using the exported value `base` as the type hint.

    `source` is "csv" (the ' guard applies), "xlsx" (text cells are taken as they are; a text cell typed
    where the column has no type stays text) or "typed" (a value typed on a command line: no guard).
    Returns None for an empty cell (the planner maps empty + ABSENT base to ABSENT). A float literal beyond
    the largest float (`1e999`) is a problem: Python would read it as infinity.
    """
    try:
        return _decode_cell(raw, column, base, column_type, source)
    except FloatOverflow as exc:
        return CellProblem(str(exc))


def _decode_cell(raw: Any, column: str, base: Any, column_type: str | None, source: str) -> Any | CellProblem:
    if column == TAGS_COLUMN:
        if source != "typed" and isinstance(raw, str) and raw.startswith("'") and raw[1:].startswith(GUARD_CHARS):
            raw = raw[1:]  # the CSV formula guard, as on any text cell (also a CSV export saved as XLSX)
        return parse_tags(raw)
    if raw is None or raw == "":
        return "" if base == "" else None  # "" and null both export as an empty cell
    if isinstance(raw, str):
        if isinstance(base, str) and _normalize_newlines(raw) == _normalize_newlines(base):
            return base  # unchanged (also covers an XLSX text cell that starts with ')
        if source == "xlsx" and isinstance(base, str) and base.startswith(GUARD_CHARS) and raw == "'" + base:
            return base  # a CSV export's formula guard, kept by a program that saved the CSV as XLSX
        if source == "csv" and raw.startswith("'") and (isinstance(base, str) or raw[1:].startswith(GUARD_CHARS)):
            text = raw[1:]  # the ' marks text, as it does when typed into Excel
            if isinstance(base, str) and _normalize_newlines(text) == _normalize_newlines(base):
                return base
            return text
    if isinstance(base, str):
        return _as_text(raw)
    if isinstance(raw, str) and (isinstance(base, (bool, int, float)) or column_type in _SCALAR_TYPES) \
            and (quoted := quoted_text(raw)) is not None:
        return quoted  # `"0,01"` in a column of numbers or booleans: text on purpose (docs/sheet-format.md "Types")
    if isinstance(base, bool):
        kind: str | None = "bool"
    elif isinstance(base, (list, tuple, dict)):
        try:
            return _parse_json(_as_text(raw))
        except ValueError as exc:
            kind, example = ("list", "[1, 2]") if isinstance(base, (list, tuple)) else ("dict", '{"a": 1}')
            return CellProblem(f"not valid JSON: {exc} (this column held a {kind}, typed as JSON such as {example}; "
                               'to store text instead, type it in double quotes: "like this")')
    else:
        kind = type_name(base)
    if kind is not None:
        typed = _decode_as(raw, kind)
        if typed is not None:
            return typed
    return _infer(raw, column_type, source)


def values_equal(a: Any, b: Any) -> bool:
    """Semantic equality: numbers by value, exactly (10 == 10.0), NaN == NaN, True != 1, ABSENT only ABSENT.

    Exact, so that an edit at the 16th or 17th significant digit is a change; what spreadsheet programs do
    to digits (15-digit rounding) is recognised by runsync.planner.damage instead.
    """
    if a is ABSENT or b is ABSENT:
        return a is b
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if isinstance(a, int) and isinstance(b, int):
            return a == b
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b  # Python compares an int and a float by exact value
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(values_equal(a[k], b[k]) for k in a)
    if type(a) is not type(b) and not (isinstance(a, str) and isinstance(b, str)):
        return False
    return a == b
