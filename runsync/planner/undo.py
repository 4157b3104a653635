"""Undo an import from its journal: a plan whose base is what was written and whose target is what was there."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from runsync.backend import capabilities
from runsync.fields import kind_of
from runsync.fields.classify import live_value, same
from runsync.journal.events import JournalContents, read_journal
from runsync.journal.history import Import
from runsync.model import ABSENT, Action, Change, Plan, RunRecord
from runsync.words import counted


def plan_undo(journal_path: str, live: dict[str, RunRecord], *, force: bool = False,
              contents: JournalContents | None = None,
              later: Mapping[tuple[str, str], Sequence[tuple[Import, Any]]] | None = None) -> Plan:
    """Restore every journaled field whose W&B value is still what the import wrote.

    `later`: (run, field) -> what imports after this one wrote there (history.later_writes), oldest first;
    a conflict whose W&B value one of them wrote names it.
    """
    contents = contents if contents is not None else read_journal(journal_path)
    changes: list[Change] = []
    conflicts: list[Change] = []
    warnings: list[str] = []
    if contents.torn_lines:
        warnings.append(f"{journal_path}: {contents.torn_lines} torn line(s) skipped (an interrupted write)")
    for history in contents.fields:
        record = live.get(history.run_id)
        if record is None:
            warnings.append(f"run {history.run_id} no longer exists in {capabilities(contents.project).tracker}: "
                            "nothing to undo")
            continue
        now = live_value(record, history.field, history.path)
        target = history.before
        kind = kind_of(history.field)
        if target is ABSENT and kind.write_once:
            warnings.append(f"run {history.run_id}: {history.field} did not exist before and the tracker cannot "
                            "delete it (write-once): left as it is")
            continue
        if target is ABSENT and not kind.undo_removes:  # an MLflow tag added is deleted again
            # W&B cannot delete a config key (the server deep-merges config, wandb/wandb#11055).
            warnings.append(f"run {history.run_id}: {history.field} did not exist before; undo sets it to null")
            target = None
        if same(history.field, now, target):
            continue  # already as before (undone, or the write never reached W&B)
        change = Change(history.run_id, record.name, history.field, history.after, target, now,
                        Action.UPDATE, history.path)
        if same(history.field, now, history.after) or force:
            changes.append(change)
        else:
            since = (later or {}).get((history.run_id, history.field), ())
            conflicts.append(Change(change.run_id, change.run_name, change.field, change.base, change.sheet,
                                    change.live, Action.CONFLICT, change.path, _written_since(history.field, now, since)))
    running = sorted({c.run_id for c in changes if live[c.run_id].state == "running"})
    if running:
        warnings.append(f"{counted(len(running), 'run')} {'is' if len(running) == 1 else 'are'} running now ({', '.join(running[:5])}): undone anyway (undo puts "
                        "back what runsync wrote); their live process may overwrite it again")
    # Undo takes back runsync's own writes, so it writes running runs too (unlike an import).
    return Plan(contents.project or "", journal_path, tuple(changes), tuple(conflicts), (), (), tuple(warnings),
                include_running=True, undo=True)


def _written_since(field: str, now: Any, writes: Sequence[tuple[Import, Any]]) -> str | None:
    """Why W&B holds `now`, when a later import wrote it: naming it says which undo to run first."""
    for imported, value in reversed(writes):
        if same(field, now, value):
            return f"changed since by {imported.describe()}: undo that one first"
    return None
