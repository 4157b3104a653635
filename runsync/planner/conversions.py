"""What a spreadsheet program may read an exported text as, in any locale: so a conversion is told from an edit.

Excel, LibreOffice and Google Sheets read each text cell of a CSV they open as a number, date, time, currency,
percentage, fraction or boolean when it looks like one *in the sheet's locale* (a German Calc reads `0.005` as
the grouped number 5), and save the value back in their own format (`5`, `07:45:00 AM`, `04/07/26`, `-5` for
`(5)`, `0` for a denormal). `readings(text)` is every value such a reading can give; a saved cell is damage
when it is a rendering of one of them (`misread`). Both sides go through the same readers, so what a program
writes (its date/time/number formats, the locale's separators, scientific notation, trailing zeros, an added
currency symbol) needs no list of its own.

The locales' decimal and grouping separators, month names and day periods come from Babel's CLDR tables.
What Excel and Google Sheets do is taken from their documentation (they cannot run here):
- Excel "Convert numbers stored as text" / General format (support.microsoft.com, "Stop automatically
  changing numbers to dates"): month-day texts become dates (`d-mmm`), `1E5` becomes `1.00E+05`, leading zeros
  are dropped, 15 significant digits are kept (later digits become 0: truncation, not rounding), `(5)` is -5,
  booleans are shown as TRUE/FALSE in the display language (WAHR/FALSCH, VRAI/FAUX, ...).
- Google Sheets "Convert text to numbers, dates and formulas" on CSV import (support.google.com/docs 40608):
  the spreadsheet's locale decides separators and day/month order; times are written as `h:mm:ss`.
Pure: no I/O.
"""
from __future__ import annotations

import datetime as dt
import re
import unicodedata
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from runsync.planner.date_readings import date_parts, read_dates, read_datetimes, read_times
from runsync.planner.locales import BOOLEANS, LOCALES, locale_data, locales_for_delimiter
from runsync.planner.number_readings import read_numbers
from runsync.planner.reading import Reading

__all__ = ["Reading", "readings", "misread", "LOCALES", "locales_for_delimiter"]

_SHOWN_SECONDS = Decimal("0.005")  # a time shown to hundredths of a second (Calc's format) is that time
_MIN_NORMAL = Decimal("2.2250738585072014e-308")  # below it a float is denormal: programs flush it to 0
_DATELIKE = re.compile(r"[-/. ,年月日]|\d[^\W\d_]|[^\W\d_]\d", re.UNICODE)  # parts a date needs between them
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)


@lru_cache(maxsize=65_536)  # a column's values repeat (one learning rate in a thousand runs)
def _text_readings(text: str, locales: tuple[str, ...]) -> tuple[Reading, ...]:
    if not any(ch.isdigit() for ch in text):  # every number, date and time has a digit
        b = BOOLEANS.get(text.strip().lower())
        return () if b is None else (Reading("bool", b),)
    out: list[Reading] = []
    if (b := BOOLEANS.get(text.strip().lower())) is not None:
        out.append(Reading("bool", b))
    seen_separators: set[tuple[str, tuple[str, ...]]] = set()
    parts = date_parts(text) if _DATELIKE.search(text) else None
    datelike, numeric_date = parts is not None, parts is not None and all(p.isdigit() for p in parts)
    timelike = ":" in text or _LETTER.search(text) is not None  # `7:45`, or `8 AM` / `午後8時`
    for name in locales:
        loc = locale_data(name)
        if (loc.decimal, loc.groups) not in seen_separators:  # locales sharing separators read numbers alike
            seen_separators.add((loc.decimal, loc.groups))
            out += read_numbers(text, loc)
        if datelike and (name == locales[0] or not numeric_date):  # numbers alone read alike in every locale
            out += read_dates(text, loc)
        if timelike:
            out += read_times(text, loc) + read_datetimes(text, loc)
    return tuple(dict.fromkeys(out))  # locales agreeing on a reading give it once


_EPOCH = dt.datetime(1899, 12, 30)  # day 0 of Excel's and Calc's serial dates (1900 system)


def _value_readings(value: Any) -> list[Reading]:
    """What a typed cell (an XLSX number, date, time or boolean) can stand for."""
    if isinstance(value, bool):
        return [Reading("bool", value), Reading("number", Decimal(int(value)))]
    if isinstance(value, dt.datetime):
        secs = Decimal(value.hour * 3600 + value.minute * 60 + value.second) + Decimal(value.microsecond) / 10**6
        out = [Reading("datetime", (value.year, value.month, value.day, secs))]
        if not secs:
            out.append(Reading("date", (value.year, value.month, value.day)))
        if value.date() <= dt.date(1900, 1, 1):  # a time alone is read back as a date on day 0 or 1
            out.append(Reading("time", secs))
        return out
    if isinstance(value, dt.date):
        return [Reading("date", (value.year, value.month, value.day))]
    if isinstance(value, dt.time):
        return [Reading("time", Decimal(value.hour * 3600 + value.minute * 60 + value.second)
                        + Decimal(value.microsecond) / 10**6)]
    if isinstance(value, dt.timedelta):
        return [Reading("time", Decimal(str(value.total_seconds())))]
    if isinstance(value, (int, float)):
        try:
            number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        except InvalidOperation:
            return []
        if not number.is_finite():
            return []
        out = [Reading("number", number)]
        if number in (0, 1):
            out.append(Reading("bool", bool(number)))
        if 0 <= number < 1:  # a time of day saved as its fraction
            out.append(Reading("time", (number * 86400).quantize(Decimal("0.001"))))
        if 1 <= number < 2958466:  # a serial date (1900-01-01 .. 9999-12-31)
            when = _EPOCH + dt.timedelta(days=float(number))
            secs = Decimal(round((number - int(number)) * 86400, 3))
            out.append(Reading("datetime", (when.year, when.month, when.day, secs)))
            if not secs:
                out.append(Reading("date", (when.year, when.month, when.day)))
        return out
    return []


