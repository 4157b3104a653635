"""Projects shaped like real ones (configs logged by many scripts over years): an untouched sheet never
writes, an edit lands exactly, nothing is silently destroyed. Issue 10, items 1-6 and 8-10.

W&B's state is judged through the plain wandb client (`wandb.Api().runs(..., lazy=False)`), and sheet cells
through openpyxl and the csv module, not through runsync's own reader.
"""
from __future__ import annotations

import csv
import io
import json
import math
import shutil
from pathlib import Path

import openpyxl
import pytest
import wandb
from helpers import edit_cells, invoke

import runsync
from runsync.sheets import xlsx_io

FORMATS = ["xlsx", "csv"]


def wandb_runs() -> dict[str, object]:
    return {r.id: r for r in wandb.Api().runs("e/p", lazy=False)}


def wandb_state() -> dict[str, tuple]:
    """Everything runsync may write, per run, as the wandb client reads it."""
    return {rid: (r.name, tuple(r.tags), r.group, r.job_type, r.notes, json.dumps(dict(r.config), sort_keys=True))
            for rid, r in wandb_runs().items()}


def export(tmp_path: Path, fmt: str, *extra: str, name: str = "runs") -> Path:
    sheet = tmp_path / f"{name}.{fmt}"
    invoke("export", "e/p", "-o", sheet, *extra)
    return sheet


def header_and_rows(sheet: Path) -> tuple[list[str], dict[str, dict[str, object]]]:
    """The sheet's cells by run id and column, read with openpyxl / csv (an oracle apart from runsync)."""
    if sheet.suffix == ".xlsx":
        book = openpyxl.load_workbook(sheet)
        table = [[c.value for c in row] for row in book["runs"].iter_rows()]
    else:
        table = list(csv.reader(io.StringIO(sheet.read_text(encoding="utf-8-sig"))))
    header = [str(h) for h in table[0]]
    rows = {str(r[header.index("id")]): dict(zip(header, r)) for r in table[1:]}
    return header, rows


def write_csv_cells(sheet: Path, edits: dict[tuple[str, str], str]) -> None:
    """Set CSV cells to raw text exactly as a program would have saved it (no quoting rules of ours)."""
    table = list(csv.reader(io.StringIO(sheet.read_text(encoding="utf-8-sig"))))
    header = table[0]
    for (run_id, column), text in edits.items():
        row = next(r for r in table[1:] if r[header.index("id")] == run_id)
        row[header.index(column)] = text
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(table)
    sheet.write_text(out.getvalue(), encoding="utf-8-sig")


def plan_fields(plan) -> list[tuple[str, str, object]]:
    return sorted((c.run_id, c.field, c.sheet) for c in plan.changes)


# --- 1. whitespace-only text ----------------------------------------------------------------------------

@pytest.fixture
def blank_looking(sandbox):
    store = sandbox.store
    store.create_run("e", "p", "w1", display_name=" ", group="\t", notes="  ", job_type=" train ",
                     config={"s": " ", "t": "\t\n", "u": " x ", "n": 1})
    store.create_run("e", "p", "w2", display_name="  two", group="g ", notes="\n",
                     config={"s": "\u00a0", "t": "", "u": "y", "n": 2})
    store.create_run("e", "p", "w3", display_name="three", group=None, notes=None,
                     config={"s": "\u3000", "t": "\r\n", "u": "  ", "n": 3})
    return sandbox


@pytest.mark.parametrize("fmt", FORMATS)
def test_whitespace_only_text_survives_an_untouched_round_trip(blank_looking, tmp_path, fmt):
    before = wandb_state()
    sheet = export(tmp_path, fmt)
    _, rows = header_and_rows(sheet)
    guard = "'" if fmt == "csv" else ""  # the CSV formula guard marks a leading TAB
    assert rows["w1"]["name"] == " " and rows["w1"]["group"] == guard + "\t"  # the oracle sees the spaces
    assert runsync.plan(sheet).empty
    result = invoke("import", sheet, "--yes")
    assert "No changes." in result.stdout + result.stderr
    assert wandb_state() == before


def test_whitespace_only_text_beside_a_real_edit(blank_looking, tmp_path):
    sheet = export(tmp_path, "xlsx")
    edit_cells(sheet, {("w1", "config.n"): 10})
    plan = runsync.plan(sheet)
    assert plan_fields(plan) == [("w1", "config.n", 10)]
    invoke("import", sheet, "--yes")
    run = wandb_runs()["w1"]
    assert run.name == " " and run.group == "\t" and run.notes == "  "
    assert dict(run.config) == {"s": " ", "t": "\t\n", "u": " x ", "n": 10}


