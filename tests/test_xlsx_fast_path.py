"""The calamine fast reader gives exactly the SheetData the openpyxl reader gives, and yields when it can't."""
from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runsync.model import SheetMeta
from runsync.sheets import read_sheet, write_sheet, xlsx_fast, xlsx_io, xlsx_read
from runsync.sheets.xlsx_fast import openpyxl_like, plain_values_only

HERE = Path(__file__).parent
XLSX_FILES = sorted([*HERE.glob("bad_sheets/*.xlsx"), *(HERE.parent / "sample_sheets").glob("*.xlsx")])


def _same_both_ways(path: Path) -> None:
    slow = xlsx_io.read_with_openpyxl(str(path))
    fast = xlsx_io.read_fast(str(path))
    assert fast.columns == slow.columns
    assert fast.rows == slow.rows
    assert fast.errors == slow.errors and fast.warnings == slow.warnings
    assert repr(fast.meta) == repr(slow.meta)  # repr: NaN in a base equals itself


def _outcome(read, path: Path) -> tuple:
    try:
        data = read(str(path))
    except Exception as exc:  # SheetError for damaged files: the message is what a person sees
        return ("error", type(exc).__name__, str(exc))
    return ("ok", data.columns, data.rows, data.errors, data.warnings, repr(data.meta))


@pytest.mark.parametrize("path", XLSX_FILES, ids=lambda p: p.name)
def test_fast_and_openpyxl_readers_agree_on_committed_sheets(path):
    slow = _outcome(xlsx_io.read_with_openpyxl, path)
    assert _outcome(read_sheet, path) == slow  # what a person gets, whichever reader ran
    if plain_values_only(str(path), "runs") and slow[0] == "ok":
        assert _outcome(xlsx_io.read_fast, path) == slow


def test_sheets_calamine_cannot_show_are_declined():
    declined = {p.name for p in XLSX_FILES if not plain_values_only(str(p), "runs")}
    assert {"formula_in_editable.xlsx", "merged_cells.xlsx", "error_value.xlsx"} <= declined
    assert "runs.xlsx" not in declined


cells = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**15) + 1, 10**15 - 1), st.integers(),
    st.floats(allow_nan=False, allow_infinity=False), st.floats(),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=20),
    st.sampled_from(["007", " pad ", "=SUM(A1)", "TRUE", "2024-01-02", "1e5", "", "日本語", "-0"]),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(cells, min_size=3, max_size=3), min_size=1, max_size=4))
def test_fast_and_openpyxl_readers_agree_on_any_export(tmp_path, rows):
    columns = ["id", "config.a", "config.b", "config.c"]
    records = [{"id": f"r{i}", **{c: v for c, v in zip(columns[1:], row) if v is not None}} for i, row in enumerate(rows)]
    meta = SheetMeta(project="e/p", selection={}, exported_at="2024-01-01T00:00:00+00:00", runsync_version="t",
                     base={r["id"]: {k: v for k, v in r.items() if k != "id"} for r in records})
    path = tmp_path / "x.xlsx"
    write_sheet(path, columns, records, meta)
    assert plain_values_only(str(path), "runs")
    _same_both_ways(path)


def test_values_map_as_openpyxl_reads_them():
    assert openpyxl_like("") is None and openpyxl_like(3.0) == 3 and type(openpyxl_like(3.0)) is int
    assert type(openpyxl_like(2.0**60)) is float and openpyxl_like(0.5) == 0.5
    assert openpyxl_like(dt.date(2024, 1, 2)) == dt.datetime(2024, 1, 2) and openpyxl_like(True) is True


@pytest.mark.libreoffice
def test_fast_and_openpyxl_agree_after_a_libreoffice_resave(tmp_path):
    from libreoffice import convert

    source = tmp_path / "in" / "runs.xlsx"
    source.parent.mkdir()
    shutil.copy(HERE.parent / "sample_sheets" / "runs.xlsx", source)
    (resaved,) = convert([source], tmp_path / "out", "xlsx:Calc MS Excel 2007 XML")
    if plain_values_only(str(resaved), "runs"):
        _same_both_ways(resaved)
    else:  # LibreOffice writes booleans as =TRUE() formulas: the openpyxl reader takes those files
        assert read_sheet(resaved).rows == xlsx_io.read_with_openpyxl(str(resaved)).rows


_XML_BITS = st.sampled_from([
    "<", ">", "/", ":", "x", "f", "t", "e", "=", '"', " ", "\n", "\t", "\r", "a", "<f>", "<f ", "<f/>", "<x:f ",
    "t=\"e\"", " t=\"e\"", "<mergeCell ", "<x:mergeCell>", "<x:sheetData", "<t>", "</t>", "<x:t>", "</x:t>",
    "<t xml:space=\"preserve\">", "<c r=\"A1\" t=\"inlineStr\"><is>", "</is></c>", "<v>1</v>", "<formula1>",
])


@settings(max_examples=3000, deadline=None)
@given(parts=st.lists(_XML_BITS, max_size=30))
def test_the_fast_scan_never_misses_what_the_full_patterns_find(parts):
    from runsync.sheets.xlsx_fast import _EDGE_SPACE, _NEEDS_OPENPYXL, _may_hold

    data = "".join(parts).encode()
    for pattern in (_NEEDS_OPENPYXL, _EDGE_SPACE):
        if pattern.search(data):
            assert _may_hold(pattern, data), (pattern.pattern, data)


