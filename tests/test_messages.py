"""Messages that led users astray (issue 10): unwritable export paths, control characters in XLSX,
re-export over unimported edits, `team/proj/`, NaN in the JSON plan, the silent reader fallback, and the
sandbox recipe in `runsync sandbox --help`."""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import zipfile
from pathlib import Path

import pytest
from helpers import edit_cells, invoke

import runsync
from runsync.errors import ConfigError
from runsync.model import ABSENT, Action, Change, Plan
from runsync.report.text import plan_json
from runsync.sheets import xlsx_io
from runsync.sheets.meta import decode_value

# --- 1. an unwritable output path is refused before any W&B request ---------------------------------


def _unwritable(tmp_path: Path, case: str) -> Path:
    if case == "missing folder":
        return tmp_path / "no" / "such" / "runs.xlsx"
    if case == "path is a folder":
        (tmp_path / "runs.xlsx").mkdir()
        return tmp_path / "runs.xlsx"
    if case == "folder is a file":
        (tmp_path / "plain").write_text("x")
        return tmp_path / "plain" / "runs.csv"
    return Path("/sys/runsync-test-runs.xlsx")  # read-only even for root


UNWRITABLE = {"missing folder": "does not exist", "path is a folder": "it is a folder",
              "folder is a file": "is not a folder", "read-only filesystem": "is not writable"}


@pytest.mark.parametrize("case", list(UNWRITABLE))
def test_unwritable_output_fails_first_in_one_line(seeded_sandbox, tmp_path, case):
    target = _unwritable(tmp_path, case)
    seeded_sandbox.reset_stats()
    result = invoke("export", "e/p", "-o", target, exit_code=1)
    first, *rest = result.stderr.strip().splitlines()
    assert first.startswith(f"error: cannot write {target}") and UNWRITABLE[case] in first
    assert all(line.startswith("hint:") for line in rest)
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    stats = seeded_sandbox.stats()
    assert stats["requests"] == 0 and not any("Runs" in op for op in stats["operations"]), stats


