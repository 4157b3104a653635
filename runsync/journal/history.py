"""What the imports of one export wrote, read from their journals: the base a sheet of that export moves to,
and, per field, the values each import wrote over (so a sheet still holding one is known to predate it).

An export is known by its identity, project + exported_at, which every journal's begin line records. Its
journals are looked up in the sheet's own `SHEET.runsync-journals/` and in every `*.runsync-journals/`
folder beside the sheet: copies of one export kept in one folder (saved over each other, or side by side
under other names), or a copy carried elsewhere with the journals, see each other's imports. No W&B request:
the live runs are given.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from runsync.errors import JournalError
from runsync.fields.classify import live_value, same
from runsync.journal.events import (
    JOURNAL_DIR_SUFFIX,
    decode_value,
    first_begin,
    journal_dir,
    read_events,
    read_journal,
)
from runsync.model import ABSENT, Action, Change, RunRecord


@dataclass(frozen=True)
class Import:
    """One import (or undo) that wrote to runs: its journal and when it began."""

    journal: str
    at: str  # the begin line's time, ISO 8601 UTC
    undo: bool = False

    def describe(self) -> str:
        return f"the {'undo' if self.undo else 'import'} of {when_text(self.at)} (journal {self.journal})"


@dataclass(frozen=True)
class Replaced:
    """A value one field held for an export (as exported, or as an import wrote it) and the import that wrote over it."""

    value: Any
    by: Import


@dataclass
class ExportHistory:
    """What the imports of one export wrote, oldest first."""

    # run id -> {column: the value the last import wrote}: the base moves to it
    moved: dict[str, dict[str, Any]] = field(default_factory=dict)
    # run id -> {column: every value written over, with the import that did it, oldest first}
    replaced: dict[str, dict[str, list[Replaced]]] = field(default_factory=dict)

    def predates(self, run_id: str, column: str, holds: Callable[[Any], bool]) -> Import | None:
        """The import that wrote over the last value `holds` accepts, or None: the sheet predates that import.

        An undo is not named: a sheet still holding what an undo took back says that edit again (README).
        """
        for replaced in reversed(self.replaced.get(run_id, {}).get(column, ())):
            if holds(replaced.value):
                return None if replaced.by.undo else replaced.by
        return None


def stale_conflict(history: ExportHistory, record: RunRecord, column: str, path: tuple[str, ...], base: Any,
                   value: Any) -> Change | None:
    """A conflict when the sheet's `value` is one an import of this export wrote over; else None. Per tag for tags.

    The base is the last import's value, so writing the sheet's would revert that import (a colleague's,
    from another copy) as if it were an edit. --force does not override it (`overridable=False`).
    """
    if value is ABSENT or base is ABSENT:
        return None
    run_id, live = record.id, live_value(record, column, path)
    if column != "tags":
        if same(column, live, value):
            return None  # W&B holds the sheet's value already: nothing would be written
        by = history.predates(run_id, column, lambda old: same(column, value, old))
        if by is None:
            return None
        reason = f"the sheet predates {by.describe()}: it still holds the value from before that import"
    else:
        stale: dict[str, list[str]] = {}  # the import's description -> what the sheet still says of its tags
        for tag in sorted(set(value) ^ set(base or ())):
            has = tag in value
            if (tag in live) == has:
                continue  # W&B agrees with the sheet about this tag
            def holds(old: Any, t: str = tag, h: bool = has) -> bool:
                return (t in (old or ())) == h

            by = history.predates(run_id, column, holds)
            if by is not None:
                stale.setdefault(by.describe(), []).append(
                    f"still has tag {tag!r}, which that import removed" if has
                    else f"lacks tag {tag!r}, which that import added")
        if not stale:
            return None
        reason = "; ".join(f"the sheet predates {by}: it {', '.join(what)}" for by, what in stale.items())
    return Change(run_id, record.name, column, base, value, live, Action.CONFLICT, path, reason, overridable=False)


def when_text(at: str) -> str:
    """An ISO time as a conflict names it: `2025-01-02 03:04:05 UTC`."""
    return f"{_when(at).astimezone(timezone.utc):%Y-%m-%d %H:%M:%S} UTC"


def export_history(sheet: str, project: str, exported_at: str, base: Mapping[str, Mapping[str, Any]],
                   live: Mapping[str, RunRecord], folder: Path | None = None) -> ExportHistory:
    """The writes of every import (and undo) of this export, oldest first, that count for its base.

    Each field a journal records as written and confirmed (`done`) counts; a field written without `done`
    (the import was killed or failed mid-request) only when W&B holds that value now. `base`: the export's
    values, the first of each field's history. `folder`: the journals' folder when it is not beside the
    sheet (a DataFrame's, in runsync's state folder).
    """
    history = ExportHistory()
    for imported, run_id, column, after in _writes(sheet, project, exported_at, live, folder):
        values = history.moved.setdefault(run_id, {})
        before = values[column] if column in values else base.get(run_id, {}).get(column, ABSENT)
        history.replaced.setdefault(run_id, {}).setdefault(column, []).append(
            Replaced(tuple(before) if column == "tags" and isinstance(before, list) else before, imported))
        values[column] = None if after is ABSENT else after
    return history


def _journal_files(own: Path) -> Iterator[Path]:
    """The journals in folder `own` first, then in every other `*.runsync-journals/` folder beside it."""
    folders = [own] + sorted(p for p in own.parent.glob("*" + JOURNAL_DIR_SUFFIX) if p != own)
    for folder in folders:
        if folder.is_dir():
            yield from sorted(folder.glob("*.jsonl"))


def _writes(sheet: str, project: str, exported_at: str, live: Mapping[str, RunRecord],
            folder: Path | None = None) -> Iterator[tuple[Import, str, str, Any]]:
    """(import, run, column, value written) for each write that counts, in the order of the imports."""
    segments: list[tuple[datetime, str, int, Import, list[dict[str, Any]]]] = []
    for path in _journal_files(folder or journal_dir(sheet)):
        first = first_begin(path)
        if first.get("project") != project or first.get("exported_at") != exported_at:
            continue  # another export's (or not a journal): nothing of ours
        try:
            events, _ = read_events(path)
        except (JournalError, OSError):
            continue
        current: list[dict[str, Any]] | None = None
        for event in events:
            if event["op"] == "begin":
                ours = event.get("project") == project and event.get("exported_at") == exported_at
                current = [] if ours else None
                if current is not None:
                    at = str(event.get("at") or "")
                    segments.append((_when(at), path.name, len(segments),
                                     Import(str(path), at, undo=bool(event.get("undo_of"))), current))
            elif current is not None and event["op"] in ("write", "done", "verify"):
                current.append(event)
    for *_, imported, events in sorted(segments, key=lambda s: s[:3]):
        for run_id, column, after in _counted(events, live):
            yield imported, run_id, column, after


def _counted(events: list[dict[str, Any]], live: Mapping[str, RunRecord]) -> Iterator[tuple[str, str, Any]]:
    """(run, column, value) of one import's writes that W&B took: confirmed, or held when read back or now."""
    writes: list[tuple[dict[str, Any], list[bool]]] = []
    latest: dict[str, list[bool]] = {}
    checked: dict[tuple[Any, Any], bool] = {}  # (run, column) -> held when read back (a `verify` line)
    for event in events:
        run_id: str = event.get("run") or ""
        if event["op"] == "write":
            flag = [False]
            writes.append((event, flag))
            latest[run_id] = flag
        elif event["op"] == "verify":
            # `held` matters where no `done` line says so: a write whose answer was lost.
            for column in () if event.get("confirmed", True) else event.get("held") or ():
                checked[(run_id, column)] = True
            for item in event.get("did_not_stick") or ():
                if isinstance(item, dict):
                    checked[(run_id, item.get("field"))] = False
        elif run_id in latest:
            latest[run_id][0] = True
    for event, (done,) in writes:
        record = live.get(event.get("run") or "")
        for item in event.get("fields") or ():
            try:
                column, after = item["field"], decode_value(item["after"])
            except (KeyError, TypeError):
                continue
            # Read back as not held (reverted by a live process, say): the sheet's edit is still to make.
            if not checked.get((event.get("run"), column), done):
                if record is None:
                    continue
                try:
                    now = live_value(record, column, tuple(item.get("path") or ()))
                except KeyError:
                    continue
                if not same(column, now, after):
                    continue  # maybe never reached W&B: keep the base it had
            yield event["run"], column, after


