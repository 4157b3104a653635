"""The Python API: everything the CLI does, importable (`runsync.export`, `plan`, `apply`, `undo`, `frame`)."""
from __future__ import annotations

import contextlib
import gc
import os
import tempfile
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runsync.backend import Backend, connect, parse_project_address
from runsync.errors import (
    BackendError,
    CellError,
    ConfigError,
    RunsyncError,
    SheetError,
)
from runsync.exporter.table import ExportShape, Table, base_snapshot, build_table
from runsync.fields import SummaryMetric, codec, kind_of
from runsync.journal.events import (
    check_can_append,
    export_header,
    journal_dir,
    new_journal_path,
    planned_keys,
    read_journal,
    undo_journal_path,
)
from runsync.journal.history import ExportHistory, export_history, later_writes
from runsync.journal.imports import Continuation, find_continuation
from runsync.model import (
    ABSENT,
    ID,
    ApplyReport,
    Plan,
    RunRecord,
    SheetData,
    SheetMeta,
)
from runsync.planner.diff import build_plan
from runsync.planner.undo import plan_undo
from runsync.sheets.frame_cells import FRAME_SOURCE
from runsync.sheets.twin_headers import twin_header_errors, twin_headers
from runsync.version import __version__
from runsync.words import counted
from runsync.writer.apply import apply_plan
from runsync.writer.options import DEFAULT_BATCH_SIZE, DEFAULT_CONCURRENCY, ApplyOptions

if TYPE_CHECKING:
    import pandas as pd

    from runsync.planner.early_fetch import EarlyFetch

# Plans made here -> what their journal's begin line says of where they came from (journal.export_header).
# Kept beside the (frozen, shared) Plan type rather than in it; an entry goes when its plan does.
_PLAN_HEADERS: dict[int, tuple[weakref.ref[Plan], dict[str, Any]]] = {}


def _remember_header(plan: Plan, header: dict[str, Any]) -> Plan:
    key = id(plan)

    def forget(_: object) -> None:
        _PLAN_HEADERS.pop(key, None)

    _PLAN_HEADERS[key] = (weakref.ref(plan, forget), header)
    return plan


def _header_of(plan: Plan) -> dict[str, Any]:
    entry = _PLAN_HEADERS.get(id(plan))
    return dict(entry[1]) if entry and entry[0]() is plan else {}


@dataclass(frozen=True)
class Selection:
    """Which runs an export takes; recorded in the file."""

    filters: dict[str, Any] | None = None
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


def _fetch_table(project: str, selection: Selection, shape: ExportShape, backend: Backend,
                 on_total: Callable[[int], None] | None, on_run: Callable[[], None] | None,
                 warnings: list[str] | None = None) -> tuple[Table, SheetMeta]:
    parse_project_address(project)
    try:
        shape.check()
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    records = backend.iter_runs(
        project, filters=selection.filters, order=selection.order, limit=selection.limit,
        with_summary=bool(shape.summary), on_total=on_total,  # page sizes: the backend's (they grow, W&B's)
        on_warning=None if warnings is None else warnings.append,  # e.g. runs the pages skipped
    )
    table = build_table(_counting(records, on_run), shape)
    meta = SheetMeta(
        project=project,
        selection=selection.to_json(),
        exported_at=datetime.now(timezone.utc).isoformat(timespec="microseconds"),  # also the export's identity
        runsync_version=__version__,
        config_paths=table.config_paths,
        base=base_snapshot(table),
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
) -> ExportResult:
    """Write the project's selected runs to an XLSX or CSV sheet, with its base snapshot; returns an ExportResult.

    Refuses, before asking W&B for anything, a path it can't write, and (unless `overwrite`) a file that
    holds edits not imported yet or that it can't read.
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
    table, meta = _fetch_table(project, selection, shape, backend or connect(project), on_total, on_run, listing)
    try:
        write_sheet(target, table.columns, table.rows, meta)
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
    _advance_base(sheet, {})  # imported cells are not unsaved edits (only confirmed writes count here)
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


def frame(
    project: str,
    *,
    filters: dict[str, Any] | None = None,
    order: str | None = None,
    limit: int | None = None,
    shape: ExportShape = ExportShape(),
    backend: Backend | None = None,
) -> pd.DataFrame:
    """The export as a pandas DataFrame (number columns typed, others object); the base rides in `df.attrs`."""
    from runsync.sheets.frame_cells import typed_frame

    table, meta = _fetch_table(project, Selection(filters, order, limit), shape, backend or connect(project), None, None)
    df = typed_frame(table.columns, table.rows)
    df.attrs["runsync"] = meta
    return df


def _sheet_from_frame(df: pd.DataFrame, meta: SheetMeta | None) -> SheetData:
    """An edited DataFrame as if it were a sheet: each cell as the text a CSV would hold."""
    from runsync.sheets import assemble
    from runsync.sheets.frame_cells import frame_rows

    problems: list[tuple[int, str | None, str, str]] = []
    header, raw_rows = frame_rows(df, meta.base if meta is not None else {}, meta is None, problems)
    errors: list[CellError] = []
    warnings: list[str] = []
    columns, rows = assemble(FRAME_SOURCE, header, raw_rows, errors, warnings)
    errors.extend(CellError(FRAME_SOURCE, row, run_id, column, message) for row, run_id, column, message in problems)
    return SheetData(FRAME_SOURCE, columns, rows, meta, warnings, errors)


@contextlib.contextmanager
def _cycle_collector_paused() -> Iterator[None]:
    """Pause Python's cycle collector: a 50,000-run sheet and its runs are millions of objects, none in a
    cycle, and the collector walking them again and again cost a fifth of a plan's time."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def read(path: str | os.PathLike[str], *, base: str | os.PathLike[str] | None = None) -> SheetData:
    """Read a sheet and its base snapshot (hidden sheet, sidecar, or `base`: a sidecar or the exported file);
    returns its SheetData (raw cells, meta, warnings, errors)."""
    with _cycle_collector_paused():
        return _read(path, base=base)


