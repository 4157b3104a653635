"""Build the exported table (columns, typed rows, base snapshot) from W&B runs. Pure: no I/O."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from runsync.fields import ConfigKey, TagTick, codec, export_columns, kind_of, summary_column, tag_column
from runsync.model import ABSENT, ID, RunRecord


@dataclass(frozen=True)
class ExportShape:
    """Which columns an export has; every option of `runsync export` that narrows the sheet."""

    columns: tuple[str, ...] | None = None  # keep only these (id is always kept)
    config_keys: tuple[str, ...] | None = None  # keep only config keys equal to or under these
    summary: tuple[str, ...] = ()  # summary metrics to add as read-only columns
    tag_columns: bool = False  # one TRUE/FALSE column per tag
    edit_summary: bool = False  # the summary columns are editable (marked so in the file)

    def check(self) -> None:
        """Refuse column names that can never match, before anything is fetched."""
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


@dataclass
class Table:
    columns: list[str]
    rows: list[dict[str, Any]]  # typed values; a missing key is an absent value
    config_paths: dict[str, list[str]]
    tag_vocabulary: list[str]
    unmatched: list[str] = field(default_factory=list)  # --columns / --config-keys / --summary names no run had


def _key_path(name: str) -> tuple[str, ...]:
    """A --config-keys entry (`lr`, `opt.lr`, `a\\.b`) or a config.* column name as a key path."""
    return codec.config_path(name)  # the `config.` is optional


def _under_any(path: Sequence[str], prefixes: Sequence[tuple[str, ...]]) -> bool:
    return any(tuple(path[: len(p)]) == p for p in prefixes)


def build_table(records: Iterable[RunRecord], shape: ExportShape = ExportShape()) -> Table:
    rows: list[dict[str, Any]] = []
    config_paths: dict[str, list[str]] = {}
    # Config columns come from --config-keys, and from config.* names in --columns; with neither, all of them.
    listed = [_key_path(c) for c in shape.columns or () if isinstance(kind_of(c), ConfigKey)]
    wanted_keys: list[tuple[str, ...]] | None = None
    if shape.config_keys is not None:
        wanted_keys = [_key_path(k) for k in shape.config_keys] + listed
    elif shape.columns is not None:
        wanted_keys = listed
    tags_seen: dict[str, None] = {}
    # `--summary a.b` is the metric b nested in a; `a\\.b` the key "a.b" (codec.summary_path).
    metrics = [(summary_column(m), codec.summary_path(summary_column(m))) for m in shape.summary]
    found_metrics: set[str] = set()
    for record in records:
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
        for column, (path, value) in codec.flatten_config(record.config).items():
            if wanted_keys is None or _under_any(path, wanted_keys):
                config_paths.setdefault(column, list(path))
                row[column] = value
        for column, path in metrics:
            value = codec.get_path(record.summary, path)
            if value is not ABSENT:
                row[column] = value
                found_metrics.add(column)
        for tag in record.tags:
            tags_seen.setdefault(tag, None)
        rows.append(row)
    vocabulary = sorted(tags_seen) if shape.tag_columns else []
    for row in rows:
        for tag in vocabulary:
            row[tag_column(tag)] = tag in row["tags"]
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
    unmatched += [f"--summary {m}" for m in shape.summary if summary_column(m) not in found_metrics]
    return Table(columns, rows, {c: p for c, p in config_paths.items() if c in columns}, vocabulary, unmatched)


def base_snapshot(table: Table) -> dict[str, dict[str, Any]]:
    """Per run, the exported value of every cell but the id: what the 3-way diff compares against."""
    return {row[ID]: {c: row[c] for c in table.columns if c != ID and c in row} for row in table.rows}
