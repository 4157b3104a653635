"""Plain data shared by every stage: runs as read from W&B, sheets as read from disk, plans."""
from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, KeysView, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from runsync.errors import CellError
from runsync.words import counted

if TYPE_CHECKING:
    import pandas as pd


class _Absent:
    """A config key (or cell) that is not there at all, as opposed to one holding null."""

    _instance: _Absent | None = None

    def __new__(cls) -> _Absent:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ABSENT"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()

# The run id column: every sheet's key. What the other columns are is runsync.fields' registry (fields.kinds).
ID = "id"


def is_wandb_object(value: Any) -> bool:
    """A summary value W&B renders (histogram, table, image): `{"_type": ...}`; never edited."""
    return isinstance(value, dict) and "_type" in value


@dataclass(frozen=True)
class RunRecord:
    """One run (W&B's or MLflow's), as much of it as runsync reads or writes."""

    id: str  # the short run id W&B calls `name`
    storage_id: str  # the opaque node id upsertBucket wants
    name: str | None  # displayName
    tags: tuple[str, ...]
    group: str | None
    job_type: str | None
    notes: str | None
    config: dict[str, Any]  # user config, unwrapped from {"value": ...}; no `_` keys
    raw_config: dict[str, Any]  # exactly as W&B returned it: {"k": {"value", "desc"}}, `_wandb` included
    state: str | None = None
    created_at: str | None = None
    url: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)  # user metrics: no `_` keys
    raw_summary: dict[str, Any] = field(default_factory=dict)  # all of it, as W&B returned it (whole-summary writes)
    # Keyed tags, key -> text (MLflow's tags; W&B has none): the user's, editable and deletable.
    tag_values: dict[str, str] = field(default_factory=dict)
    # The tracker's own keyed tags (MLflow's `mlflow.*`: source, user, git commit, ...): read-only, never written.
    system_tags: dict[str, str] = field(default_factory=dict)
    experiment: str | None = None  # the MLflow experiment's name (W&B: none; the project is the sheet's)


class Action(str, enum.Enum):
    UPDATE = "~"
    CONFLICT = "!"
    INFO = "i"  # changed only in W&B since the export: kept, reported


@dataclass(frozen=True)
class Change:
    """One field of one run: its base (at export), what the sheet says, and what W&B says now."""

    run_id: str
    run_name: str | None
    field: str  # name | tags | group | job_type | notes | config.<dotted key>
    base: Any
    sheet: Any
    live: Any
    action: Action
    path: tuple[str, ...] = ()  # for config fields: the key path inside the config
    reason: str | None = None  # a conflict's cause when it is more than "W&B moved too" (e.g. names an import)
    overridable: bool = True  # False: --force does not let the sheet win (the sheet predates an import)

    @property
    def old(self) -> Any:
        return self.live

    @property
    def new(self) -> Any:
        return self.sheet


@dataclass(frozen=True)
class Skip:
    """A run left out of a plan on purpose, with why (e.g. "running": its live process may overwrite edits)."""

    run_id: str
    run_name: str | None
    reason: str


@dataclass(frozen=True)
class Plan:
    """What an import would do. Pure data; rendering and applying read it."""

    project: str  # "entity/project"
    source: str  # the sheet it came from
    changes: tuple[Change, ...]  # Action.UPDATE only
    conflicts: tuple[Change, ...]
    infos: tuple[Change, ...]
    errors: tuple[CellError, ...] = ()
    warnings: tuple[str, ...] = ()
    three_way: bool = True
    skipped: tuple[Skip, ...] = ()
    include_running: bool = False  # runs still running are in the plan (and written) rather than skipped
    undo: bool = False  # the undo of an import: base = what it wrote, sheet = what was there before
    # the user asked for config keys the runs lack to be created (--new-keys): W&B cannot delete a key
    new_keys_allowed: bool = False
    # run id -> its W&B page, from the live runs read for the plan (links in reports); not part of equality
    run_urls: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def run_ids(self) -> list[str]:
        seen: dict[str, None] = {}
        for change in self.changes:
            seen.setdefault(change.run_id, None)
        return list(seen)

    @property
    def new_key_counts(self) -> dict[str, int]:
        """{config column: runs it creates the key in}: the fields W&B holds no key for, which no write can
        take back (W&B cannot delete a config key; undo only sets it to null)."""
        return PLAN_VIEWS["new_key_counts"](self)

    @property
    def empty(self) -> bool:
        return not self.changes and not self.conflicts and not self.errors

    def with_run_urls(self, live: Mapping[str, RunRecord]) -> Plan:
        """This plan with the W&B page of each run it names (as W&B gave them), for the links in reports."""
        ids = {c.run_id for c in (*self.changes, *self.conflicts, *self.infos)} | {k.run_id for k in self.skipped}
        return replace(self, run_urls={rid: url for rid in ids if rid in live and (url := live[rid].url)})

    def to_frame(self) -> pd.DataFrame:
        """One row per change, conflict, W&B-only change, skipped run and error (README "Reviewing a plan")."""
        return PLAN_VIEWS["frame"](self)

    def __repr__(self) -> str:
        """One line: `<Plan e/p: 4 runs, 5 fields, 1 conflict>` (and its errors, when it has any)."""
        errors = f", {counted(len(self.errors), 'error')}" if self.errors else ""
        return (f"<Plan {self.project}: {counted(len(self.run_ids), 'run')}, {counted(len(self.changes), 'field')}, "
                f"{counted(len(self.conflicts), 'conflict')}{errors}>")

    def __str__(self) -> str:
        """The text plan, as `runsync import --dry-run` prints it (no colour)."""
        return PLAN_VIEWS["text"](self)

    def show(self) -> None:
        """Print the text plan to stdout (in colour on a terminal); returns None."""
        PLAN_VIEWS["print"](self)

    def _repr_html_(self) -> str:
        """A notebook shows a plan as the HTML report's table."""
        return PLAN_VIEWS["html"](self)


