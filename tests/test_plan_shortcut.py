"""The planner's untouched-cell shortcut reaches exactly the plan the full cell-by-cell path reaches.

"An untouched sheet that writes anything is the worst bug": the shortcut passes over cells without
decoding them, so it must never hide an edit, a conflict, W&B's own change, an error or a warning.
"""
from __future__ import annotations

import itertools
import json
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import runsync
from runsync.api import read
from runsync.backend.wandb.client import WandbBackend
from runsync.model import ABSENT, RunRecord, SheetData, SheetMeta
from runsync.planner.diff import _Planner


class _FullPath(_Planner):
    shortcuts = False


def _both(sheet: SheetData, live: dict[str, RunRecord], force: bool = False) -> tuple[str, str]:
    """Both planners' whole outcome (not build_plan's: a sheet with errors drops its changes, hiding them)."""
    fast = _Planner(sheet, live, "e/p", force).run()
    slow = _FullPath(sheet, live, "e/p", force).run()
    return repr(fast), repr(slow)  # repr: NaN equals itself


_values = st.sampled_from([
    ABSENT, None, True, False, 0, 1, 2, -3, 2.0, 3.5, 0.1, -0.0, math.nan, math.inf, 2**53, 2**53 + 1,
    float(2**53), 10**20, "", "x", " x", "2", "2.0", "TRUE", "null", "'x", "[1, 2]", "[1,2]", '{"a": 1}',
    [1, 2], [1, 2.0], [], [[1]], {"a": 1}, {"a": 1.0}, {}, {"a": {"b": 1}},
])
_tags = st.lists(st.sampled_from(["a", "b c", "d", " e"]), max_size=3, unique=True)
_CONFIG = {"config.x": ("x",), "config.y": ("y",), "config.m.w": ("m", "w")}
_COLUMNS = ["id", "name", "notes", "tags", "tag:a", "tag:b c", *_CONFIG, "summary.acc", "state"]


def _kin(value):
    """Values that are == `value` but of another type (True == 1 == 1.0), or `value` itself."""
    if isinstance(value, (bool, int, float)) and not (isinstance(value, float) and math.isnan(value)):
        return st.sampled_from([v for v in (bool(value), int(value) if math.isfinite(value) else value,
                                            float(value)) if v == value])
    return st.just(value)


def _cell(base, derived):
    """A cell as a sheet may hold it: the base as written, a program's rewrite of it, or anything."""
    return st.one_of(st.just(base), _kin(derived), _kin(base), _values)


def _as_written(value):
    if value is ABSENT or value is None:
        return None
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)  # XLSX: a whole float reads back as an int
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return value


@st.composite
def _runs(draw):
    rows, base, live = [], {}, {}
    for n in range(draw(st.integers(1, 4))):
        run_id = f"r{n}"
        b = {c: draw(_values) for c in [*_CONFIG, "summary.acc"]}
        b["name"], b["notes"] = draw(st.sampled_from(["n", "", None])), draw(st.sampled_from(["", None, "hi"]))
        b["tags"] = draw(_tags)
        b["state"] = draw(st.sampled_from(["finished", "running"]))
        b["tag:a"], b["tag:b c"] = "a" in b["tags"], "b c" in b["tags"]
        b = {k: v for k, v in b.items() if v is not ABSENT}
        base[run_id] = {k: v for k, v in b.items() if not k.startswith("tag:")}
        cells = {"id": run_id}
        for column in _COLUMNS[1:]:
            value = b.get(column, ABSENT)
            shown = ", ".join(value) if column == "tags" else _as_written(value)
            if column.startswith("tag:"):
                cells[column] = draw(st.sampled_from([value, not value, None, "TRUE", "x", 1]))
            else:
                cells[column] = draw(_cell(shown, value if value is not ABSENT else None))
        rows.append((n + 2, cells))
        moved = draw(st.booleans())  # W&B changed since the export, or not
        lv = {c: (draw(st.one_of(_values, _kin(b.get(c, ABSENT)))) if moved else b.get(c, ABSENT))
              for c in [*_CONFIG, "summary.acc"]}
        config = {k: v for k, v in (("x", lv["config.x"]), ("y", lv["config.y"])) if v is not ABSENT}
        if lv["config.m.w"] is not ABSENT:
            config["m"] = {"w": lv["config.m.w"]}
        live[run_id] = RunRecord(
            id=run_id, storage_id=f"s{n}", name=b.get("name"), tags=tuple(draw(_tags) if moved else b["tags"]),
            group=None, job_type=None, notes=b.get("notes"), config=config, raw_config={},
            state=b["state"], summary={} if lv["summary.acc"] is ABSENT else {"acc": lv["summary.acc"]})
    return rows, base, live


