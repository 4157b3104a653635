"""A server that keeps failing: runsync stops after a few failures instead of retrying every run."""
from __future__ import annotations

import wandb
from helpers import edit_cells, invoke

import runsync
from runsync.backend.wandb.client import WandbBackend
from runsync.writer.apply import apply_plan
from runsync.writer.options import ApplyOptions


def test_stops_after_failures_in_a_row_and_a_rerun_finishes(seeded_sandbox, tmp_path):
    sheet = tmp_path / "runs.csv"
    invoke("export", "e/p", "-o", sheet)
    ids = [r.id for r in wandb.Api().runs("e/p") if r.state != "running"][:12]  # running runs are skipped
    edit_cells(sheet, {(run_id, "group"): f"g-{run_id}" for run_id in ids})
    plan = runsync.plan(sheet)
    assert len(plan.changes) == 12
    backend = WandbBackend(timeout=2, read_attempts=1)  # the client's deadline: keeps each failure short
    backend.fetch_by_ids("e/p", ids)  # log in before the server starts failing
    seeded_sandbox.set_faults(error_rate=1.0)
    options = ApplyOptions(journal=str(tmp_path / "j.jsonl"), concurrency=1, attempts=1, backoff_seconds=0.01,
                           stop_after_failures=3, read_chunk=2)
    report = apply_plan(plan, backend, options)
    assert not report.applied and set(report.failed) == set(ids)
    stopped = sorted(r for r, why in report.failed.items() if why.startswith("not attempted"))
    assert stopped == sorted(ids[6:])  # three chunks of two failed, then the rest were not tried
    assert all("did not answer in time" in report.failed[r] for r in ids[:6])
    seeded_sandbox.set_faults(error_rate=0.0)
    again = runsync.apply(runsync.plan(sheet), journal=tmp_path / "j.jsonl")
    assert again.ok and len(again.applied) == 12
    assert {r.id: r.group for r in wandb.Api().runs("e/p") if r.id in ids} == {i: f"g-{i}" for i in ids}
