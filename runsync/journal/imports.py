"""The imports of one sheet, read from its journals folder: what `runsync undo SHEET` lists (newest first), and
the interrupted import that a re-run of it continues.

Which import a re-run continues (docs/plans-and-undo.md: "One import, however ..."): the newest import journal in
the sheet's own `SHEET.runsync-journals/` folder whose begin line names this sheet, project and export, when that
import did not finish (no `end` line after its last `begin`, or one counting failed runs or fields that did not
stick), was not undone (no `JOURNAL.undo.jsonl` beside it), and planned every change the re-run plans (its
`planned` keys, runsync.journal.events.planned_keys). The re-run then adds to that journal, so its one undo takes back
the whole import. A re-run whose plan holds a change the interrupted import did not plan (a cell edited since)
is a new import with a journal of its own; the interrupted one is named, to be undone on its own.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runsync.errors import JournalError
from runsync.journal.events import (
    first_begin,
    journal_dir,
    read_events,
    read_journal,
    undo_journal_path,
)

DONE, INTERRUPTED, UNFINISHED = "done", "interrupted", "unfinished"


@dataclass(frozen=True)
class ImportEntry:
    """One import journal as a listing shows it."""

    journal: str
    at: str  # its first begin line's time, ISO 8601 UTC
    project: str | None
    sheet: str | None
    exported_at: str | None
    runs_planned: int
    fields_planned: int
    runs_written: int  # runs W&B confirmed (a `done` line, or held when read back)
    fields_written: int
    status: str  # DONE, INTERRUPTED (stopped mid-way: Ctrl-C, kill, lost machine) or UNFINISHED (runs failed)
    undone: str  # "no", "yes" or "partly" (its undo was itself interrupted or did not finish)
    wrote: bool = False  # any write line at all (sent, confirmed or not)
    planned: frozenset[str] = field(default=frozenset(), repr=False)


@dataclass(frozen=True)
class Continuation:
    """The interrupted import a re-run meets: continued (same journal), or not, with why."""

    entry: ImportEntry
    continues: bool
    unplanned: int  # changes of the re-run that the interrupted import did not plan


def is_import_journal(path: Path) -> bool:
    return path.suffix == ".jsonl" and not path.name.endswith(".undo.jsonl")


def sheet_folder(target: str | os.PathLike[str]) -> Path | None:
    """The journals folder `runsync undo TARGET` lists: TARGET itself when a folder, a sheet's
    `SHEET.runsync-journals/` when TARGET is a sheet (.xlsx, .csv, or a file with such a folder); else None."""
    p = Path(target)
    if p.is_dir():
        return p
    if p.name.lower().endswith((".xlsx", ".csv")) or journal_dir(p).is_dir():
        return journal_dir(p)
    return None


def read_import(path: str | os.PathLike[str]) -> ImportEntry:
    """One import journal's entry; JournalError when it is not a journal."""
    p = Path(path)
    events, _ = read_events(p)
    contents = read_journal(p)
    begins = [i for i, e in enumerate(events) if e["op"] == "begin"]
    first, last = events[begins[0]], begins[-1]
    end = next((e for e in events[last:] if e["op"] == "end"), None)
    if end is None:
        status = INTERRUPTED
    elif end.get("failed") or end.get("did_not_stick"):
        status = UNFINISHED
    else:
        status = DONE
    planned: set[str] = set()
    for event in events:
        if event["op"] == "planned" and isinstance(event.get("changes"), list):
            planned.update(str(k) for k in event["changes"])
    done = [h for h in contents.fields if h.done]
    return ImportEntry(
        str(p), str(first.get("at") or ""), first.get("project"), first.get("sheet"), first.get("exported_at"),
        _int(first.get("runs")), _int(first.get("fields")), len({h.run_id for h in done}), len(done), status,
        _undone(p), any(e["op"] == "write" for e in events), frozenset(planned))


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def _undone(journal: Path) -> str:
    undo = Path(undo_journal_path(journal))
    if not undo.exists():
        return "no"
    try:
        events, _ = read_events(undo)
    except JournalError:
        return "partly"
    last = max(i for i, e in enumerate(events) if e["op"] == "begin")
    end = next((e for e in events[last:] if e["op"] == "end"), None)
    return "yes" if end is not None and not end.get("failed") and not end.get("did_not_stick") else "partly"


def list_imports(folder: str | os.PathLike[str]) -> list[ImportEntry]:
    """Every import journal in `folder`, newest first (by its first begin time); files that are no journal skipped."""
    entries = []
    for path in Path(folder).glob("*.jsonl") if Path(folder).is_dir() else ():
        if not is_import_journal(path):
            continue
        try:
            entries.append(read_import(path))
        except (JournalError, OSError):
            continue
    return sorted(entries, key=lambda e: (e.at, Path(e.journal).name), reverse=True)


def find_continuation(folder: str | os.PathLike[str], project: str, sheet: str | None, exported_at: str,
                      keys: Iterable[str]) -> Continuation | None:
    """The interrupted import of this sheet and export that a re-run planning `keys` meets (module docstring)."""
    ours = []
    for path in Path(folder).glob("*.jsonl") if Path(folder).is_dir() else ():
        first = first_begin(path)  # every begin of one journal names one export (journal.check_can_append)
        if is_import_journal(path) and first.get("project") == project and first.get("exported_at") == exported_at \
                and first.get("sheet") == sheet:
            ours.append((str(first.get("at") or ""), path.name, path))
    if not ours:
        return None
    try:
        newest = read_import(max(ours)[2])
    except (JournalError, OSError):
        return None
    if newest.status == DONE or newest.undone != "no":
        return None
    unplanned = sum(1 for key in keys if key not in newest.planned)
    # A journal with no write line (stopped before its first request) holds nothing to keep apart.
    return Continuation(newest, unplanned == 0 or not newest.wrote, unplanned)
