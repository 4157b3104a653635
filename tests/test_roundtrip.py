"""Export -> edit -> import --dry-run -> import, end to end through the CLI, real wandb client, sandbox."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import wandb
from helpers import edit_cells, invoke

import runsync

FORMATS = ["xlsx", "csv"]


def fresh_run(run_id: str, project: str = "e/p") -> wandb.apis.public.Run:
    return wandb.Api().run(f"{project}/{run_id}")


def plan_json(sheet: Path, *extra: str, exit_code: int = 0) -> dict:
    result = invoke("import", sheet, "--dry-run", "--format", "json", *extra, exit_code=exit_code)
    return json.loads(result.stdout)


@pytest.fixture
def exported(seeded_sandbox, tmp_path, request):
    fmt = getattr(request, "param", "xlsx")
    sheet = tmp_path / f"runs.{fmt}"
    invoke("export", "e/p", "-o", sheet)
    return sheet


@pytest.mark.parametrize("exported", FORMATS, indirect=True)
def test_no_edit_plans_nothing(exported, seeded_sandbox):
    before = seeded_sandbox.stats()["mutations"]
    doc = plan_json(exported)
    assert doc["changes"] == [] and doc["conflicts"] == [] and doc["errors"] == []
    assert doc["summary"] == {"runs": 0, "fields": 0, "conflicts": 0, "errors": 0}
    text = invoke("import", exported, "--dry-run").stdout
    assert "No changes." in text
    assert seeded_sandbox.stats()["mutations"] == before


@pytest.mark.parametrize("exported", FORMATS, indirect=True)
def test_each_kind_of_edit_is_exactly_that_change(exported, seeded_sandbox):
    runs = [r for r in wandb.Api().runs("e/p", lazy=False) if r.state != "running"]  # running runs are skipped
    a, b, c = runs[0], runs[1], runs[2]
    lr_column = "config.lr"
    new_lr = a.config["lr"] / 10
    edits = {
        (a.id, "name"): "renamed-run",
        (a.id, "tags"): ", ".join([*a.tags, "sheet-tag"]),
        (a.id, lr_column): new_lr,
        (b.id, "group"): "regrouped",
        (b.id, "notes"): "line one\nline two",
        (b.id, "config.model.depth"): 99,
        (c.id, "job_type"): "sheet-eval",
        (c.id, "config.optimizer"): None,  # cleared: W&B can't delete a key, so null
    }
    edit_cells(exported, edits)
    doc = plan_json(exported)
    got = {(ch["run_id"], ch["field"]): ch["new"] for ch in doc["changes"]}
    assert got == {
        (a.id, "name"): "renamed-run",
        (a.id, "tags"): [*a.tags, "sheet-tag"],
        (a.id, lr_column): pytest.approx(new_lr, rel=1e-14),
        (b.id, "group"): "regrouped",
        (b.id, "notes"): "line one\nline two",
        (b.id, "config.model.depth"): 99,
        (c.id, "job_type"): "sheet-eval",
        (c.id, "config.optimizer"): None,
    }
    olds = {(ch["run_id"], ch["field"]): ch["old"] for ch in doc["changes"]}
    assert olds[(a.id, "name")] == a.name
    assert olds[(c.id, "config.optimizer")] == c.config["optimizer"]
    assert doc["summary"]["runs"] == 3 and doc["summary"]["fields"] == len(edits)


@pytest.mark.parametrize("exported", FORMATS, indirect=True)
def test_import_writes_only_the_edits(exported, seeded_sandbox):
    api = wandb.Api()
    before = {r.id: (r.name, list(r.tags), r.group, r.job_type, r.notes, dict(r.config))
              for r in api.runs("e/p", lazy=False)}
    target = sorted(before)[3]
    edit_cells(exported, {(target, "config.batch_size"): 4096, (target, "tags"): "x, y"})
    seeded_sandbox.reset_stats()
    result = invoke("import", exported, "--yes")
    assert "Applied 2 field changes to 1 run." in result.stderr
    assert seeded_sandbox.stats()["mutations"] == 1  # one write for the one changed run
    after = {r.id: (r.name, list(r.tags), r.group, r.job_type, r.notes, dict(r.config))
             for r in wandb.Api().runs("e/p", lazy=False)}
    for run_id, values in before.items():
        if run_id != target:
            assert after[run_id] == values
    name, tags, group, job_type, notes, config = after[target]
    assert tags == ["x", "y"] and config["batch_size"] == 4096 and isinstance(config["batch_size"], int)
    assert {k: v for k, v in config.items() if k != "batch_size"} == {
        k: v for k, v in before[target][5].items() if k != "batch_size"}
    assert (name, group, job_type, notes) == before[target][:1] + before[target][2:5]
    # re-running the same import has nothing left to do
    assert "No changes." in invoke("import", exported, "--yes").stdout


def test_import_keeps_descriptions_and_internal_config(exported, seeded_sandbox):
    run_id = sorted(r.id for r in wandb.Api().runs("e/p"))[0]
    raw_before = seeded_sandbox.store.get_run("e", "p", run_id)["config"]
    edit_cells(exported, {(run_id, "config.epochs"): 77})
    invoke("import", exported, "--yes")
    raw_after = seeded_sandbox.store.get_run("e", "p", run_id)["config"]
    assert raw_after["epochs"]["value"] == 77
    for key, entry in raw_before.items():
        if key != "epochs":
            assert raw_after[key] == entry  # descriptions and _wandb intact
    assert raw_after["epochs"].get("desc") == raw_before["epochs"].get("desc")


@pytest.mark.parametrize("exported", FORMATS, indirect=True)
def test_detailed_exitcode_is_0_when_nothing_would_change(exported, seeded_sandbox):
    a, b = sorted(r.id for r in wandb.Api().runs("e/p") if r.state != "running")[:2]
    invoke("import", exported, "--dry-run", "--detailed-exitcode", exit_code=0)  # untouched
    # W&B already holds the sheet's edit (a colleague made the same one); W&B moved where the sheet did not.
    edit_cells(exported, {(a, "notes"): "same on both sides \u2713"})
    for run_id, notes in ((a, "same on both sides \u2713"), (b, "only in W&B")):
        run = fresh_run(run_id)
        run.notes = notes
        run.update()
    plan = runsync.plan(exported)
    assert plan.changes == () and plan.conflicts == () and [i.run_id for i in plan.infos] == [b]
    invoke("import", exported, "--dry-run", "--detailed-exitcode", exit_code=0)
    invoke("import", exported, "--dry-run", "--detailed-exitcode", "--format", "json", exit_code=0)
    # ... and 2 once there is one change.
    edit_cells(exported, {(a, "group"): "now a change"})
    invoke("import", exported, "--dry-run", "--detailed-exitcode", exit_code=2)


@pytest.mark.parametrize("exported", FORMATS, indirect=True)
@pytest.mark.parametrize("bad", [("state", "finished!"), ("id", "no-such-run")])
def test_a_plan_with_errors_carries_no_changes_or_conflicts(exported, seeded_sandbox, bad):
    a, b, c = sorted(r.id for r in wandb.Api().runs("e/p") if r.state != "running")[:3]
    edit_cells(exported, {(a, "group"): "a real edit", (b, "notes"): "conflicting", (c, bad[0]): bad[1]})
    run = fresh_run(b)
    run.notes = "moved in W&B"
    run.update()
    plan = runsync.plan(exported)
    assert len(plan.errors) == 1 and plan.errors[0].column == bad[0]
    assert plan.changes == () and plan.conflicts == ()
    doc = plan_json(exported, exit_code=1)
    assert doc["changes"] == [] and doc["conflicts"] == [] and len(doc["errors"]) == 1
    seeded_sandbox.reset_stats()
    invoke("import", exported, "--yes", "--force", exit_code=1)
    assert seeded_sandbox.stats()["mutations"] == 0 and fresh_run(a).group != "a real edit"


def test_dry_run_writes_nothing_and_detailed_exitcode(exported, seeded_sandbox):
    run_id = next(iter(wandb.Api().runs("e/p"))).id
    edit_cells(exported, {(run_id, "group"): "g2"})
    seeded_sandbox.reset_stats()
    invoke("import", exported, "--dry-run", "--detailed-exitcode", exit_code=2)
    result = invoke("import", exported, "--dry-run")
    assert f"~ {run_id}" in result.stdout and "group:" in result.stdout
    assert "Plan: 1 run, 1 field to change, 0 conflicts." in result.stdout
    assert seeded_sandbox.stats()["mutations"] == 0
    assert fresh_run(run_id).group != "g2"


def test_conflict_exits_1_and_writes_nothing(exported, seeded_sandbox):
    runs = list(wandb.Api().runs("e/p", lazy=False))
    conflicted, clean = runs[0], runs[1]
    edit_cells(exported, {(conflicted.id, "notes"): "from the sheet", (clean.id, "notes"): "also from the sheet"})
    conflicted.notes = "changed in W&B meanwhile"
    conflicted.update()
    seeded_sandbox.reset_stats()
    doc = plan_json(exported, exit_code=1)
    assert doc["conflicts"] == [{"run_id": conflicted.id, "field": "notes", "base": conflicted_base(exported, conflicted.id),
                                 "sheet": "from the sheet", "live": "changed in W&B meanwhile"}]
    invoke("import", exported, "--yes", exit_code=1)
    assert seeded_sandbox.stats()["mutations"] == 0
    assert fresh_run(clean.id).notes != "also from the sheet"
    invoke("import", exported, "--yes", "--force")
    assert fresh_run(conflicted.id).notes == "from the sheet"


def conflicted_base(sheet: Path, run_id: str):
    import runsync

    value = runsync.read(sheet).meta.base[run_id].get("notes")
    return value


def test_changed_only_in_wandb_is_kept(exported, seeded_sandbox):
    run = next(iter(wandb.Api().runs("e/p", lazy=False)))
    run.group = "moved-in-wandb"
    run.update()
    result = invoke("import", exported, "--yes")
    assert "No changes." in result.stdout and "moved-in-wandb" in result.stdout
    assert fresh_run(run.id).group == "moved-in-wandb"


def test_undo_restores(exported, seeded_sandbox, tmp_path):
    runs = list(wandb.Api().runs("e/p", lazy=False))
    before = {r.id: (list(r.tags), r.group, dict(r.config)) for r in runs[:3]}
    edit_cells(exported, {(runs[0].id, "tags"): "only-this", (runs[1].id, "config.lr"): 0.5,
                          (runs[2].id, "group"): "new-group"})
    journal = tmp_path / "j.jsonl"
    invoke("import", exported, "--yes", "--journal", journal)
    assert fresh_run(runs[0].id).tags == ["only-this"]
    assert "config.lr" in invoke("undo", journal, "--dry-run").stdout
    invoke("undo", journal, "--yes")
    after = {r.id: (list(r.tags), r.group, dict(r.config)) for r in wandb.Api().runs("e/p", lazy=False)}
    for run_id, values in before.items():
        assert after[run_id] == values
    assert "No changes." in invoke("undo", journal, "--dry-run").stdout


def test_undo_refuses_fields_changed_since(exported, seeded_sandbox, tmp_path):
    run = next(iter(wandb.Api().runs("e/p", lazy=False)))
    edit_cells(exported, {(run.id, "group"): "imported"})
    journal = tmp_path / "j.jsonl"
    invoke("import", exported, "--yes", "--journal", journal)
    live = fresh_run(run.id)
    live.group = "someone-else"
    live.update()
    refused = invoke("undo", journal, "--yes", exit_code=1)
    assert fresh_run(run.id).group == "someone-else"
    # An undo's conflict is about the import and W&B; there is no sheet in it.
    assert "Conflicts (changed in W&B since the import):" in refused.stdout and "sheet" not in refused.stdout
    assert (f'group: the import wrote "imported", undo would restore "{run.group}", W&B now "someone-else"'
            in refused.stdout), refused.stdout
    assert "nothing restored" in refused.stderr
    invoke("undo", journal, "--yes", "--force")
    assert fresh_run(run.id).group == run.group


def test_filters_select_runs_and_are_recorded(seeded_sandbox, tmp_path):
    import runsync

    sheet = tmp_path / "cifar.xlsx"
    invoke("export", "e/p", "--filter", "config.dataset=cifar10", "--filter", "state=finished", "-o", sheet)
    expected = {r.id for r in wandb.Api().runs("e/p", filters={"config.dataset": "cifar10", "state": "finished"})}
    meta = runsync.read(sheet).meta
    assert set(meta.base) == expected and expected
    assert meta.selection["filters"] == {"$and": [{"config.dataset": "cifar10"}, {"state": "finished"}]}


def test_no_tty_without_yes_refuses(exported, seeded_sandbox):
    run_id = next(iter(wandb.Api().runs("e/p"))).id
    edit_cells(exported, {(run_id, "group"): "g3"})
    result = invoke("import", exported, exit_code=1)
    assert "--yes" in result.stderr
    assert seeded_sandbox.stats()["mutations"] == 0


@pytest.mark.parametrize("exported", FORMATS, indirect=True)
def test_emptied_text_cells_clear_the_field(exported, seeded_sandbox):
    run = next(r for r in wandb.Api().runs("e/p", lazy=False) if r.group and r.job_type and r.state != "running")
    edit_cells(exported, {(run.id, "group"): None, (run.id, "job_type"): None})
    doc = plan_json(exported)
    assert {(c["field"], c["new"]) for c in doc["changes"]} == {("group", None), ("job_type", None)}
    invoke("import", exported, "--yes")
    after = fresh_run(run.id)
    assert not after.group and not after.job_type
    assert "No changes." in invoke("import", exported, "--dry-run").stdout