def _read(path: str | os.PathLike[str], *, base: str | os.PathLike[str] | None = None) -> SheetData:
    from runsync.sheets import read_sheet

    base_path = str(base) if base else None
    if base_path and not base_path.lower().endswith(".json"):
        sheet = read_sheet(str(path))
        original = read_sheet(base_path)
        if original.meta is None:
            raise ConfigError(f"{base_path}: carries no runsync base snapshot")
        sheet.meta = original.meta
        # The base is given: a reader's "no base snapshot" (a hidden sheet a program dropped) no longer holds.
        sheet.warnings = [w for w in sheet.warnings if "no base snapshot" not in w]
        sheet.exported_as = original.exported_as  # a CSV saved as XLSX: its cells went through text
        return sheet
    return read_sheet(str(path), base_path=base_path)


def plan(
    source: str | os.PathLike[str] | pd.DataFrame,
    *,
    base: str | os.PathLike[str] | None = None,
    project: str | None = None,
    force: bool = False,
    strict: bool = False,
    include_running: bool = False,
    new_keys: bool = False,
    backend: Backend | None = None,
    on_total: Callable[[int], None] | None = None,
    on_run: Callable[[], None] | None = None,
    allow_text: bool = False,
) -> Plan:
    """The 3-way plan for an edited sheet (path) or DataFrame from `frame()`; writes nothing. Returns the Plan.

    `on_total(n)` is called once the sheet's run ids are known and W&B is read for them, `on_run()` for each
    run read (a progress bar; the CLI shows one on a terminal).

    Text typed into a column whose values all share another type (`Yes` among booleans, `0,01` among
    floats) is a cell error unless `allow_text` (then written as text, with a warning); a cell typed as a
    JSON string (`"0,01"`) is text on purpose. `strict` refuses that text even with `allow_text`.
    `new_keys` (the CLI's --new-keys) opts in to creating config keys the runs lack, which W&B cannot delete:
    without it `apply` refuses such a plan, and a header that differs from an exported one only by case,
    spaces or invisible characters raises SheetError before W&B is read.
    """
    early = None
    with _cycle_collector_paused():
        if isinstance(source, (str, os.PathLike)) and base is None and str(source).lower().endswith(".xlsx") \
                and os.path.isfile(source):
            # W&B is read on a thread from the moment the sheet's ids are known (runsync/planner/early_fetch.py).
            from runsync.planner.early_fetch import EarlyFetch
            from runsync.sheets.xlsx_io import read_xlsx

            if backend is None:
                backend = connect(project)
                backend.connect_in_background()  # the client and its sidecar start while calamine reads
            early = EarlyFetch(backend, project, on_total, on_run)

            def read_ahead(header: dict[str, Any], ids: list[str], columns: list[str]) -> None:
                # Not when the header will be refused: then nothing is read from W&B.
                if new_keys or not _twins_in(columns, header):
                    early.start(header, ids)

            sheet = read_xlsx(os.fspath(source), on_ids=read_ahead)
        elif isinstance(source, (str, os.PathLike)):
            sheet = _read(source, base=base)
        else:
            sheet = _sheet_from_frame(source, source.attrs.get("runsync"))
        return _plan_sheet(sheet, project=project, force=force, strict=strict, include_running=include_running,
                           new_keys=new_keys, backend=backend, early=early, on_total=on_total, on_run=on_run,
                           allow_text=allow_text)