# A plan's views (text, DataFrame, notebook HTML), put here by runsync.report when it is imported (runsync's own
# __init__ imports it, so they are always here): data imports nothing above it, and the views live with the renderers.
# "new_key_counts" is put here by runsync.fields, which knows which fields' keys cannot be deleted.
PLAN_VIEWS: dict[str, Callable[[Plan], Any]] = {}


@dataclass
class ApplyReport:
    """What an apply did, run by run and field by field: plain data the renderers read."""

    applied: list[Change] = field(default_factory=list)
    already: list[Change] = field(default_factory=list)  # W&B already held the new value
    conflicts: list[Change] = field(default_factory=list)  # moved in W&B between plan and write
    failed: dict[str, str] = field(default_factory=dict)  # run id -> why, after every retry
    failed_changes: list[Change] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # deleted in W&B between plan and write
    skipped: list[Skip] = field(default_factory=list)  # started running between plan and write
    warnings: list[str] = field(default_factory=list)
    journal: str | None = None
    # Written (W&B confirmed it), yet read back holding another value: `live` is what W&B holds.
    did_not_stick: list[Change] = field(default_factory=list)
    verified_runs: int = 0  # runs read back after writing (0: verification off, or nothing written)
    verify_requests: int = 0  # the requests the read-back took
    unverified: str | None = None  # why the read-back failed, when it did
    config_writes: str | None = None  # MERGE or REPLACE once the server's handling of config is known
    write_requests: int = 0  # requests that carried writes (a batch counts once; a run sent again alone, once more)
    tracker: str = "W&B"  # the tracker written to, as messages name it (Capabilities.tracker)

    @property
    def ok(self) -> bool:
        return (not self.failed and not self.conflicts and not self.missing and not self.did_not_stick
                and self.unverified is None)



SHEET_FORMAT_VERSION = 1


class CompactRow(Mapping[str, Any]):
    """A read-only {column: value}: a tuple of values and a column -> position index many rows share.

    What a read sheet holds per row and per base (issue 20 §4): a 29-key dict is ~830 bytes, this is a
    48-byte object and a 29-tuple of ~290, and at 100,000 runs the dicts were ~160 MiB each. Equal to any
    mapping with the same items, shown as a dict; it cannot be changed (TypeError): copy it, `dict(row)` or
    `{**row, ...}`, to get a dict to change. Built by runsync.sheets.compact.
    """

    __slots__ = ("_index", "_values")

    def __init__(self, index: Mapping[str, int], values: tuple[Any, ...]) -> None:
        self._index = index  # shared: never changed once a row uses it
        self._values = values

    def __getitem__(self, key: str) -> Any:
        return self._values[self._index[key]]

    def get(self, key: str, default: Any = None) -> Any:
        at = self._index.get(key)
        return default if at is None else self._values[at]

    def __contains__(self, key: object) -> bool:
        return key in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._values)

    def keys(self) -> KeysView[str]:
        return self._index.keys()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, CompactRow) and other._index is self._index:
            return self._values == other._values
        if isinstance(other, Mapping):
            return dict(zip(self._index, self._values, strict=True)) == dict(other.items())
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # as a dict's: equal to dicts, so not hashable

    def __repr__(self) -> str:
        return repr(dict(zip(self._index, self._values, strict=True)))

    def __reduce__(self) -> tuple[Any, ...]:
        return (CompactRow, (self._index, self._values))


@dataclass
class SheetMeta:
    """What an export records beside the cells: where they came from, and the base snapshot."""

    project: str  # "entity/project"
    selection: dict[str, Any]  # {"filters": {...}, "order": str|None, "limit": int|None}
    exported_at: str  # ISO 8601 UTC
    runsync_version: str
    format_version: int = SHEET_FORMAT_VERSION
    # column -> key path inside the config, for every config.* column (keys may contain dots)
    config_paths: dict[str, list[str]] = field(default_factory=dict)
    # run id -> {column: typed value as exported}; a column missing from a run's mapping was ABSENT. Read from a
    # sheet, each is a CompactRow (read-only): a caller that changes a base gives it a new dict.
    base: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # tag vocabulary when exported with --tag-columns
    tag_columns: list[str] = field(default_factory=list)
    # summary metrics exported with --edit-summary: their columns are editable
    editable_summary: list[str] = field(default_factory=list)


@dataclass
class SheetData:
    """A sheet as read from disk, before decoding: raw cells, with where each came from."""

    path: str
    columns: list[str]  # header, in file order
    # (row number as a spreadsheet shows it, {column: raw cell}); each a CompactRow once read (read-only)
    rows: list[tuple[int, Mapping[str, Any]]]
    meta: SheetMeta | None
    warnings: list[str] = field(default_factory=list)
    errors: list[CellError] = field(default_factory=list)
    delimiter: str | None = None  # a CSV's field separator (`;` says a locale with a `,` decimal wrote it)
    exported_as: str | None = None  # "csv" when the base is a CSV export's (its cells went through text)