@pytest.mark.parametrize("texts", [[" ", "\t", "  "], ["\n", " a", "b "], ["\t\t", " \n ", "x\t"]])
def test_both_xlsx_readers_read_edge_whitespace_alike(tmp_path, texts):
    # openpyxl writes whitespace-only text without xml:space="preserve"; calamine then trims it.
    path = tmp_path / "ws.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "runs"
    sheet.append(["id", *[f"config.c{i}" for i in range(len(texts))]])
    sheet.append(["r1", *texts])
    book.save(path)
    slow = xlsx_io.read_with_openpyxl(str(path))
    fast = xlsx_io.read_xlsx(str(path))
    assert slow.rows == fast.rows
    assert [fast.rows[0][1][f"config.c{i}"] for i in range(len(texts))] == texts


# --- 2. literal dotted keys beside nested ones ---------------------------------------------------------

@pytest.fixture
def dotted(sandbox):
    store = sandbox.store
    store.create_run("e", "p", "d1", config={"a.b": 1, "a": {"b": 2}, "opt": {"lr.max": 0.1, "lr": 0.01}})
    store.create_run("e", "p", "d2", config={"x.y.z": "flat", "x": {"y": {"z": "nested"}, "y.z": "mid"}})
    store.create_run("e", "p", "d3", config={"a": {"b": 3}, "back\\slash": {"k": 4}, "dot.": 5})
    return sandbox


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_key_path_has_its_own_column(dotted, tmp_path, fmt):
    sheet = export(tmp_path, fmt)
    header, rows = header_and_rows(sheet)
    for column in ["config.a.b", "config.a\\.b", "config.opt.lr", "config.opt.lr\\.max", "config.x.y.z",
                   "config.x\\.y\\.z", "config.x.y\\.z", "config.back\\\\slash.k", "config.dot\\."]:
        assert column in header, column
    assert str(rows["d1"]["config.a.b"]) == "2" and str(rows["d1"]["config.a\\.b"]) == "1"
    assert rows["d2"]["config.x.y.z"] == "nested" and rows["d2"]["config.x\\.y\\.z"] == "flat"
    assert rows["d2"]["config.x.y\\.z"] == "mid"
    plan = runsync.plan(sheet)
    assert plan.empty and not plan.infos


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_edit_to_a_dotted_key_lands_on_that_key_only(dotted, tmp_path, fmt):
    sheet = export(tmp_path, fmt)
    edit_cells(sheet, {("d1", "config.a\\.b"): 5, ("d1", "config.a.b"): 6, ("d2", "config.x.y\\.z"): "edited"})
    plan = runsync.plan(sheet)
    assert plan_fields(plan) == [("d1", "config.a.b", 6), ("d1", "config.a\\.b", 5), ("d2", "config.x.y\\.z", "edited")]
    invoke("import", sheet, "--yes")
    runs = wandb_runs()
    assert dict(runs["d1"].config) == {"a.b": 5, "a": {"b": 6}, "opt": {"lr.max": 0.1, "lr": 0.01}}
    assert dict(runs["d2"].config) == {"x.y.z": "flat", "x": {"y": {"z": "nested"}, "y.z": "edited"}}


def test_force_over_a_dotted_key_writes_no_new_nested_key(dotted, tmp_path):
    sheet = export(tmp_path, "xlsx")
    api = wandb.Api()
    run = api.run("e/p/d1")
    run.config["a.b"] = 100  # a colleague's change, through the client
    run.update()
    edit_cells(sheet, {("d1", "config.a\\.b"): 7})
    plan = runsync.plan(sheet)
    assert [c.field for c in plan.conflicts] == ["config.a\\.b"] and not plan.changes
    assert not [c for c in plan.infos if c.field == "config.a.b"]  # the nested key did not move
    invoke("import", sheet, "--yes", "--force")
    assert dict(wandb_runs()["d1"].config) == {"a.b": 7, "a": {"b": 2}, "opt": {"lr.max": 0.1, "lr": 0.01}}


# --- 3. the 2-way path (no base) -------------------------------------------------------------------------

