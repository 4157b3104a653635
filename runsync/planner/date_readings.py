"""The dates, times and date-times a text reads as in a locale (its month names, day periods and orders)."""
from __future__ import annotations

import datetime as dt
import itertools
import re
from decimal import Decimal
from functools import lru_cache

from runsync.planner.locales import LocaleData
from runsync.planner.reading import Reading

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
def date_parts(text: str) -> tuple[str, ...] | None:
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


def read_dates(text: str, loc: LocaleData) -> list[Reading]:
    """(year or None, month, day) readings of a date-like text, in every order a locale uses."""
    parts = date_parts(text)
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


def read_times(text: str, loc: LocaleData) -> list[Reading]:
    """The time of day (in seconds) a text reads as in `loc`: `7:45`, `8 AM`, `午後8時`."""
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


def read_datetimes(text: str, loc: LocaleData) -> list[Reading]:
    """The (y, m, d, seconds) a text of a date, then a time, reads as in `loc`."""
    m = re.fullmatch(r"(.+?)[ T](\S*\d:\d\d\S*(?:\s*\S+)?)", text.strip())
    if not m:
        return []
    out = []
    for day in read_dates(m.group(1), loc):
        for time in read_times(m.group(2), loc):
            if day.value[0] is not None:
                out.append(Reading("datetime", (*day.value, time.value)))
    return out
