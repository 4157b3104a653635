"""Live runs are not edited behind their back (issue 11 §5): skipped by default, written with --include-running."""
from __future__ import annotations

import json

import pytest
import wandb
from helpers import edit_cells, invoke

import runsync


@pytest.fixture
def live_and_done(sandbox):
    store = sandbox.store
    ids = {
        "done1": store.create_run("e", "p", "done1", display_name="finished one", state="finished", config={"lr": 0.1}),
        "live1": store.create_run("e", "p", "live1", display_name="training", state="running", config={"lr": 0.2}),
        "done2": store.create_run("e", "p", "done2", state="crashed", config={"lr": 0.3}),
    }
    return sandbox, ids


def lr_in_wandb() -> dict[str, float]:
    return {r.id: r.config["lr"] for r in wandb.Api().runs("e/p", lazy=False)}


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_running_runs_are_skipped_and_listed(live_and_done, tmp_path, fmt):
    sheet = tmp_path / f"runs.{fmt}"
    invoke("export", "e/p", "-o", sheet)
    edit_cells(sheet, {("done1", "config.lr"): 1.5, ("live1", "config.lr"): 2.5, ("done2", "group"): "g"})
    text = invoke("import", sheet, "--dry-run")
    assert "Skipped" in text.stdout and "live1" in text.stdout and "still running" in text.stdout
    doc = json.loads(invoke("import", sheet, "--dry-run", "--format", "json").stdout)
    assert doc["skipped"] == [{"run_id": "live1", "run_name": "training", "reason": "running"}]
    assert sorted(c["run_id"] for c in doc["changes"]) == ["done1", "done2"]
    invoke("import", sheet, "--yes")
    assert lr_in_wandb() == {"done1": 1.5, "live1": 0.2, "done2": 0.3}


def test_include_running_writes_them_with_a_warning(live_and_done, tmp_path):
    sheet = tmp_path / "runs.xlsx"
    invoke("export", "e/p", "-o", sheet)
    edit_cells(sheet, {("live1", "config.lr"): 2.5})
    result = invoke("import", sheet, "--yes", "--include-running")
    assert "may overwrite" in result.stderr
    assert lr_in_wandb()["live1"] == 2.5


def test_a_run_that_started_running_after_the_plan_is_skipped_at_write_time(live_and_done, tmp_path):
    sandbox, ids = live_and_done
    sheet = tmp_path / "runs.xlsx"
    runsync.export("e/p", sheet)
    edit_cells(sheet, {("done1", "config.lr"): 9.0, ("done2", "config.lr"): 8.0})
    plan = runsync.plan(sheet)
    assert {c.run_id for c in plan.changes} == {"done1", "done2"} and not plan.skipped
    sandbox.store.upsert({"id": ids["done2"], "state": "running"})  # resumed between plan and write
    report = runsync.apply(plan, journal=tmp_path / "j.jsonl")
    assert [k.run_id for k in report.skipped] == ["done2"]
    assert lr_in_wandb() == {"done1": 9.0, "live1": 0.2, "done2": 0.3}


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_a_running_run_s_conflicting_fields_are_skipped_not_conflicts(live_and_done, tmp_path, fmt):
    sandbox, ids = live_and_done
    sheet = tmp_path / f"runs.{fmt}"
    runsync.export("e/p", sheet)
    edit_cells(sheet, {("live1", "config.lr"): 2.5, ("live1", "notes"): "from the sheet", ("done1", "group"): "g1"})
    # The live run's process (or a colleague) moved both fields since the export: each would be a conflict.
    run = wandb.Api().run("e/p/live1")
    run.config["lr"] = 0.75
    run.notes = "its own notes"
    run.update()
    plan = runsync.plan(sheet)
    assert not plan.conflicts
    assert [(s.run_id, s.reason) for s in plan.skipped] == [("live1", "running")]
    assert [(c.run_id, c.field) for c in plan.changes] == [("done1", "group")]
    doc = json.loads(invoke("import", sheet, "--dry-run", "--format", "json").stdout)  # exit 0: no conflicts
    assert doc["conflicts"] == [] and [s["run_id"] for s in doc["skipped"]] == ["live1"]
    invoke("import", sheet, "--yes")
    live = wandb.Api().run("e/p/live1")
    assert live.config["lr"] == 0.75 and live.notes == "its own notes"
    assert wandb.Api().run("e/p/done1").group == "g1"
