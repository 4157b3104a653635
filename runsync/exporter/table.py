"""Build the exported table (columns, typed rows, base snapshot) from runs. Pure, but for stream_table's spill file."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from runsync.exporter.spill import RowSpill
from runsync.fields import ConfigKey, TagTick, codec, export_columns, kind_of, summary_column, tag_column
from runsync.fields.kind_base import MLFLOW, WANDB
from runsync.fields.mlflow_kinds import METRIC_PREFIX, PARAM_PREFIX, SYSTEM_TAG_PREFIX, TAG_PREFIX, mlflow_columns
from runsync.model import ABSENT, ID, RunRecord
from runsync.sheets.common import Rows


@dataclass(frozen=True)
class ExportShape:
    """Which columns an export has; every option of `runsync export` that narrows the sheet."""

    columns: tuple[str, ...] | None = None  # keep only these (id is always kept)
    config_keys: tuple[str, ...] | None = None  # keep only config keys equal to or under these
    summary: tuple[str, ...] = ()  # summary metrics to add as read-only columns
    tag_columns: bool = False  # one TRUE/FALSE column per tag
    edit_summary: bool = False  # the summary columns are editable (marked so in the file)

    def check(self, tracker: str = WANDB) -> None:
        """Refuse column names that can never match, before anything is fetched."""
        if tracker == MLFLOW:
            return self._check_mlflow()
        metrics = {summary_column(m) for m in self.summary}
        unknown = [c for c in self.columns or () if not kind_of(c).exportable and c not in metrics]
        if unknown:
            raise ValueError(f"--columns: unknown column(s) {', '.join(map(repr, unknown))}; known: "
                             f"{', '.join(export_columns())}, config.KEY, "
                             "summary.METRIC (with --summary)")
        if self.edit_summary and not self.summary:
            raise ValueError("--edit-summary needs --summary METRIC,...: which metrics to make editable")
        if self.edit_summary and (own := [m for m in self.summary if m.startswith("_")]):
            raise ValueError(f"--edit-summary: {', '.join(own)} are W&B's own keys (`_`), never edited; "
                             "leave them out or export them read-only without --edit-summary")
        if any(not k.strip() for k in self.config_keys or ()):
            raise ValueError("--config-keys: an empty key")
        if unknown := [c for c in self.columns or () if MLFLOW in kind_of(c).trackers and WANDB not in kind_of(c).trackers]:
            raise ValueError(f"--columns: {', '.join(map(repr, unknown))} are MLflow's columns, not W&B's")

    def _check_mlflow(self) -> None:
        own = [c for c in self.columns or () if not (kind_of(c).exportable and MLFLOW in kind_of(c).trackers)]
        if own:
            raise ValueError(f"--columns: unknown column(s) {', '.join(map(repr, own))} for MLflow; known: "
                             f"{', '.join(mlflow_columns([], [], []))}, tags.KEY, params.KEY, tags.mlflow.KEY "
                             "(MLflow's own, read-only), metrics via --summary")
        if self.tag_columns:
            raise ValueError("--tag-columns: MLflow tags have keys: each is a tags.KEY column already")
        if self.edit_summary:
            raise ValueError("--edit-summary: MLflow metrics only grow a history; they are exported read-only")
        if any(not k.strip() for k in self.config_keys or ()):
            raise ValueError("--config-keys: an empty key")


@dataclass
class Table:
    columns: list[str]
    rows: Rows  # typed values; a missing key is an absent value (a list, or a RowSpill: stream_table)
    config_paths: dict[str, list[str]]
    tag_vocabulary: list[str]
    unmatched: list[str] = field(default_factory=list)  # --columns / --config-keys / --summary names no run had


def _key_path(name: str) -> tuple[str, ...]:
    """A --config-keys entry (`lr`, `opt.lr`, `a\\.b`) or a config.* column name as a key path."""
    return codec.config_path(name)  # the `config.` is optional


def _under_any(path: Sequence[str], prefixes: Sequence[tuple[str, ...]]) -> bool:
    return any(tuple(path[: len(p)]) == p for p in prefixes)


def build_table(records: Iterable[RunRecord], shape: ExportShape = ExportShape(), tracker: str = WANDB) -> Table:
    """The whole table in memory (`runsync.frame`, MLflow); `stream_table` is the export's, for any number of runs."""
    if tracker == MLFLOW:
        return _mlflow_table(records, shape)
    builder = _Rows(shape)
    rows = [builder.row(record) for record in records]
    table = builder.table(rows)
    ticks = builder.ticks(table.tag_vocabulary)
    for row in rows:
        ticks(row)
    return table


def stream_table(records: Iterable[RunRecord], shape: ExportShape, spill: RowSpill) -> Table:
    """A W&B table whose rows go to `spill` as the runs arrive; the rows read back carry their tag ticks."""
    builder = _Rows(shape)
    for record in records:
        spill.append(builder.row(record))
    table = builder.table(spill)
    if table.tag_vocabulary:
        spill.finish = builder.ticks(table.tag_vocabulary)
    return table


