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
import itertools
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache, lru_cache
from typing import Any

__all__ = ["Reading", "readings", "misread", "LOCALES", "locales_for_delimiter"]

# The locales whose conventions are checked: the five the tests run LibreOffice in, and others with other
# separators, orders or month names (pt-BR and es-ES: `,` decimal; de-CH: `’` grouping; ru-RU: space grouping).
LOCALES = ("en_US", "en_GB", "de_DE", "de_CH", "fr_FR", "pl_PL", "ja_JP", "pt_BR", "es_ES", "it_IT", "nl_NL",
           "ru_RU", "zh_CN", "ko_KR", "sv_SE", "tr_TR")

# Booleans as Excel and LibreOffice show them in their display languages (their TRUE()/FALSE() function names).
_BOOLEANS = {"true": True, "false": False, "wahr": True, "falsch": False, "vrai": True, "faux": False,
             "prawda": True, "fałsz": False, "verdadeiro": True, "falso": False, "vero": True, "verdadero": True,
             "waar": True, "onwaar": False, "истина": True, "ложь": False, "sant": True, "falskt": False,
             "doğru": True, "yanliş": False, "yanlış": False}
# Currency symbols a program strips when it reads an amount (each locale's own, from CLDR, and these).
_CURRENCIES = ("€", "$", "£", "¥", "￥", "₹", "₩", "₽", "R$", "zł", "CHF", "Fr.", "kr", "US$", "USD", "EUR", "JPY",
               "GBP", "PLN", "BRL", "₺", "元")
_SHOWN_SECONDS = Decimal("0.005")  # a time shown to hundredths of a second (Calc's format) is that time
_MIN_NORMAL = Decimal("2.2250738585072014e-308")  # below it a float is denormal: programs flush it to 0


@dataclass(frozen=True)
class Reading:
    """One value a program may hold for a cell: ("number", Decimal), ("date", (y|None, m, d)),
    ("time", seconds), ("datetime", (y, m, d, seconds)) or ("bool", b); `how` says how it was read."""

    kind: str
    value: Any
    how: str = ""


@dataclass(frozen=True)
class _Locale:
    name: str
    decimal: str
    groups: tuple[str, ...]
    months: dict[str, int]
    periods: dict[str, int]  # day period text (lower case) -> 0 for am, 12 for pm


@cache
def _locale(name: str) -> _Locale:
    from babel import (  # CLDR data: loaded only when a cell needs judging
        Locale,
        numbers,
    )

    loc = Locale.parse(name)
    group = numbers.get_group_symbol(name)
    groups = {group}
    if group in ("\u202f", "\u00a0", " "):  # programs write any of the three spaces for these locales
        groups |= {"\u202f", "\u00a0", " "}
    if group in ("’", "'"):
        groups |= {"’", "'"}
    months: dict[str, int] = {}
    for context in ("format", "stand-alone"):
        for width in ("abbreviated", "wide"):
            try:
                names = dict(loc.months[context][width])
            except KeyError:
                continue
            for number, text in names.items():
                months[text.lower().rstrip(".")] = number
    periods: dict[str, int] = {}
    for context in ("format", "stand-alone"):
        for width in ("abbreviated", "wide", "narrow"):
            try:
                table = dict(loc.day_periods[context][width])
            except KeyError:
                continue
            for key, add in (("am", 0), ("pm", 12)):
                if key in table:
                    periods[table[key].lower().replace(".", "")] = add
    return _Locale(name, numbers.get_decimal_symbol(name), tuple(sorted(groups)), months, periods)


def locales_for_delimiter(delimiter: str | None) -> tuple[str, ...]:
    """The locales that may have written a CSV with this delimiter: `;` is what locales with a `,` decimal
    separator save (their list separator); any other delimiter could come from any locale."""
    if delimiter == ";":
        return tuple(name for name in LOCALES if _locale(name).decimal == ",")
    return LOCALES


# --- numbers ---------------------------------------------------------------------------------------------

_SYMBOLS = "|".join(re.escape(c) for c in sorted(_CURRENCIES, key=len, reverse=True))
_LEADING_CURRENCY = re.compile(rf"(?:{_SYMBOLS})[ \u00a0\u202f]*(.*)", re.DOTALL)
_TRAILING_CURRENCY = re.compile(rf"(.*?)[ \u00a0\u202f]*(?:{_SYMBOLS})", re.DOTALL)


def _strip_currency(text: str) -> tuple[str, bool]:
    if m := _LEADING_CURRENCY.fullmatch(text) or _TRAILING_CURRENCY.fullmatch(text):
        return m.group(1), True
    return text, False


