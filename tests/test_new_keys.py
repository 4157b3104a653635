"""Irreversible writes are asked for, not assumed (issue 17 §3, and §6's column added for a key not exported).

W&B cannot delete a config key: one created in many runs can only be nulled by undo. So a plan that creates
keys is applied only with `--new-keys` (`new_keys=True`), and a header that differs from an exported one only
by case, spaces or invisible characters is refused before W&B is read. W&B's state is judged through the plain
wandb client, the requests through the sandbox's counters.
"""
from __future__ import annotations

import csv
import io
import json
import shlex
from pathlib import Path

import openpyxl
import pytest
import wandb
from helpers import edit_cells, invoke, write_counts

import runsync
from runsync.errors import RunsyncError, SheetError
from runsync.model import ABSENT

NBSP, ZWSP = "\u00a0", "\u200b"


def configs(project: str = "e/p") -> dict[str, str]:
    """Every run's config as the wandb client reads it (the oracle: not runsync's reader)."""
    return {r.id: json.dumps(dict(r.config), sort_keys=True) for r in wandb.Api().runs(project, lazy=False)}


def tags_of(project: str = "e/p") -> dict[str, list[str]]:
    return {r.id: sorted(r.tags) for r in wandb.Api().runs(project, lazy=False)}


@pytest.fixture
def runs(sandbox):
    """Four finished runs: `lr` everywhere, `opt.beta` nested, `bs` in two, tags `debug` and `Keep me`."""
    for i in range(4):
        config = {"lr": [0.1, 0.2, 0.3, 0.4][i], "opt": {"beta": 0.9}, **({"bs": 32 * (i + 1)} if i < 2 else {})}
        sandbox.store.create_run("e", "p", f"r{i}", state="finished", config=config,
                                 tags=["debug"] if i % 2 else ["Keep me"])
    return sandbox


def export(tmp_path: Path, fmt: str, *extra: str) -> Path:
    sheet = tmp_path / f"runs.{fmt}"
    invoke("export", "e/p", "-o", sheet, *extra)
    return sheet


def set_header(sheet: Path, column: str, header: str, *, beside: bool) -> None:
    """Retype `column`'s header as `header` (beside: add `header` as a new column, values copied)."""
    if sheet.suffix == ".xlsx":
        book = openpyxl.load_workbook(sheet)
        ws = book["runs"]
        at = [c.value for c in ws[1]].index(column) + 1
        if beside:
            new = ws.max_column + 1
            for row in range(1, ws.max_row + 1):
                ws.cell(row, new).value = ws.cell(row, at).value
            ws.cell(1, new).value = header
        else:
            ws.cell(1, at).value = header
        book.save(sheet)
        return
    table = list(csv.reader(io.StringIO(sheet.read_text(encoding="utf-8-sig"))))
    at = table[0].index(column)
    if beside:
        for row in table:
            row.append(row[at])
        table[0][-1] = header
    else:
        table[0][at] = header
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(table)
    sheet.write_text(out.getvalue(), encoding="utf-8-sig")


def runs_read(sandbox) -> list[str]:
    """The operations since the last reset that read runs (a login's viewer query is not one)."""
    return [op for op in sandbox.stats()["operations"] if "Run" in op]