def test_unwritable_output_from_the_api_and_the_real_exit_code(seeded_sandbox, tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        runsync.export("e/p", tmp_path / "gone" / "x.xlsx")
    out = tmp_path / "out"
    (out / "d.csv").mkdir(parents=True)
    proc = subprocess.run([shutil.which("runsync") or "runsync", "export", "e/p", "-o", str(out / "d.csv")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "it is a folder" in proc.stderr and "Traceback" not in proc.stderr
    assert seeded_sandbox.stats()["requests"] == 0
    runsync.export("e/p", out / "ok.csv")
    assert sorted(p.name for p in out.iterdir()) == ["d.csv", "ok.csv", "ok.csv.runsync.json"]  # no probe left


# --- 2. control characters in XLSX: stored as OOXML `_xHHHH_`, read back exactly --------------------

ODD_TEXT = ["a\x01b", "\x00", "\x08\x0b\x0c\x0e\x1f", "_x0041_", "_x005F_x0041_", "x_x0001_y", "\x01_x0001_",
            "_x00e9_ and _X0041_", "tab\tand\nnewline"]


def _seed_odd(sandbox, texts: list[str] = ODD_TEXT) -> dict[str, str]:
    for i, text in enumerate(texts):
        sandbox.store.create_run("e", "odd", f"r{i}", display_name=f"name{text}", notes=text, tags=[f"t{text}"],
                                 config={"s": text, f"k{text}": i, "nested": {"deep": text}})
    return {f"r{i}": text for i, text in enumerate(texts)}


def test_xlsx_stores_control_characters_and_round_trips(sandbox, tmp_path):
    expected = _seed_odd(sandbox)
    sheet = tmp_path / "odd.xlsx"
    invoke("export", "e/odd", "-o", sheet)
    fast, slow = xlsx_io.read_fast(str(sheet)), xlsx_io.read_with_openpyxl(str(sheet))
    assert fast.columns == slow.columns and fast.rows == slow.rows and fast.meta.base == slow.meta.base
    cells = {c["id"]: c for _, c in fast.rows}
    for rid, text in expected.items():
        assert cells[rid]["notes"] == text and cells[rid]["name"] == "name" + text
        assert cells[rid]["config.s"] == text and cells[rid]["config.nested.deep"] == text
        assert cells[rid][f"config.k{text}"] == int(rid[1:])
    plan = runsync.plan(sheet)
    assert not plan.errors and not plan.changes and not plan.conflicts
    assert "No changes." in invoke("import", sheet, "--dry-run").stdout
    # what is on disk is XML-safe and uses Excel's escape
    xml = zipfile.ZipFile(sheet).read("xl/worksheets/sheet1.xml").decode()
    assert "a_x0001_b" in xml and "_x005F_x0041_" in xml and "_x005F_x005F_x0041_" in xml and "\x01" not in xml


def test_an_escaped_cell_typed_in_is_the_character(sandbox, tmp_path):
    _seed_odd(sandbox)
    sheet = tmp_path / "odd.xlsx"
    invoke("export", "e/odd", "-o", sheet)
    edit_cells(sheet, {("r0", "notes"): "bell_x0007_", ("r3", "notes"): "_x005F_x0042_"})  # raw XML text
    changes = {(c.run_id, c.field): c for c in runsync.plan(sheet).changes}
    assert set(changes) == {("r0", "notes"), ("r3", "notes")}
    assert changes["r0", "notes"].sheet == "bell\x07" and changes["r3", "notes"].sheet == "_x0042_"
    invoke("import", sheet, "--yes")
    assert sandbox.store.get_run("e", "odd", "r0")["notes"] == "bell\x07"
    assert sandbox.store.get_run("e", "odd", "r3")["notes"] == "_x0042_"


def test_csv_keeps_control_characters_as_they_are(sandbox, tmp_path):
    _seed_odd(sandbox)
    sheet = tmp_path / "odd.csv"
    invoke("export", "e/odd", "-o", sheet)
    assert "a\x01b" in sheet.read_text(encoding="utf-8-sig") and "_x0041_" in sheet.read_text(encoding="utf-8-sig")
    plan = runsync.plan(sheet)
    assert not plan.errors and not plan.changes


@pytest.mark.parametrize("text", ["a\x01b", "_x0041_", "_x005F_x0041_", "\x1f_x1234_\x00"])
def test_escape_is_reversible(text):
    stored = xlsx_io.escape_text(text)
    assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", stored)
    assert xlsx_io.unescape_text(stored) == text


@pytest.mark.libreoffice
def test_libreoffice_resave_and_typed_literal_escape(sandbox, tmp_path):
    import libreoffice as lo

    # LibreOffice reads a literal `_x005F_xHHHH_` one level too far (its own limit), so not those here.
    _seed_odd(sandbox, [t for t in ODD_TEXT if "_x005F_" not in t] + ["x005F_ alone", "_x0041_ _x0001_ \x01"])
    sheet = tmp_path / "export" / "odd.xlsx"
    sheet.parent.mkdir()
    invoke("export", "e/odd", "-o", sheet)
    (resaved,) = lo.convert([sheet], tmp_path / "resaved", "xlsx:" + lo.XLSX_FILTER)
    plan = runsync.plan(resaved)
    assert not plan.errors and not plan.changes and not plan.conflicts
    fast, slow = xlsx_io.read_fast(str(resaved)), xlsx_io.read_with_openpyxl(str(resaved))
    assert fast.rows == slow.rows and fast.columns == slow.columns
    assert zipfile.ZipFile(resaved).read("xl/sharedStrings.xml").count(b"_x005F_x0041_") >= 3
    typed = tmp_path / "typed" / "odd.xlsx"
    typed.parent.mkdir()
    lo.run_jobs([lo.Job(str(sheet), str(typed), [lo.Edit("notes", "r0", "_x0041_"),
                                                  lo.Edit("notes", "r2", "ctl_x0041_end")])], tmp_path)
    changes = {c.run_id: c.sheet for c in runsync.plan(typed).changes}
    assert changes == {"r0": "_x0041_", "r2": "ctl_x0041_end"}


# --- 3. re-export over edits not imported yet ----------------------------------------------------------


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_reexport_over_an_unedited_sheet_is_fine(seeded_sandbox, tmp_path, suffix):
    sheet = tmp_path / f"runs{suffix}"
    invoke("export", "e/p", "-o", sheet)
    invoke("export", "e/p", "-o", sheet)
    assert runsync.plan(sheet).empty


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
@pytest.mark.parametrize("column,value", [("notes", "edited note"), ("config.lr", 0.5), ("tags", "x, y")])
def test_reexport_refuses_unimported_edits(seeded_sandbox, tmp_path, suffix, column, value):
    sheet = tmp_path / f"runs{suffix}"
    invoke("export", "e/p", "-o", sheet)
    rows = runsync.read(sheet).rows
    row_no, cells = rows[4]
    edit_cells(sheet, {(cells["id"], column): value})
    before = sheet.read_bytes()
    seeded_sandbox.reset_stats()
    result = invoke("export", "e/p", "-o", sheet, exit_code=1)
    assert f"error: {sheet} has edits not imported yet (row {row_no}, column {column!r})" in result.stderr
    assert "--overwrite" in result.stderr and f"runsync import {sheet}" in result.stderr
    assert sheet.read_bytes() == before and seeded_sandbox.stats()["requests"] == 0
    with pytest.raises(ConfigError, match="edits not imported"):
        runsync.export("e/p", sheet)
    invoke("export", "e/p", "-o", sheet, "--overwrite")
    assert runsync.plan(sheet).empty  # the edit is gone: the file is W&B's state again


def test_refusal_names_the_first_cells_and_counts_the_rest(seeded_sandbox, tmp_path):
    sheet = tmp_path / "runs.xlsx"
    invoke("export", "e/p", "-o", sheet)
    ids = [c["id"] for _, c in runsync.read(sheet).rows]
    edit_cells(sheet, {(ids[i], "group"): f"g{i}" for i in (1, 2, 3, 4, 5)})
    result = invoke("export", "e/p", "-o", sheet, exit_code=1)
    assert "(row 3, column 'group'; row 4, column 'group'; row 5, column 'group' and 2 more)" in result.stderr
    assert runsync.api.sheet_differs_from_base(runsync.read(sheet)) == [(r, "group") for r in (3, 4, 5, 6, 7)]


def test_tag_tick_and_added_row_count_as_edits(seeded_sandbox, tmp_path):
    sheet = tmp_path / "tags.xlsx"
    invoke("export", "e/p", "-o", sheet, "--tag-columns")
    data = runsync.read(sheet)
    assert runsync.api.sheet_differs_from_base(data) == []
    tag_column = next(c for c in data.columns if c.startswith("tag:"))
    row_no, cells = data.rows[0]
    edit_cells(sheet, {(cells["id"], tag_column): not cells[tag_column]})
    assert runsync.api.sheet_differs_from_base(runsync.read(sheet)) == [(row_no, tag_column)]
    csv_sheet = tmp_path / "runs.csv"
    invoke("export", "e/p", "-o", csv_sheet)
    width = len(runsync.read(csv_sheet).columns)
    with csv_sheet.open("a", encoding="utf-8") as fh:
        fh.write("not-a-run" + "," * (width - 1) + "\r\n")
    result = invoke("export", "e/p", "-o", csv_sheet, exit_code=1)
    assert "column 'id'" in result.stderr


@pytest.mark.parametrize("content,why", [(b"not a zip", "can't be read as a runsync sheet"),
                                         (None, "has no runsync base snapshot")])
def test_reexport_refuses_a_file_it_cannot_judge(seeded_sandbox, tmp_path, content, why):
    sheet = tmp_path / ("junk.xlsx" if content else "plain.csv")
    sheet.write_bytes(content or b"id,notes\nabc,hello\n")
    result = invoke("export", "e/p", "-o", sheet, exit_code=1)
    assert f"error: {sheet} exists and {why}" in result.stderr and "--overwrite" in result.stderr
    assert seeded_sandbox.stats()["requests"] == 0
    runsync.export("e/p", sheet, overwrite=True)
    assert runsync.plan(sheet).empty


# --- 4. the project as the file records it ----------------------------------------------------------


@pytest.mark.parametrize("given", [
    "e/p/", "/e/p", " e/p ",
    # W&B pages pasted from the browser's address bar: the project they are in.
    "https://wandb.ai/e/p/runs/x9%C3%A9z?nw=nwuser&workspace=user-ü", "http://127.0.0.1:8080/e/p",
    "https://wandb.example.org/e/p/sweeps/ab12cd#chart", "https://wandb.ai/e/p/reports/Ünïcode--VmlldzoxMjM0",
    " https://wandb.ai/e/p/workspace/ ",
])
def test_export_echoes_the_normalized_project(seeded_sandbox, tmp_path, given):
    sheet = tmp_path / "runs.csv"
    result = invoke("export", given, "-o", sheet)
    assert f"Exported 30 runs of e/p to {sheet}" in result.stderr and "e/p/" not in result.stderr
    assert runsync.read(sheet).meta.project == "e/p"


@pytest.mark.parametrize("given, said", [
    ("https://wandb.ai/e", "names no project"),
    ("https://wandb.ai/", "names no project"),
    ("https://wandb.ai/e/projects", "lists the projects of e"),
    ("https://wandb.ai/settings/p", "is not a project's page"),
    ("https://api.wandb.ai/graphql", "names no project"),
    ("ftp://wandb.ai/e/p", "ENTITY/PROJECT"),
    ("e/p/runs/abc", "ENTITY/PROJECT"),
    ("wandb.ai/e/p", "ENTITY/PROJECT"),
])
def test_an_ambiguous_address_is_refused_before_any_request(sandbox, tmp_path, given, said):
    result = invoke("export", given, "-o", tmp_path / "x.csv", exit_code=1)
    assert said in result.stderr and len(result.stderr.strip().splitlines()) <= 2, result.stderr
    assert sandbox.stats()["requests"] == 0 and not (tmp_path / "x.csv").exists()


def test_set_takes_a_pasted_run_url_as_its_project(seeded_sandbox):
    import wandb

    run_id = seeded_sandbox.store.snapshot("e", "p")[1][0].name
    invoke("set", f"https://wandb.ai/e/p/runs/{run_id}?nw=1", "--filter", f"name={run_id}",
           "--set", "notes=from a pasted URL ✓", "--yes")
    assert wandb.Api().run(f"e/p/{run_id}").notes == "from a pasted URL ✓"


# --- 6. the JSON plan is strict JSON ------------------------------------------------------------------


def _strict(text: str):
    def refuse(name: str):
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def test_plan_json_encodes_non_finite_numbers():
    nan, inf = math.nan, math.inf
    plan = Plan("e/p", "x.csv",
                changes=(Change("r1", "n1", "config.a", nan, inf, nan, Action.UPDATE, ("a",)),
                         Change("r1", "n1", "config.b", 1.0, [nan, {"$x": -inf}], 1.0, Action.UPDATE, ("b",))),
                conflicts=(Change("r2", "n2", "config.c", -inf, 2.0, nan, Action.CONFLICT, ("c",)),
                           Change("r2", "n2", "config.d", ABSENT, 2.0, None, Action.CONFLICT, ("d",))),
                infos=())
    doc = _strict(json.dumps(plan_json(plan), allow_nan=False))
    a, b = doc["changes"]
    assert a["old"] == {"$f": "nan"} and a["new"] == {"$f": "inf"}
    assert b["new"] == [{"$f": "nan"}, {"$d": {"$x": {"$f": "-inf"}}}]
    assert decode_value(b["new"])[1] == {"$x": -inf}
    c, d = doc["conflicts"]
    assert (c["base"], c["sheet"], c["live"]) == ({"$f": "-inf"}, 2.0, {"$f": "nan"})
    assert d["base"] is None and d["live"] is None


def test_import_format_json_with_nan_and_inf_is_strict(sandbox, tmp_path):
    sandbox.store.create_run("e", "f", "r1", config={"a": math.nan, "b": 1.5, "c": math.inf, "d": 2.0})
    sheet = tmp_path / "f.csv"
    invoke("export", "e/f", "-o", sheet)
    edit_cells(sheet, {("r1", "config.a"): "3.5", ("r1", "config.b"): "-inf", ("r1", "config.d"): "inf"})
    # and a conflict: W&B moved config.d to NaN since the export
    sandbox.store.upsert({"id": sandbox.store.find_run("e", "f", "r1").storage_id, "config": {"d": {"value": math.nan}}})
    result = invoke("import", sheet, "--dry-run", "--format", "json", exit_code=1)
    doc = _strict(result.stdout)
    changes = {c["field"]: c for c in doc["changes"]}
    assert changes["config.a"]["old"] == {"$f": "nan"} and changes["config.a"]["new"] == 3.5
    assert changes["config.b"]["new"] == {"$f": "-inf"}
    (conflict,) = doc["conflicts"]
    assert conflict == {"run_id": "r1", "field": "config.d", "base": 2.0, "sheet": {"$f": "inf"},
                        "live": {"$f": "nan"}}
    assert "NaN" not in result.stdout and "Infinity" not in result.stdout


# --- 7. the fast reader's fallback: only what calamine can't read, and shown with --debug --------------


def _break_a_bool_cell(sheet: Path) -> None:
    """Rewrite one TRUE cell as t="b" value 7: calamine refuses it, openpyxl reads it as TRUE."""
    tmp = sheet.with_suffix(".tmp")
    with zipfile.ZipFile(sheet) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                data, n = re.subn(rb'(<c [^>]*t="b"[^>]*><v>)1(</v>)', rb"\g<1>7\g<2>", data, count=1)
                assert n == 1
            dst.writestr(info, data)
    tmp.replace(sheet)


def test_fallback_is_shown_under_debug(seeded_sandbox, tmp_path):
    sheet = tmp_path / "tags.xlsx"
    invoke("export", "e/p", "-o", sheet, "--tag-columns")
    _break_a_bool_cell(sheet)
    quiet = invoke("import", sheet, "--dry-run")
    assert "No changes." in quiet.stdout and "debug" not in quiet.stderr
    loud = invoke("--debug", "import", sheet, "--dry-run")
    assert "No changes." in loud.stdout
    assert re.search(r"debug: .*tags\.xlsx: the fast reader failed \(CalamineError: .*\): reading with openpyxl",
                     loud.stderr), loud.stderr
    assert "debug" not in invoke("import", sheet, "--dry-run").stderr  # the handler went with the command


def test_empty_runs_sheet_falls_back_for_the_wording(tmp_path):
    import openpyxl

    book = openpyxl.Workbook()
    book.active.title = "runs"
    book.save(tmp_path / "empty.xlsx")
    result = invoke("--debug", "import", tmp_path / "empty.xlsx", "--dry-run", exit_code=1)
    assert "sheet 'runs' is empty" in result.stderr and "_EmptySheet" in result.stderr


def test_errors_of_our_own_are_not_retried_with_openpyxl(tmp_path):
    bad = Path(__file__).parent / "bad_sheets" / "meta_json_cut.xlsx"
    result = invoke("--debug", "import", bad, "--dry-run", exit_code=1)
    assert "hidden _runsync sheet is damaged" in result.stderr
    assert "fast reader failed" not in result.stderr and "reading with openpyxl" not in result.stderr


# --- 8. the sandbox recipe in the help works as written ---------------------------------------------


def test_sandbox_help_recipe_runs_and_returns(tmp_path):
    text = invoke("sandbox", "--help").stdout
    recipe = [line.strip() for line in text.splitlines() if line.startswith("    ") and line.strip()]
    assert recipe[0].startswith("runsync sandbox seed") and recipe[-1].startswith("kill %1")
    assert not any("eval" in line and "head" in line for line in recipe)
    script = "set -e\n" + "\n".join(recipe) + "\nwait\n"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(WANDB_DIR=str(tmp_path), WANDB_CONFIG_DIR=str(tmp_path), WANDB_SILENT="true")
    proc = subprocess.Popen(["bash", "-c", script], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the script and a serve it left running
        out, err = proc.communicate()
        pytest.fail(f"the recipe did not return\n{out}\n{err}")
    assert proc.returncode == 0, err
    assert "Exported 1000 runs of e/p" in err
    assert runsync.read(tmp_path / "runs.xlsx").meta.project == "e/p"
    assert not (tmp_path / "sb.env").exists()  # serve removed it when stopped


def test_env_file_is_private_and_complete(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    proc = subprocess.Popen([shutil.which("runsync") or "runsync", "sandbox", "serve", "--db", str(tmp_path / "s.db"),
                             "--env-file", str(tmp_path / "sb.env")], stdout=subprocess.PIPE, text=True, env=env)
    try:
        printed = proc.stdout.readline() + proc.stdout.readline()
        env_file = tmp_path / "sb.env"
        assert env_file.read_text() == printed and (env_file.stat().st_mode & 0o777) == 0o600
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert proc.returncode == 0 and not (tmp_path / "sb.env").exists()