def later_writes(journal: str | os.PathLike[str], project: str,
                 began: str | None) -> dict[tuple[str, str], list[tuple[Import, Any]]]:
    """(run, field) -> what imports begun after `began` wrote to it, oldest first: from the journals in
    `journal`'s folder and the `*.runsync-journals/` folders beside it (for an undo to name the import
    that changed a field since)."""
    own = Path(journal)
    since = _when(began or "")
    found: list[tuple[datetime, str, Import, Any]] = []
    for path in _journal_files(own.parent):
        first = first_begin(path)
        at = str(first.get("at") or "")
        if path.resolve() == own.resolve() or first.get("project") != project or _when(at) <= since:
            continue
        try:
            contents = read_journal(path)
        except (JournalError, OSError):
            continue
        imported = Import(str(path), at, undo=bool(first.get("undo_of")))
        found.extend((_when(at), path.name, imported, h) for h in contents.fields)
    out: dict[tuple[str, str], list[tuple[Import, Any]]] = {}
    for _, _, imported, h in sorted(found, key=lambda f: f[:2]):
        out.setdefault((h.run_id, h.field), []).append((imported, h.after))
    return out


def _when(at: Any) -> datetime:
    try:
        when = datetime.fromisoformat(str(at))
    except ValueError:
        return datetime.min.replace(tzinfo=timezone.utc)
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)
