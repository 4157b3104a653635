"""Export options, the DataFrame round trip, and the 2-way / --base paths."""
from __future__ import annotations

import json
import shutil

import pytest
import wandb
from helpers import edit_cells, invoke

import runsync
from runsync.sheets import read_sheet


def test_columns_config_keys_and_summary(seeded_sandbox, tmp_path):
    sheet = tmp_path / "narrow.xlsx"
    invoke("export", "e/p", "-o", sheet, "--columns", "name,tags,config.lr,config.model",
           "--summary", "acc,loss")
    header = read_sheet(str(sheet)).columns
    # --summary asks for its columns whatever --columns says
    assert header == ["id", "name", "tags", "config.lr", "config.model.depth", "config.model.width",
                      "summary.acc", "summary.loss"]
    assert "group" not in header and "config.dataset" not in header
    wide = tmp_path / "keys.csv"
    invoke("export", "e/p", "-o", wide, "--config-keys", "model", "--summary", "acc")
    data = read_sheet(str(wide))
    config_columns = [c for c in data.columns if c.startswith("config.")]
    assert config_columns == ["config.model.depth", "config.model.width"]
    assert "summary.acc" in data.columns
    runs = {r.id: r for r in wandb.Api().runs("e/p", lazy=False)}
    for _, cells in data.rows:
        assert float(cells["summary.acc"]) == runs[cells["id"]].summary["acc"]
    # the narrowed sheet round-trips to an empty plan; a read-only summary edit is refused
    assert runsync.plan(wide).empty
    run_id = data.rows[0][1]["id"]
    edit_cells(wide, {(run_id, "summary.acc"): 0.123})
    result = invoke("import", wide, "--dry-run", exit_code=1)
    assert "read-only" in result.stderr and run_id in result.stderr and "summary.acc" in result.stderr


def test_limit_order_and_filters_json(seeded_sandbox, tmp_path):
    sheet = tmp_path / "top.csv"
    invoke("export", "e/p", "-o", sheet, "--filters", '{"config.dataset": {"$in": ["mnist", "cifar100"]}}',
           "--order", "-created_at", "--limit", "4")
    expected = [r.id for r in wandb.Api().runs(
        "e/p", filters={"config.dataset": {"$in": ["mnist", "cifar100"]}}, order="-created_at")][:4]
    assert [cells["id"] for _, cells in read_sheet(str(sheet)).rows] == expected


def test_bad_filter_json_is_one_line_error(seeded_sandbox, tmp_path):
    result = invoke("export", "e/p", "-o", tmp_path / "x.xlsx", "--filters", "{nope", exit_code=1)
    assert "--filters is not valid JSON" in result.stderr
    assert not (tmp_path / "x.xlsx").exists()


def test_frame_edit_plan_apply(seeded_sandbox, tmp_path):
    df = runsync.frame("e/p")
    assert list(df["id"]) == [r.id for r in wandb.Api().runs("e/p")]
    assert runsync.plan(df).empty
    target = df.index[df["config.batch_size"] == df["config.batch_size"].max()][0]
    run_id = df.at[target, "id"]
    df.at[target, "group"] = "from-pandas"
    df.at[target, "tags"] = ["p1", "p2"]
    df.at[target, "config.lr"] = 0.25
    plan = runsync.plan(df)
    assert {(c.run_id, c.field): c.sheet for c in plan.changes} == {
        (run_id, "group"): "from-pandas", (run_id, "tags"): ("p1", "p2"), (run_id, "config.lr"): 0.25}
    journal = tmp_path / "frame.jsonl"
    report = runsync.apply(plan, journal=journal)
    assert report.ok and journal.exists()
    run = wandb.Api().run(f"e/p/{run_id}")
    assert (run.group, list(run.tags), run.config["lr"]) == ("from-pandas", ["p1", "p2"], 0.25)


def test_two_way_and_base_for_a_sheet_without_its_base(seeded_sandbox, tmp_path):
    exported = tmp_path / "runs.csv"
    invoke("export", "e/p", "-o", exported)
    orphan = tmp_path / "runs - Sheet1.csv"  # as a Google Sheets download is named; no sidecar
    shutil.copy(exported, orphan)
    run_id = read_sheet(str(exported)).rows[0][1]["id"]
    edit_cells(orphan, {(run_id, "group"): "via-google"})
    result = invoke("import", orphan, "--dry-run", exit_code=1)
    assert "--base" in result.stderr and "--project" in result.stderr
    with_base = json.loads(invoke("import", orphan, "--dry-run", "--format", "json", "--base",
                                  str(exported) + ".runsync.json").stdout)
    assert [(c["run_id"], c["field"], c["new"]) for c in with_base["changes"]] == [(run_id, "group", "via-google")]
    with_file = json.loads(invoke("import", orphan, "--dry-run", "--format", "json", "--base", exported).stdout)
    assert with_file["changes"] == with_base["changes"]
    two_way = invoke("import", orphan, "--dry-run", "--format", "json", "--project", "e/p")
    assert "conflicts cannot be detected" in two_way.stderr
    assert [(c["run_id"], c["field"]) for c in json.loads(two_way.stdout)["changes"]] == [(run_id, "group")]


def test_export_to_unknown_extension_is_refused(seeded_sandbox, tmp_path):
    result = invoke("export", "e/p", "-o", tmp_path / "runs.ods", exit_code=1)
    assert ".xlsx or .csv" in result.stderr


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_export_prints_where_and_next_step(seeded_sandbox, tmp_path, fmt):
    sheet = tmp_path / f"runs.{fmt}"
    result = invoke("export", "e/p", "-o", sheet)
    assert f"Exported 30 runs of e/p to {sheet}" in result.stderr
    assert f"runsync import {sheet} --dry-run" in result.stderr


def test_frame_with_duplicate_ids_is_refused(seeded_sandbox):
    df = runsync.frame("e/p", limit=3)
    df.loc[2, "id"] = df.loc[0, "id"]
    plan = runsync.plan(df)
    duplicate = [e for e in plan.errors if e.column == "id"]
    assert [(e.row, e.run_id) for e in duplicate] == [(4, df.loc[0, "id"])]
    assert "duplicate id" in duplicate[0].message and not plan.changes
    with pytest.raises(runsync.RunsyncError):
        runsync.apply(plan)


def test_columns_and_config_keys_together_and_unknown_names(seeded_sandbox, tmp_path):
    sheet = tmp_path / "both.csv"
    result = invoke("export", "e/p", "-o", sheet, "--columns", "id,name,group", "--config-keys", "lr,model,no_such_key")
    header = read_sheet(str(sheet)).columns
    assert header == ["id", "name", "group", "config.lr", "config.model.depth", "config.model.width"]
    assert "no_such_key" in result.stderr and "warning" in result.stderr
    seeded_sandbox.reset_stats()
    for bad in ("name,grup", "id,summary.acc", "config.lr,nmae"):
        refused = invoke("export", "e/p", "-o", tmp_path / "x.csv", "--columns", bad, exit_code=1)
        assert "unknown column" in refused.stderr and refused.stderr.count("\n") <= 3
    assert seeded_sandbox.stats()["requests"] == 0  # refused before any W&B request
    assert not (tmp_path / "x.csv").exists()