# (exported column, header typed, beside the exported one?) — each differs only by case, spaces or invisibles
TWINS = [
    ("config.lr", "config.lr ", True),  # a trailing space, beside the exported column
    ("config.lr", f"config.lr{NBSP}", False),  # a no-break space, the exported header retyped
    ("config.lr", f"config.l{ZWSP}r", False),  # a zero-width space inside
    ("config.lr", "config.LR", True),  # another case
    ("config.opt.beta", "config.opt.Beta", False),  # a nested key's case
    ("tag:debug", "tag:Debug", True),  # a tag column in another case
    ("tag:Keep me", f"tag:Keep{NBSP}me", False),  # a tag column whose space became a no-break space
    # look-alikes an IME or autocorrect types (found by an adversarial tryout): fullwidth letters, script l
    ("config.lr", "config.\uff4cr", True), ("config.lr", "config.\uff2cr", False), ("config.lr", "config.\u2113r", False),
]


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
@pytest.mark.parametrize("column,header,beside", TWINS)
def test_a_twin_header_is_refused_before_w_and_b_is_read(runs, tmp_path, fmt, column, header, beside):
    sheet = export(tmp_path, fmt, "--tag-columns")
    set_header(sheet, column, header, beside=beside)
    before, tags_before = configs(), tags_of()
    for dry in ([], ["--dry-run"]):
        runs.reset_stats()
        result = invoke("import", sheet, "--yes", *dry, exit_code=1)
        assert runs_read(runs) == [], runs.stats()  # refused from the file alone
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, result.stderr
        assert repr(header) in errors[0] and repr(column) in errors[0] and "--new-keys" in errors[0]
        assert "Traceback" not in result.stderr
    assert write_counts(runs) == (0, 0)
    assert configs() == before and tags_of() == tags_before
    with pytest.raises(SheetError, match="--new-keys"):
        runsync.plan(sheet)


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_a_twin_header_with_new_keys_writes_the_new_key_it_names(runs, tmp_path, fmt):
    sheet = export(tmp_path, fmt)
    set_header(sheet, "config.lr", "config.lr ", beside=False)
    edit_cells(sheet, {("r0", "config.lr "): 0.5})
    before = {rid: json.loads(c) for rid, c in configs().items()}
    dry = invoke("import", sheet, "--dry-run", "--new-keys")
    assert "'config.lr ' is not the exported 'config.lr'" in dry.stderr
    assert 'creates key "lr " in 4 runs' in dry.stdout
    invoke("import", sheet, "--yes", "--new-keys")
    after = {rid: json.loads(c) for rid, c in configs().items()}
    for rid, config in after.items():  # the exported key untouched, the retyped one created, as warned
        assert config["lr"] == before[rid]["lr"]
        assert config["lr "] == (0.5 if rid == "r0" else before[rid]["lr"])


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_new_keys_are_counted_and_written_only_with_the_opt_in(runs, tmp_path, fmt):
    sheet = export(tmp_path, fmt)
    edit_cells(sheet, {("r0", "config.warm up"): 5, ("r1", "config.warm up"): 6, ("r2", "config.warm up"): 7,
                       ("r2", "config.bs"): 1, ("r0", "config.lr"): 0.25})  # bs: r2 lacks it
    before = configs()
    dry = invoke("import", sheet, "--dry-run")
    assert 'config.warm up: creates key "warm up" in 3 runs' in dry.stdout
    assert 'config.bs: creates key "bs" in 1 run' in dry.stdout
    assert "W&B cannot delete" in dry.stdout
    [apply_line] = [line for line in dry.stderr.splitlines() if "To apply:" in line]
    command = shlex.split(apply_line.split("To apply: ", 1)[1])
    assert command[:2] == ["runsync", "import"] and "--new-keys" in command
    # Without the opt-in, --yes or not: one line naming the columns and the option; nothing written.
    for args in (["--yes"], []):
        runs.reset_stats()
        refused = invoke("import", sheet, *args, exit_code=1)
        [line] = [x for x in refused.stderr.splitlines() if x.startswith("error:")]
        assert "'config.warm up' (3 runs)" in line and "'config.bs' (1 run)" in line and "--new-keys" in line
        assert write_counts(runs) == (0, 0)
        assert configs() == before
    # The command printed, run as printed (with --yes: no terminal here), writes every change.
    invoke(*command[1:], "--yes")
    after = {rid: json.loads(c) for rid, c in configs().items()}
    assert [after[f"r{i}"].get("warm up") for i in range(4)] == [5, 6, 7, None]
    assert "warm up" not in after["r3"] and after["r2"]["bs"] == 1 and after["r0"]["lr"] == 0.25
    assert after["r1"]["bs"] == 64  # untouched


