"""The 3-way diff: base (at export) x sheet (as edited) x live (W&B now) -> Plan. Pure: no I/O."""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from runsync import codec, mangle
from runsync.errors import CellError
from runsync.model import (
    ABSENT,
    CONFIG_PREFIX,
    EDITABLE_FIELDS,
    ID,
    TAG_COLUMN_PREFIX,
    Action,
    Change,
    Plan,
    RunRecord,
    SheetData,
    SheetMeta,
    is_editable,
    is_readonly,
)

TEXT_FIELDS = ("name", "group", "job_type", "notes")


def live_value(record: RunRecord, column: str, path: tuple[str, ...] = ()) -> Any:
    """The value W&B holds for one sheet column of a run."""
    if column.startswith(CONFIG_PREFIX):
        return codec.get_path(record.config, path)
    if column == "tags":
        return tuple(record.tags)
    if column in TEXT_FIELDS:
        return _text(getattr(record, column))
    if column == "state":
        return record.state
    if column == "created_at":
        return record.created_at
    if column == "url":
        return record.url
    if column.startswith("summary."):
        return record.summary.get(column[len("summary.") :], ABSENT)
    raise KeyError(column)


def _text(value: Any) -> Any:
    # W&B answers "" or null for an unset group/notes alike; both are an empty cell in a sheet.
    return None if value == "" else value


def same(field: str, a: Any, b: Any) -> bool:
    """Whether two values of a field mean the same (tags: as a set; numbers: as numbers)."""
    if field == "tags":
        if a is ABSENT or b is ABSENT:
            return a is b
        return set(a) == set(b)
    if field in TEXT_FIELDS:
        return codec.values_equal(_text(a), _text(b))
    return codec.values_equal(a, b)


def _dominant_type(values: list[Any]) -> str | None:
    kinds = Counter(codec.type_name(v) for v in values if v is not ABSENT and v is not None)
    return kinds.most_common(1)[0][0] if kinds else None


