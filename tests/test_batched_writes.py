"""Several runs per write request: each run keeps its own journal lines and report entries, a batch the server
refuses or in which one run fails is sent again one run per request, and nothing is written twice over."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import wandb
from helpers import edit_cells, invoke, upsert_inputs, write_counts

import runsync
from runsync.backend.wandb.client import WandbBackend
from runsync.sandbox import Sandbox
from runsync.writer.apply import apply_plan
from runsync.writer.options import ApplyOptions


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


def quick(tmp_path: Path, batch_size: int) -> ApplyOptions:
    """One worker, two attempts per run, no read-back, hardly any backoff: failures cost little time here."""
    return ApplyOptions(journal=str(tmp_path / "j.jsonl"), batch_size=batch_size, concurrency=1, attempts=2,
                        backoff_seconds=0.01, verify=False)


def apply_deleting_first(sandbox: Sandbox, plan, gone: list[str], options: ApplyOptions):
    """Apply the plan; these runs are deleted when the first write arrives (after runsync read them).
    Returns the report and the runs per write request, in order."""
    sizes: list[int] = []

    def delete_at_the_first_write(label: str, variables: dict, is_mutation: bool) -> None:
        if is_mutation:
            if not sizes:
                for run_id in gone:
                    sandbox.store.delete_run("e", "p", run_id)
            sizes.append(len(upsert_inputs(label, variables)))

    sandbox.request_hooks.append(delete_at_the_first_write)
    try:
        return apply_plan(plan, WandbBackend(), options), sizes
    finally:
        sandbox.request_hooks.remove(delete_at_the_first_write)


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
    [warning] = report.warnings  # said once
    assert "runs in one request" in warning and "query too complex" in warning
    assert "then at most 3 runs per request" in warning
    # Refused requests never reach the hooks; every one that did carried at most the server's limit of 3.
    assert sent and max(sent) <= 3 and sum(sent) >= 20
    journal = events(tmp_path / "j.jsonl")
    assert sorted(e["run"] for e in journal if e["op"] == "write") == ids  # a run sent again is not journaled again
    assert sorted(e["run"] for e in journal if e["op"] == "done") == ids


def test_one_run_failing_in_a_batch_is_found_by_halving_and_the_others_land(sandbox, tmp_path):
    ids, sheet = exported_with_groups(sandbox, tmp_path, 8)
    plan = runsync.plan(sheet)
    gone = ids[3]
    report, sizes = apply_deleting_first(sandbox, plan, [gone], quick(tmp_path, batch_size=25))
    assert set(report.failed) == {gone} and "not found" in report.failed[gone]
    assert {c.run_id for c in report.applied} == set(ids) - {gone}
    assert not report.warnings  # a run failed, not the batch's size: later batches keep it
    # 8 fail -> 4 (with the gone run) fail -> 2 land, 2 fail -> 1 lands, the gone run alone (2 attempts) -> 4 land
    assert sizes == [8, 4, 2, 2, 1, 1, 1, 4]
    live = groups()
    assert gone not in live and live == {r: f"g-{i}" for i, r in enumerate(ids) if r != gone}
    journal = events(tmp_path / "j.jsonl")
    assert sorted(e["run"] for e in journal if e["op"] == "write") == ids  # journaled once, sent several times
    assert sorted(e["run"] for e in journal if e["op"] == "done") == sorted(set(ids) - {gone})


def test_writes_stop_after_five_runs_failed_in_a_row_also_in_batches(sandbox, tmp_path):
    ids, sheet = exported_with_groups(sandbox, tmp_path, 40)
    plan = runsync.plan(sheet)
    # Every write fails at once: as good as a server that is down.
    report, sizes = apply_deleting_first(sandbox, plan, ids, quick(tmp_path, batch_size=20))
    assert set(report.failed) == set(ids) and not report.applied
    tried = [r for r, why in report.failed.items() if not why.startswith("not attempted")]
    assert len(tried) == 5, report.failed  # then runsync stopped writing
    assert all("W&B failed 5 runs in a row" in report.failed[r] for r in set(ids) - set(tried))
    assert sum(1 for n in sizes if n == 1) == 5 * 2  # each of the five alone, 2 attempts
    assert len(sizes) < 35


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


def test_undo_takes_batch_size_and_concurrency_too(sandbox, tmp_path):
    ids, sheet = exported_with_groups(sandbox, tmp_path, 6)
    before = groups()
    invoke("import", sheet, "--yes", "--journal", tmp_path / "j.jsonl")
    sandbox.reset_stats()
    result = invoke("undo", tmp_path / "j.jsonl", "--yes", "--batch-size", "2", "--concurrency", "1")
    assert "Traceback" not in result.stderr
    # (W&B ignores a null input, so an emptied group is written as "", which the client reads back as "")
    assert {r: g or None for r, g in groups().items()} == before
    assert write_counts(sandbox) == (3, 6)  # 6 runs, 2 per request


def test_journal_reaches_the_disk_once_per_request_not_once_per_run(sandbox, tmp_path, monkeypatch):
    # Each fsync is 0.4-4 ms (more on a busy disk): three a run (write, done, verify) cost an import of 200
    # runs up to 2 s. Every run keeps its own lines; a request's lines go to the disk together.
    ids, sheet = exported_with_groups(sandbox, tmp_path, 30)
    plan = runsync.plan(sheet)
    journal_path = tmp_path / "j.jsonl"
    synced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        if os.path.realpath(f"/proc/self/fd/{fd}") == str(journal_path.resolve()):
            synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    report = runsync.apply(plan, journal=journal_path, batch_size=12, concurrency=2)
    assert report.ok and len(report.applied) == 30 and report.verified_runs == 30
    journal = events(journal_path)
    for op in ("write", "done", "verify"):
        assert sorted(e["run"] for e in journal if e["op"] == op) == ids
    # begin, planned, end, and per request (3) its write lines and its done lines, and the verify lines once
    assert len(synced) <= 3 + 2 * report.write_requests + 1, len(synced)


def test_every_run_of_a_request_is_journaled_on_disk_before_the_request_is_sent(sandbox, tmp_path):
    ids, sheet = exported_with_groups(sandbox, tmp_path, 23)
    plan = runsync.plan(sheet)
    journal_path = tmp_path / "j.jsonl"
    unjournaled: list[str] = []

    def check_journal(label: str, variables: dict, is_mutation: bool) -> None:
        if not is_mutation:
            return
        on_disk = journal_path.read_text() if journal_path.exists() else ""  # another process's view of it
        written = {e["storage_id"] for e in map(json.loads, on_disk.splitlines()) if e.get("op") == "write"}
        unjournaled.extend(i["id"] for i in upsert_inputs(label, variables) if i["id"] not in written)

    sandbox.request_hooks.append(check_journal)
    try:
        report = runsync.apply(plan, journal=journal_path, batch_size=5, concurrency=3)
    finally:
        sandbox.request_hooks.remove(check_journal)
    assert report.ok and len(report.applied) == 23 and report.write_requests == 5
    assert unjournaled == []
    assert groups() == {run_id: f"g-{i}" for i, run_id in enumerate(ids)}