def test_a_plan_that_creates_no_key_needs_no_opt_in_and_its_apply_line_has_none(runs, tmp_path):
    sheet = export(tmp_path, "csv")
    edit_cells(sheet, {("r0", "config.lr"): 0.75, ("r1", "config.bs"): None})  # an edit, and a key nulled
    dry = invoke("import", sheet, "--dry-run")
    assert "creates key" not in dry.stdout and "--new-keys" not in dry.stderr
    invoke("import", sheet, "--yes")
    after = {rid: json.loads(c) for rid, c in configs().items()}
    assert after["r0"]["lr"] == 0.75 and after["r1"]["bs"] is None


def test_a_key_holding_null_in_w_and_b_is_not_a_new_key(sandbox, tmp_path):
    sandbox.store.create_run("e", "p", "n0", config={"seed": None, "lr": 0.1})
    sandbox.store.create_run("e", "p", "n1", config={"lr": 0.2})
    sheet = export(tmp_path, "xlsx")
    edit_cells(sheet, {("n0", "config.seed"): 3})
    plan = runsync.plan(sheet)
    assert plan.new_key_counts == {} and len(plan.changes) == 1
    runsync.apply(plan)
    edit_cells(sheet, {("n1", "config.seed"): 4})
    assert runsync.plan(sheet).new_key_counts == {"config.seed": 1}


def test_the_python_api_refuses_unless_plan_or_apply_opts_in(runs, tmp_path):
    sheet = export(tmp_path, "xlsx")
    edit_cells(sheet, {("r3", "config.bs"): 512, ("r1", "config.opt.gamma"): 0.5})
    before = configs()
    plan = runsync.plan(sheet)
    assert plan.new_key_counts == {"config.bs": 1, "config.opt.gamma": 1}
    with pytest.raises(RunsyncError, match=r"'config\.bs' \(1 run\).*--new-keys") as refused:
        runsync.apply(plan)
    assert "\n" not in str(refused.value)
    assert configs() == before
    report = runsync.apply(plan, new_keys=True)
    assert report.ok and json.loads(configs()["r3"])["bs"] == 512
    assert json.loads(configs()["r1"])["opt"] == {"beta": 0.9, "gamma": 0.5}
    edit_cells(sheet, {("r2", "config.bs"): 256})
    assert runsync.apply(runsync.plan(sheet, new_keys=True)).ok  # the opt-in given when planning
    assert json.loads(configs()["r2"])["bs"] == 256


def test_the_json_plan_counts_new_keys(runs, tmp_path):
    sheet = export(tmp_path, "csv")
    edit_cells(sheet, {("r2", "config.bs"): 1, ("r3", "config.bs"): 2, ("r0", "config.lr"): 0.3})
    doc = json.loads(invoke("import", sheet, "--dry-run", "--format", "json").stdout)
    assert doc["new_keys"] == [{"field": "config.bs", "key": ["bs"], "runs": 2}]
    assert doc["summary"]["fields"] == 3  # the summary is as before: the list counts the new keys


# --- runsync set ------------------------------------------------------------------------------------------

def test_set_creating_a_key_needs_new_keys(runs):
    before = configs()
    dry = invoke("set", "e/p", "--set", "config.bs=8", "--dry-run")
    assert 'config.bs: creates key "bs" in 2 runs' in dry.stdout
    assert "--new-keys" in dry.stderr.splitlines()[-1]
    for args in (["--yes"], []):
        refused = invoke("set", "e/p", "--set", "config.bs=8", *args, exit_code=1)
        assert "'config.bs' (2 runs)" in refused.stderr and "--new-keys" in refused.stderr
        assert configs() == before
    invoke("set", "e/p", "--set", "config.bs=8", "--yes", "--new-keys")
    assert {rid: json.loads(c)["bs"] for rid, c in configs().items()} == {f"r{i}": 8 for i in range(4)}


def test_set_of_a_key_every_run_has_needs_no_opt_in(runs):
    dry = invoke("set", "e/p", "--set", "config.lr=0.5", "--dry-run")
    assert "creates key" not in dry.stdout and "--new-keys" not in dry.stderr
    invoke("set", "e/p", "--set", "config.lr=0.5", "--yes")
    assert {json.loads(c)["lr"] for c in configs().values()} == {0.5}


