"""Planning an import (`runsync.plan`): read the sheet, read W&B for its runs, the 3-way diff."""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from runsync.api.frames import sheet_from_frame
from runsync.api.journals import advance_base
from runsync.api.provenance import remember_backend, remember_header
from runsync.api.reading import cycle_collector_paused, read_unpaused
from runsync.backend import Backend, backend_for, parse_project_address
from runsync.errors import BackendError, ConfigError, RunsyncError, SheetError
from runsync.journal.events import export_header
from runsync.model import ID, Plan, RunRecord, SheetData
from runsync.planner.diff import build_plan
from runsync.planner.live_runs import LiveRuns
from runsync.sheets.frame_cells import FRAME_SOURCE
from runsync.sheets.twin_headers import twin_header_errors, twin_headers

if TYPE_CHECKING:
    import pandas as pd

    from runsync.planner.early_fetch import EarlyFetch


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
    tracking_uri: str | None = None,
) -> Plan:
    """The 3-way plan for an edited sheet (path) or DataFrame from `frame()`; writes nothing. Returns the Plan.

    `on_total(n)` is called once the sheet's run ids are known and W&B is read for them, `on_run()` for each
    run read (a progress bar; the CLI shows one on a terminal).

    Text typed into a column whose values all share another type (`Yes` among booleans, `0,01` among
    floats) is a cell error unless `allow_text` (then written as text, with a warning); a cell typed as a
    JSON string (`"0,01"`) is text on purpose. `strict` refuses that text even with `allow_text`.
    `new_keys` (the CLI's --new-keys) opts in to creating config keys the runs lack, which W&B cannot delete:
    without it `apply` refuses such a plan, and a header that differs from an exported one only by case,
    spaces or invisible characters raises SheetError before W&B is read. The tracker is the sheet's (its
    project's address); `backend` is used when it is that tracker's; `tracking_uri`: MLflow's server.
    """
    early = None
    with cycle_collector_paused(collect_after=True):
        if isinstance(source, (str, os.PathLike)) and base is None and str(source).lower().endswith(".xlsx") \
                and os.path.isfile(source):
            # W&B is read on a thread from the moment the sheet's ids are known (runsync/planner/early_fetch.py).
            from runsync.planner.early_fetch import EarlyFetch
            from runsync.sheets.xlsx_io import read_xlsx
            from runsync.sheets.xlsx_peek import peek_project

            # The client and its sidecar start while calamine reads: the tracker of --project, else of the
            # project the file records (a guess read in milliseconds; the header read below decides).
            address = project or peek_project(os.fspath(source))
            if backend is None and address is not None:
                try:
                    backend = backend_for(address, tracking_uri=tracking_uri)
                except RunsyncError:
                    pass  # the plan says what is wrong with it
                else:
                    backend.connect_in_background()
            early = EarlyFetch(backend, project, on_total, on_run)

            def read_ahead(header: dict[str, Any], ids: list[str], columns: list[str]) -> None:
                # Not when the header will be refused: then nothing is read from W&B.
                if new_keys or not _twins_in(columns, header):
                    if isinstance(recorded := header.get("project"), str):
                        try:  # the sheet's own tracker, now that its header says which
                            chosen = backend_for(recorded, early.backend, tracking_uri=tracking_uri)
                        except RunsyncError:
                            return  # the plan says what is wrong
                        if chosen is not early.backend:
                            early.backend = chosen
                            chosen.connect_in_background()
                    early.start(header, ids)

            sheet = read_xlsx(os.fspath(source), on_ids=read_ahead)
        elif isinstance(source, (str, os.PathLike)):
            sheet = read_unpaused(source, base=base)
        else:
            sheet = sheet_from_frame(source, source.attrs.get("runsync"))
        return _plan_sheet(sheet, project=project, force=force, strict=strict, include_running=include_running,
                           new_keys=new_keys, backend=backend or (early.backend if early else None), early=early,
                           on_total=on_total, on_run=on_run, allow_text=allow_text, tracking_uri=tracking_uri)


def _twins_in(columns: list[str], header: dict[str, Any]) -> bool:
    """Whether a sheet's header (and its metadata header, unchecked JSON) has a twin header (plan.twin_headers)."""
    config, tags = header.get("config_paths"), header.get("tag_columns")
    return bool(twin_headers(columns, config if isinstance(config, dict) else (),
                             tags if isinstance(tags, list) else ()))


def plan_sheet(sheet: SheetData, *, project: str | None = None, force: bool = False, strict: bool = False,
               include_running: bool = False, new_keys: bool = False, backend: Backend | None = None,
               allow_text: bool = False, tracking_uri: str | None = None) -> Plan:
    """The 3-way Plan for a sheet already read (`read`); writes nothing. `new_keys`, `allow_text`: as for `plan`."""
    with cycle_collector_paused(collect_after=True):
        return _plan_sheet(sheet, project=project, force=force, strict=strict, include_running=include_running,
                           new_keys=new_keys, backend=backend, allow_text=allow_text, tracking_uri=tracking_uri)


def _plan_sheet(sheet: SheetData, *, project: str | None, force: bool, strict: bool, include_running: bool,
                backend: Backend | None, early: EarlyFetch | None = None, new_keys: bool = False,
                on_total: Callable[[int], None] | None = None, on_run: Callable[[], None] | None = None,
                allow_text: bool = False, tracking_uri: str | None = None) -> Plan:
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
    backend = backend_for(target, backend, tracking_uri=tracking_uri)  # the sheet's tracker
    if sheet.meta is None:
        sheet.warnings.insert(0, f"{sheet.path}: no base snapshot: 2-way diff against "
                                 f"{backend.capabilities.tracker}, conflicts cannot be detected")
    if not new_keys and (twins := twin_header_errors(sheet)):
        if early is not None:
            early.take(target, [], False)  # ends a read ahead, if one started
        raise SheetError(twins)  # from the header alone, before anything is read from W&B
    ids = [str(cells[ID]).strip() for _, cells in sheet.rows if cells.get(ID) not in (None, "")]
    editable_summary = bool(sheet.meta and sheet.meta.editable_summary)  # then W&B's summary is compared too
    # W&B's runs are read a chunk at a time while the planner goes through the rows (planner/live_runs.py).
    live: Mapping[str, RunRecord] | None = early.take(target, ids, editable_summary) \
        if early is not None and ids else None
    if live is None and ids:
        if on_total is not None:
            on_total(len(set(ids)))
        live = LiveRuns(backend, target, ids, editable_summary, on_run)
    runs: Mapping[str, RunRecord] = {} if live is None else live  # (not `live or {}`: len() waits for the read)
    try:
        history = advance_base(sheet, runs)
        header = export_header(sheet.path, sheet.meta.exported_at if sheet.meta else None)
        plan = build_plan(sheet, runs, project=target, force=force, strict=strict,
                          include_running=include_running, new_keys=new_keys, history=history, allow_text=allow_text)
    except BackendError as exc:  # e.g. the sheet's project is gone: say which sheet asked for it
        raise BackendError(f"{sheet.path}: {exc.message}", hint=exc.hint) from None
    finally:
        if isinstance(live, LiveRuns):
            live.stop()  # after a refusal mid-plan; else the read is over already
    if isinstance(live, LiveRuns):
        sheet.warnings.extend(live.warnings)  # as when W&B was read before planning
    return remember_backend(remember_header(plan.with_run_urls(runs), header), backend)
