"""The 3-way diff: base (at export) x sheet (as edited) x live (W&B now) -> Plan. Pure: no I/O.

The planner reads the sheet cell by cell (which columns and their types: planner.columns; the per-cell checks:
planner.cell_checks); each field's verdict is runsync.fields.classify's, shared with `runsync set` and undo; an
id column sorted on its own is runsync.planner.moved_rows'."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, NamedTuple

from runsync.backend import capabilities
from runsync.errors import CellError
from runsync.fields import ConfigKey, SummaryMetric, Tags, TagTick, TextField, codec, kind_of
from runsync.fields.classify import classify, leave_out_running, live_getter, live_value, same
from runsync.fields.scalars import is_nan
from runsync.journal.history import ExportHistory, stale_conflict
from runsync.model import ABSENT, ID, Action, Change, Plan, RunRecord, SheetData, SheetMeta, Skip
from runsync.planner import columns as sheet_columns
from runsync.planner import conversions
from runsync.planner.cell_checks import damage_warnings, edit_finding, mangled, readonly_edit
from runsync.planner.live_runs import LiveRuns
from runsync.planner.moved_rows import Row, ids_moved_over, moved_message
from runsync.planner.sizes import config_size_errors


class _Columns(NamedTuple):
    """The columns the planner reads, sorted out once, not per cell: a 50,000-run sheet has over a million."""

    planned: list[str]
    ticks: list[str]  # the `tag:NAME` columns
    readonly: list[str]  # but the id
    editable: list[str]  # but the ticks
    # (column, its live getter or None for tags, config/summary?), for the untouched-cell shortcut.
    shortcut: list[tuple[str, Callable[[RunRecord], Any] | None, bool]]


class _Planner:
    # Cells the sheet and W&B both leave at their base are passed over without decoding (`_untouched`); off:
    # every cell takes the full path (the tests compare the two).
    shortcuts = True

    def __init__(self, sheet: SheetData, live: Mapping[str, RunRecord], project: str, force: bool,
                 strict: bool = False, include_running: bool = False, new_keys: bool = False,
                 history: ExportHistory | None = None, allow_text: bool = False) -> None:
        self.sheet = sheet
        self.history = history  # what imports of this export wrote over: a sheet holding that predates them
        self.meta: SheetMeta | None = sheet.meta
        self.live = live
        self.project = project
        self.force = force
        self.errors: list[CellError] = list(sheet.errors)
        self.warnings: list[str] = list(sheet.warnings)
        self.changes: list[Change] = []
        self.conflicts: list[Change] = []
        self.infos: list[Change] = []
        self.source = "xlsx" if sheet.path.lower().endswith(".xlsx") else "csv"
        self.strict = strict
        self.allow_text = allow_text and not strict  # --strict refuses that text, --allow-text or not
        # Cells the reader refused (a formula, an error value): their one message is that error.
        self.refused_cells = {(e.row, e.column) for e in sheet.errors}
        self.include_running = include_running
        self.new_keys = new_keys
        self.editable_summary = tuple(self.meta.editable_summary) if self.meta else ()
        self.paths = sheet_columns.config_paths(sheet.columns, self.meta)
        self.paths.update({c: kind.path(c) for c in sheet.columns
                           if isinstance((kind := kind_of(c, self.editable_summary)), SummaryMetric) and kind.editable})
        # Config columns the export did not write: their base is W&B now (it holds what the export left out).
        self.added = {c for c in self.paths if self.meta is not None and isinstance(kind_of(c), ConfigKey)
                      and c not in self.meta.config_paths}
        # column -> its type; config column -> the one family all its values share
        self.column_types, self.column_family = sheet_columns.column_types(sheet, self.source, self.paths,
                                                                           self.added, live)
        self.tag_names = sheet_columns.tag_names(sheet.columns, self.meta)
        self._json_cells: dict[str, Any] = {}  # a JSON cell's text -> decode_cell's value (_untouched)
        # Who may have opened the file: a `;` CSV comes from a locale with a `,` decimal separator.
        self.locales = conversions.locales_for_delimiter(sheet.delimiter)
        # Numbers and booleans went out as text (a CSV export, or a CSV saved as XLSX): a program read them again.
        self.exported_as_text = sheet.exported_as == "csv"
        self.damaged: dict[str, list[tuple[int, str, str]]] = {}  # column -> (row, run id, what a program did)

    # -- setup ------------------------------------------------------------------------------
    def base_of(self, run_id: str, column: str, record: RunRecord | None) -> Any:
        if self.meta is None or column in self.added:  # 2-way, or not exported: W&B now is the reference
            return live_value(record, column, self.paths.get(column, ())) if record else ABSENT
        base = self.meta.base.get(run_id)
        if base is None:
            return ABSENT
        return kind_of(column).from_base(base.get(column, ABSENT))

    # -- the diff ---------------------------------------------------------------------------
    def run(self) -> Plan:
        columns = self._columns()
        differing: list[Row] = []  # rows where any cell is not its base
        streamed = self.live if isinstance(self.live, LiveRuns) else None
        for row_number, cells in self.sheet.rows:
            run_id = _cell_id(cells.get(ID))
            if not run_id:
                continue  # the reader reported blank ids
            record = self._record(row_number, run_id)
            if record is None:
                if streamed is not None:
                    streamed.planned(run_id, keep=False)
                continue
            before, infos = self._tally(), len(self.infos)
            self._diff_row(row_number, run_id, record, cells, columns)
            if self._tally() != before:
                differing.append((row_number, run_id, cells))
            if streamed is not None:  # a run the plan names stays: the checks below and the run links read it
                streamed.planned(run_id, keep=self._tally() != before or len(self.infos) != infos)
        if streamed is not None:
            streamed.finish()
            # Where reading W&B first put them: after the sheet's warnings, before the planner's.
            at = len(self.sheet.warnings)
            self.warnings[at:at] = streamed.warnings
        if (moved := self._ids_moved_alone(differing, [c for c in columns.planned if c != ID and c not in columns.ticks
                                                       and c not in self.added])):
            # One clear error instead of a cell error (or a wrong change) for every cell of every row.
            self.errors = list(self.sheet.errors)
            self.changes, self.conflicts = [], []
            self._error(moved[0][0], moved[0][1], ID, moved_message(moved))
        if not self.sheet.rows and not self.errors:
            # Only a header: most likely the wrong file or tab; "No changes." would hide that.
            self._error(None, None, None, "no runs in the sheet (only a header row): nothing to import")
        return self._plan(differing)

    def _columns(self) -> _Columns:
        """The columns to plan, and the warnings about the others and about headers."""
        damaged, warnings = sheet_columns.damaged_headers(self.sheet.path, self.sheet.columns, self.meta)
        self.warnings.extend(warnings)
        # The status column is runsync's own report of the last import (--write-status): never planned.
        kinds = {c: kind_of(c, self.editable_summary) for c in self.sheet.columns}
        columns = [c for c in self.sheet.columns if c not in damaged and kinds[c].planned]
        tracker = capabilities(self.project).tracker
        for column in columns:
            if tracker not in kinds[column].trackers and kinds[column].keyed:
                self._error(None, None, column, f"a {' and '.join(sorted(kinds[column].trackers))} column, but this "
                            f"sheet is of the {tracker} project {self.project}: {tracker} runs have no such field; "
                            "remove the column")
            elif not kinds[column].editable and not kinds[column].readonly or tracker not in kinds[column].trackers:
                self.warnings.append(f"{self.sheet.path}: column {column!r} is not a runsync column: ignored")
        columns = [c for c in columns if tracker in kinds[c].trackers]
        self.warnings.extend(sheet_columns.renamed_headers(self.sheet.path, columns, self.meta))
        self.warnings.extend(sheet_columns.not_exported(self.sheet.path, self.added, self.paths, self.live))
        editable = [c for c in columns if not isinstance(kinds[c], TagTick) and kinds[c].editable]
        shortcut = [(c, None if isinstance(kinds[c], Tags) else live_getter(c, self.paths.get(c, ())),
                     not isinstance(kinds[c], TextField)) for c in editable]
        return _Columns(columns, [c for c in columns if isinstance(kinds[c], TagTick)],
                        [c for c in columns if c != ID and kinds[c].readonly], editable, shortcut)

    def _record(self, row_number: int, run_id: str) -> RunRecord | None:
        """The row's run as W&B holds it, or None after recording why the row is not planned."""
        record = self.live.get(run_id)
        if record is None:
            if self.meta is not None and run_id in self.meta.base:
                self.warnings.append(f"run {run_id} (row {row_number}) was deleted in "
                                     f"{capabilities(self.project).tracker} since the export: skipped")
            else:
                self._error(row_number, run_id, ID, f"run id not found in project {self.project}")
            return None
        if self.meta is not None and run_id not in self.meta.base:
            # No base to tell an emptied cell from one never filled: none of the row is written.
            self._error(row_number, run_id, ID, _outside_selection(self.project, run_id))
            return None
        return record

    def _diff_row(self, row_number: int, run_id: str, record: RunRecord, cells: Mapping[str, Any],
                  columns: _Columns) -> None:
        tags_from_columns = self._tags_from_columns(row_number, run_id, record, cells, columns.ticks)
        if self.meta is None or not self.shortcuts:
            for column in columns.readonly:
                self._check_readonly(row_number, run_id, column, cells.get(column), record)
            for column in columns.editable:
                self._diff_cell(row_number, run_id, record, column, cells.get(column), tags_from_columns)
        else:
            bases = self.meta.base.get(run_id) or _NO_BASE  # base_of, for every column but tags
            for column in columns.readonly:
                raw, base = cells.get(column), bases.get(column, ABSENT)
                if not (type(raw) is type(base) and raw == base):  # else untouched, as _check_readonly says
                    self._check_readonly(row_number, run_id, column, raw, record)
            for column, live_of, typed in columns.shortcut:
                raw = cells.get(column)
                if live_of is not None:
                    base = bases.get(column, ABSENT)
                    if type(raw) is type(base) and raw == base:  # _untouched's first case, inlined
                        live = live_of(record)
                        if type(live) is type(base) and live == base:
                            continue
                    elif typed and self._untouched(column, raw, base, live_of(record), typed):
                        continue
                self._diff_cell(row_number, run_id, record, column, raw, tags_from_columns)
        if tags_from_columns is not None and "tags" not in columns.planned:
            base = self.base_of(run_id, "tags", record)
            if not self._predates_an_import(run_id, record, "tags", (), base, tags_from_columns):
                self._classify(run_id, record, "tags", (), base, tags_from_columns)

    def _plan(self, differing: list[Row]) -> Plan:
        changes, conflicts, skipped = self._leave_out_running()
        # A config the edits would take past the service's limit: refused by W&B, so an error here.
        self.errors.extend(config_size_errors(changes, self.live, file=self.sheet.path,
                                              rows={run_id: row for row, run_id, _ in differing}))
        self.warnings.extend(damage_warnings(self.sheet.path, self.damaged))
        return Plan(
            project=self.project,
            source=self.sheet.path,
            changes=changes,
            conflicts=conflicts,
            skipped=skipped,
            include_running=self.include_running,
            infos=tuple(self.infos),
            errors=tuple(self.errors),
            warnings=tuple(dict.fromkeys(self.warnings)),
            three_way=self.meta is not None,
            new_keys_allowed=self.new_keys,
        )

    def _leave_out_running(self) -> tuple[tuple[Change, ...], tuple[Change, ...], tuple[Skip, ...]]:
        """Runs still running are skipped: their process re-sends its config and may undo the edit."""
        changes, conflicts, skipped, warning = leave_out_running(self.changes, self.conflicts, self.live,
                                                                 self.include_running)
        if warning:
            self.warnings.append(warning)
        return changes, conflicts, skipped

    def _tally(self) -> tuple[int, int, int, int, int]:
        return (len(self.changes), len(self.conflicts), len(self.errors), len(self.warnings),
                sum(map(len, self.damaged.values())))

    def _ids_moved_alone(self, rows: list[Row], columns: list[str]) -> list[tuple[int, str, str]]:
        if self.meta is None or len(rows) < 2 or not columns:
            return []
        known = [r for _, r, _ in rows if r in self.meta.base]
        return ids_moved_over(rows, known, columns, lambda rid, c: self.base_of(rid, c, None), self.column_types,
                              self.source)

    def _decode(self, row: int, run_id: str, column: str, raw: Any, base: Any) -> Any:
        """The typed value of a cell, or ABSENT after recording an error."""
        kind = kind_of(column)
        decoded = kind.decode(raw, column=column, base=base, column_type=self.column_types.get(column),
                              source=self.source)
        if isinstance(decoded, codec.CellProblem):
            self._error(row, run_id, column, decoded.message, raw)
            return _INVALID
        decoded = kind.sheet_value(decoded, base)  # e.g. an empty cell where there was no key: nothing to add
        if column == "name" and decoded is None and base not in (None, ABSENT):
            self._error(row, run_id, column, "a run name cannot be emptied", raw)
            return _INVALID
        return decoded

    def _untouched(self, column: str, raw: Any, base: Any, live: Any, typed: bool) -> bool:
        """Whether `_diff_cell` would find nothing in a cell: the sheet and W&B both still hold `base`.

        Only for the cases most cells of an export are, each with the outcome `_diff_cell` reaches for it;
        any other cell (or one of these where W&B moved) takes `_diff_cell`'s full path.
        `typed`: a config or summary column (decoded against its base; not text, not tags).
        """
        if type(raw) is type(base) and raw == base:  # decoding would give `base` back: _diff_cell's own shortcut
            return type(live) is type(base) and live == base
        if not typed:
            return False
        if raw is None:
            return base is ABSENT and live is ABSENT  # an empty cell where the run has no such key: ABSENT
        kind = type(base)
        if kind is float:  # XLSX's 3 for a 3.0 decodes as float(raw): equal
            return type(raw) is int and raw == base and type(live) is float and live == base
        if (kind is list or kind is dict) and type(raw) is str:
            decoded = self._json_cells.get(raw, _INVALID)  # read as JSON, whatever the list or dict holds
            if decoded is _INVALID:
                decoded = self._json_cells[raw] = codec.decode_cell(raw, column=column, base=base,
                                                                    source=self.source)
            # values_equal, not ==: [True] == [1] in Python, not in W&B
            return (not isinstance(decoded, codec.CellProblem) and codec.values_equal(decoded, base)
                    and codec.values_equal(live, base))
        return False

    def _diff_cell(self, row: int, run_id: str, record: RunRecord, column: str, raw: Any,
                   tags_from_columns: tuple[str, ...] | None) -> None:
        if (row, column) in self.refused_cells:
            return
        base = self.base_of(run_id, column, record)
        if type(raw) is float and raw != raw and not is_nan(base):
            raw = None  # a DataFrame's NaN is W&B's NaN only where the base holds one; else pandas' "missing"
        if column in self.added and (raw is None or raw == ""):
            return  # a column the export left out: an empty cell asks for nothing (its base is W&B's value)
        if type(raw) is type(base) and raw == base and not isinstance(kind_of(column), Tags):
            # The untouched cell, most cells of a sheet: decoding it would give `base` back. Only W&B moving
            # since the export is left to see, and then the full path below reports it.
            live = live_value(record, column, self.paths.get(column, ()))
            if type(live) is type(base) and live == base:
                return
        sheet_value = self._decode(row, run_id, column, raw, base)
        if sheet_value is _INVALID:
            return
        changed = not same(column, sheet_value, base)
        if changed:
            why = self._mangled(base, raw, column)
            if why:
                self.damaged.setdefault(column, []).append((row, run_id, why))
                return
            if not self._edit_is_sound(row, run_id, record, column, sheet_value, base, raw):
                return
        if isinstance(kind_of(column), Tags) and tags_from_columns is not None:
            # Both differing from the base is fine where they agree on every ticked tag (the tags cell then says
            # more): one edit made twice, or a copy older than an import that changed tags.
            if not same("tags", sheet_value, base) and not same("tags", tags_from_columns, base) and any(
                    (tag in (sheet_value or ())) != (tag in tags_from_columns) for tag in self.tag_names.values()):
                self._error(row, run_id, column, "both the tags column and tag: columns were edited; edit one of them")
                return
            if not changed:
                sheet_value = tags_from_columns
                changed = not same("tags", sheet_value, base)
        path = self.paths.get(column, ())
        if changed and self._predates_an_import(run_id, record, column, path, base, sheet_value):
            return
        self._classify(run_id, record, column, path, base, sheet_value, changed)

    def _predates_an_import(self, run_id: str, record: RunRecord, column: str, path: tuple[str, ...], base: Any,
                            value: Any) -> bool:
        """Record a conflict when the sheet holds what an import of this export wrote over (history.stale_conflict)."""
        conflict = stale_conflict(self.history, record, column, path, base, value) if self.history else None
        if conflict is not None:
            self.conflicts.append(conflict)
        return conflict is not None

    def _edit_is_sound(self, row: int, run_id: str, record: RunRecord, column: str, value: Any, base: Any,
                       raw: Any) -> bool:
        """Refuse edits that would destroy what the plan can't show; warn about likely typing slips (cell_checks)."""
        if (refusal := kind_of(column).edit_refusal(column, base, live_value(record, column), value)) is not None:
            self._error(row, run_id, column, refusal, raw)  # e.g. a set MLflow param: write-once
            return False
        finding = edit_finding(record, column, self.paths, value, base, raw, family=self.column_family.get(column),
                               allow_text=self.allow_text, strict=self.strict, delimiter=self.sheet.delimiter)
        if finding is not None and finding.refused:
            self._error(row, run_id, column, finding.message, raw)
            return False
        if finding is not None:
            self._warn(row, run_id, column, finding.message)
        return True

    def _mangled(self, base: Any, raw: Any, column: str) -> str | None:
        return mangled(base, raw, column, locales=self.locales, exported_as_text=self.exported_as_text)

    def _warn(self, row: int, run_id: str, column: str, message: str) -> None:
        self.warnings.append(f"{self.sheet.path}: row {row}, run {run_id}, column {column!r}: {message}")

    def _classify(self, run_id: str, record: RunRecord, column: str, path: tuple[str, ...], base: Any,
                  sheet_value: Any, changed: bool | None = None) -> None:
        change = classify(run_id, record, column, path, base, sheet_value, self.force, changed)
        if change is not None:
            {Action.UPDATE: self.changes, Action.CONFLICT: self.conflicts, Action.INFO: self.infos}[
                change.action].append(change)

    def _tags_from_columns(self, row: int, run_id: str, record: RunRecord, cells: Mapping[str, Any],
                           tag_columns: list[str]) -> tuple[str, ...] | None:
        """Tags as the `tag:NAME` tick columns say, or None when the sheet has none."""
        if not tag_columns:
            return None
        base_tags = tuple(self.base_of(run_id, "tags", record) or ())
        tags = list(base_tags)
        for column in tag_columns:
            tag = self.tag_names[column]
            raw = cells.get(column)
            ticked = raw if type(raw) is bool and self.shortcuts else kind_of(column).decode(  # a bool is itself
                raw, column=column, base=tag in base_tags, source=self.source)
            if isinstance(ticked, codec.CellProblem) or not isinstance(ticked, (bool, type(None))):
                self._error(row, run_id, column, "a tag column takes TRUE or FALSE", cells.get(column))
                continue
            if ticked and tag not in tags:
                tags.append(tag)
            elif not ticked and tag in tags:
                tags.remove(tag)
        return tuple(tags)

    def _check_readonly(self, row: int, run_id: str, column: str, raw: Any, record: RunRecord) -> None:
        if self.meta is None:
            return  # no base: live read-only values move on their own (a running run finishes)
        error = readonly_edit(column, raw, self.base_of(run_id, column, record), source=self.source,
                              locales=self.locales, exported_as_text=self.exported_as_text)
        if error is not None:
            self._error(row, run_id, column, error, raw)

    def _error(self, row: int | None, run_id: str | None, column: str | None, message: str, raw: Any = None) -> None:
        self.errors.append(CellError(self.sheet.path, row, run_id, column, message, raw))


