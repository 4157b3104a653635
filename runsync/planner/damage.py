"""Notice what a spreadsheet program did to a value, so the planner warns instead of writing it. Pure.

Excel, LibreOffice and Google Sheets turn text into numbers and dates, round to 15 digits, save the shown
text instead of the value, cut cells at 32,767 characters and, saving in a legacy encoding (cp932, Latin-1),
put `?` for what the encoding can't hold. runsync can't undo that; `mangled_by_program` recognises the
result (the cell no longer decodes to the exported value, but such a conversion would have produced it)
and says what happened, so the planner keeps W&B's value and names the cell.
"""
from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Sequence
from typing import Any

from runsync.fields.codec import (
    CellProblem,
    decode_cell,
    format_tags,
    parse_tags,
    to_csv_cell,
    to_json_text,
    type_name,
    values_equal,
)
from runsync.fields.scalars import FLOAT_RE as _FLOAT_RE
from runsync.fields.scalars import INT_RE as _INT_RE
from runsync.fields.scalars import MAX_EXACT_INT
from runsync.fields.scalars import as_text as _as_text
from runsync.fields.scalars import number_text as _number_text
from runsync.fields.scalars import parse_bool as _parse_bool
from runsync.fields.scalars import parse_json as _parse_json
from runsync.model import ABSENT
from runsync.planner import conversions

__all__ = ["mangled_by_program", "lost_characters"]

EXCEL_CELL_LIMIT = 32_767  # UTF-16 units

_THOUSANDS_RE = re.compile(r"[+-]?\d{1,3}(,\d{3})+(\.\d+)?")
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%d-%b-%Y", "%d-%b-%y", "%b %d, %Y", "%d %b %Y")
_DMY_RE = re.compile(r"(\d{1,2})[/.-](\d{1,2})(?:[/.-](\d{2}|\d{4}))?")
_EXCEL_EPOCH = dt.date(1899, 12, 30)