def _twins_in(columns: list[str], header: dict[str, Any]) -> bool:
    """Whether a sheet's header (and its metadata header, unchecked JSON) has a twin header (plan.twin_headers)."""
    config, tags = header.get("config_paths"), header.get("tag_columns")
    return bool(twin_headers(columns, config if isinstance(config, dict) else (),
                             tags if isinstance(tags, list) else ()))


def plan_sheet(sheet: SheetData, *, project: str | None = None, force: bool = False, strict: bool = False,
               include_running: bool = False, new_keys: bool = False, backend: Backend | None = None,
               allow_text: bool = False) -> Plan:
    """The 3-way Plan for a sheet already read (`read`); writes nothing. `new_keys`, `allow_text`: as for `plan`."""
    with _cycle_collector_paused():
        return _plan_sheet(sheet, project=project, force=force, strict=strict, include_running=include_running,
                           new_keys=new_keys, backend=backend, allow_text=allow_text)


def _plan_sheet(sheet: SheetData, *, project: str | None, force: bool, strict: bool, include_running: bool,
                backend: Backend | None, early: EarlyFetch | None = None, new_keys: bool = False,
                on_total: Callable[[int], None] | None = None, on_run: Callable[[], None] | None = None,
                allow_text: bool = False) -> Plan:
    if sheet.meta is None and project is None and sheet.path == FRAME_SOURCE:
        raise ConfigError(f"{FRAME_SOURCE}: no base snapshot in df.attrs['runsync'] (a pandas operation may have "
                          "dropped it)", hint="keep df.attrs from runsync.frame (df2.attrs = df.attrs), start from "
                          "runsync.frame(...), or pass project='ENTITY/PROJECT' for a 2-way diff")
    if sheet.meta is None and project is None:
        # The reader's warning says what was lost (e.g. the hidden sheet); else say what was looked for.
        why = "; ".join(sheet.warnings) or f"{sheet.path}: no base snapshot (no .runsync.json sidecar next to it)"
        raise ConfigError(
            why,
            hint="pass --base with the exported file or its sidecar; or --project ENTITY/PROJECT for a 2-way diff",
        )
    if project is not None:
        project = parse_project_address(project).path  # `team/proj/`, a pasted W&B URL -> `team/proj`
    if sheet.meta is not None and project is not None and project != sheet.meta.project:
        raise ConfigError(f"{sheet.path}: exported from {sheet.meta.project}, not {project}")
    target = project or sheet.meta.project  # type: ignore[union-attr]
    parse_project_address(target)
    if sheet.meta is None:
        sheet.warnings.insert(0, f"{sheet.path}: no base snapshot: 2-way diff against W&B, conflicts cannot be detected")
    if not new_keys and (twins := twin_header_errors(sheet)):
        if early is not None:
            early.take(target, [], False, lambda _: None)  # waits for a read ahead, if one started
        raise SheetError(twins)  # from the header alone, before anything is read from W&B
    ids = [str(cells[ID]).strip() for _, cells in sheet.rows if cells.get(ID) not in (None, "")]
    try:
        editable_summary = bool(sheet.meta and sheet.meta.editable_summary)  # then W&B's summary is compared too
        live: dict[str, RunRecord] | None = early.take(target, ids, editable_summary, sheet.warnings.append) \
            if early is not None and ids else None
        if live is None:
            if on_total is not None and ids:
                on_total(len(set(ids)))
            live = (backend or connect(target)).fetch_by_ids(
                target, ids, on_warning=sheet.warnings.append, with_summary=editable_summary,
                on_run=on_run) if ids else {}  # ids the pages missed: in the plan
    except BackendError as exc:  # e.g. the sheet's project is gone: say which sheet asked for it
        raise BackendError(f"{sheet.path}: {exc.message}", hint=exc.hint) from None
    history = _advance_base(sheet, live)
    header = export_header(sheet.path, sheet.meta.exported_at if sheet.meta else None)
    plan = build_plan(sheet, live, project=target, force=force, strict=strict, include_running=include_running,
                      new_keys=new_keys, history=history, allow_text=allow_text)
    return _remember_header(plan.with_run_urls(live), header)