def test_two_way_untouched_sheet_writes_nothing(sandbox, tmp_path):
    store = sandbox.store
    store.create_run("e", "p", "n1", config={"sub": None, "k.v": 1, "lst": [1, 2]})
    store.create_run("e", "p", "n2", config={"sub": {"k": 1, "j": {"deep": True}}, "k": {"v": 2}})
    store.create_run("e", "p", "n3", config={"sub": {}, "lst": None})
    before = wandb_state()
    exported = export(tmp_path, "csv")
    download = tmp_path / "runs - Sheet1.csv"  # what Google Sheets hands back: no sidecar
    shutil.copy(exported, download)
    result = invoke("import", download, "--project", "e/p", "--dry-run", "--format", "json")
    doc = json.loads(result.stdout)
    assert doc["changes"] == [] and doc["conflicts"] == [] and doc["errors"] == []
    invoke("import", download, "--project", "e/p", "--yes")
    assert wandb_state() == before
    write_csv_cells(download, {("n1", "config.k\\.v"): "11"})
    invoke("import", download, "--project", "e/p", "--yes")
    config = dict(wandb_runs()["n1"].config)
    assert config == {"sub": None, "k.v": 11, "lst": [1, 2]}


# --- 4. number-like tags a program turned into numbers ---------------------------------------------------

@pytest.fixture
def numeric_tags(sandbox):
    store = sandbox.store
    store.create_run("e", "p", "t1", tags=["007"])
    store.create_run("e", "p", "t2", tags=["1.50"])
    store.create_run("e", "p", "t3", tags=["12345678901234567890"])
    store.create_run("e", "p", "t4", tags=["50%"])
    store.create_run("e", "p", "t5", tags=["2024-01-02"])
    return sandbox


def test_number_like_tags_damaged_by_a_csv_open_are_warned_not_written(numeric_tags, tmp_path):
    sheet = export(tmp_path, "csv")
    # What Excel / LibreOffice save after opening the CSV with their defaults.
    write_csv_cells(sheet, {("t1", "tags"): "7", ("t2", "tags"): "1.5", ("t3", "tags"): "1.23456789012346E+19",
                            ("t4", "tags"): "0.5", ("t5", "tags"): "02/01/2024"})
    plan = runsync.plan(sheet)
    assert not plan.changes and not plan.conflicts
    for run_id in ("t1", "t2", "t3", "t4", "t5"):
        assert any(f"run {run_id}" in w and "'tags'" in w for w in plan.warnings), (run_id, plan.warnings)


def test_a_real_edit_of_a_number_like_tag_is_a_change(numeric_tags, tmp_path):
    sheet = export(tmp_path, "csv")
    write_csv_cells(sheet, {("t1", "tags"): "008", ("t2", "tags"): "1.50, v2", ("t4", "tags"): "75%"})
    assert plan_fields(runsync.plan(sheet)) == [("t1", "tags", ("008",)), ("t2", "tags", ("1.50", "v2")),
                                                ("t4", "tags", ("75%",))]


def test_a_damaged_config_list_is_not_called_tags(sandbox, tmp_path):
    sandbox.store.create_run("e", "p", "l1", config={"langs": ["français", "ελληνικά"]}, tags=["x"])
    sheet = export(tmp_path, "csv")
    write_csv_cells(sheet, {("l1", "config.langs"): '["fran?ais", "????????"]'})
    plan = runsync.plan(sheet)
    assert not plan.changes
    [warning] = [w for w in plan.warnings if "config.langs" in w]
    assert "in tags" not in warning and "UTF-8" in warning


# --- 5. tag tick columns for tags with edge spaces ------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
def test_tag_columns_with_edge_spaces_are_no_change(sandbox, tmp_path, fmt):
    store = sandbox.store
    store.create_run("e", "p", "s1", tags=["foo ", " bar", "baz"])
    store.create_run("e", "p", "s2", tags=["baz", "  "])
    store.create_run("e", "p", "s3", tags=[])
    sheet = export(tmp_path, fmt, "--tag-columns")
    header, _ = header_and_rows(sheet)
    assert "tag:foo " in header and "tag: bar" in header
    assert runsync.plan(sheet).empty
    edit_cells(sheet, {("s3", "tag:foo "): True})
    assert plan_fields(runsync.plan(sheet)) == [("s3", "tags", ("foo ",))]


# --- 6. the DataFrame path keeps NaN ---------------------------------------------------------------------