def _number_of(raw: Any) -> tuple[int | float, str] | None:
    """A number a program may have made, with the text it was shown as (separators, % and all)."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, (int, float)):
        return raw, _number_text(raw)
    if not isinstance(raw, str):
        return None
    text = raw.strip()
    body = text[:-1] if text.endswith("%") else text
    clean = body.replace(",", "") if _THOUSANDS_RE.fullmatch(body) else body
    if not _FLOAT_RE.fullmatch(clean):
        return None
    value = int(clean) if _INT_RE.fullmatch(clean) else float(clean)
    return (value / 100 if text.endswith("%") else value), text


def _sig_digits(text: str) -> int:
    mantissa = re.split(r"[eE]", text)[0]
    digits = re.sub(r"\D", "", mantissa).lstrip("0")
    return len(digits) if "." in mantissa else len(digits.rstrip("0")) or 1


def _dates_of(raw: Any) -> set[tuple[int | None, int, int]]:
    """(year or None, month, day) readings of a date-looking cell; both orders for ambiguous d/m."""
    if isinstance(raw, (dt.date, dt.datetime)):
        return {(raw.year, raw.month, raw.day)}
    if not isinstance(raw, str):
        return set()
    text = raw.strip().split("T")[0].split(" ")[0] if re.match(r"\d{4}-", raw.strip()) else raw.strip()
    out: set[tuple[int | None, int, int]] = set()
    for fmt in _DATE_FORMATS:
        try:
            d = dt.datetime.strptime(text, fmt)
        except ValueError:
            continue
        out.add((d.year, d.month, d.day))
    if m := _DMY_RE.fullmatch(text):
        a, b, y = int(m.group(1)), int(m.group(2)), m.group(3)
        year = None if y is None else (int(y) + 2000 if len(y) == 2 else int(y))
        for month, day in ((a, b), (b, a)):
            if 1 <= month <= 12 and 1 <= day <= 31:
                out.add((year, month, day))
    return out


def _same_15_digits(exact: int | float, rounded: int | float) -> bool:
    """Rounded (Calc) or truncated (Excel) to 15 significant digits."""
    if isinstance(rounded, float):
        return f"{float(exact):.15g}" == f"{rounded:.15g}"
    a, b = str(abs(int(exact))), str(abs(int(rounded)))
    return (len(a) == len(b) > 15 and b[15:].strip("0") == "" and (exact < 0) == (rounded < 0)
            and (a[:15] == b[:15] or f"{float(exact):.15g}" == f"{float(rounded):.15g}"))


def _same_date(a: set, b: set) -> bool:
    return any((x[0] is None or y[0] is None or x[0] == y[0]) and x[1:] == y[1:] for x in a for y in b)


def mangled_by_program(base: Any, raw: Any, kind: str | None = None,
                       locales: tuple[str, ...] = conversions.LOCALES, exported_as_text: bool = True) -> str | None:
    """Describe how a spreadsheet program changed `base` into `raw`, or None if it looks like an edit.

    `kind` is the column's kind ("tags", "config", "text", ...): it, not the value's shape, says what the
    cell holds (a config list of strings is JSON text, not tags). `locales`: those that may have opened the
    file (a `;` CSV was written by one with a `,` decimal separator); `exported_as_text`: numbers and booleans
    went out as text (a CSV export), so a program opening the file read them again.
    """
    if kind is None and isinstance(base, (list, tuple)) and all(isinstance(t, str) for t in base):
        kind = "tags"  # callers that predate `kind` pass tags this way
    if kind == "tags":
        return _mangled_tags(tuple(base or ()), raw) if raw not in (None, "") else None
    decoded = decode_cell(raw, column="", base=base)
    if not isinstance(decoded, CellProblem) and type_name(decoded) == type_name(base) \
            and values_equal(decoded, base):
        return None
    if raw is None or raw == "" or base is None or base is ABSENT:
        return None
    why = _known_damage(base, raw)
    if why is None and (isinstance(base, str) or (exported_as_text and isinstance(base, (int, float)))):
        why = conversions.misread(base if isinstance(base, str) else to_csv_cell(base), raw, locales)
    return why


def _known_damage(base: Any, raw: Any) -> str | None:
    """The damage the known patterns name (a changed, non-empty cell over a base that is not tags)."""
    shown = _as_text(raw)
    if isinstance(base, (list, tuple, dict)) and isinstance(raw, str) and (why := lost_characters(to_json_text(base), raw)):
        return why
    if isinstance(base, str):
        return _mangled_text(base, raw, shown)
    if isinstance(base, int) and not isinstance(base, bool):
        num = _number_of(raw)
        if num and abs(base) > MAX_EXACT_INT and _same_15_digits(base, num[0]):
            return f"big integer rounded to 15 digits: {base} became {shown}"
        if num and "," in num[1] and num[0] == base:
            return f"number saved with thousands separators: {base} became {shown!r}"
        return None
    if isinstance(base, float) and math.isfinite(base):
        return _mangled_float(base, raw, shown)
    if isinstance(base, (list, dict)) and isinstance(raw, str) and re.search("[\u201c\u201d]", raw):
        try:
            if values_equal(_parse_json(re.sub("[\u201c\u201d]", '"', raw)), base):
                return "quotes turned into typographic quotes (“ ”): JSON no longer valid"
        except ValueError:
            pass
    return None


def _mangled_text(base: str, raw: Any, shown: str) -> str | None:
    if isinstance(raw, str) and (why := lost_characters(base, raw)):
        return why
    if base.startswith("=") and not isinstance(raw, str):
        return f"formula text was evaluated: {base!r} became {shown}"
    if base.strip().lower() in ("true", "false"):
        if _parse_bool(raw) is not None and str(_parse_bool(raw)).lower() == base.strip().lower():
            return f"text {base!r} turned into a boolean ({shown})"
        return None
    base_dates = _dates_of(base)
    if base_dates and _dates_of(raw) and _same_date(base_dates, _dates_of(raw)):
        return f"text turned into a date: {base!r} became {shown!r}"
    if base_dates and isinstance(raw, (int, float)) and not isinstance(raw, bool) and 1 <= raw < 100000:
        d = _EXCEL_EPOCH + dt.timedelta(days=int(raw))
        if _same_date(base_dates, {(d.year, d.month, d.day)}):
            return f"text turned into a date (saved as the day number {shown}): {base!r}"
    base_num = _number_of(base)
    num = _number_of(raw)
    if base_num is None or num is None:
        return None
    if re.fullmatch(r"[+-]?0\d+(\.\d*)?", base.strip()) and base_num[0] == num[0]:
        return f"leading zeros lost: {base!r} became {shown}"
    if re.fullmatch(r"[+-]?\d{16,}", base.strip()) and _same_15_digits(int(base), num[0]):
        return f"long number text rounded to 15 digits: {base!r} became {shown}"
    if values_equal(base_num[0], num[0]):
        return f"text that looks like a number was turned into a number: {base!r} became {shown}"
    return None


def _truncated_15(x: float) -> float:
    """`x` cut (not rounded) to 15 significant digits, as Excel keeps typed digits."""
    digits, exponent = f"{x:.16e}".split("e")
    return float(digits[: 16 + (digits[0] == "-")] + "e" + exponent)


def _mangled_float(base: float, raw: Any, shown: str) -> str | None:
    num = _number_of(raw)
    if num is None:
        return None
    value, text = num
    if value != base and value in (float(f"{base:.15g}"), _truncated_15(base)):
        return f"number rounded to 15 significant digits by a program: {base!r} became {text}"
    if ("," in text or text.endswith("%")) and values_equal(value, base):
        return f"shown value saved instead of the value: {base!r} became {text!r}"
    # "Save as shown" rounds to the displayed digits; demand several digits dropped so that a
    # deliberate short edit (0.15 -> 0.1) is not mistaken for it.
    sig = _sig_digits(text.rstrip("%").replace(",", ""))
    if sig >= 2 and _sig_digits(repr(base)) >= sig + 2 and float(f"{base:.{sig}g}") == value:
        return f"number rounded to the shown digits: {base!r} became {text!r}"
    return None


# --- characters lost to a legacy encoding, and cells cut at Excel's limit -----------------------------

# What LibreOffice (and Windows) write in cp932 for characters whose Japanese look-alike cp932 has: the
# classic JIS-vs-Unicode mapping differences. Anything else the encoding lacks becomes `?`.
_LOOKALIKES = {"\u301c": "\uff5e", "\u2212": "\uff0d", "\u2016": "\u2225", "\u2014": "\u2015",
               "\u00a2": "\uffe0", "\u00a3": "\uffe1", "\u00ac": "\uffe2"}


def _legacy_pattern(text: str) -> re.Pattern[str]:
    """`text` as a legacy-encoding save could have left it: any non-ASCII char may be `?` or a look-alike."""
    parts = []
    for ch in text:
        if ord(ch) < 128:
            parts.append(re.escape(ch))
        else:
            options = [re.escape(ch), r"\?\??"] + ([re.escape(_LOOKALIKES[ch])] if ch in _LOOKALIKES else [])
            parts.append("(?:" + "|".join(options) + ")")
    return re.compile("".join(parts), re.DOTALL)


def lost_characters(base: str, raw: str) -> str | None:
    """Describe how `base` lost characters on its way to `raw` (encoding, 32,767 cut), or None."""
    if raw == base:
        return None
    # Cut at the limit in UTF-16 units; one short when the cut would split an emoji.
    if len(raw) * 2 >= EXCEL_CELL_LIMIT - 1 and base.startswith(raw) \
            and len(raw.encode("utf-16-le")) // 2 in (EXCEL_CELL_LIMIT - 1, EXCEL_CELL_LIMIT):
        return (f"text cut at the spreadsheet's {EXCEL_CELL_LIMIT:,}-character cell limit "
                f"({len(base):,} characters as exported)")
    if base.isascii():
        return None
    if _legacy_pattern(base).fullmatch(raw):
        return (f"characters the file's encoding can't hold were replaced: {_short(base)} became {_short(raw)} "
                "(save the CSV as UTF-8)")
    # Edited *and* saved in a legacy encoding: the characters are gone, `?` appeared. Not provable, but a
    # person rarely swaps an emoji for `?`, and writing the `?` would destroy the value in W&B.
    gone = {ch for ch in base if not ch.isascii() and ch not in raw}
    if gone and raw.count("?") > base.count("?"):
        return (f"{_short(raw)} has '?' where the export has characters the file's encoding can't hold "
                f"({_short(base)}): save the CSV as UTF-8 and import again")
    return None


def _mangled_tags(base: Sequence[str], raw: Any) -> str | None:
    if len(base) == 1 and (not isinstance(raw, str) or "," not in raw):
        # A lone tag is the whole cell, so a program reads `007` or `50%` in it as a number, like any text.
        if why := (_mangled_text(base[0], raw, _as_text(raw)) or conversions.misread(base[0], raw)):
            return f"tags: {why}"
    if not isinstance(raw, str):
        return None
    tags = parse_tags(raw)
    if isinstance(tags, CellProblem) or len(tags) != len(base):
        return None
    if any(lost_characters(b, t) for b, t in zip(base, tags, strict=True)):
        return (f"characters the file's encoding can't hold were replaced in tags: {_short(format_tags(base))} "
                f"became {_short(raw)} (save the CSV as UTF-8)")
    return None


def _short(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit - 3] + "...")
