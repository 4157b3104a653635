"""The by-field roll-up a text plan opens with: per field, how many runs change and to what."""
from __future__ import annotations

import json
from collections import Counter
from typing import Any

from runsync.fields import kind_of
from runsync.fields.codec import format_tags
from runsync.model import ABSENT, Change, Plan
from runsync.sheets.meta import encode_value
from runsync.words import counted

SHOWN_VALUES = 3  # new values named per field; the rest are counted
SHOWN_TAGS = 6


def _identity(value: Any) -> str:
    """A key telling values apart as W&B would (1, 1.0 and true differ; lists are not hashable)."""
    if value is ABSENT:
        return "\0absent"
    return json.dumps(encode_value(value), sort_keys=True, ensure_ascii=False)


def rollup_lines(plan: Plan, show: Any) -> list[str]:
    """One line per changed field, in order of first appearance; empty for a plan of fewer than two runs
    (its per-run detail says the same). `show` renders one value as the plan does."""
    if len(plan.run_ids) < 2:
        return []
    by_field: dict[str, list[Change]] = {}
    for change in plan.changes:
        by_field.setdefault(change.field, []).append(change)
    return [f"{field}: {_tags_line(items) if field == 'tags' else _values_line(items, show, field)}"
            for field, items in by_field.items()]


def _values_line(items: list[Change], show: Any, field: str = "") -> str:
    removal = kind_of(field).removal
    old_show = show
    if removal:  # an emptied MLflow tag: deleted, and the plan says so
        def show(value: Any) -> str:
            return f"({removal})" if value is ABSENT else str(old_show(value))

    olds = {_identity(c.live): c.live for c in items}
    old = show(next(iter(olds.values()))) if len(olds) == 1 else f"{len(olds):,} distinct values"
    news: Counter[str] = Counter()
    first: dict[str, Any] = {}
    for c in items:
        key = _identity(c.sheet)
        news[key] += 1
        first.setdefault(key, c.sheet)
    ranked = sorted(news, key=lambda k: -news[k])  # stable: ties keep the order of first appearance
    if len(ranked) <= SHOWN_VALUES:
        named = ranked
    else:
        named = [k for k in ranked[:SHOWN_VALUES] if news[k] > 1]
    parts = [f"{show(first[k])} in {counted(news[k], 'run')}" for k in named]
    rest = ranked[len(named):]
    if rest:
        runs = sum(news[k] for k in rest)
        parts.append(f"{len(rest):,} {'other ' if named else 'distinct '}value{'' if len(rest) == 1 else 's'} "
                     f"in {counted(runs, 'run')}")
    return f"{old} → {', '.join(parts)}"


def _tags_line(items: list[Change]) -> str:
    added: Counter[str] = Counter()
    removed: Counter[str] = Counter()
    reordered = 0
    for c in items:
        live, sheet = tuple(c.live or ()), tuple(c.sheet or ())
        plus, minus = [t for t in sheet if t not in live], [t for t in live if t not in sheet]
        added.update(dict.fromkeys(plus, 1))
        removed.update(dict.fromkeys(minus, 1))
        reordered += not plus and not minus
    ranked = sorted([("+", t, n) for t, n in added.items()] + [("-", t, n) for t, n in removed.items()],
                    key=lambda item: -item[2])
    parts = [f"{sign}{format_tags([tag])} in {counted(n, 'run')}" for sign, tag, n in ranked[:SHOWN_TAGS]]
    if len(ranked) > SHOWN_TAGS:
        parts.append(f"{counted(len(ranked) - SHOWN_TAGS, 'other tag')} added or removed")
    if reordered:
        parts.append(f"reordered in {counted(reordered, 'run')}")
    return ", ".join(parts)