def readings(cell: Any, locales: tuple[str, ...] = LOCALES) -> list[Reading]:
    """Every value a spreadsheet program may hold for `cell`: a text read in any of `locales`, or a typed value."""
    if isinstance(cell, str):
        if not cell.strip():
            return []
        # Fullwidth digits and signs (`３．５`, typed with a Japanese IME) are read as their ASCII forms.
        narrow = unicodedata.normalize("NFKC", cell) if not cell.isascii() else cell
        return list(_text_readings(narrow, locales))
    return _value_readings(cell)


def _digits(x: Decimal, n: int, rounding: str) -> Decimal:
    if not x:
        return x
    exponent = x.adjusted() - n + 1
    return x.quantize(Decimal(1).scaleb(exponent), rounding=rounding)


def _same_number(exported: Decimal, saved: Decimal) -> bool:
    if exported == saved:
        return True
    if saved == 0 and abs(exported) < _MIN_NORMAL:
        return True  # a denormal flushed to 0
    if not exported or not saved:
        return False
    # Calc keeps 15 significant digits rounded; Excel cuts typed digits after the 15th. A saved value with
    # more digits than that was typed by a person.
    return saved in (_digits(exported, 15, "ROUND_HALF_EVEN"), _digits(exported, 15, "ROUND_HALF_UP"),
                     _digits(exported, 15, "ROUND_DOWN"))


def _shown_rounded(exported: Decimal, saved: Decimal) -> bool:
    """`saved` is `exported` rounded to `saved`'s own decimal places (a percentage format with fewer digits)."""
    exponent = saved.as_tuple().exponent
    exported_exponent = exported.as_tuple().exponent
    if not isinstance(exponent, int) or not isinstance(exported_exponent, int) or exponent <= exported_exponent:
        return False
    step = Decimal(1).scaleb(exponent)
    return saved in (exported.quantize(step, rounding="ROUND_HALF_UP"), exported.quantize(step, rounding="ROUND_HALF_EVEN"))


def _same(a: Reading, b: Reading) -> bool:
    if a.kind == "number" and b.kind == "number":
        if "percentage" in a.how and _shown_rounded(a.value, b.value):
            return True  # `0.5%` shown as `1%` (a 0% format)
        return _same_number(a.value, b.value)
    if a.kind == "date" and b.kind in ("date", "datetime"):
        ya, ma, da = a.value
        yb, mb, db = b.value[:3]
        if b.kind == "datetime" and b.value[3]:
            return False
        return (ma, da) == (mb, db) and (ya is None or yb is None or ya == yb)
    if a.kind == "datetime" and b.kind == "date":
        return _same(b, a)
    if a.kind == b.kind == "datetime":
        return a.value[:3] == b.value[:3] and abs(a.value[3] - b.value[3]) <= _SHOWN_SECONDS
    if a.kind == b.kind == "time":
        return abs(a.value - b.value) <= _SHOWN_SECONDS
    return a.kind == b.kind == "bool" and a.value == b.value


def misread(exported: str, saved: Any, locales: tuple[str, ...] = LOCALES) -> str | None:
    """How a program turned the exported text `exported` into `saved`, or None when `saved` is not a rendering
    of any value the program may have read `exported` as (in one of `locales`) — then it is an edit."""
    if not isinstance(exported, str) or saved is None or saved == "" or saved == exported:
        return None
    before = readings(exported, locales)
    if not before:
        return None
    after = readings(saved)
    for a in before:
        for b in after:
            if _same(a, b):
                return f"a spreadsheet program read {exported!r} as {_what(a)} and saved it as {_shown(saved)}"
    return None


def _what(reading: Reading) -> str:
    what = {"number": f"the number {_decimal_text(reading.value)}" if reading.kind == "number" else "",
            "date": "a date", "time": "a time", "datetime": "a date and time", "bool": "a boolean"}[reading.kind]
    return f"{what} ({reading.how})" if reading.kind == "number" and reading.how else what


def _decimal_text(value: Decimal) -> str:
    value = value.normalize()
    return f"{value:f}" if -7 <= value.adjusted() <= 20 else str(value)


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