def test_frame_round_trip_keeps_nan(sandbox):
    store = sandbox.store
    store.create_run("e", "p", "f1", config={"loss": math.nan, "best": math.inf, "x": 1.0})
    store.create_run("e", "p", "f2", config={"loss": 0.5, "best": -math.inf, "x": 2.0})
    store.create_run("e", "p", "f3", config={"loss": None, "x": math.nan})
    df = runsync.frame("e/p")
    plan = runsync.plan(df)
    assert plan.empty and not plan.infos
    df.loc[df["id"] == "f2", "config.x"] = 3.0
    assert plan_fields(runsync.plan(df)) == [("f2", "config.x", 3.0)]
    # NaN where W&B has a number is pandas' "missing": an emptied cell, so null.
    df.loc[df["id"] == "f2", "config.loss"] = math.nan
    changes = plan_fields(runsync.plan(df))
    assert ("f2", "config.loss", None) in changes and not any(c[0] == "f1" for c in changes)


# --- 8. a value typed under a key that holds a scalar ----------------------------------------------------

@pytest.fixture
def shapes(sandbox):
    store = sandbox.store
    store.create_run("e", "p", "c1", config={"enc": "convnext", "opt": [1, 2]})
    store.create_run("e", "p", "c2", config={"enc": {"layers": 4, "dim": 64}, "opt": {"lr": 0.1}})
    store.create_run("e", "p", "c3", config={"enc": None, "opt": 0})
    return sandbox


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("run_id, column, value, blocker", [
    ("c1", "config.enc.layers", 8, "config.enc"),
    ("c1", "config.opt.lr", 0.2, "config.opt"),
    ("c3", "config.enc.dim", 32, "config.enc"),
    ("c3", "config.opt.lr", 0.3, "config.opt"),
    ("c2", "config.enc", "resnet", "config.enc.layers"),
])
def test_typing_under_a_scalar_or_over_a_dict_is_refused(shapes, tmp_path, fmt, run_id, column, value, blocker):
    before = wandb_state()
    sheet = export(tmp_path, fmt)
    edit_cells(sheet, {(run_id, column): value})
    result = invoke("import", sheet, "--yes", exit_code=1)
    assert f"run {run_id}" in result.stderr and repr(column) in result.stderr and blocker in result.stderr
    assert wandb_state() == before


# --- 9. a value of another type in a one-type column -----------------------------------------------------

@pytest.fixture
def typed(sandbox):
    store = sandbox.store
    for i, (flag, rate, count) in enumerate([(True, 0.5, 3), (False, 0.25, 4), (True, 1.5, 5)]):
        store.create_run("e", "p", f"y{i}", display_name=f"run {i}", group="g",
                         config={"use_amp": flag, "rate": rate, "count": count, "tag": "x"})
    return sandbox


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("column, typed_text", [("config.use_amp", "Yes"), ("config.rate", "0,5"),
                                                ("config.count", "drei"), ("config.use_amp", "ja"),
                                                ("config.rate", "1.5e-3 ≈"), ("config.count", "12 345")])
def test_text_in_a_typed_column_is_refused_unless_allowed(typed, tmp_path, fmt, column, typed_text):
    before = wandb_state()
    sheet = export(tmp_path, fmt)
    edit_cells(sheet, {("y1", column): typed_text})
    plan = runsync.plan(sheet)
    assert plan.changes == () and not [w for w in plan.warnings if column in w]
    [error] = plan.errors
    assert (error.row, error.run_id, error.column) == (3, "y1", column)
    assert f"{typed_text!r} is text in a column of" in error.message
    assert f'quote it for text ("{typed_text}")' in error.message and "--allow-text" in error.message
    refused = invoke("import", sheet, "--yes", exit_code=1)
    assert f"row 3, run y1, column {column!r}" in refused.stderr and "nothing written" in refused.stderr
    invoke("import", sheet, "--yes", "--strict", exit_code=1)  # --strict refuses it as well
    assert wandb_state() == before
    allowed = invoke("import", sheet, "--yes", "--allow-text")
    assert "written as text (--allow-text)" in allowed.stderr
    assert dict(wandb_runs()["y1"].config)[column.split(".")[1]] == typed_text


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_quoted_cell_is_text_on_purpose(typed, tmp_path, fmt):
    sheet = export(tmp_path, fmt)
    edit_cells(sheet, {("y1", "config.rate"): '"0,5"', ("y2", "config.use_amp"): '"ja ✓"',
                       ("y0", "config.count"): '" 12 "'})
    plan = runsync.plan(sheet)
    assert not plan.errors and not plan.warnings
    assert plan_fields(plan) == [("y0", "config.count", " 12 "), ("y1", "config.rate", "0,5"),
                                 ("y2", "config.use_amp", "ja ✓")]
    invoke("import", sheet, "--yes")
    runs = wandb_runs()
    assert (runs["y1"].config["rate"], runs["y2"].config["use_amp"], runs["y0"].config["count"]) == (
        "0,5", "ja ✓", " 12 ")


