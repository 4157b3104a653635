"""Build the exported table (columns, typed rows, base snapshot) from W&B runs. Pure: no I/O."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from runsync import codec
from runsync.model import (
    CONFIG_PREFIX,
    EDITABLE_FIELDS,
    ID,
    READONLY_FIELDS,
    SUMMARY_PREFIX,
    TAG_COLUMN_PREFIX,
    RunRecord,
)


@dataclass(frozen=True)
class ExportShape:
    """Which columns an export has; every option of `runsync export` that narrows the sheet."""

    columns: tuple[str, ...] | None = None  # keep only these (id is always kept)
    config_keys: tuple[str, ...] | None = None  # keep only config keys equal to or under these
    summary: tuple[str, ...] = ()  # summary metrics to add as read-only columns
    tag_columns: bool = False  # one TRUE/FALSE column per tag


@dataclass
class Table:
    columns: list[str]
    rows: list[dict[str, Any]]  # typed values; a missing key is an absent value
    config_paths: dict[str, list[str]]
    tag_vocabulary: list[str]


def _wanted_config(column: str, keys: Sequence[str] | None) -> bool:
    if keys is None:
        return True
    dotted = column[len(CONFIG_PREFIX) :]
    return any(dotted == k or dotted.startswith(k + ".") for k in keys)


def build_table(records: Iterable[RunRecord], shape: ExportShape = ExportShape()) -> Table:
    rows: list[dict[str, Any]] = []
    config_paths: dict[str, list[str]] = {}
    tags_seen: dict[str, None] = {}
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
            if _wanted_config(column, shape.config_keys):
                config_paths.setdefault(column, list(path))
                row[column] = value
        for metric in shape.summary:
            if metric in record.summary:
                row[SUMMARY_PREFIX + metric] = record.summary[metric]
        for tag in record.tags:
            tags_seen.setdefault(tag, None)
        rows.append(row)
    vocabulary = sorted(tags_seen) if shape.tag_columns else []
    for row in rows:
        for tag in vocabulary:
            row[TAG_COLUMN_PREFIX + tag] = tag in row["tags"]
    columns = [ID, *EDITABLE_FIELDS, *(TAG_COLUMN_PREFIX + t for t in vocabulary), *sorted(config_paths),
               *READONLY_FIELDS, *(SUMMARY_PREFIX + m for m in shape.summary)]
    if shape.columns is not None:
        keep = set(shape.columns) | {ID}
        columns = [c for c in columns if c in keep or (c.startswith(CONFIG_PREFIX) and _under(c, keep))]
    return Table(columns, rows, {c: p for c, p in config_paths.items() if c in columns}, vocabulary)


def _under(column: str, keep: set[str]) -> bool:
    return any(column.startswith(k + ".") for k in keep)


def base_snapshot(table: Table) -> dict[str, dict[str, Any]]:
    """Per run, the exported value of every cell but the id: what the 3-way diff compares against."""
    return {row[ID]: {c: row[c] for c in table.columns if c != ID and c in row} for row in table.rows}
