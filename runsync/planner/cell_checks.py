"""The planner's checks of one cell: edits that would destroy what the plan can't show (a W&B object in the
summary, a config or summary key changing shape), text typed into a column of numbers (booleans, JSON), a
read-only column edited, leading or trailing spaces, and cells a spreadsheet program changed (damage.py). Pure:
each says what to report; the planner records it."""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from runsync.fields import ConfigKey, SummaryMetric, codec, kind_of
from runsync.fields.classify import _show, config_edit_refusal, live_value, summary_edit_refusal
from runsync.model import ABSENT, RunRecord, is_wandb_object
from runsync.planner import damage
from runsync.words import counted

_COMMA_DECIMAL = re.compile(r"[+-]?(\d{1,3}(\.\d{3})+|\d+),\d+")  # 0,01 -1,5 1.234,5
_DAMAGE_SHOWN = 5  # cells named in a column's damage warning; the count covers the rest


class Finding(NamedTuple):
    """What a check found in a cell: a refusal (an error: the sheet writes nothing) or a warning."""

    refused: bool
    message: str


def edit_finding(record: RunRecord, column: str, paths: Mapping[str, tuple[str, ...]], value: Any, base: Any,
                 raw: Any, *, family: str | None, allow_text: bool, strict: bool,
                 delimiter: str | None) -> Finding | None:
    """Refuse edits that would destroy what the plan can't show; warn about likely typing slips; None: sound.

    `family`: the one family all the column's values share (codec.family_of), `raw` the cell as the sheet holds it.
    """
    kind = kind_of(column)
    if isinstance(kind, SummaryMetric) and (is_wandb_object(base) or is_wandb_object(
            live_value(record, column)) or is_wandb_object(value)):
        return Finding(True, "a W&B object (histogram, table, image, ...) in the summary is "
                             "read-only: it can't be edited in a sheet")
    if kind.has_path and value is not ABSENT:
        refusal = (config_edit_refusal(record.config, column, paths[column], value)
                   if isinstance(kind, ConfigKey)
                   else summary_edit_refusal(record.summary, column, paths[column], value))
        if refusal is not None:
            return Finding(True, refusal)
        value_type = codec.type_name(value)
        if family and family != "text" and value_type == "str" and not isinstance(base, str) \
                and not (isinstance(raw, str) and codec.quoted_text(raw) == value):  # quoted: on purpose
            if not allow_text:
                return Finding(True, text_refusal(value, family, delimiter=delimiter, strict=strict))
            return Finding(False, f"{value!r} is text in a column of {family} values: written as text (--allow-text)")
    elif column in ("name", "group", "job_type") and isinstance(value, str) and value.strip() \
            and value != value.strip():
        return Finding(False, f"{value!r} has leading or trailing spaces: written as is")
    return None


def text_refusal(value: str, family: str, *, delimiter: str | None, strict: bool) -> str:
    """Why text typed into a column of numbers (booleans, JSON) is not written, and the ways to write it."""
    quoted = json.dumps(value, ensure_ascii=False)
    if family == "number" and delimiter == ";" and (number := _comma_decimal(value)) is not None:
        # A `;` CSV was saved in a locale whose decimal separator is `,`: most likely that locale's number.
        return (f"{value!r} looks like the number {number} typed in a locale with a decimal comma (a "
                f"';'-separated CSV), in a column of number values: refused; type {number}, quote it for "
                f"text ({quoted}) or pass --allow-text")
    why = " (--strict)" if strict else ""
    return (f"{value!r} is text in a column of {family} values (a typo, or a program's number format?): "
            f"refused{why}; quote it for text ({quoted}) or pass --allow-text")


def _comma_decimal(text: str) -> str | None:
    """`text` read as a number written with a decimal comma (`1.234,5` -> "1234.5"), or None."""
    text = text.strip()
    return text.replace(".", "").replace(",", ".") if _COMMA_DECIMAL.fullmatch(text) else None


def readonly_edit(column: str, raw: Any, base: Any, *, source: str, locales: tuple[str, ...],
                  exported_as_text: bool) -> str | None:
    """The error for a read-only cell that no longer holds its exported `base` (a program's change is not an
    edit), or None."""
    if type(raw) is type(base) and raw == base:
        return None  # untouched
    value = codec.decode_cell(raw, column=column, base=base, source=source)
    if isinstance(value, codec.CellProblem):
        value = raw
    if value is None and base is ABSENT:
        return None
    if not codec.values_equal(value, base) and not mangled(base, raw, column, locales=locales,
                                                           exported_as_text=exported_as_text):
        return f"read-only column edited (was {_show(base)}, now {_show(value)})"
    return None


def mangled(base: Any, raw: Any, column: str, *, locales: tuple[str, ...], exported_as_text: bool) -> str | None:
    """What a spreadsheet program did to `base` to give `raw` (damage.mangled_by_program), or None: an edit."""
    return damage.mangled_by_program(base, raw, kind=_damage_kind(column), locales=locales,
                                     exported_as_text=exported_as_text)


def _damage_kind(column: str) -> str:
    """The column's kind as runsync.planner.damage names them."""
    name = kind_of(column).name
    return name if name in ("tags", "config", "text") else "other"


def damage_warnings(path: str, damaged: Mapping[str, list[tuple[int, str, str]]]) -> list[str]:
    """One warning per column a program changed: how many cells, and which (the first few)."""
    warnings = []
    for column, cells in damaged.items():
        shown = "; ".join(f"row {row}, run {run_id}: {why}" for row, run_id, why in cells[:_DAMAGE_SHOWN])
        more = f"; and {len(cells) - _DAMAGE_SHOWN} more" if len(cells) > _DAMAGE_SHOWN else ""
        warnings.append(
            f"{path}: column {column!r}: {counted(len(cells), 'cell')} changed by a spreadsheet program, not "
            f"by an edit: kept the W&B values, nothing written ({shown}{more})")
    return warnings