@settings(max_examples=400, deadline=None)
@given(data=_runs(), path=st.sampled_from(["s.xlsx", "s.csv"]), force=st.booleans())
def test_the_shortcut_plans_what_the_full_path_plans(data, path, force):
    rows, base, live = data
    meta = SheetMeta(project="e/p", selection={}, exported_at="2024-01-01T00:00:00+00:00", runsync_version="t",
                     config_paths={c: list(p) for c, p in _CONFIG.items()}, base=base, tag_columns=["a", "b c"],
                     editable_summary=["acc"])
    sheet = SheetData(path, list(_COLUMNS), rows, meta)
    fast, slow = _both(sheet, live, force=force)
    assert fast == slow


_TRICKY = [ABSENT, None, True, False, 0, 1, 1.0, 0.0, -0.0, 2, 2.0, 2.5, math.nan, math.inf, 2**53, float(2**53),
           2**53 + 1, "", "1", "x", "[1]", [1], [1.0], [True], [], {"a": 1}, {"a": True}, {}]


def test_the_shortcut_plans_what_the_full_path_plans_for_every_tricky_triple():
    """Every (base, cell, W&B) triple of values, many == across types, in a config and a summary column.

    Cells as a reader gives them: scalars, a list or dict as its JSON text."""
    rows, base, live = [], {}, {}
    triples = list(itertools.product(_TRICKY, repeat=3))
    for n, (b, c, v) in enumerate(triples):
        run_id = f"r{n}"
        base[run_id] = {} if b is ABSENT else {"config.x": b, "summary.acc": b}
        rows.append((n + 2, {"id": run_id, "config.x": _as_written(c), "summary.acc": _as_written(c)}))
        live[run_id] = RunRecord(id=run_id, storage_id=run_id, name=None, tags=(), group=None, job_type=None,
                                 notes=None, config={} if v is ABSENT else {"x": v}, raw_config={},
                                 summary={} if v is ABSENT else {"acc": v})
    meta = SheetMeta(project="e/p", selection={}, exported_at="2024-01-01T00:00:00+00:00", runsync_version="t",
                     config_paths={"config.x": ["x"]}, base=base, editable_summary=["acc"])
    for path in ("s.xlsx", "s.csv"):
        fast, slow = _both(SheetData(path, ["id", "config.x", "summary.acc"], rows, meta), live)
        assert fast == slow


_counter = itertools.count()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(configs=st.lists(st.dictionaries(st.sampled_from(["lr", "n", "layers", "opt", "m.k"]), _values.filter(
    lambda v: v is not ABSENT), max_size=5), min_size=1, max_size=4),
       edits=st.lists(st.tuples(st.integers(0, 3), st.sampled_from(["config.lr", "config.n", "config.layers",
                                                                    "config.opt", "name", "tags"]), _values),
                      max_size=4),
       moved=st.lists(st.tuples(st.integers(0, 3), st.sampled_from(["lr", "n", "layers"]), _values), max_size=3))
def test_the_shortcut_plans_what_the_full_path_plans_on_an_export(sandbox, tmp_path, configs, edits, moved):
    """A real export and W&B read back: cells edited in the sheet, values changed in W&B after the export."""
    project = f"short{next(_counter)}"
    for i, config in enumerate(configs):
        sandbox.store.create_run("e", project, f"run{i}", display_name=f"n{i}", tags=["a"], config=config)
    for fmt in ("xlsx", "csv"):
        path = tmp_path / f"{project}.{fmt}"
        runsync.export(f"e/{project}", path, overwrite=True)
        sheet = read(path)
        for row, column, value in edits:
            if row < len(sheet.rows) and column in sheet.rows[row][1]:
                row_no, cells = sheet.rows[row]  # read rows are read-only (CompactRow): edit a copy
                sheet.rows[row] = (row_no, {**cells, column: _as_written(value)})
        backend = WandbBackend()
        live = backend.fetch_by_ids(f"e/{project}", [c["id"] for _, c in sheet.rows])
        for row, key, value in moved:
            if row < len(configs) and value is not ABSENT and fmt == "xlsx":
                sandbox.store.upsert({"id": live[f"run{row}"].storage_id,
                                      "config": json.dumps({key: {"value": value}})})
        live = backend.fetch_by_ids(f"e/{project}", [c["id"] for _, c in sheet.rows])
        fast = _Planner(sheet, live, f"e/{project}", False).run()
        slow = _FullPath(sheet, live, f"e/{project}", False).run()
        assert repr(fast) == repr(slow)
