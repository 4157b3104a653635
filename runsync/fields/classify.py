"""One field of one run, judged: what W&B holds for a column, when two values are the same, and whether a
desired value is a change, a conflict or nothing. Pure; shared by import (plan), `runsync set` and undo."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from runsync.fields import codec, kinds
from runsync.fields.kinds import _text, kind_of
from runsync.model import ABSENT, Action, Change, RunRecord, Skip
from runsync.words import counted


def live_value(record: RunRecord, column: str, path: tuple[str, ...] = ()) -> Any:
    """The value W&B holds for one sheet column of a run (the column's kind reads it)."""
    return kind_of(column).live(record, column, path)


def live_getter(column: str, path: tuple[str, ...] = ()) -> Callable[[RunRecord], Any]:
    """`live_value` for one column, with the column's kind worked out once (the planner asks per cell)."""
    kind = kind_of(column)
    if kind is kinds.CONFIG and len(path) == 1:
        key = path[0]

        def config_leaf(record: RunRecord) -> Any:  # codec.cell_value_at for a top-level key
            config = record.config
            value = config[key] if isinstance(config, dict) and key in config else ABSENT
            return ABSENT if isinstance(value, dict) and value else value

        return config_leaf
    if kind is kinds.SUMMARY:
        keys = path or codec.summary_path(column)
        if len(keys) == 1:
            name = keys[0]
            return lambda record: record.summary.get(name, ABSENT)
        return lambda record: codec.get_path(record.summary, keys)
    if kind is kinds.TEXT or kind is kinds.NAME:
        return lambda record: _text(getattr(record, column))
    return lambda record: kind.live(record, column, path)


def same(field: str, a: Any, b: Any) -> bool:
    """Whether two values of a field mean the same (tags: as a set; numbers: as numbers)."""
    return kind_of(field).same(a, b)


def classify(run_id: str, record: RunRecord, column: str, path: tuple[str, ...], base: Any, desired: Any,
             force: bool = False, changed: bool | None = None) -> Change | None:
    """One field of one run given base and desired values: UPDATE, CONFLICT, INFO or None. Pure.

    UPDATE: desired differs from base and W&B still holds base (or `force`); CONFLICT: W&B moved to
    something else too; INFO: only W&B moved; None: nothing to do (W&B already holds the desired value).
    Tags merge as sets (`merge_tags`), so they are never a conflict.
    """
    live = live_value(record, column, path)
    if changed is None:
        changed = not same(column, desired, base)
    merged = changed and kind_of(column) is kinds.TAGS and not same(column, live, base) and ABSENT not in (base, desired, live)
    if merged:
        desired = merge_tags(base, desired, live)
    change = lambda action: Change(run_id, record.name, column, base, desired, live, action, path)  # noqa: E731
    if not changed:
        return None if same(column, live, base) else change(Action.INFO)
    if same(column, live, desired):
        return None  # W&B already holds it (e.g. a re-run after an import)
    if merged or same(column, live, base) or force:
        return change(Action.UPDATE)
    return change(Action.CONFLICT)


def merge_tags(base: Any, sheet: Any, live: Any) -> tuple[str, ...]:
    """The sheet's tag edits applied to W&B's tags now, as sets (a per-key merge, as Dolt merges rows).

    A tag someone added or removed in W&B since the base stays so. Two sides can't clash over one tag: it is
    either in the base (so either side can only remove it) or not (so either can only add it).
    """
    before, now = set(base), set(sheet)
    removed = before - now
    merged = [t for t in dict.fromkeys(live) if t not in removed]
    return (*merged, *(t for t in dict.fromkeys(sheet) if t not in before and t not in merged))


def config_edit_refusal(config: dict[str, Any], column: str, path: tuple[str, ...], value: Any) -> str | None:
    """Why writing `value` at `path` would destroy what a plan can't show (a scalar above, keys below), or None."""
    if value is ABSENT:
        return None
    blocked = codec.blocking_ancestor(config, path)
    if blocked is not None:
        above, held = blocked
        return (f"{codec.config_column(above)} is {_show(held)} in W&B, not a dict: setting {column} would "
                f"replace it; edit {codec.config_column(above)} instead")
    held = codec.get_path(config, path)
    if isinstance(held, dict) and held:
        return (f"{column} holds keys of its own in W&B "
                f"({', '.join(codec.config_column(path + (k,)) for k in list(held)[:3])}): "
                "a value here would replace them all; edit those columns instead")
    return None


def summary_edit_refusal(summary: dict[str, Any], column: str, path: tuple[str, ...], value: Any) -> str | None:
    """Why writing `value` at a nested summary `path` would destroy a metric above it (a scalar), or None."""
    blocked = codec.blocking_ancestor(summary, path) if value is not ABSENT else None
    if blocked is None:
        return None
    above, held = blocked
    name = kinds.summary_name(above)
    return f"{name} is {_show(held)} in W&B, not a dict: setting {column} would replace it; edit {name} instead"


def leave_out_running(changes: list[Change] | tuple[Change, ...], conflicts: list[Change] | tuple[Change, ...],
                      live: Mapping[str, RunRecord], include_running: bool
                      ) -> tuple[tuple[Change, ...], tuple[Change, ...], tuple[Skip, ...], str | None]:
    """Runs still running are skipped: their process re-sends its config and may undo the edit.

    Returns (changes, conflicts, skipped, warning); with `include_running` nothing is skipped, and the
    warning says so.
    """
    running = {c.run_id for c in [*changes, *conflicts] if _is_running(live.get(c.run_id))}
    if not running:
        return tuple(changes), tuple(conflicts), (), None
    if include_running:
        return tuple(changes), tuple(conflicts), (), (
            f"{counted(len(running), 'run')} {'is' if len(running) == 1 else 'are'} still running ({', '.join(sorted(running)[:5])}): "
            "written anyway (--include-running); the live process may overwrite the edit")
    skipped = tuple(Skip(rid, live[rid].name, RUNNING) for rid in dict.fromkeys(
        c.run_id for c in [*changes, *conflicts] if c.run_id in running))
    return (tuple(c for c in changes if c.run_id not in running),
            tuple(c for c in conflicts if c.run_id not in running), skipped, None)


RUNNING = "running"


def _is_running(record: RunRecord | None) -> bool:
    return record is not None and record.state == RUNNING


def _show(value: Any) -> str:
    return "(empty)" if value is ABSENT or value is None else repr(value)
