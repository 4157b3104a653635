"""The numbers a text reads as in a locale: sign, accounting parentheses, currency, %, grouping, fractions."""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from runsync.planner.locales import CURRENCIES, LocaleData
from runsync.planner.reading import Reading

_SYMBOLS = "|".join(re.escape(c) for c in sorted(CURRENCIES, key=len, reverse=True))
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


def read_numbers(text: str, loc: LocaleData) -> list[Reading]:
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