def _advance_base(sheet: SheetData, live: dict[str, RunRecord]) -> ExportHistory | None:
    """Count runsync's own earlier writes to this sheet's export (its imports' journals) as part of the base.

    Without them a value fixed again after an import would look "changed in W&B", and a re-export would
    take the imported cells for unsaved edits. Returns what each import wrote over, for the planner to
    tell a sheet that predates an import (runsync.journal.history).
    """
    if sheet.meta is None:
        return None
    folder = journal_dir(_frame_home(sheet.meta.project)) if sheet.path == FRAME_SOURCE else None
    history = export_history(sheet.path, sheet.meta.project, sheet.meta.exported_at, sheet.meta.base, live,
                             folder=folder)
    if history.moved:
        merged = dict(sheet.meta.base)
        for run_id, values in history.moved.items():
            merged[run_id] = {**merged.get(run_id, {}), **values}
        sheet.meta = replace(sheet.meta, base=merged)  # a copy: a DataFrame's attrs keep the export's
    return history


def default_journal(source: str, project: str | None = None) -> str:
    """A new, empty journal for one import of `source`: SOURCE.runsync-journals/<UTC time>-<n>.jsonl.

    A `runsync set` plan has no file to sit beside: runsync's state folder (set_edits.new_set_journal).
    """
    from runsync.planner.set_edits import is_set_source, new_set_journal

    if project and is_set_source(source):
        return new_set_journal(project)
    if project and source == FRAME_SOURCE:
        return new_journal_path(_frame_home(project))
    return new_journal_path(source)


def _frame_home(project: str) -> Path:
    """A DataFrame has no file for its journals to sit beside: STATE/ENTITY/PROJECT/frame(.runsync-journals)."""
    from runsync.planner.set_edits import state_dir

    address = parse_project_address(project)
    return state_dir() / address.owner / address.name / "frame"


def apply(
    plan: Plan,
    *,
    journal: str | os.PathLike[str] | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    force: bool = False,
    backend: Backend | None = None,
    on_run_done: Callable[[str], None] | None = None,
    verify: bool = True,
    batch_size: int = DEFAULT_BATCH_SIZE,
    new_keys: bool = False,
) -> ApplyReport:
    """Write a plan's changes to W&B; refuses a plan with errors, conflicts unless `force`, and one that creates
    config keys (`Plan.new_key_counts`) unless `new_keys` here or when planning.

    `verify`: read the written runs back (one request per page of ids) and report, in `did_not_stick`,
    every field that does not hold what was written. `batch_size`: runs per write request (1: one per request).
    Returns the ApplyReport: what was written, refused, skipped, and the journal.
    """
    if plan.errors:
        raise SheetError(list(plan.errors))
    if plan.conflicts and not force:
        raise RunsyncError(f"{counted(len(plan.conflicts), 'conflict')}: nothing written",
                           hint="--force lets the sheet win")
    if any(not c.overridable for c in plan.conflicts):  # the sheet predates an import: --force would revert it
        raise RunsyncError(f"{counted(len(plan.conflicts), 'conflict')}: nothing written",
                           hint="the sheet predates an import of its export (see each conflict): --force does not "
                                "override that; put the import's value back in the cell, or re-export")
    if not new_keys and (refusal := new_keys_refusal(plan, force=force)):
        raise RunsyncError(refusal)
    if not plan.changes:
        return ApplyReport()  # nothing to write: no journal either
    header = _header_of(plan)
    if journal is None:
        found = continued_import(plan)
        if found is not None and found.continues:  # the re-run of an interrupted import: one journal, one undo
            path, header = found.entry.journal, {**header, "continues": True}
        else:
            path = default_journal(plan.source, plan.project)
    else:
        path = str(journal)
        check_can_append(path, plan.project, header)  # the same import re-run may add to it; another may not
    options = ApplyOptions(journal=path, concurrency=concurrency, batch_size=batch_size, force=force, header=header,
                           include_running=plan.include_running, verify=verify)
    return apply_plan(plan, backend or connect(plan.project), options, on_run_done=on_run_done)


