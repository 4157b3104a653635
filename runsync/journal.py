"""Append-only undo journal: one JSON line per event, fsync'd, a torn last line tolerated."""
from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from runsync.errors import JournalError
from runsync.model import ABSENT

JOURNAL_VERSION = 1
_ABSENT_TAG = {"$runsync": "absent"}


def encode_value(value: Any) -> Any:
    if value is ABSENT:
        return _ABSENT_TAG
    if isinstance(value, tuple):
        return list(value)
    return value


def decode_value(value: Any) -> Any:
    return ABSENT if value == _ABSENT_TAG else value


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
        event = {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"), **event}
        line = json.dumps(event, ensure_ascii=False, allow_nan=True).encode() + b"\n"
        with self._lock:
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


def read_journal(path: str | os.PathLike[str]) -> JournalContents:
    """Every write the journal records; a torn (partial) line is skipped and counted."""
    p = Path(path)
    if not p.exists():
        raise JournalError(f"{p}: no such journal")
    project: str | None = None
    histories: dict[tuple[str, str], FieldHistory] = {}
    torn = 0
    for number, line in enumerate(p.read_bytes().split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            torn += 1
            continue
        op = event.get("op")
        if op == "begin":
            if project and event.get("project") != project:
                raise JournalError(f"{p}: line {number}: journal mixes projects {project} and {event.get('project')}")
            project = event.get("project")
        elif op == "write":
            for item in event["fields"]:
                key = (event["run"], item["field"])
                if key in histories:
                    histories[key].after = decode_value(item["after"])
                    histories[key].done = False
                else:
                    histories[key] = FieldHistory(
                        event["run"], event.get("run_name"), event["storage_id"], item["field"],
                        tuple(item.get("path") or ()), decode_value(item["before"]), decode_value(item["after"]), False,
                    )
        elif op == "done":
            for (run_id, _), history in histories.items():
                if run_id == event["run"]:
                    history.done = True
    return JournalContents(project, list(histories.values()), torn)
