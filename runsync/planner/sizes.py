"""The plan's size check: an edit that would take a run's config past the service's limit is a plan error (W&B
answers such a write HTTP 400 "run config cannot exceed 15 MB"), found before anything is written."""
from __future__ import annotations

from collections.abc import Iterable, Mapping

from runsync.errors import CellError
from runsync.fields import kind_of
from runsync.fields.kinds import WRITE_CONFIG
from runsync.fields.limits import config_bytes, config_too_large, max_config_bytes
from runsync.model import Change, RunRecord
from runsync.writer.patches import config_after, write_fields


def config_size_errors(changes: Iterable[Change], live: Mapping[str, RunRecord], *, file: str,
                       rows: Mapping[str, int] | None = None) -> list[CellError]:
    """One error per run whose config these changes would take past the limit, naming its config columns."""
    limit = max_config_bytes()
    if not limit:
        return []
    by_run: dict[str, list[Change]] = {}
    for change in changes:
        if kind_of(change.field).write_to == WRITE_CONFIG:
            by_run.setdefault(change.run_id, []).append(change)
    errors = []
    for run_id, edits in by_run.items():
        record = live.get(run_id)
        if record is None:
            continue
        size = config_bytes(config_after(record, write_fields(record, edits)))
        if size <= limit:
            continue
        columns = list(dict.fromkeys(c.field for c in edits))
        named = "" if len(columns) == 1 else f"with the edits to {', '.join(map(repr, columns))}, "
        errors.append(CellError(file, (rows or {}).get(run_id), run_id, columns[0],
                                named + config_too_large(size, limit)))
    return errors


__all__ = ["config_size_errors"]