@lru_cache(maxsize=64)
def _number_pattern(decimal: str, groups: tuple[str, ...]) -> re.Pattern[str]:
    d = re.escape(decimal)
    g = "|".join(re.escape(x) for x in groups)
    plain = rf"\d+(?:{d}\d*)?(?:[eE][+-]?\d+)?|{d}\d+(?:[eE][+-]?\d+)?"
    # Calc (de-DE) takes any digits before the first separator: `1234.567` is 1234567, not only `1.234.567`.
    grouped = rf"\d+(?:(?:{g})\d{{3}})+(?:{d}\d*)?"
    return re.compile(rf"(?P<plain>{plain})|(?P<grouped>{grouped})")


def _numbers(text: str, loc: _Locale) -> list[Reading]:
    """The numbers `text` reads as in `loc` (sign, accounting parentheses, currency, %, grouping, exponent)."""
    t = text.strip()
    notes: list[str] = []
    negative = False
    if len(t) > 2 and t[0] == "(" and t[-1] == ")":
        t, negative = t[1:-1].strip(), True
        notes.append("an accounting negative")
    t, currency = _strip_currency(t)
    if currency:
        notes.append("an amount of money")
    percent = t.endswith("%")
    if percent:
        t = t[:-1].rstrip(" \u00a0\u202f")
        notes.append("a percentage")
    if t[:1] in "+-\u2212" and t[1:2] != "" and not negative:
        negative, t = t[0] != "+", t[1:]
    if not currency:
        t, currency = _strip_currency(t)  # -€3
        if currency:
            notes.append("an amount of money")
    match = _number_pattern(loc.decimal, loc.groups).fullmatch(t)
    if not match:
        return _fraction(t, negative)
    body = match.group()
    if match.group("grouped"):
        for g in loc.groups:
            body = body.replace(g, "")
        notes.append(f"{loc.groups[0]!r} as the thousands separator, as {loc.name.replace('_', '-')} does"
                     if loc.groups[0] not in ("\u202f", "\u00a0", " ") else "grouped digits")
    body = body.replace(loc.decimal, ".")
    try:
        value = Decimal(body)
    except InvalidOperation:
        return []
    if percent:
        value = value / 100
    if negative:
        value = -value
    return [Reading("number", value, ", ".join(notes))]


def _fraction(t: str, negative: bool) -> list[Reading]:
    # Excel reads `1 1/2` (a whole number, a space, a fraction) as 1.5; `1/2` alone it reads as a date.
    if m := re.fullmatch(r"(\d+) (\d+)/(\d+)", t):
        whole, num, den = (int(x) for x in m.groups())
        if den:
            value = Decimal(whole) + Decimal(num) / Decimal(den)
            return [Reading("number", -value if negative else value, "a fraction")]
    return []


# --- dates and times -------------------------------------------------------------------------------------

_DATELIKE = re.compile(r"[-/. ,年月日]|\d[^\W\d_]|[^\W\d_]\d", re.UNICODE)  # parts a date needs between them
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)
_DATE_PART = re.compile(r"\d+|[^\W\d_]+\.?", re.UNICODE)
_TIME = re.compile(r"(?P<pre>[^\W\d_]+\.?\s*)?(?P<h>\d{1,2})(?::(?P<m>\d{1,2})(?::(?P<s>\d{1,2})(?:[.,](?P<f>\d+))?)?)?"
                   r"\s*(?P<post>[^\W\d_][^\W\d_.]*\.?(?:[^\W\d_]+\.?)?)?", re.UNICODE)


def _year(text: str) -> int:
    n = int(text)
    if len(text) >= 3:
        return n
    return 2000 + n if n < 30 else 1900 + n  # both programs' two-digit-year window: 1930-2029


def _valid(y: int | None, m: int, d: int) -> bool:
    try:
        dt.date(y or 2000, m, d)  # 2000: a leap year, so a year-less 29 Feb stays possible
    except ValueError:
        return False
    return True


@lru_cache(maxsize=4096)
def _date_parts(text: str) -> tuple[str, ...] | None:
    """A date-like text's numbers and words, or None when it cannot be a date (the same in every locale)."""
    t = text.strip()
    if not t or len(t) > 40 or not re.search(r"\d", t):
        return None
    t = re.sub(r"[年月]", "-", t).replace("日", "")
    if re.search(r"[^\w\s/.,\-]", t, re.UNICODE):
        return None
    parts = _DATE_PART.findall(t)
    if "".join(parts) != re.sub(r"[\s/.,\-]", "", t) and not any(p.endswith(".") for p in parts):
        return None
    return tuple(parts) if 2 <= len(parts) <= 3 else None


