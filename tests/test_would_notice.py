"""Tests a mutation check asked for (issue 11 §9): each fails if the guarded line is broken."""
from __future__ import annotations

import json

import wandb
from helpers import edit_cells, invoke


def finished_run_ids(n: int) -> list[str]:
    return [r.id for r in wandb.Api().runs("e/p") if r.state != "running"][:n]


def test_dry_run_with_yes_writes_nothing(seeded_sandbox, tmp_path):
    sheet = tmp_path / "runs.xlsx"
    invoke("export", "e/p", "-o", sheet)
    a, b = finished_run_ids(2)
    edit_cells(sheet, {(a, "group"): "dry-a", (b, "config.lr"): 0.123})
    seeded_sandbox.reset_stats()
    result = invoke("import", sheet, "--dry-run", "--yes", "--format", "json")
    assert len(json.loads(result.stdout)["changes"]) == 2
    assert seeded_sandbox.stats()["mutations"] == 0
    assert not list(tmp_path.glob("*.runsync-journals/*"))  # and no journal claims a write


def test_undo_after_force_restores_the_colleagues_value(seeded_sandbox, tmp_path):
    sheet = tmp_path / "runs.csv"
    invoke("export", "e/p", "-o", sheet)
    (run_id,) = finished_run_ids(1)
    run = wandb.Api().run(f"e/p/{run_id}")
    run.group = "colleagues-group"  # changed in W&B after the export, through the client
    run.update()
    edit_cells(sheet, {(run_id, "group"): "sheet-group"})
    invoke("import", sheet, "--yes", exit_code=1)  # a conflict: nothing written
    assert wandb.Api().run(f"e/p/{run_id}").group == "colleagues-group"
    done = invoke("import", sheet, "--yes", "--force")
    assert wandb.Api().run(f"e/p/{run_id}").group == "sheet-group"
    journal = next(line.split("runsync undo ", 1)[1] for line in done.stderr.splitlines() if "runsync undo " in line)
    invoke("undo", journal.strip().strip("'"), "--yes")
    assert wandb.Api().run(f"e/p/{run_id}").group == "colleagues-group"  # not the export's value