def test_set_from_python_takes_new_keys(runs):
    plan = runsync.set("e/p", set={"config.fresh": "x"})
    with pytest.raises(RunsyncError, match="--new-keys"):
        runsync.apply(plan)
    assert runsync.apply(runsync.set("e/p", set={"config.fresh": "x"}, new_keys=True)).ok
    assert {json.loads(c)["fresh"] for c in configs().values()} == {"x"}


# --- §6: a column added for a key that was not exported ------------------------------------------------------

@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_a_column_for_a_key_not_exported_is_planned_against_w_and_b_now(runs, tmp_path, fmt):
    sheet = export(tmp_path, fmt, "--config-keys", "lr")  # bs (r0: 32, r1: 64) not exported
    edit_cells(sheet, {("r1", "config.bs"): 100})  # the other cells of the added column stay empty
    plan = runsync.plan(sheet)
    assert plan.infos == () and plan.conflicts == ()  # W&B did not change since the export
    assert [(c.run_id, c.field, c.live, c.sheet) for c in plan.changes] == [("r1", "config.bs", 64, 100)]
    assert plan.new_key_counts == {}
    [warning] = [w for w in plan.warnings if "not exported" in w]
    assert "'config.bs'" in warning
    invoke("import", sheet, "--yes")
    after = {rid: json.loads(c) for rid, c in configs().items()}
    assert [after[f"r{i}"].get("bs") for i in range(4)] == [32, 100, None, None]
    assert "bs" not in after["r2"] and "bs" not in after["r3"]  # an empty cell keeps W&B's (lack of a) value


def test_a_column_not_exported_typed_everywhere_creates_keys_only_where_w_and_b_lacks_them(runs, tmp_path):
    sheet = export(tmp_path, "xlsx", "--config-keys", "lr")
    edit_cells(sheet, {(f"r{i}", "config.bs"): 7 for i in range(4)})
    plan = runsync.plan(sheet)
    assert plan.conflicts == () and plan.infos == ()
    assert {c.run_id: c.live for c in plan.changes} == {"r0": 32, "r1": 64, "r2": ABSENT, "r3": ABSENT}
    assert plan.new_key_counts == {"config.bs": 2}


def test_the_apply_line_runs_as_printed_with_base_and_a_path_with_spaces(runs, tmp_path):
    sheet = export(tmp_path, "csv")
    copy = tmp_path / "runs - Sheet1 (it's mine).csv"  # a download: no sidecar of its own
    copy.write_bytes(sheet.read_bytes())
    edit_cells(copy, {("r3", "config.bs"): 9})
    dry = invoke("import", copy, "--base", f"{sheet}.runsync.json", "--dry-run")
    [apply_line] = [line for line in dry.stderr.splitlines() if "To apply:" in line]
    command = shlex.split(apply_line.split("To apply: ", 1)[1])
    assert command == ["runsync", "import", str(copy), "--base", f"{sheet}.runsync.json", "--new-keys"]
    invoke(*command[1:], "--yes")
    assert json.loads(configs()["r3"])["bs"] == 9


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_an_mlflow_column_in_a_w_and_b_sheet_is_refused(runs, tmp_path, fmt):
    """`params.x`, `tags.x`, `metrics.x` are MLflow's columns: a W&B sheet holding one is refused naming it."""
    sheet = export(tmp_path, fmt)
    before = configs()
    edit_cells(sheet, {("r0", "params.lr ü"): "0.5", ("r1", "tags.team"): "a", ("r0", "config.lr"): 0.75})
    result = invoke("import", sheet, "--yes", "--new-keys", exit_code=1)
    errors = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert len(errors) == 2 and "column 'params.lr ü'" in errors[0] and "column 'tags.team'" in errors[1]
    assert all("MLflow column" in e and "W&B project e/p" in e for e in errors)
    assert configs() == before
    refused = invoke("set", "e/p", "--set", "params.lr=1", "--yes", exit_code=1)
    assert "no field 'params.lr'" in refused.stderr and configs() == before
