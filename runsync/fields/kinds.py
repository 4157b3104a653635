"""The field registry: what each kind of sheet column is, in one small class per kind, and `kind_of(column)`.

A column is one of: the run id, a text field (name, group, job_type, notes), the tags, a tag tick (`tag:X`), a
config key (`config.a.b`), a summary metric (`summary.x`; editable only when exported with --edit-summary),
W&B's own read-only fields (state, created_at, url), runsync's status column, or none of runsync's. Each kind
says how W&B's value for it is read from a RunRecord, when two values are the same, how a cell decodes, which
write input an edit goes to, whether it is editable, whether a key it creates can be deleted again, and the
note its header carries. Every stage asks this module; none tests a column's prefix itself. Pure.
"""
from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from runsync.fields import codec
from runsync.fields.kind_base import (  # noqa: F401  # re-exported: every stage imports them from here
    BOTH,
    MLFLOW,
    WANDB,
    WRITE_CONFIG,
    WRITE_FIELD,
    WRITE_PARAMS,
    WRITE_SUMMARY,
    WRITE_TAG_VALUES,
    WRITE_TAGS,
    Kind,
    _text,
)
from runsync.fields.mlflow_kinds import mlflow_kind
from runsync.model import ABSENT, ID, RunRecord

# Columns every export has, in order. `id` is the key; the rest of the first group is editable.
EDITABLE_FIELDS = ("name", "tags", "group", "job_type", "notes")
TEXT_FIELDS = ("name", "group", "job_type", "notes")
READONLY_FIELDS = ("state", "created_at", "url")
CONFIG_PREFIX = "config."
SUMMARY_PREFIX = "summary."
TAG_COLUMN_PREFIX = "tag:"
# What `--write-status` writes back per row (runsync.sheets.status): read-only, and skipped by every import.
STATUS_COLUMN = "runsync_status"

class IdColumn(Kind):
    name = "id"
    readonly = True
    exportable = True
    trackers = BOTH

    def note(self, column: str) -> str:
        return "read-only: the run id; runsync matches rows by it. Don't edit or delete it."


class TextField(Kind):
    """name, group, job_type, notes: W&B answers "" or null for an unset one alike; both are an empty cell."""

    name = "text"
    deletable = True
    editable = True
    exportable = True
    write_to = WRITE_FIELD

    def live(self, record: RunRecord, column: str, path: tuple[str, ...] = ()) -> Any:
        return _text(getattr(record, column))

    def same(self, a: Any, b: Any) -> bool:
        return codec.values_equal(_text(a), _text(b))

    def decode(self, raw: Any, *, column: str, base: Any = ABSENT, column_type: str | None = None,
               source: str = "csv") -> Any | codec.CellProblem:
        return codec.decode_cell(raw, column=column, base=base if isinstance(base, str) else "", source=source)

    def sheet_value(self, decoded: Any, base: Any) -> Any:
        return _text(decoded)


class Tags(Kind):
    """The tags, one comma-separated text cell; compared as a set."""

    name = "tags"
    deletable = True
    editable = True
    exportable = True
    write_to = WRITE_TAGS

    def live(self, record: RunRecord, column: str, path: tuple[str, ...] = ()) -> Any:
        return tuple(record.tags)

    def same(self, a: Any, b: Any) -> bool:
        if a is ABSENT or b is ABSENT:
            return a is b
        return set(a) == set(b)

    def decode(self, raw: Any, *, column: str, base: Any = ABSENT, column_type: str | None = None,
               source: str = "csv") -> Any | codec.CellProblem:
        return codec.decode_cell(raw, column=codec.TAGS_COLUMN, base=base, source=source)

    def sheet_value(self, decoded: Any, base: Any) -> Any:
        return decoded

    def from_base(self, value: Any) -> Any:
        return tuple(value) if isinstance(value, list) else value

    def sent(self, value: Any) -> Any:
        return tuple(value or ())

    def cell(self, value: Any) -> Any:
        return codec.format_tags(value) if isinstance(value, (list, tuple)) else value

    def note(self, column: str) -> str:
        return 'Tags, comma-separated: a, b, c. Quote a tag with a comma: "x, y". Empty = no tags.'


class TagTick(Kind):
    """`tag:X`: TRUE/FALSE for one tag (--tag-columns); the planner folds the ticks into a tags edit."""

    name = "tag tick"
    deletable = True
    editable = True
    exact_name = True
    keyed = True
    write_to = WRITE_TAGS

    def tag(self, column: str) -> str:
        return column[len(TAG_COLUMN_PREFIX):]

    def decode(self, raw: Any, *, column: str, base: Any = ABSENT, column_type: str | None = "bool",
               source: str = "csv") -> Any | codec.CellProblem:
        return codec.decode_cell(raw, column=column, base=base, column_type="bool", source=source)

    def note(self, column: str) -> str:
        return "Tick: TRUE = the run has this tag, FALSE = it doesn't. Edit this or the tags column, not both."


class ConfigKey(Kind):
    """`config.a.b`: the key b inside a (codec.config_path spells keys with dots); W&B cannot delete a key."""

    name = "config"
    editable = True
    exportable = True
    exact_name = True
    keyed = True
    write_to = WRITE_CONFIG
    has_path = True

    def path(self, column: str) -> tuple[str, ...]:
        return codec.config_path(column)

    def live(self, record: RunRecord, column: str, path: tuple[str, ...] = ()) -> Any:
        return codec.cell_value_at(record.config, path)

    def held(self, record: RunRecord, column: str, path: tuple[str, ...] = ()) -> Any:
        return codec.get_path(record.config, path)

    def note(self, column: str) -> str:
        return ("Config value: numbers, true/false, text; lists and dicts as JSON ([1, 2], {\"a\": 1}). "
                "Empty = null.")


