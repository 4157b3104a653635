"""Several runs per write request: each run keeps its own journal lines and report entries, a batch the server
refuses or in which one run fails is sent again one run per request, and nothing is written twice over."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import wandb

import runsync
from helpers import edit_cells, invoke, upsert_inputs, write_counts
from runsync.sandbox import Sandbox


def make_runs(sandbox: Sandbox, n: int) -> list[str]:
    ids = [f"b{i:02d}" for i in range(n)]
    for i, run_id in enumerate(ids):
        sandbox.store.create_run("e", "p", run_id, state="finished", config={"lr": 0.1 * (i + 1)})
    return ids


def exported_with_groups(sandbox: Sandbox, tmp_path: Path, n: int) -> tuple[list[str], Path]:
    ids = make_runs(sandbox, n)
    sheet = tmp_path / "runs.csv"
    invoke("export", "e/p", "-o", sheet)
    edit_cells(sheet, {(run_id, "group"): f"g-{i}" for i, run_id in enumerate(ids)})
    return ids, sheet


def events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def groups() -> dict[str, str]:
    return {r.id: r.group for r in wandb.Api(timeout=20).runs("e/p")}


def test_runs_go_batch_size_per_request_and_each_keeps_its_own_journal_lines(sandbox, tmp_path):
    ids, sheet = exported_with_groups(sandbox, tmp_path, 30)
    plan = runsync.plan(sheet)
    sandbox.reset_stats()
    report = runsync.apply(plan, journal=tmp_path / "j.jsonl", batch_size=12, verify=False)
    assert report.ok and len(report.applied) == 30 and not report.warnings
    assert write_counts(sandbox) == (3, 30)  # 12 + 12 + 6 runs
    assert report.write_requests == 3
    assert groups() == {run_id: f"g-{i}" for i, run_id in enumerate(ids)}
    journal = events(tmp_path / "j.jsonl")
    assert sorted(e["run"] for e in journal if e["op"] == "write") == ids  # one write line per run
    assert sorted(e["run"] for e in journal if e["op"] == "done") == ids


def test_a_server_refusing_batches_gets_every_run_alone_and_smaller_batches_after(sandbox, tmp_path):
    ids, sheet = exported_with_groups(sandbox, tmp_path, 20)
    plan = runsync.plan(sheet)
    sandbox.set_faults(max_mutations=3)
    sandbox.reset_stats()
    sent: list[int] = []  # runs per write request, in arrival order
    lock = threading.Lock()

    def on_request(label: str, variables: dict, is_mutation: bool) -> None:
        if is_mutation:
            with lock:
                sent.append(len(upsert_inputs(label, variables)))

    sandbox.request_hooks.append(on_request)
    try:
        report = runsync.apply(plan, journal=tmp_path / "j.jsonl", batch_size=10, concurrency=1)
    finally:
        sandbox.request_hooks.remove(on_request)
    assert report.ok, (report.failed, report.warnings)
    assert groups() == {run_id: f"g-{i}" for i, run_id in enumerate(ids)}
    assert sandbox.stats()["faults"]["batch_refused"] >= 1
    assert [w for w in report.warnings if "did not take 10 runs in one request" in w and "query too complex" in w]
    assert len(report.warnings) == 1  # said once
    # Refused requests never reach the hooks; every one that did carried at most the server's limit of 3.
    assert sent and max(sent) <= 3 and sum(sent) >= 20
    journal = events(tmp_path / "j.jsonl")
    assert sorted(e["run"] for e in journal if e["op"] == "write") == ids  # a run sent again is not journaled again
    assert sorted(e["run"] for e in journal if e["op"] == "done") == ids


def test_one_run_failing_in_a_batch_is_reported_alone_and_the_others_land(sandbox, tmp_path):
    ids, sheet = exported_with_groups(sandbox, tmp_path, 8)
    plan = runsync.plan(sheet)
    gone = ids[3]
    deleted = threading.Event()

    def delete_before_the_first_write(label: str, variables: dict, is_mutation: bool) -> None:
        if is_mutation and not deleted.is_set():
            sandbox.store.delete_run("e", "p", gone)  # between runsync's read and its write
            deleted.set()

    sandbox.request_hooks.append(delete_before_the_first_write)
    try:
        report = runsync.apply(plan, journal=tmp_path / "j.jsonl", batch_size=25, concurrency=1, verify=False)
    finally:
        sandbox.request_hooks.remove(delete_before_the_first_write)
    assert set(report.failed) == {gone} and "not found" in report.failed[gone]
    assert {c.run_id for c in report.applied} == set(ids) - {gone}
    assert not report.warnings  # one run failed: the batch size stays
    live = groups()
    assert gone not in live and live == {r: f"g-{i}" for i, r in enumerate(ids) if r != gone}
    journal = events(tmp_path / "j.jsonl")
    assert sorted(e["run"] for e in journal if e["op"] == "done") == sorted(set(ids) - {gone})
    # The other seven landed with the batch (the server executed them) and once more alone.
    assert sandbox.stats()["mutations"] == 7 + 7


def test_cli_batch_size_one_sends_one_run_per_request(sandbox, tmp_path):
    ids, sheet = exported_with_groups(sandbox, tmp_path, 6)
    sandbox.reset_stats()
    result = invoke("import", sheet, "--yes", "--batch-size", "1")
    assert "Applied 6 field changes to 6 runs." in result.stderr
    assert sandbox.stats()["operations"].get("RunsyncUpsertBucket") == 6
    assert "RunsyncUpsertBuckets" not in sandbox.stats()["operations"]
    refused = subprocess.run([sys.executable, "-m", "runsync", "import", str(sheet), "--batch-size", "0"],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "--batch-size" in refused.stderr and "Traceback" not in refused.stderr