def test_a_formula_cell_gets_one_message(typed, tmp_path):
    """A formula typed into an editable XLSX cell is one error, not also "text in a column of ..." values."""
    before = wandb_state()
    sheet = export(tmp_path, "xlsx")
    formulas = {("y1", "config.rate"): "=1/3", ("y0", "config.use_amp"): "=1>0", ("y2", "config.count"): "=A1*2",
                ("y0", "config.tag"): '=CONCAT("x","ü")', ("y2", "group"): "=B2"}
    edit_cells(sheet, formulas)
    result = invoke("import", sheet, "--dry-run", exit_code=1)
    lines = [line for line in result.stderr.splitlines() if line.startswith(("error:", "warning:"))]
    for (run_id, column), formula in formulas.items():
        about = [line for line in lines if f"run {run_id}, column {column!r}" in line]
        assert len(about) == 1 and about[0].startswith("error:"), result.stderr
        assert f"formula in an editable cell ({formula})" in about[0]
    assert len(lines) == len(formulas), result.stderr
    assert wandb_state() == before


def test_a_number_in_a_number_column_and_text_in_a_text_column_are_not_warned(typed, tmp_path):
    sheet = export(tmp_path, "xlsx")
    edit_cells(sheet, {("y1", "config.rate"): 2, ("y2", "config.tag"): "007", ("y0", "config.count"): 7.5})
    plan = runsync.plan(sheet)
    assert len(plan.changes) == 3 and not plan.warnings


@pytest.mark.parametrize("column, value", [("name", " run 1"), ("group", "g2 "), ("job_type", "\ttrain")])
def test_edge_spaces_pasted_into_text_fields_are_warned(typed, tmp_path, column, value):
    sheet = export(tmp_path, "xlsx")
    edit_cells(sheet, {("y1", column): value})
    plan = runsync.plan(sheet)
    assert plan_fields(plan) == [("y1", column, value)]
    assert any("leading or trailing spaces" in w and column in w for w in plan.warnings)


# --- 10. only the id column sorted ------------------------------------------------------------------------

@pytest.fixture
def named(sandbox):
    store = sandbox.store
    for i, (name, group) in enumerate([("zeta", "g1"), ("alpha", "g2"), ("mid", "g1"), ("beta", None)]):
        store.create_run("e", "p", f"r{i}", display_name=name, group=group, config={"lr": 0.1 * (i + 1)})
    return sandbox


def sort_id_column_only(sheet: Path) -> None:
    if sheet.suffix == ".xlsx":
        book = openpyxl.load_workbook(sheet)
        ws = book["runs"]
        cells = [ws.cell(r, 1) for r in range(2, ws.max_row + 1)]
        for cell, value in zip(cells, sorted(c.value for c in cells)[::-1]):
            cell.value = value
        book.save(sheet)
        return
    table = list(csv.reader(io.StringIO(sheet.read_text(encoding="utf-8-sig"))))
    ids = sorted((r[0] for r in table[1:]), reverse=True)
    for row, rid in zip(table[1:], ids):
        row[0] = rid
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(table)
    sheet.write_text(out.getvalue(), encoding="utf-8-sig")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("columns", ["id,name,group", "id,group,config.lr", "id,name", None])
def test_sorting_only_the_id_column_is_caught(named, tmp_path, fmt, columns):
    before = wandb_state()
    sheet = export(tmp_path, fmt, *(["--columns", columns] if columns else []))
    sort_id_column_only(sheet)
    result = invoke("import", sheet, "--yes", exit_code=1)
    assert "sorted on its own" in result.stderr
    assert result.stderr.count("error:") == 1  # one clear error, not one per cell
    assert wandb_state() == before


