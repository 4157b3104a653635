"""How numbers, booleans and dates look as cell text, and how such text reads back. Pure, no I/O.

The one home of these helpers: runsync.fields.codec (cells <-> values) and runsync.planner.damage (what programs did to
values) both use them, so the imports run one way.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import re
from typing import Any

MAX_EXACT_INT = 10**15 - 1  # spreadsheets keep 15 significant digits
INT_RE = re.compile(r"[+-]?\d+")
FLOAT_RE = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
SPECIAL_FLOATS = {"nan": math.nan, "inf": math.inf, "+inf": math.inf, "-inf": -math.inf,
                   "infinity": math.inf, "+infinity": math.inf, "-infinity": -math.inf}
TRUE_TEXTS = {"true", "1", "=true()"}
FALSE_TEXTS = {"false", "0", "=false()"}


def is_nan(value: Any) -> bool:
    """A float NaN (W&B's NaN, or pandas' missing value: the caller tells which)."""
    return isinstance(value, float) and value != value


def float_text(x: float) -> str:
    return repr(x)  # 'nan', 'inf', '-inf', '3.0', '1e-08': shortest round-trippable form


def number_text(x: int | float) -> str:
    """Text a spreadsheet shows for a number: 3.0 shows as 3."""
    if isinstance(x, float) and x.is_integer() and abs(x) <= MAX_EXACT_INT:
        return str(int(x))
    return float_text(x) if isinstance(x, float) else str(x)


def date_text(x: dt.date | dt.time | dt.timedelta) -> str:
    if isinstance(x, dt.datetime) and x.time() == dt.time(0):
        return x.date().isoformat()
    return str(x) if isinstance(x, dt.timedelta) else x.isoformat()


def as_text(raw: Any) -> str:
    if isinstance(raw, str):
        return raw
    if isinstance(raw, bool):
        return "TRUE" if raw else "FALSE"
    if isinstance(raw, (int, float)):
        return number_text(raw)
    if isinstance(raw, (dt.date, dt.time, dt.timedelta)):
        return date_text(raw)
    return str(raw)


def parse_int(text: str) -> int | None:
    text = text.strip()
    return int(text) if INT_RE.fullmatch(text) else None


class FloatOverflow(ValueError):
    """A float literal beyond the largest float (`1e999`): Python reads it as infinity, silently."""

    def __init__(self, text: str) -> None:
        super().__init__(f"{text} is beyond the largest float (about 1.8e308): it is not written as infinity "
                         "(type inf for that)")


def parse_float(text: str) -> float | None:
    """The float a cell's text spells, or None; raises FloatOverflow for a literal beyond the largest float."""
    text = text.strip()
    if FLOAT_RE.fullmatch(text):
        return _finite(text)
    return SPECIAL_FLOATS.get(text.lower())


def _finite(literal: str) -> float:
    x = float(literal)
    if math.isinf(x):
        raise FloatOverflow(literal)
    return x


def exact_number(text: str) -> int | float | None:
    """The number whose own text (str of an int, repr of a float: what runsync writes) `text` is, else None."""
    if INT_RE.fullmatch(text):
        n = int(text)
        return n if str(n) == text else None
    try:
        x = parse_float(text)
    except FloatOverflow:
        return None
    return x if x is not None and float_text(x) == text else None


def parse_bool(raw: Any) -> bool | None:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, (int, float)) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str):
        low = raw.strip().lower()
        if low in TRUE_TEXTS:
            return True
        if low in FALSE_TEXTS:
            return False
    return None


def parse_json(text: str) -> Any:
    # Accepts NaN/Infinity, which to_json_text writes for such floats; a literal beyond the largest float
    # (`1e999`, which json reads as infinity) raises FloatOverflow.
    return json.loads(text, parse_float=_finite)
