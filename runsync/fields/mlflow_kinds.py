"""MLflow's kinds of sheet column (the registry is runsync.fields.kinds): `description` (the run's note), keyed
tags `tags.KEY`, write-once params `params.KEY`, latest metrics `metrics.KEY`, and MLflow's own read-only
`status`, `start_time` and `experiment`. Every MLflow value is text but metrics. Pure.

What MLflow allows (/work/shared/MLFLOW.md): a tag is set, changed or deleted (an emptied cell deletes it, and
undo puts it back); a param is logged once and never changed nor deleted (a param the run lacks may be added,
with --new-keys, since nothing takes it back); metrics only grow a history: read-only here.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from runsync.fields import codec
from runsync.fields.kind_base import MLFLOW, WRITE_FIELD, WRITE_PARAMS, WRITE_TAG_VALUES, Kind, _text
from runsync.model import ABSENT, ID, RunRecord

TAG_PREFIX = "tags."
PARAM_PREFIX = "params."
METRIC_PREFIX = "metrics."
SYSTEM_TAG_PREFIX = "tags.mlflow."  # MLflow's own tags (source, user, git commit, ...): read-only, never written
DESCRIPTION = "description"
EDITABLE_FIELDS = ("name", DESCRIPTION)
READONLY_FIELDS = ("status", "start_time", "experiment")
ONLY_MLFLOW = frozenset({MLFLOW})


def _key(column: str, prefix: str) -> str:
    return column[len(prefix):]


def _as_text(raw: Any, *, column: str, base: Any, source: str) -> Any | codec.CellProblem:
    """A cell as MLflow's text: a number typed into a new cell is its text (`0.5` -> "0.5"), never a float."""
    return codec.decode_cell(raw, column=column, base=base if isinstance(base, str) else "", source=source)


class Description(Kind):
    """`description`: the run's note (the tag `mlflow.note.content`); an emptied cell deletes the note."""

    name = "text"
    editable = True
    deletable = True
    exportable = True
    write_to = WRITE_FIELD
    attribute = "notes"
    trackers = ONLY_MLFLOW

    def live(self, record: RunRecord, column: str, path: tuple[str, ...] = ()) -> Any:
        return _text(record.notes)

    def same(self, a: Any, b: Any) -> bool:
        return codec.values_equal(_text(a), _text(b))

    def decode(self, raw: Any, *, column: str, base: Any = ABSENT, column_type: str | None = None,
               source: str = "csv") -> Any | codec.CellProblem:
        return _as_text(raw, column=column, base=base, source=source)

    def sheet_value(self, decoded: Any, base: Any) -> Any:
        return _text(decoded)

    def note(self, column: str) -> str:
        return "The run's description (MLflow's note), text. Empty = no description."


class _KeyedText(Kind):
    """A `PREFIX.KEY` column of text (MLflow's tags and params): an emptied cell is the key gone, a cell held as
    "" stays so."""

    name = "text"
    editable = True
    exact_name = True
    exportable = True
    keyed = True
    trackers = ONLY_MLFLOW
    prefix = ""

    def key(self, column: str) -> str:
        return _key(column, self.prefix)

    def decode(self, raw: Any, *, column: str, base: Any = ABSENT, column_type: str | None = None,
               source: str = "csv") -> Any | codec.CellProblem:
        return _as_text(raw, column=column, base=base, source=source)

    def sheet_value(self, decoded: Any, base: Any) -> Any:
        if decoded is None or decoded == "":
            return "" if base == "" else ABSENT
        return decoded

    def sent(self, value: Any) -> Any:
        return value  # ABSENT: the key goes (a tag is deleted; a param is refused before: write-once)


class MlflowTag(_KeyedText):
    """`tags.KEY`: a user's tag, text; an emptied cell deletes the tag (undo sets it back)."""

    deletable = True
    undo_removes = True
    removal = "delete tag"
    write_to = WRITE_TAG_VALUES
    prefix = TAG_PREFIX

    def live(self, record: RunRecord, column: str, path: tuple[str, ...] = ()) -> Any:
        return record.tag_values.get(self.key(column), ABSENT)

    def note(self, column: str) -> str:
        return f"MLflow tag {self.key(column)!r}, text. Empty a cell to delete the tag from that run (undo puts it back)."


