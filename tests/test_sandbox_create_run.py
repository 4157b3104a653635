"""The client's own way to make runs (`Api.create_run`, `Run.create`) works against the sandbox."""
from __future__ import annotations

import wandb
from helpers import invoke
from wandb.apis.public import Run

import runsync


def _exported_ids(tmp_path, project: str) -> dict[str, dict]:
    sheet = tmp_path / f"{project.replace('/', '-')}.csv"
    invoke("export", project, "-o", sheet)
    return {cells["id"]: cells for _, cells in runsync.read(sheet).rows}


def test_create_run_in_a_new_project_then_export_lists_it(sandbox, tmp_path):
    run = wandb.Api().create_run(project="fresh", entity="team")
    assert (run.entity, run.project, run.state) == ("team", "fresh", "running") and run.id
    assert sandbox.store.get_project("team", "fresh") is not None
    rows = _exported_ids(tmp_path, "team/fresh")
    assert list(rows) == [run.id] and rows[run.id]["state"] == "running"
    assert sandbox.stats()["operations"]["UpsertBucket"] == 1


def test_run_create_with_id_and_pending_state(seeded_sandbox, tmp_path):
    api = wandb.Api()
    run = Run.create(api, run_id="queued-1", project="p", entity="e", state="pending")
    assert run.id == "queued-1" and run.state == "pending"
    rows = _exported_ids(tmp_path, "e/p")
    assert len(rows) == 31 and rows["queued-1"]["state"] == "pending"
    # the new run is an ordinary run: runsync can edit it
    assert wandb.Api().run("e/p/queued-1").state == "pending"


def test_create_run_without_entity_uses_the_viewers(sandbox, tmp_path):
    run = wandb.Api().create_run(project="mine", run_id="r-1")
    assert (run.entity, run.project, run.id) == ("e", "mine", "r-1")
    assert list(_exported_ids(tmp_path, "e/mine")) == ["r-1"]


def test_create_run_twice_with_one_id_keeps_one_run(sandbox, tmp_path):
    api = wandb.Api()
    first = api.create_run(project="p2", entity="e", run_id="same")
    second = api.create_run(project="p2", entity="e", run_id="same")
    assert first.storage_id == second.storage_id
    assert sandbox.store.count_runs("e", "p2") == 1