class SummaryMetric(Kind):
    """`summary.x`: a metric; read-only unless the export made it editable (--edit-summary)."""

    name = "summary"
    deletable = True
    write_to = WRITE_SUMMARY
    has_path = True
    keyed = True

    def __init__(self, editable: bool) -> None:
        self.editable = editable
        self.readonly = not editable

    def metric(self, column: str) -> str:
        return column[len(SUMMARY_PREFIX):]

    def path(self, column: str) -> tuple[str, ...]:
        return codec.summary_path(column)

    def live(self, record: RunRecord, column: str, path: tuple[str, ...] = ()) -> Any:
        return codec.get_path(record.summary, path or codec.summary_path(column))

    def note(self, column: str) -> str:
        if self.editable:
            return ("Summary metric, editable (exported with --edit-summary): a number, true/false, text. W&B "
                    "objects (histograms, tables) can't be edited. Empty = null.")
        return "read-only: a summary metric, for reference. Don't edit it: the import refuses a sheet that does."


class RunField(Kind):
    """state, created_at, url: W&B's own."""

    name = "run field"
    readonly = True
    exportable = True

    def live(self, record: RunRecord, column: str, path: tuple[str, ...] = ()) -> Any:
        return getattr(record, column)

    def note(self, column: str) -> str:
        return "read-only: W&B's own field, for reference. Don't edit it: the import refuses a sheet that does."


class StatusColumn(Kind):
    """runsync_status: what the last import or undo did to the run (--write-status)."""

    name = "status"
    readonly = True
    planned = False
    trackers = BOTH

    def note(self, column: str) -> str:
        return "read-only: what the last runsync import or undo did to the run (--write-status); ignored by the import."


class NameField(TextField):
    """name: every tracker's runs have one."""

    trackers = BOTH


ID_COLUMN = IdColumn()
TEXT = TextField()
NAME = NameField()
TAGS = Tags()
TAG_TICK = TagTick()
CONFIG = ConfigKey()
SUMMARY = SummaryMetric(editable=False)
EDITABLE_SUMMARY = SummaryMetric(editable=True)
RUN_FIELD = RunField()
STATUS = StatusColumn()
UNKNOWN = Kind()
UNKNOWN.trackers = BOTH


@functools.lru_cache(maxsize=8192)
def _kind(column: str) -> Kind:
    if column == ID:
        return ID_COLUMN
    if column == "name":
        return NAME
    if column in TEXT_FIELDS:
        return TEXT
    if column == codec.TAGS_COLUMN:
        return TAGS
    if column in READONLY_FIELDS:
        return RUN_FIELD
    if column == STATUS_COLUMN:
        return STATUS
    if column.startswith(CONFIG_PREFIX):
        return CONFIG
    if column.startswith(TAG_COLUMN_PREFIX):
        return TAG_TICK
    if column.startswith(SUMMARY_PREFIX):
        return SUMMARY
    return mlflow_kind(column) or UNKNOWN


def kind_of(column: str, editable_summary: Collection[str] = ()) -> Kind:
    """The kind of a column; `editable_summary`: the metrics exported with --edit-summary (SheetMeta's)."""
    kind = _kind(column)
    if kind is SUMMARY and editable_summary and column[len(SUMMARY_PREFIX):] in editable_summary:
        return EDITABLE_SUMMARY
    return kind


def is_editable(column: str, editable_summary: Collection[str] = ()) -> bool:
    """Whether the import writes this column; summary columns only when exported with --edit-summary."""
    return kind_of(column, editable_summary).editable


def is_readonly(column: str, editable_summary: Collection[str] = ()) -> bool:
    return kind_of(column, editable_summary).readonly


def tag_column(tag: str) -> str:
    """The tick column for a tag (--tag-columns)."""
    return TAG_COLUMN_PREFIX + tag


def summary_column(metric: str) -> str:
    """The column for a summary metric as --summary names it (`a.b`: b nested in a; `a\\.b`: the key "a.b")."""
    return SUMMARY_PREFIX + metric


def summary_name(path: Sequence[str]) -> str:
    """The column for a summary key path (spelled as config columns are)."""
    return SUMMARY_PREFIX + codec.config_column(path)[len(CONFIG_PREFIX):]


def export_columns(tags: Iterable[str] = (), config: Iterable[str] = (), metrics: Iterable[str] = ()) -> list[str]:
    """The columns of an export, in order: id, the editable fields, tag ticks, config columns, W&B's read-only
    fields, summary metrics."""
    return [ID, *EDITABLE_FIELDS, *map(tag_column, tags), *config, *READONLY_FIELDS, *map(summary_column, metrics)]


def ordered_fields(fields: Iterable[str]) -> list[str]:
    """Field names as a report lists them: the run's own fields in export order, then the rest sorted."""
    names = list(fields)
    return [f for f in EDITABLE_FIELDS if f in names] + sorted(f for f in names if f not in EDITABLE_FIELDS)


def new_key_counts(changes: Iterable[Any]) -> dict[str, int]:
    """{column: runs it creates the key in} for the changes that create a key no write can take back."""
    counts: dict[str, int] = {}
    for change in changes:
        kind = kind_of(change.field)
        if kind.write_to is not None and not kind.deletable and change.live is ABSENT and change.sheet is not ABSENT:
            counts[change.field] = counts.get(change.field, 0) + 1
    return counts