class _Rows:
    """Builds a W&B export's rows one run at a time, gathering what the columns need from all of them."""

    def __init__(self, shape: ExportShape) -> None:
        self.shape = shape
        self.config_paths: dict[str, list[str]] = {}
        # Config columns come from --config-keys, and from config.* names in --columns; with neither, all of them.
        listed = [_key_path(c) for c in shape.columns or () if isinstance(kind_of(c), ConfigKey)]
        self.wanted_keys: list[tuple[str, ...]] | None = None
        if shape.config_keys is not None:
            self.wanted_keys = [_key_path(k) for k in shape.config_keys] + listed
        elif shape.columns is not None:
            self.wanted_keys = listed
        self.tags_seen: dict[str, None] = {}
        # `--summary a.b` is the metric b nested in a; `a\\.b` the key "a.b" (codec.summary_path).
        self.metrics = [(summary_column(m), codec.summary_path(summary_column(m))) for m in shape.summary]
        self.found_metrics: set[str] = set()
        self.names: dict[str, str] = {}  # one str per column name, not one per run (a run's config names are new)

    def row(self, record: RunRecord) -> dict[str, Any]:
        row: dict[str, Any] = {
            ID: record.id,
            "name": record.name,
            "tags": list(record.tags),
            "group": record.group or None,
            "job_type": record.job_type or None,
            "notes": record.notes or None,
            "state": record.state,
            "created_at": record.created_at,
            "url": record.url,
        }
        wanted_keys, names = self.wanted_keys, self.names
        for column, (path, value) in codec.flatten_config(record.config).items():
            if wanted_keys is None or _under_any(path, wanted_keys):
                column = names.setdefault(column, column)
                self.config_paths.setdefault(column, list(path))
                row[column] = value
        for column, path in self.metrics:
            value = codec.get_path(record.summary, path)
            if value is not ABSENT:
                row[column] = value
                self.found_metrics.add(column)
        for tag in record.tags:
            self.tags_seen.setdefault(tag, None)
        return row

    def ticks(self, vocabulary: list[str]) -> Callable[[dict[str, Any]], dict[str, Any]]:
        """Adds a row's TRUE/FALSE cell for each tag of the vocabulary (known only once every run is seen)."""
        columns = [(tag, tag_column(tag)) for tag in vocabulary]

        def tick(row: dict[str, Any]) -> dict[str, Any]:
            tags = row["tags"]
            for tag, column in columns:
                row[column] = tag in tags
            return row

        return tick

    def table(self, rows: Rows) -> Table:
        shape, config_paths = self.shape, self.config_paths
        vocabulary = sorted(self.tags_seen) if shape.tag_columns else []
        columns = export_columns(vocabulary, sorted(config_paths), shape.summary)
        if shape.columns is not None:
            # What --summary, --tag-columns and --config-keys ask for stays: each is a request of its own.
            keep = set(shape.columns) | {ID} | {summary_column(m) for m in shape.summary}
            columns = [c for c in columns if c in keep or isinstance(kind_of(c), (ConfigKey, TagTick))]
        found = [tuple(p) for p in config_paths.values()]
        unmatched = [name for name, path in
                     [(f"--config-keys {k}", _key_path(k)) for k in shape.config_keys or ()]
                     + [(f"--columns {c}", _key_path(c)) for c in shape.columns or () if isinstance(kind_of(c), ConfigKey)]
                     if not any(p[: len(path)] == path for p in found)]
        unmatched += [f"--summary {m}" for m in shape.summary if summary_column(m) not in self.found_metrics]
        return Table(columns, rows, {c: p for c, p in config_paths.items() if c in columns}, vocabulary, unmatched)


def _mlflow_table(records: Iterable[RunRecord], shape: ExportShape) -> Table:
    """An MLflow export: the registry's columns for MLflow (mlflow_kinds.mlflow_columns), each cell its kind's
    reading of the run; params narrowed by --config-keys, system tags only when --columns names them."""
    runs = list(records)
    tags = sorted({k for r in runs for k in r.tag_values})
    params = sorted({k for r in runs for k in r.config})
    asked = shape.columns
    system = [c[len(TAG_PREFIX):] for c in asked or () if c.startswith(SYSTEM_TAG_PREFIX)]
    wanted_params = [k[len(PARAM_PREFIX):] if k.startswith(PARAM_PREFIX) else k for k in shape.config_keys or ()]
    if shape.config_keys is not None:
        params = [p for p in params if p in wanted_params]
    columns = mlflow_columns(tags, params, shape.summary, system)
    if asked is not None:
        keep = {*asked, ID, *(METRIC_PREFIX + m for m in shape.summary),
                *(PARAM_PREFIX + p for p in wanted_params)}
        columns = [c for c in columns if c in keep]
    rows = []
    for record in runs:
        row: dict[str, Any] = {}
        for column in columns:
            value = record.id if column == ID else kind_of(column).live(record, column)
            if value is not ABSENT:
                row[column] = value
        rows.append(row)
    found = {c for row in rows for c in row}
    unmatched = [f"--summary {m}" for m in shape.summary if METRIC_PREFIX + m not in found]
    unmatched += [f"--config-keys {k}" for k in wanted_params if PARAM_PREFIX + k not in found]
    unmatched += [f"--columns {c}" for c in asked or () if c not in found and kind_of(c).keyed]
    return Table(columns, rows, {}, [], unmatched)


def base_snapshot(table: Table) -> dict[str, dict[str, Any]]:
    """Per run, the exported value of every cell but the id: what the 3-way diff compares against."""
    return dict(base_rows(table))


def base_rows(table: Table) -> Iterator[tuple[str, dict[str, Any]]]:
    """base_snapshot's items, one run at a time (a streamed export never holds them all)."""
    columns = [c for c in table.columns if c != ID]
    for row in table.rows:
        yield row[ID], {c: row[c] for c in columns if c in row}