def test_whole_row_sorts_and_copied_values_are_not_mistaken_for_it(named, tmp_path):
    sheet = export(tmp_path, "csv", "--columns", "id,name,group")
    table = list(csv.reader(io.StringIO(sheet.read_text(encoding="utf-8-sig"))))
    table[1:] = sorted(table[1:], key=lambda r: r[1])  # sort by name, whole rows
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(table)
    sheet.write_text(out.getvalue(), encoding="utf-8-sig")
    assert runsync.plan(sheet).empty
    # Copy run r1's name and group onto r0 (a real edit): r1's row stays as it was.
    edit_cells(sheet, {("r0", "name"): "alpha", ("r0", "group"): "g2"})
    plan = runsync.plan(sheet)
    assert not plan.errors and plan_fields(plan) == [("r0", "group", "g2"), ("r0", "name", "alpha")]


@pytest.mark.parametrize("text", ["007", "1e5", "TRUE", "0.50"])
def test_text_typed_into_a_new_or_empty_xlsx_column_stays_text(sandbox, tmp_path, text):
    sandbox.store.create_run("e", "p", "e1", config={"opt": None})
    sandbox.store.create_run("e", "p", "e2", config={"opt": None, "n": 1})
    sheet = export(tmp_path, "xlsx")
    book = openpyxl.load_workbook(sheet)
    ws = book["runs"]
    header = [c.value for c in ws[1]]
    ws.cell(1, len(header) + 1).value = "config.newk"
    rows = {ws.cell(r, 1).value: r for r in range(2, ws.max_row + 1)}
    for column, run_id in ((header.index("config.opt") + 1, "e1"), (len(header) + 1, "e2")):
        cell = ws.cell(rows[run_id], column)
        cell.value, cell.number_format = text, "@"  # a Text cell, as a person makes one
    book.save(sheet)
    assert plan_fields(runsync.plan(sheet)) == [("e1", "config.opt", text), ("e2", "config.newk", text)]
    # The same characters typed as numbers/booleans are those (a number cell in XLSX is a number).
    edit_cells(sheet, {("e1", "config.opt"): 7})
    assert ("e1", "config.opt", 7) in plan_fields(runsync.plan(sheet))


@pytest.mark.parametrize("renamed,keep_original", [("config.LR", False), ("config. lr", False), ("config.Lr", True)])
def test_a_header_retyped_in_another_case_is_refused_or_warned_as_a_new_key(sandbox, tmp_path, renamed, keep_original):
    for i in range(3):
        sandbox.store.create_run("e", "p", f"h{i}", state="finished", config={"lr": 0.1 * (i + 1)})
    sheet = tmp_path / "runs.xlsx"
    invoke("export", "e/p", "-o", sheet)
    book = openpyxl.load_workbook(sheet)
    ws = book["runs"]
    header = [c.value for c in ws[1]]
    col = header.index("config.lr") + 1
    if keep_original:  # a second column beside the exported one
        ws.cell(1, ws.max_column + 1).value = renamed
    else:
        ws.cell(1, col).value = renamed
    book.save(sheet)
    with pytest.raises(runsync.RunsyncError, match="--new-keys"):  # refused unless new keys are asked for
        runsync.plan(sheet)
    plan = runsync.plan(sheet, new_keys=True)
    [warning] = [w for w in plan.warnings if "case-sensitive" in w]
    assert f"{renamed!r} is not the exported 'config.lr'" in warning
    assert ("no longer in the sheet" in warning) is not keep_original
    # As warned: the values go to the new key (an empty extra column changes nothing).
    assert {c.field for c in plan.changes} == (set() if keep_original else {renamed})


def test_new_config_columns_of_other_names_are_not_warned(sandbox, tmp_path):
    sandbox.store.create_run("e", "p", "h0", state="finished", config={"lr": 0.1})
    sheet = tmp_path / "runs.csv"
    invoke("export", "e/p", "-o", sheet)
    edit_cells(sheet, {("h0", "config.lr_warmup"): 5})
    plan = runsync.plan(sheet)
    assert not [w for w in plan.warnings if "case-sensitive" in w]
    assert [c.field for c in plan.changes] == ["config.lr_warmup"]


# --- issue 17 §4: numbers typed as text ------------------------------------------------------------------