def continued_import(plan: Plan) -> Continuation | None:
    """The interrupted import of this plan's sheet and export that `apply(plan)` (no journal given) meets, if any:
    continued when it planned every change of `plan` (runsync.journal.imports); else `plan` gets a journal of its own."""
    header = _header_of(plan)
    if plan.undo or not header.get("exported_at"):
        return None
    home = _frame_home(plan.project) if plan.source == FRAME_SOURCE else plan.source
    return find_continuation(journal_dir(home), plan.project, header.get("sheet"), header["exported_at"],
                             planned_keys(plan.changes))


def new_keys_refusal(plan: Plan, *, force: bool = False) -> str | None:
    """Why `plan` may not be applied as it stands: it creates config keys (which W&B cannot delete) and the
    user did not ask for them by name (--new-keys); one line naming the columns, or None."""
    if plan.new_keys_allowed or plan.undo:  # an undo puts back what was there: it asks for nothing new
        return None
    # What apply writes: the changes, and the conflicts when forced.
    written = replace(plan, conflicts=plan.conflicts if force else ()).new_key_counts
    if not written:
        return None
    shown = ", ".join(f"{field!r} ({counted(n, 'run')})" for field, n in written.items())
    return (f"{plan.source}: the plan creates config keys W&B cannot delete (undo only sets them to null): "
            f"{shown}; nothing written: pass --new-keys to create them")


def plan_undo_journal(journal: str | os.PathLike[str], *, force: bool = False,
                      backend: Backend | None = None) -> Plan:
    """The undo of one journal's import as a Plan against W&B now; `undo(journal, plan=...)` applies it."""
    contents = read_journal(journal)
    if not contents.project:
        raise RunsyncError(f"{journal}: the journal names no project")
    ids = sorted({h.run_id for h in contents.fields})
    with_summary = any(isinstance(kind_of(h.field), SummaryMetric) for h in contents.fields)
    live = (backend or connect(contents.project)).fetch_by_ids(contents.project, ids, with_summary=with_summary) if ids else {}
    # The undo's journal names the same sheet and export as the import's: planning that sheet again
    # then sees the restored values as its base.
    header = {k: contents.begin[k] for k in ("sheet", "exported_at") if contents.begin.get(k)}
    later = later_writes(journal, contents.project, contents.begin.get("at"))  # to name what changed a field since
    return _remember_header(plan_undo(str(journal), live, force=force, contents=contents, later=later)
                            .with_run_urls(live),
                            {**header, "undo_of": os.path.abspath(journal)})


def undo(
    journal: str | os.PathLike[str],
    *,
    plan: Plan | None = None,
    dry_run: bool = False,
    force: bool = False,
    concurrency: int = DEFAULT_CONCURRENCY,
    backend: Backend | None = None,
    verify: bool = True,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> tuple[Plan, ApplyReport | None]:
    """Restore the values an import replaced; refuses fields changed since, unless `force`.

    `plan`: the one `plan_undo_journal(journal)` returned (e.g. shown and confirmed): exactly that is
    applied, not a fresh plan. The undo is journaled in JOURNAL.undo.jsonl (a re-run resumes it).
    Returns (the undo's Plan, the ApplyReport of its writes): the report is None for `dry_run` or an empty plan.
    """
    backend = backend or connect()  # the default tracker's (the journal names the project, read below)
    if plan is not None and plan.source != str(journal):
        raise RunsyncError(f"the plan given is the undo of {plan.source}, not of {journal}")
    undo_plan = plan if plan is not None else plan_undo_journal(journal, force=force, backend=backend)
    if dry_run or undo_plan.empty:
        return undo_plan, None
    return undo_plan, apply(undo_plan, journal=undo_journal_path(journal), concurrency=concurrency, force=force,
                            backend=backend, verify=verify, batch_size=batch_size)