class _Planner:
    def __init__(self, sheet: SheetData, live: Mapping[str, RunRecord], project: str, force: bool) -> None:
        self.sheet = sheet
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
        self.paths = self._config_paths()
        self.column_types = self._column_types()

    # -- setup ------------------------------------------------------------------------------
    def _config_paths(self) -> dict[str, tuple[str, ...]]:
        known = dict(self.meta.config_paths) if self.meta else {}
        paths: dict[str, tuple[str, ...]] = {}
        for column in self.sheet.columns:
            if not column.startswith(CONFIG_PREFIX):
                continue
            if column in known:
                paths[column] = tuple(known[column])
                continue
            # Not exported (a column the user added, or no base): find the key as W&B has it.
            for record in self.live.values():
                flat = codec.flatten_config(record.config)
                if column in flat:
                    paths[column] = tuple(flat[column][0])
                    break
            else:
                paths[column] = tuple(column[len(CONFIG_PREFIX) :].split("."))
        return paths

    def _column_types(self) -> dict[str, str | None]:
        types: dict[str, str | None] = {}
        for column, path in self.paths.items():
            if self.meta and self.meta.base:
                values = [base.get(column, ABSENT) for base in self.meta.base.values()]
            else:
                values = [codec.get_path(r.config, path) for r in self.live.values()]
            types[column] = _dominant_type(values)
        return types

    def base_of(self, run_id: str, column: str, record: RunRecord | None) -> Any:
        if self.meta is None:  # 2-way: W&B now is the only reference
            return live_value(record, column, self.paths.get(column, ())) if record else ABSENT
        base = self.meta.base.get(run_id)
        if base is None:
            return ABSENT
        value = base.get(column, ABSENT)
        return tuple(value) if column == "tags" and isinstance(value, list) else value

    # -- the diff ---------------------------------------------------------------------------
    def run(self) -> Plan:
        damaged = self._damaged_headers()
        columns = [c for c in self.sheet.columns if c not in damaged]
        tag_columns = [c for c in columns if c.startswith(TAG_COLUMN_PREFIX)]
        for column in columns:
            if column != ID and not is_editable(column) and not is_readonly(column):
                self.warnings.append(f"{self.sheet.path}: column {column!r} is not a runsync column: ignored")
        # Sorted out once, not per cell: a 50,000-run sheet has over a million cells.
        readonly = [c for c in columns if c != ID and is_readonly(c)]
        editable = [c for c in columns if not c.startswith(TAG_COLUMN_PREFIX) and is_editable(c)]
        for row_number, cells in self.sheet.rows:
            run_id = _cell_id(cells.get(ID))
            if not run_id:
                continue  # the reader reported blank ids
            record = self.live.get(run_id)
            if record is None:
                if self.meta is not None and run_id in self.meta.base:
                    self.warnings.append(f"run {run_id} (row {row_number}) was deleted in W&B since the export: skipped")
                else:
                    self._error(row_number, run_id, ID, f"run id not found in project {self.project}")
                continue
            tags_from_columns = self._tags_from_columns(row_number, run_id, record, cells, tag_columns)
            for column in readonly:
                self._check_readonly(row_number, run_id, column, cells.get(column), record)
            for column in editable:
                self._diff_cell(row_number, run_id, record, column, cells.get(column), tags_from_columns)
            if tags_from_columns is not None and "tags" not in columns:
                self._classify(run_id, record, "tags", (), self.base_of(run_id, "tags", record), tags_from_columns)
        if not self.sheet.rows and not self.errors:
            # Only a header: most likely the wrong file or tab; "No changes." would hide that.
            self._error(None, None, None, "no runs in the sheet (only a header row): nothing to import")
        return Plan(
            project=self.project,
            source=self.sheet.path,
            changes=tuple(self.changes),
            conflicts=tuple(self.conflicts),
            infos=tuple(self.infos),
            errors=tuple(self.errors),
            warnings=tuple(dict.fromkeys(self.warnings)),
            three_way=self.meta is not None,
        )

    def _damaged_headers(self) -> set[str]:
        """Headers a legacy encoding mangled (`tag:?` for `tag:🔥`): read as new, they'd add a tag or key."""
        if self.meta is None:
            return set()
        exported = set(self.meta.config_paths) | {TAG_COLUMN_PREFIX + t for t in self.meta.tag_columns}
        missing = exported - set(self.sheet.columns)
        damaged = set()
        for column in self.sheet.columns:
            for original in missing if column not in exported else ():
                if why := mangle.lost_characters(original, column):
                    self.warnings.append(f"{self.sheet.path}: column {column!r} is {original!r} damaged ({why}): "
                                         "ignored")
                    damaged.add(column)
                    break
        return damaged

    def _decode(self, row: int, run_id: str, column: str, raw: Any, base: Any) -> Any:
        """The typed value of a cell, or ABSENT after recording an error."""
        if column == "tags":
            decoded = codec.decode_cell(raw, column=column, base=base, source=self.source)
        elif column in TEXT_FIELDS:
            decoded = codec.decode_cell(raw, column=column, base=base if isinstance(base, str) else "",
                                        source=self.source)
        else:
            decoded = codec.decode_cell(raw, column=column, base=base, column_type=self.column_types.get(column),
                                        source=self.source)
        if isinstance(decoded, codec.CellProblem):
            self._error(row, run_id, column, decoded.message, raw)
            return _INVALID
        if column in TEXT_FIELDS:
            decoded = _text(decoded)
            if column == "name" and decoded is None and base not in (None, ABSENT):
                self._error(row, run_id, column, "a run name cannot be emptied", raw)
                return _INVALID
        elif decoded is None and base is ABSENT:
            decoded = ABSENT  # an empty cell where there was no key: nothing to add
        return decoded

    def _diff_cell(self, row: int, run_id: str, record: RunRecord, column: str, raw: Any,
                   tags_from_columns: tuple[str, ...] | None) -> None:
        base = self.base_of(run_id, column, record)
        sheet_value = self._decode(row, run_id, column, raw, base)
        if sheet_value is _INVALID:
            return
        changed = not same(column, sheet_value, base)
        if changed:
            why = mangle.mangled_by_program(base, raw)
            if why:
                self.warnings.append(
                    f"{self.sheet.path}: row {row}, run {run_id}, column {column!r}: {why}; kept the W&B value"
                )
                return
        if column == "tags" and tags_from_columns is not None:
            if not same("tags", sheet_value, base) and not same("tags", tags_from_columns, base):
                self._error(row, run_id, column, "both the tags column and tag: columns were edited; edit one of them")
                return
            if not changed:
                sheet_value = tags_from_columns
                changed = not same("tags", sheet_value, base)
        self._classify(run_id, record, column, self.paths.get(column, ()), base, sheet_value, changed)

    def _classify(self, run_id: str, record: RunRecord, column: str, path: tuple[str, ...], base: Any,
                  sheet_value: Any, changed: bool | None = None) -> None:
        live = live_value(record, column, path)
        change = lambda action: Change(run_id, record.name, column, base, sheet_value, live, action, path)  # noqa: E731
        if changed is None:
            changed = not same(column, sheet_value, base)
        if not changed:
            if not same(column, live, base):
                self.infos.append(change(Action.INFO))
        elif same(column, live, sheet_value):
            return  # W&B already holds what the sheet says (e.g. a re-run after an import)
        elif same(column, live, base) or self.force:
            self.changes.append(change(Action.UPDATE))
        else:
            self.conflicts.append(change(Action.CONFLICT))

    def _tags_from_columns(self, row: int, run_id: str, record: RunRecord, cells: dict[str, Any],
                           tag_columns: list[str]) -> tuple[str, ...] | None:
        """Tags as the `tag:NAME` tick columns say, or None when the sheet has none."""
        if not tag_columns:
            return None
        base_tags = tuple(self.base_of(run_id, "tags", record) or ())
        tags = list(base_tags)
        for column in tag_columns:
            tag = column[len(TAG_COLUMN_PREFIX) :]
            ticked = codec.decode_cell(cells.get(column), column=column, base=tag in base_tags, column_type="bool",
                                       source=self.source)
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
        base = self.base_of(run_id, column, record)
        value = codec.decode_cell(raw, column=column, base=base, source=self.source)
        if isinstance(value, codec.CellProblem):
            value = raw
        if value is None and base is ABSENT:
            return
        if not codec.values_equal(value, base) and not mangle.mangled_by_program(base, raw):
            self._error(row, run_id, column, f"read-only column edited (was {_show(base)}, now {_show(value)})", raw)

    def _error(self, row: int | None, run_id: str | None, column: str | None, message: str, raw: Any = None) -> None:
        self.errors.append(CellError(self.sheet.path, row, run_id, column, message, raw))


_INVALID = object()


def _cell_id(raw: Any) -> str | None:
    if raw is None:
        return None
    text = str(raw).strip()
    return text or None


def _show(value: Any) -> str:
    return "(empty)" if value is ABSENT or value is None else repr(value)


def build_plan(sheet: SheetData, live: Mapping[str, RunRecord], *, project: str, force: bool = False) -> Plan:
    """Diff every editable cell of `sheet` against its base and W&B's `live` runs."""
    plan = _Planner(sheet, live, project, force).run()
    if plan.errors:  # an invalid sheet writes nothing: keep the errors, drop the actions
        return Plan(plan.project, plan.source, (), (), plan.infos, plan.errors, plan.warnings, plan.three_way)
    return plan


__all__ = ["build_plan", "live_value", "same", "EDITABLE_FIELDS"]
