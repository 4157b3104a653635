"""Exporting runs to a sheet (`runsync.export`): the selection, the refusals before W&B is read, the write."""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from runsync.api.journals import advance_base
from runsync.api.reading import read
from runsync.backend import Backend, backend_for, parse_project_address
from runsync.errors import ConfigError, RunsyncError
from runsync.exporter.spill import RowSpill
from runsync.exporter.table import ExportShape, Table, base_rows, base_snapshot, build_table, stream_table
from runsync.fields import codec, kind_of
from runsync.fields.kind_base import MLFLOW
from runsync.model import ABSENT, ID, SheetData, SheetMeta
from runsync.version import __version__


@dataclass(frozen=True)
class Selection:
    """Which runs an export takes; recorded in the file."""

    filters: dict[str, Any] | str | None = None  # a str: the tracker's own filter language (MLflow's)
    order: str | None = None
    limit: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"filters": self.filters or {}, "order": self.order, "limit": self.limit}


@dataclass(frozen=True)
class ExportResult:
    path: str
    runs: int
    columns: list[str]
    warnings: tuple[str, ...] = ()  # e.g. a --config-keys name that no exported run has


def fetch_table(project: str, selection: Selection, shape: ExportShape, backend: Backend,
                 on_total: Callable[[int], None] | None, on_run: Callable[[], None] | None,
                 warnings: list[str] | None = None, spill: RowSpill | None = None) -> tuple[Table, SheetMeta]:
    """The table and its metadata. With `spill` a W&B table's rows go there as pages arrive, and the meta's
    base is left empty: it is `base_rows(table)`, read back from the spill (an MLflow table stays in memory)."""
    parse_project_address(project)
    tracker = backend.capabilities.tracker
    try:
        shape.check(tracker)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    records = backend.iter_runs(
        project, filters=selection.filters, order=selection.order, limit=selection.limit,
        with_summary=bool(shape.summary), on_total=on_total,  # page sizes: the backend's (they grow, W&B's)
        on_warning=None if warnings is None else warnings.append,  # e.g. runs the pages skipped
    )
    if spill is not None and tracker != MLFLOW:  # MLflow's columns are decided from all its runs: in memory
        table = stream_table(_counting(records, on_run), shape, spill)
    else:
        spill = None
        table = build_table(_counting(records, on_run), shape, tracker)
    meta = SheetMeta(
        project=project,
        selection=selection.to_json(),
        exported_at=datetime.now(timezone.utc).isoformat(timespec="microseconds"),  # also the export's identity
        runsync_version=__version__,
        config_paths=table.config_paths,
        base={} if spill is not None else base_snapshot(table),
        tag_columns=table.tag_vocabulary,
        editable_summary=list(shape.summary) if shape.edit_summary else [],
    )
    return table, meta


def _counting(records: Any, on_run: Callable[[], None] | None) -> Any:
    for record in records:
        if on_run:
            on_run()
        yield record


def export(
    project: str,
    path: str | os.PathLike[str],
    *,
    selection: Selection = Selection(),
    shape: ExportShape = ExportShape(),
    backend: Backend | None = None,
    on_total: Callable[[int], None] | None = None,
    on_run: Callable[[], None] | None = None,
    overwrite: bool = False,
    tracking_uri: str | None = None,
) -> ExportResult:
    """Write the project's selected runs to an XLSX or CSV sheet, with its base snapshot; returns an ExportResult.

    Refuses, before asking W&B for anything, a path it can't write, and (unless `overwrite`) a file that
    holds edits not imported yet or that it can't read. `tracking_uri`: an MLflow project's server (else
    MLFLOW_TRACKING_URI).
    """
    from runsync.sheets import sidecar_path, write_sheet

    target = str(path)
    if not target.lower().endswith((".xlsx", ".csv")):
        raise ConfigError(f"{target}: the output must end in .xlsx or .csv")
    project = parse_project_address(project).path  # `team/proj/` -> `team/proj`, as the file records it
    _check_writable(target)
    if target.lower().endswith(".csv") and os.path.isdir(sidecar_path(target)):
        raise ConfigError(f"cannot write {sidecar_path(target)} (the CSV's sidecar): it is a folder")
    if not overwrite:
        _refuse_unsaved_edits(target)
    listing: list[str] = []
    backend = backend_for(project, backend, tracking_uri=tracking_uri)
    # The rows wait in an unnamed file beside the output (a folder just checked writable), closed and so
    # removed however this ends; 100,000 runs held in memory took 500 MiB (issue 20 §4).
    with RowSpill(os.path.dirname(os.path.abspath(target))) as spill:
        table, meta = fetch_table(project, selection, shape, backend, on_total, on_run, listing, spill)
        try:
            # A streamed table's base is read back from the spill; an in-memory one's is meta.base already.
            write_sheet(target, table.columns, table.rows, meta, base=base_rows(table) if table.rows is spill else None)
        except ValueError as exc:  # e.g. a cell over a spreadsheet program's size limit
            raise RunsyncError(f"{target}: {exc}") from None
    unmatched = tuple(f"{name}: no exported run has this "
                      f"{'summary metric' if name.startswith('--summary') else 'config key'}" for name in table.unmatched)
    return ExportResult(target, len(table.rows), table.columns, (*listing, *unmatched))


