"""Append-only undo journal: one JSON line per event, fsync'd, a torn last line tolerated.

One journal per import, by default in the sheet's own folder `SHEET.runsync-journals/`, named by the UTC
time it started (`20250102T030405Z-001.jsonl`), so a listing sorts by time. Its `begin` line names the
sheet and the export it came from (project + exported_at): planning a sheet of that export reads these
journals to move the base past runsync's own earlier writes (runsync.journal.history).

Events: `begin`; `write` (a run's fields before/after, on disk before the request goes out; a config write
made while the server's config handling is unknown, or on a server that replaces configs, also carries the
run's whole `config_before`); `done` (W&B confirmed it); `restore` (a replacing server dropped config keys,
put back from `config_before`); `verify` (read back after the writes: fields `held`, and `did_not_stick`
with the value W&B holds); `end`. An import of a sheet also writes `planned` (a short key per change it set out
to make, runsync.journal.imports) after `begin`, and `interrupted` (how many runs were written) when Ctrl-C stops it.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from runsync.errors import JournalError
from runsync.model import ABSENT, Change

JOURNAL_VERSION = 1
JOURNAL_DIR_SUFFIX = ".runsync-journals"
_ABSENT_TAG = {"$runsync": "absent"}


def encode_value(value: Any) -> Any:
    if value is ABSENT:
        return _ABSENT_TAG
    if isinstance(value, tuple):
        return list(value)
    return value


def decode_value(value: Any) -> Any:
    return ABSENT if value == _ABSENT_TAG else value


def planned_keys(changes: Iterable[Change]) -> list[str]:
    """A short key per change (its run, field and new value): the same cell planned again gets the same key."""
    keys = []
    for change in changes:
        text = json.dumps([change.run_id, change.field, encode_value(change.sheet)], ensure_ascii=False,
                          sort_keys=True, allow_nan=True, default=str)
        keys.append(hashlib.blake2b(text.encode(), digest_size=8).hexdigest())
    return keys


class Journal:
    """Writer: every line reaches the disk before the write it describes is sent."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "ab")
        if self._file.tell() > 0:
            self._heal_torn_tail()

    def _heal_torn_tail(self) -> None:
        # A kill mid-append leaves a last line without "\n"; start ours on a fresh line.
        with open(self.path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                self._file.write(b"\n")

    def append(self, event: dict[str, Any]) -> None:
        self.append_many([event])

    def append_many(self, events: Iterable[dict[str, Any]]) -> None:
        """Append these events in order, on disk together: one fsync (0.4-4 ms) for all, not one a line, so a
        request's write lines (or a read-back's verify lines) cost one."""
        # Microseconds: journals of one export are ordered by their begin time (runsync.journal.history).
        at = datetime.now(timezone.utc).isoformat(timespec="microseconds")
        lines = [json.dumps({"at": at, **event}, ensure_ascii=False, allow_nan=True).encode() + b"\n"
                 for event in events]
        if not lines:
            return
        with self._lock:
            for line in lines:
                # A write call a line, as when each had its own fsync: a kill tears at most the line being
                # written (one big write of them all can stop part-way through any of them).
                self._file.write(line)
                self._file.flush()
            os.fsync(self._file.fileno())

    def close(self) -> None:
        with self._lock:
            self._file.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class FieldHistory:
    """What the journal says happened to one field of one run, first before and last after."""

    run_id: str
    run_name: str | None
    storage_id: str
    field: str
    path: tuple[str, ...]
    before: Any
    after: Any
    done: bool


@dataclass
class JournalContents:
    project: str | None
    fields: list[FieldHistory] = field(default_factory=list)
    torn_lines: int = 0
    begin: dict[str, Any] = field(default_factory=dict)  # the first begin line: sheet, exported_at, ...


def read_events(path: str | os.PathLike[str]) -> tuple[list[dict[str, Any]], int]:
    """The journal's events in order, and how many torn (partial) lines were skipped.

    A file with no `begin` event, or with a whole line that is JSON but no journal event, is not a journal
    (a sheet passed by mistake, say): JournalError "PATH: not a runsync journal".
    """
    p = Path(path)
    if not p.exists():
        raise JournalError(f"{p}: no such journal")
    if p.is_dir():
        raise JournalError(f"{p}: not a runsync journal (a folder)")
    events: list[dict[str, Any]] = []
    torn = 0
    for line in p.read_bytes().split(b"\n"):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError:  # JSONDecodeError, or bytes that are no UTF-8/16/32 at all
            torn += 1
            continue
        if not isinstance(event, dict) or not isinstance(event.get("op"), str):
            raise JournalError(f"{p}: not a runsync journal")
        events.append(event)
    if not any(e["op"] == "begin" for e in events):
        raise JournalError(f"{p}: not a runsync journal")
    return events, torn


def read_journal(path: str | os.PathLike[str]) -> JournalContents:
    """Every write the journal records; a torn (partial) line is skipped and counted."""
    p = Path(path)
    events, torn = read_events(p)
    project: str | None = None
    first_begin: dict[str, Any] = {}
    histories: dict[tuple[str, str], FieldHistory] = {}
    try:
        for event in events:
            op = event["op"]
            if op == "begin":
                if project and event.get("project") != project:
                    raise JournalError(f"{p}: journal mixes projects {project} and {event.get('project')}")
                project = event.get("project")
                first_begin = first_begin or event
            elif op == "write":
                for item in event["fields"]:
                    key = (event["run"], item["field"])
                    if key in histories:
                        histories[key].after = decode_value(item["after"])
                        histories[key].done = False
                    else:
                        histories[key] = FieldHistory(
                            event["run"], event.get("run_name"), event["storage_id"], item["field"],
                            tuple(item.get("path") or ()), decode_value(item["before"]),
                            decode_value(item["after"]), False,
                        )
            elif op == "done":
                for (run_id, _), history in histories.items():
                    if run_id == event["run"]:
                        history.done = True
            elif op == "verify":
                # Read back after the writes: W&B holds these fields (done, even with no answer), or not.
                for name in () if event.get("confirmed", True) else event.get("held") or ():
                    if (event["run"], name) in histories:
                        histories[(event["run"], name)].done = True
                for item in event.get("did_not_stick") or ():
                    if (event["run"], item["field"]) in histories:
                        histories[(event["run"], item["field"])].done = False
    except (KeyError, TypeError):
        raise JournalError(f"{p}: not a runsync journal") from None
    return JournalContents(project, list(histories.values()), torn, dict(first_begin))


# -- one journal per import, found again by the sheet ----------------------------------------------------

def journal_dir(sheet: str | os.PathLike[str]) -> Path:
    """Where the journals of a sheet's imports go by default: `SHEET.runsync-journals/`."""
    return Path(str(sheet) + JOURNAL_DIR_SUFFIX)


def new_journal_path(sheet: str | os.PathLike[str]) -> str:
    """A fresh, empty journal file for one import: `SHEET.runsync-journals/<UTC time>-<n>.jsonl`.

    Created exclusively (O_EXCL), so two imports in the same second get -001 and -002, never one file.
    """
    folder = journal_dir(sheet)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    n = 1
    while True:
        candidate = folder / f"{stamp}-{n:03d}.jsonl"
        try:
            os.close(os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except FileExistsError:
            n += 1
            continue
        return str(candidate)


def undo_journal_path(journal: str | os.PathLike[str]) -> str:
    """The journal of an undo: beside the import's, so re-running the undo resumes it (and it is found)."""
    return str(journal).removesuffix(".jsonl") + ".undo.jsonl"


def export_header(sheet: str, exported_at: str | None) -> dict[str, Any]:
    """What a begin line records about where a plan came from (besides the project)."""
    header: dict[str, Any] = {"sheet": os.path.abspath(sheet)}
    if exported_at:
        header["exported_at"] = exported_at
    return header


def check_can_append(path: str | os.PathLike[str], project: str, header: Mapping[str, Any]) -> None:
    """Refuse to add to an existing journal holding an import of another project, sheet or export."""
    p = Path(path)
    if not p.exists() or p.stat().st_size == 0:
        return
    events, _ = read_events(p)  # "not a runsync journal" for any other file
    for begin in (e for e in events if e["op"] == "begin"):
        other = [f"project {begin.get('project')}"] if begin.get("project") != project else []
        for key, what in (("sheet", "sheet"), ("exported_at", "export of")):
            if begin.get(key) and header.get(key) and begin[key] != header[key]:
                other.append(f"{what} {begin[key]}")
        if other:
            raise JournalError(
                f"{p}: already holds an import of another {', '.join(other)}: nothing written",
                hint="pass a new --journal path, or leave --journal out (one journal per import)")


def first_begin(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A journal's first line, when it is a begin line: every begin of one journal names one export
    (check_can_append), so it says whose the journal is without reading the rest; else {}."""
    try:
        with open(path, "rb") as f:
            event = json.loads(f.readline())
    except (OSError, ValueError):
        return {}
    return event if isinstance(event, dict) and event.get("op") == "begin" else {}