class MlflowSystemTag(Kind):
    """`tags.mlflow.X`: MLflow's own tag; exported only when asked for by name, never written."""

    name = "run field"
    readonly = True
    exact_name = True
    exportable = True
    keyed = True
    trackers = ONLY_MLFLOW

    def live(self, record: RunRecord, column: str, path: tuple[str, ...] = ()) -> Any:
        return record.system_tags.get(_key(column, TAG_PREFIX), ABSENT)

    def note(self, column: str) -> str:
        return "read-only: MLflow's own tag, for reference; runsync never writes mlflow.* tags."


class MlflowParam(_KeyedText):
    """`params.KEY`: a param, text, written once: a set one is read-only, one the run lacks may be added."""

    write_once = True
    write_to = WRITE_PARAMS
    prefix = PARAM_PREFIX

    def live(self, record: RunRecord, column: str, path: tuple[str, ...] = ()) -> Any:
        return record.config.get(self.key(column), ABSENT)

    def edit_refusal(self, column: str, base: Any, live: Any, value: Any) -> str | None:
        held = base if base is not ABSENT else live
        if held is ABSENT or codec.values_equal(held, value):
            return None
        now = "emptied" if value is ABSENT else f"changed to {value!r}"
        since = "" if base is not ABSENT else " (logged since the export)"
        return (f"param {self.key(column)!r} is {held!r} in MLflow{since} and MLflow params are write-once: it "
                f"cannot be {now}; only a param the run lacks may be added")

    def note(self, column: str) -> str:
        return (f"MLflow param {self.key(column)!r}, text, write-once: read-only where the run has it. An empty "
                "cell may be filled to add the param (import --new-keys: it can't be taken back).")


class MlflowMetric(Kind):
    """`metrics.KEY`: the latest value of a metric (export --summary KEY); read-only."""

    name = "summary"
    readonly = True
    keyed = True
    trackers = ONLY_MLFLOW

    def live(self, record: RunRecord, column: str, path: tuple[str, ...] = ()) -> Any:
        return record.summary.get(_key(column, METRIC_PREFIX), ABSENT)

    def note(self, column: str) -> str:
        return "read-only: the metric's latest value, for reference. Don't edit it: the import refuses a sheet that does."


class MlflowField(Kind):
    """status, start_time, experiment: MLflow's own."""

    name = "run field"
    readonly = True
    exportable = True
    trackers = ONLY_MLFLOW

    def live(self, record: RunRecord, column: str, path: tuple[str, ...] = ()) -> Any:
        if column == "status":
            return (record.state or "").upper() or None  # as MLflow shows it: FINISHED, RUNNING
        if column == "start_time":
            return record.created_at
        return record.experiment

    def note(self, column: str) -> str:
        return "read-only: MLflow's own field, for reference. Don't edit it: the import refuses a sheet that does."


DESCRIPTION_KIND = Description()
TAG = MlflowTag()
SYSTEM_TAG = MlflowSystemTag()
PARAM = MlflowParam()
METRIC = MlflowMetric()
FIELD = MlflowField()


def mlflow_kind(column: str) -> Kind | None:
    """The MLflow kind of a column, or None for a column that is not MLflow's own."""
    if column == DESCRIPTION:
        return DESCRIPTION_KIND
    if column in READONLY_FIELDS:
        return FIELD
    if column.startswith(SYSTEM_TAG_PREFIX):
        return SYSTEM_TAG
    if column.startswith(TAG_PREFIX):
        return TAG
    if column.startswith(PARAM_PREFIX):
        return PARAM
    if column.startswith(METRIC_PREFIX):
        return METRIC
    return None


def mlflow_columns(tags: Iterable[str], params: Iterable[str], metrics: Iterable[str],
                   system_tags: Iterable[str] = ()) -> list[str]:
    """An MLflow export's columns, in order: id, name, description, tags, params, MLflow's read-only fields,
    the system tags asked for, the metrics asked for."""
    return [ID, *EDITABLE_FIELDS, *(TAG_PREFIX + t for t in tags), *(PARAM_PREFIX + p for p in params),
            *READONLY_FIELDS, *(TAG_PREFIX + t for t in system_tags), *(METRIC_PREFIX + m for m in metrics)]