def _dates(text: str, loc: _Locale) -> list[Reading]:
    """(year or None, month, day) readings of a date-like text, in every order a locale uses."""
    parts = _date_parts(text)
    if parts is None:
        return []
    kinds: list[tuple[str, int, str]] = []  # ("n", value, digits) or ("m", month, text)
    for part in parts:
        if part.isdigit():
            kinds.append(("n", int(part), part))
        elif (month := loc.months.get(part.lower().rstrip("."))) is not None:
            kinds.append(("m", month, part))
        else:
            return []
    out: set[tuple[int | None, int, int]] = set()
    names = [k for k in kinds if k[0] == "m"]
    if len(kinds) == 3 and len(names) <= 1:
        for y, m, d in itertools.permutations(kinds):
            if y[0] == "n" and d[0] == "n" and len(d[2]) <= 2 and (m[0] == "m" or (not names and len(m[2]) <= 2)):
                out.add((_year(y[2]), m[1], d[1]))
    elif len(kinds) == 2:
        first, second = kinds
        if names:
            (name,), number = names, (second if first[0] == "m" else first)
            if number[0] == "n":
                if len(number[2]) <= 2:
                    out.add((None, name[1], number[1]))  # Apr-7: 7 April of the current year
                out.add((_year(number[2]), name[1], 1))  # Sep 2023 (and Calc's Apr-7: April 2007)
        else:
            for m, d in ((first, second), (second, first)):
                if len(m[2]) <= 2 and len(d[2]) <= 2:
                    out.add((None, m[1], d[1]))
                if len(m[2]) <= 2 and len(d[2]) == 4:
                    out.add((int(d[2]), m[1], 1))  # 9/2023
    return [Reading("date", v) for v in sorted(out, key=str) if _valid(*v)]


def _times(text: str, loc: _Locale) -> list[Reading]:
    m = _TIME.fullmatch(text.strip())
    if not m:
        return []
    hours, minutes = int(m.group("h")), int(m.group("m") or 0)
    seconds = Decimal(m.group("s") or 0) + (Decimal("0." + m.group("f")) if m.group("f") else 0)
    period = (m.group("pre") or m.group("post") or "").strip().lower().replace(".", "")
    if m.group("m") is None and not period:
        return []  # a bare number is no time; `8 AM` is
    if period:
        add = loc.periods.get(period, {"am": 0, "pm": 12}.get(period))
        if add is None or not 1 <= hours <= 12:
            return []
        hours = hours % 12 + add
    if minutes > 59 or seconds >= 60:
        return []
    return [Reading("time", hours * 3600 + minutes * 60 + seconds)]


def _datetimes(text: str, loc: _Locale) -> list[Reading]:
    m = re.fullmatch(r"(.+?)[ T](\S*\d:\d\d\S*(?:\s*\S+)?)", text.strip())
    if not m:
        return []
    out = []
    for day in _dates(m.group(1), loc):
        for time in _times(m.group(2), loc):
            if day.value[0] is not None:
                out.append(Reading("datetime", (*day.value, time.value)))
    return out


# --- the readings of a cell, and the judgement -------------------------------------------------------------

@lru_cache(maxsize=65_536)  # a column's values repeat (one learning rate in a thousand runs)
def _text_readings(text: str, locales: tuple[str, ...]) -> tuple[Reading, ...]:
    if not any(ch.isdigit() for ch in text):  # every number, date and time has a digit
        b = _BOOLEANS.get(text.strip().lower())
        return () if b is None else (Reading("bool", b),)
    out: list[Reading] = []
    if (b := _BOOLEANS.get(text.strip().lower())) is not None:
        out.append(Reading("bool", b))
    seen_separators: set[tuple[str, tuple[str, ...]]] = set()
    parts = _date_parts(text) if _DATELIKE.search(text) else None
    datelike, numeric_date = parts is not None, parts is not None and all(p.isdigit() for p in parts)
    timelike = ":" in text or _LETTER.search(text) is not None  # `7:45`, or `8 AM` / `午後8時`
    for name in locales:
        loc = _locale(name)
        if (loc.decimal, loc.groups) not in seen_separators:  # locales sharing separators read numbers alike
            seen_separators.add((loc.decimal, loc.groups))
            out += _numbers(text, loc)
        if datelike and (name == locales[0] or not numeric_date):  # numbers alone read alike in every locale
            out += _dates(text, loc)
        if timelike:
            out += _times(text, loc) + _datetimes(text, loc)
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