def test_the_fast_scan_finds_each_kind_of_cell_calamine_cannot_show():
    from runsync.sheets.xlsx_fast import _EDGE_SPACE, _NEEDS_OPENPYXL, _may_hold

    for xml, pattern in [(b'<c r="A2"><f>1+1</f></c>', _NEEDS_OPENPYXL), (b'<x:f t="shared"/>', _NEEDS_OPENPYXL),
                         (b'<c r="A2" t="e"><v>#N/A</v></c>', _NEEDS_OPENPYXL),
                         (b'<mergeCell ref="A1:B2"/>', _NEEDS_OPENPYXL), (b'<x:sheetData>', _NEEDS_OPENPYXL),
                         (b'<is><t> x</t></is>', _EDGE_SPACE), (b'<is><t>x\n</t></is>', _EDGE_SPACE),
                         (b'<si><x:t>x </x:t></si>', _EDGE_SPACE)]:
        assert pattern.search(xml) and _may_hold(pattern, xml)
    assert not _may_hold(_EDGE_SPACE, b'<is><t>a b</t></is>') and not _may_hold(_NEEDS_OPENPYXL, b'<c><v>1</v></c>')


_json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5),
              st.sampled_from(["$f", "$d", "nan", "\\u0024"])),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.one_of(st.text(max_size=3), st.sampled_from(["$f", "$d", "$x"])),
                                            inner, max_size=3)),
    max_leaves=10)


@settings(max_examples=500, deadline=None)
@given(value=st.dictionaries(st.text(max_size=5), _json_values, max_size=4))
def test_base_rows_read_as_meta_loads_reads_them(value):
    from runsync.sheets.meta import dumps, loads

    text = dumps(value)
    assert repr(xlsx_read._loads_base(text)) == repr(loads(text))  # repr: NaN equals itself
    escaped = text.replace("$", "\\u0024")  # a hand-edited row may spell $ so
    assert repr(xlsx_read._loads_base(escaped)) == repr(loads(escaped))


@pytest.mark.parametrize("reader", ["fast", "openpyxl"])
def test_base_rows_of_many_runs_share_their_column_names(tmp_path, reader):
    # Issue 20 §4: at 100,000 runs a copy of every column name per run was ~175 MiB of a plan's memory.
    columns = ["id", "name", "config.lr", "config.a.b", "config.$f"]
    records = [{"id": f"r{i}", "name": f"run ✓ {i}", "config.lr": i / 3, "config.a.b": [i, None],
                "config.$f": {"$d": "x"} if i % 2 else "é"} for i in range(7)]
    base = {r["id"]: {c: r[c] for c in columns[1:]} for r in records}
    meta = SheetMeta(project="e/p", selection={}, exported_at="2024-01-01T00:00:00+00:00", runsync_version="t",
                     config_paths={"config.lr": ["lr"], "config.a.b": ["a", "b"], "config.$f": ["$f"]}, base=base)
    path = tmp_path / "many.xlsx"
    write_sheet(str(path), columns, records, meta)
    read = xlsx_io.read_fast if reader == "fast" else xlsx_io.read_with_openpyxl
    got = read(str(path)).meta
    assert got is not None and repr(got.base) == repr(base)
    keys = [list(values) for values in got.base.values()]
    assert all(a is b for other in keys[1:] for a, b in zip(keys[0], other, strict=True))



@pytest.mark.parametrize("sheet", ["runs", "_runsync"])
@pytest.mark.parametrize("gap", ["row", "column"])
def test_sheets_not_starting_at_a1_read_alike_by_both_readers(tmp_path, sheet, gap):
    # calamine's rows start at the first cell used; the fast reader takes them a row at a time (iter_rows),
    # and must still see an empty first row or column as openpyxl does.
    from openpyxl import Workbook, load_workbook
    from python_calamine import CalamineWorkbook

    path = tmp_path / "export.xlsx"
    records = [{"id": "r1", "name": "ünï", "config.lr": 0.5}, {"id": "0042", "name": None, "config.lr": 3}]
    meta = SheetMeta(project="e/p", selection={}, exported_at="2024-01-01T00:00:00+00:00", runsync_version="t",
                     config_paths={"config.lr": ["lr"]},
                     base={r["id"]: {k: v for k, v in r.items() if k != "id"} for r in records})
    write_sheet(path, ["id", "name", "config.lr"], records, meta)
    source, moved = load_workbook(path), Workbook()
    moved.remove(moved.active)
    for name in ("runs", "_runsync"):
        shift = (1, 0) if gap == "row" else (0, 1)
        dr, dc = shift if name == sheet else (0, 0)
        ws = moved.create_sheet(name)
        for row in source[name].iter_rows():
            for cell in row:
                if cell.value is not None:
                    ws.cell(cell.row + dr, cell.column + dc, cell.value)
    moved_path = tmp_path / "moved.xlsx"
    moved.save(moved_path)
    calamine = CalamineWorkbook.from_path(str(moved_path))
    assert calamine.get_sheet_by_name(sheet).start != (0, 0)
    assert list(xlsx_fast.iter_rows(calamine, sheet)) == xlsx_fast.read_rows(calamine, sheet)
    slow = _outcome(xlsx_io.read_with_openpyxl, moved_path)
    assert _outcome(xlsx_io.read_fast, moved_path) == slow
    assert _outcome(lambda p: xlsx_read.read_xlsx(p, on_ids=lambda *_: None), moved_path) == slow