@pytest.fixture
def long_floats(sandbox):
    store = sandbox.store
    store.create_run("e", "p", "t1", config={"lr": 0.1 + 0.2, "seed": 12345678901234567, "w": 0.5})
    store.create_run("e", "p", "t2", config={"lr": 1 / 3, "seed": 7, "w": 2.0})
    store.create_run("e", "p", "t3", config={"lr": math.pi * 1e-300, "seed": -(10**18) - 3, "w": 1e-7})
    return sandbox


def test_a_copied_long_float_text_in_a_new_column_among_numbers_is_that_float(long_floats, tmp_path):
    sheet = export(tmp_path, "xlsx")
    _, rows = header_and_rows(sheet)
    assert rows["t1"]["config.lr"] == "0.30000000000000004"  # the oracle: runsync wrote it as text
    assert isinstance(rows["t1"]["config.seed"], str)
    # The user copies t1's lr and t3's lr and seed into new columns, and types numbers in the other rows.
    edit_cells(sheet, {("t1", "config.lr2"): rows["t1"]["config.lr"], ("t2", "config.lr2"): 0.25,
                       ("t3", "config.lr2"): rows["t3"]["config.lr"],
                       ("t1", "config.seed2"): 4, ("t3", "config.seed2"): rows["t3"]["config.seed"],
                       ("t1", "config.label"): "0.30000000000000004", ("t2", "config.label"): "007"})
    plan = runsync.plan(sheet)
    assert not plan.errors
    assert {(c.run_id, c.field): c.sheet for c in plan.changes if c.field.endswith("2")} == {
        ("t1", "config.lr2"): 0.1 + 0.2, ("t2", "config.lr2"): 0.25, ("t3", "config.lr2"): math.pi * 1e-300,
        ("t1", "config.seed2"): 4, ("t3", "config.seed2"): -(10**18) - 3}
    invoke("import", sheet, "--yes", "--new-keys")
    runs = wandb_runs()
    assert runs["t1"].config["lr2"] == 0.1 + 0.2 and type(runs["t1"].config["lr2"]) is float
    assert runs["t3"].config["lr2"] == math.pi * 1e-300 and runs["t3"].config["seed2"] == -(10**18) - 3
    assert runs["t1"].config["label"] == "0.30000000000000004" and runs["t2"].config["label"] == "007"


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("run_id, column, text", [
    ("t1", "config.lr", "1e999"), ("t2", "config.w", "-2.5e308"), ("t3", "config.seed", "1E+400"),
    ("t2", "config.fresh", "9e9999"),
])
def test_a_float_literal_that_overflows_is_an_error_not_inf(long_floats, tmp_path, fmt, run_id, column, text):
    before = wandb_state()
    sheet = export(tmp_path, fmt)
    if fmt == "csv":
        write_csv_cells(sheet, {(run_id, column): text}) if column != "config.fresh" else \
            edit_cells(sheet, {(run_id, column): text})
    else:
        edit_cells(sheet, {(run_id, column): text, **({("t1", column): 1.5} if column == "config.fresh" else {})})
    result = invoke("import", sheet, "--yes", exit_code=1)
    line = next(ln for ln in result.stderr.splitlines() if "largest float" in ln)
    assert f"run {run_id}" in line and repr(column) in line
    assert wandb_state() == before
# --- a boolean typed over a read-only number ----------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("shortcuts", [True, False])
def test_a_boolean_typed_over_a_read_only_number_is_an_edit(sandbox, tmp_path, monkeypatch, fmt, shortcuts):
    # True == 1 == 1.0 and False == 0 in Python; in W&B (and in the sheet) they are different values.
    from runsync.planner.diff import _Planner

    monkeypatch.setattr(_Planner, "shortcuts", shortcuts)
    sandbox.store.create_run("e", "p", "b0", state="finished", config={"lr": 0.1},
                             summary={"one": 1, "zero": 0, "whole": 1.0, "neg": -1})
    sheet = export(tmp_path, fmt, "--summary", "one,zero,whole,neg")
    edit_cells(sheet, {("b0", "summary.one"): True, ("b0", "summary.zero"): False, ("b0", "summary.whole"): True,
                       ("b0", "config.lr"): 0.25})
    plan = runsync.plan(sheet)
    assert sorted((e.column, e.message) for e in plan.errors) == [
        ("summary.one", "read-only column edited (was 1, now True)"),
        ("summary.whole", "read-only column edited (was 1.0, now True)"),
        ("summary.zero", "read-only column edited (was 0, now False)"),
    ]
    assert plan.changes == ()  # the sheet is refused whole, config.lr's edit included