def _check_writable(target: str) -> None:
    """Fail now, not after fetching every run, when `target` can't be written (one line, no traceback)."""
    if os.path.isdir(target):
        raise ConfigError(f"cannot write {target}: it is a folder", hint="name a file, e.g. -o runs.xlsx")
    folder = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(folder):
        what = "is not a folder" if os.path.exists(folder) else "does not exist"
        raise ConfigError(f"cannot write {target}: folder {folder} {what}")
    try:  # the real test: the sheet is written as a temp file in this folder, then renamed
        fd, probe = tempfile.mkstemp(prefix=".runsync-probe-", dir=folder)
    except OSError as exc:
        raise ConfigError(f"cannot write {target}: folder {folder} is not writable ({exc.strerror})") from None
    os.close(fd)
    os.unlink(probe)


def _refuse_unsaved_edits(target: str) -> None:
    """Refuse to replace a sheet whose edits were not imported, or one that can't be told unedited."""
    if not os.path.exists(target):
        return
    replace = "export to another file, or pass --overwrite to replace it"
    try:
        sheet = read(target)
    except (RunsyncError, OSError, ValueError) as exc:
        why = exc.message if isinstance(exc, RunsyncError) else f"{type(exc).__name__}: {exc}"
        raise ConfigError(f"{target} exists and can't be read as a runsync sheet ({why}): not replaced",
                          hint=replace) from None
    if sheet.meta is None:
        raise ConfigError(f"{target} exists and has no runsync base snapshot, so edits in it can't be ruled "
                          "out: not replaced", hint=replace)
    advance_base(sheet, {})  # imported cells are not unsaved edits (only confirmed writes count here)
    edits = sheet_differs_from_base(sheet)
    if edits:
        shown = "; ".join(f"row {row}, column {column!r}" for row, column in edits[:3])
        more = f" and {len(edits) - 3} more" if len(edits) > 3 else ""
        raise ConfigError(f"{target} has edits not imported yet ({shown}{more}): not replaced",
                          hint=f"import them first (runsync import {target}), {replace}")


def sheet_differs_from_base(sheet: SheetData) -> list[tuple[int, str]]:
    """(row, column) of every cell that no longer holds its exported value; no W&B request. Pure."""
    from runsync.planner.damage import mangled_by_program

    if sheet.meta is None:
        raise ValueError(f"{sheet.path}: no base snapshot to compare with")
    source = "xlsx" if sheet.path.lower().endswith(".xlsx") else "csv"
    edits = [(e.row or 1, e.column or "") for e in sheet.errors]  # an export has no duplicate ids, ...
    for row_no, cells in sheet.rows:
        base = sheet.meta.base.get(str(cells.get(ID) or "").strip())
        if base is None:
            edits.append((row_no, ID))  # a row added, or an id edited
            continue
        for column in sheet.columns:
            kind = kind_of(column)
            if kind.name in ("id", "status"):
                continue
            raw, old = cells.get(column), kind.from_base(base.get(column, ABSENT))
            # as the column's kind decodes it (no column type: the cell is judged against its own base)
            value = kind.decode(raw, column=column, base=old, source=source)
            if isinstance(value, codec.CellProblem):
                edits.append((row_no, column))
            elif value is None and old is ABSENT:
                continue  # an empty cell where the run had no such key
            elif not kind.same(value, old) and not mangled_by_program(old, raw):
                edits.append((row_no, column))
    return edits