_INVALID = object()
_NO_BASE: dict[str, Any] = {}  # a run the export holds no base for (never written to)


def _cell_id(raw: Any) -> str | None:
    if raw is None:
        return None
    text = str(raw).strip()
    return text or None


def _outside_selection(project: str, run_id: str) -> str:
    return (f"the run is in {project} but not in this export (outside its selection), so its row has no base and "
            f"none of it is written; export a selection that includes it (runsync export {project} --filter "
            f"name={run_id} -o FILE) and edit it there")


def build_plan(sheet: SheetData, live: Mapping[str, RunRecord], *, project: str, force: bool = False,
               strict: bool = False, include_running: bool = False, new_keys: bool = False,
               history: ExportHistory | None = None, allow_text: bool = False) -> Plan:
    """Diff every editable cell of `sheet` against its base and W&B's `live` runs.

    `new_keys`: the user opted in to creating config keys the runs lack (recorded in the plan; apply checks).
    `history`: what imports of the sheet's export wrote (its base already moved to their values); a cell
    still holding a value one of them wrote over is a conflict naming it.
    """
    plan = _Planner(sheet, live, project, force, strict, include_running, new_keys, history, allow_text).run()
    if plan.errors:  # an invalid sheet writes nothing: keep the errors, drop the actions
        return replace(plan, changes=(), conflicts=())
    return plan


__all__ = ["build_plan"]
