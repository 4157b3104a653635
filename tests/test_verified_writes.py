"""Verified writes (issue 11 §6, §9): written runs are read back and every field compared with what was sent;
a field that did not stick is reported per run and field (exit 1) and journaled; a write applied whose answer
was lost is harmless and counted as what W&B holds; the journal line is on disk before its write arrives.
"""
from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import wandb
from helpers import edit_cells, invoke, upsert_inputs, write_counts

import runsync
from runsync.backend.wandb.client import WandbBackend
from runsync.journal.events import read_journal
from runsync.writer.apply import apply_plan
from runsync.writer.options import ApplyOptions


def events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def make_runs(store, n: int, state: str = "finished") -> list[str]:
    ids = [f"v{i:02d}" for i in range(n)]
    for i, run_id in enumerate(ids):
        store.create_run("e", "p", run_id, state=state, config={"lr": 0.01 * (i + 1), "epochs": 5 + i},
                         config_descs={"lr": "learning rate"})
    return ids


def reads_and_writes(sandbox) -> tuple[int, int, int]:
    """(read requests, write requests, runs written)."""
    return (sandbox.stats()["operations"].get("RunsyncRuns", 0), *write_counts(sandbox))


# -- read back: cost, and --no-verify --------------------------------------------------------------------

@pytest.mark.parametrize("verify", [True, False])
def test_read_back_costs_one_request_per_page_and_no_verify_turns_it_off(sandbox, tmp_path, verify):
    ids = make_runs(sandbox.store, 12)
    sheet = tmp_path / "runs.csv"
    invoke("export", "e/p", "-o", sheet)
    edit_cells(sheet, {(run_id, "group"): f"grp-{i}" for i, run_id in enumerate(ids)} | {(ids[3], "notes"): "n"})
    sandbox.reset_stats()
    result = invoke("import", sheet, "--yes", *(() if verify else ("--no-verify",)))
    # A plan read, a read just before the writes, one request writing all 12 runs, then (verified) one read.
    assert reads_and_writes(sandbox) == ((3 if verify else 2), 1, 12)
    assert ("Verified: read 12 written runs back in 1 request." in result.stderr) is verify
    (journal,) = (tmp_path / "runs.csv.runsync-journals").glob("*.jsonl")
    verified = [e for e in events(journal) if e["op"] == "verify"]
    assert len(verified) == (12 if verify else 0)
    assert all(not e["did_not_stick"] and e["confirmed"] for e in verified)
    assert {tuple(e["held"]) for e in verified} == {("group",), ("group", "notes")} if verify else True
    # undo reads back too, unless told not to
    sandbox.reset_stats()
    invoke("undo", journal, "--yes", *(() if verify else ("--no-verify",)))
    assert reads_and_writes(sandbox) == ((3 if verify else 2), 1, 12)
    assert all(r.group in (None, "") for r in wandb.Api().runs("e/p"))


def test_api_apply_verify_false_reads_nothing_back(sandbox, tmp_path):
    ids = make_runs(sandbox.store, 3)
    sheet = tmp_path / "runs.xlsx"
    runsync.export("e/p", sheet)
    edit_cells(sheet, {(ids[1], "config.lr"): 0.5, (ids[2], "tags"): "a, b"})
    plan = runsync.plan(sheet)
    sandbox.reset_stats()
    report = runsync.apply(plan, journal=tmp_path / "j.jsonl", verify=False)
    assert report.ok and report.verified_runs == 0 and len(report.applied) == 2
    # One read before the writes and the first config write's read-back (what tells merge from replace); that
    # write goes alone, the tags write beside it.
    assert reads_and_writes(sandbox) == (2, 2, 2)
    assert not [e for e in events(tmp_path / "j.jsonl") if e["op"] == "verify"]


# -- did not stick: a running run's process re-sends its config ---------------------------------------------

@pytest.mark.parametrize("interval,latency_ms", [(0.05, 250), (0.02, 150)])
def test_a_live_process_reverting_the_edit_is_reported_as_did_not_stick(sandbox, tmp_path, interval, latency_ms):
    store = sandbox.store
    store.create_run("e", "p", "done1", state="finished", config={"lr": 0.1, "epochs": 3})
    store.create_run("e", "p", "live1", display_name="training", state="running", config={"lr": 0.2, "epochs": 4})
    sheet = tmp_path / "runs.xlsx"
    invoke("export", "e/p", "-o", sheet)
    edit_cells(sheet, {("done1", "config.lr"): 1.5, ("live1", "config.lr"): 2.5, ("live1", "notes"): "kept"})
    # live1's process holds {"lr": 0.2, "epochs": 4} and sends it again every `interval` seconds; each request
    # waits `latency_ms` first, so the read-back comes well after at least one re-send.
    sandbox.set_live_process(interval)
    sandbox.set_faults(latency_ms=latency_ms)
    try:
        result = invoke("import", sheet, "--yes", "--include-running", exit_code=1)
    finally:
        sandbox.set_faults(latency_ms=0)
    assert sandbox.live is not None and sandbox.live.resends >= 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("did not stick")]
    assert lines == ["did not stick: run live1 (training) config.lr: written as 2.5, W&B holds 0.2 when read back"]
    assert "Applied 2 field changes to 2 runs." in result.stderr  # done1's lr and live1's notes held
    runs = {r.id: r for r in wandb.Api().runs("e/p")}
    assert runs["done1"].config["lr"] == 1.5 and runs["live1"].config["lr"] == 0.2 and runs["live1"].notes == "kept"

    (journal,) = (tmp_path / "runs.xlsx.runsync-journals").glob("*.jsonl")
    verify = {e["run"]: e for e in events(journal) if e["op"] == "verify"}
    assert verify["live1"]["did_not_stick"] == [{"field": "config.lr", "path": ["lr"], "sent": 2.5, "now": 0.2}]
    assert verify["live1"]["held"] == ["notes"] and verify["done1"]["held"] == ["config.lr"]
    assert events(journal)[-1] == {**events(journal)[-1], "op": "end", "did_not_stick": 1}
    history = {(h.run_id, h.field): h.done for h in read_journal(journal).fields}
    assert history == {("done1", "config.lr"): True, ("live1", "config.lr"): False, ("live1", "notes"): True}

    # The edit that did not stick is still an edit: planning the sheet again proposes it again.
    sandbox.set_live_process(None)
    doc = json.loads(invoke("import", sheet, "--dry-run", "--include-running", "--format", "json").stdout)
    assert [(c["run_id"], c["field"], c["old"], c["new"]) for c in doc["changes"]] == [("live1", "config.lr", 0.2, 2.5)]
    invoke("import", sheet, "--yes", "--include-running")  # the process is gone now: it sticks
    assert wandb.Api().run("e/p/live1").config["lr"] == 2.5


def test_without_the_live_process_the_same_import_sticks(sandbox, tmp_path):
    sandbox.store.create_run("e", "p", "live1", state="running", config={"lr": 0.2})
    sheet = tmp_path / "runs.csv"
    invoke("export", "e/p", "-o", sheet)
    edit_cells(sheet, {("live1", "config.lr"): 2.5})
    result = invoke("import", sheet, "--yes", "--include-running")
    assert "did not stick" not in result.stderr and "Verified: read 1 written run back" in result.stderr


# -- write applied, answer lost (502) -----------------------------------------------------------------------

@pytest.mark.parametrize("seed,rate,batch_size", [(4, 0.3, 1), (11, 0.3, 1), (11, 0.5, 25), (7, 0.5, 25)])
def test_lost_answers_are_retried_harmlessly_and_the_journal_matches_wandb(sandbox, tmp_path, seed, rate, batch_size):
    ids = make_runs(sandbox.store, 10)
    sheet = tmp_path / "runs.csv"
    invoke("export", "e/p", "-o", sheet)
    edits = {}
    for i, run_id in enumerate(ids):
        edits[(run_id, "config.lr")] = 0.5 + i
        if i % 2:
            edits[(run_id, "tags")] = f"lost-{i}, x"
    edit_cells(sheet, edits)
    plan = runsync.plan(sheet)
    sandbox.reset_stats()
    sandbox.set_faults(lost_answer_rate=rate, seed=seed)
    try:
        report = runsync.apply(plan, journal=tmp_path / "j.jsonl", batch_size=batch_size)
    finally:
        sandbox.set_faults(lost_answer_rate=0)
    stats = sandbox.stats()
    assert report.ok, (report.failed, report.did_not_stick)
    # Every lost answer made its writes go out again (the client's retry, or runsync's run by run).
    assert stats["faults"].get("502", 0) >= 1 and stats["mutations"] > 10
    runs = {r.id: r for r in wandb.Api().runs("e/p")}
    for i, run_id in enumerate(ids):  # set, not added to: a write repeated lands the same values
        assert runs[run_id].config == {"lr": 0.5 + i, "epochs": 5 + i}
        assert sorted(runs[run_id].tags) == (sorted([f"lost-{i}", "x"]) if i % 2 else [])
    contents = read_journal(tmp_path / "j.jsonl")
    assert len(contents.fields) == 15 and all(h.done for h in contents.fields)
    verify = [e for e in events(tmp_path / "j.jsonl") if e["op"] == "verify"]
    assert len(verify) == 10 and not any(e["did_not_stick"] for e in verify)


def test_every_answer_lost_writes_still_count_as_what_wandb_holds(sandbox, tmp_path):
    ids = make_runs(sandbox.store, 3)
    sheet = tmp_path / "runs.csv"
    invoke("export", "e/p", "-o", sheet)
    edit_cells(sheet, {(ids[0], "notes"): "n0", (ids[1], "group"): "g1", (ids[2], "config.epochs"): 99})
    backend = WandbBackend(timeout=1)  # the client gives up on a 502 after 1 s (its first retry is at ~2 s)
    plan = runsync.plan(sheet, backend=backend)
    sandbox.set_faults(lost_answer_rate=1.0)
    try:
        report = apply_plan(plan, backend, ApplyOptions(journal=str(tmp_path / "j.jsonl"), attempts=2,
                                                        backoff_seconds=0.01))
    finally:
        sandbox.set_faults(lost_answer_rate=0)
    # No write was ever confirmed, yet each one landed: read back, they are applied, and the journal says so.
    assert report.ok and not report.failed and len(report.applied) == 3
    assert len(report.warnings) == 3 and all("answer was lost" in w for w in report.warnings)
    journal = events(tmp_path / "j.jsonl")
    assert not [e for e in journal if e["op"] == "done"]
    assert {e["run"]: (e["confirmed"], e["held"]) for e in journal if e["op"] == "verify"} == {
        ids[0]: (False, ["notes"]), ids[1]: (False, ["group"]), ids[2]: (False, ["config.epochs"])}
    assert all(h.done for h in read_journal(tmp_path / "j.jsonl").fields)
    # A re-plan has nothing left to do.
    assert runsync.plan(sheet, backend=backend).changes == ()


def test_a_lost_answer_without_verification_stays_reported_as_failed(sandbox, tmp_path):
    ids = make_runs(sandbox.store, 2)
    sheet = tmp_path / "runs.csv"
    invoke("export", "e/p", "-o", sheet)
    edit_cells(sheet, {(ids[0], "notes"): "n0"})
    backend = WandbBackend(timeout=1)
    plan = runsync.plan(sheet, backend=backend)
    sandbox.set_faults(lost_answer_rate=1.0)
    try:
        report = apply_plan(plan, backend, ApplyOptions(journal=str(tmp_path / "j.jsonl"), attempts=1,
                                                        verify=False))
    finally:
        sandbox.set_faults(lost_answer_rate=0)
    assert set(report.failed) == {ids[0]} and not report.applied and report.verified_runs == 0
    # Not read back, the journal claims no more than it knows (a write without `done`) ...
    assert [h.done for h in read_journal(tmp_path / "j.jsonl").fields] == [False]
    # ... while W&B holds it: which is what planning (runsync.journal.history) and undo check before trusting it.
    assert wandb.Api().run(f"e/p/{ids[0]}").notes == "n0"


# -- §9: the journal line is on disk before its write arrives -----------------------------------------------

@pytest.mark.parametrize("mode", ["merge", "replace"])
def test_each_write_arrives_after_its_journal_line_is_on_disk(sandbox, tmp_path, mode):
    sandbox.config_merge = mode
    ids = make_runs(sandbox.store, 10)
    sheet = tmp_path / "runs.csv"
    invoke("export", "e/p", "-o", sheet)
    edit_cells(sheet, {(run_id, "config.epochs" if i % 3 else "notes"): 100 + i for i, run_id in enumerate(ids)})
    journal = tmp_path / "j.jsonl"
    arrivals: list[tuple[str, bool, bool]] = []  # storage id, its write line on disk, a restore line on disk
    lock = threading.Lock()

    def on_request(label: str, variables: dict, is_mutation: bool) -> None:
        sent_inputs = upsert_inputs(label, variables)
        if not sent_inputs:
            return
        # Read from another file handle, as a crash would leave it: only what reached the file counts.
        on_disk = events(journal)
        for sent in sent_inputs:
            sid = sent["id"]
            with lock:
                arrivals.append((sid,
                                 any(e["op"] == "write" and e["storage_id"] == sid for e in on_disk),
                                 any(e["op"] == "restore" and e["storage_id"] == sid for e in on_disk)))

    sandbox.request_hooks.append(on_request)
    try:
        report = runsync.apply(runsync.plan(sheet), journal=journal)
    finally:
        sandbox.request_hooks.remove(on_request)
    assert report.ok
    assert len(arrivals) == (10 if mode == "merge" else 11)  # replace: one more, the restore
    assert all(written for _, written, _ in arrivals)
    if mode == "replace":
        restored = [sid for sid, _, restore in arrivals if restore]
        assert len(restored) == 1  # the restore's own write came after its journal line, and only it
        assert [sid for sid, _, _ in arrivals].count(restored[0]) == 2


@pytest.mark.parametrize("batch_size", [1, 4])
def test_each_write_is_sent_after_its_journal_line_was_fsynced(sandbox, tmp_path, monkeypatch, batch_size):
    import os

    ids = make_runs(sandbox.store, 7)
    sheet = tmp_path / "runs.csv"
    invoke("export", "e/p", "-o", sheet)
    edit_cells(sheet, {(run_id, "notes" if i % 2 else "config.lr"): f"n{i}" if i % 2 else -i / 7
                       for i, run_id in enumerate(ids)})
    plan = runsync.plan(sheet)
    journal = tmp_path / "j.jsonl"
    synced = [0]  # bytes of the journal on disk at its last fsync
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        real_fsync(fd)
        if os.path.realpath(f"/proc/self/fd/{fd}") == os.path.realpath(journal):
            synced[0] = max(synced[0], os.fstat(fd).st_size)

    unsynced: list[str] = []
    checked: list[str] = []

    def on_request(label: str, variables: dict, is_mutation: bool) -> None:
        data = journal.read_bytes()
        for sent in upsert_inputs(label, variables):
            checked.append(sent["id"])
            # Where the write line of this run ends in the file: it must be inside what was fsynced.
            ends = [len(b"".join(data.splitlines(keepends=True)[: n + 1]))
                    for n, line in enumerate(data.splitlines())
                    if json.loads(line)["op"] == "write" and json.loads(line)["storage_id"] == sent["id"]]
            if not ends or ends[-1] > synced[0]:
                unsynced.append(sent["id"])

    monkeypatch.setattr(os, "fsync", recording_fsync)
    sandbox.request_hooks.append(on_request)
    try:
        report = runsync.apply(plan, journal=journal, batch_size=batch_size)
    finally:
        sandbox.request_hooks.remove(on_request)
    assert report.ok and len(report.applied) == 7
    assert len(checked) == 7 and unsynced == []


def test_the_read_back_reports_the_requests_it_made(sandbox, tmp_path):
    """Reads by id grow past 250 ids a query once the server keeps up, and keep that size from the plan's read:
    the count printed ("in N requests") is the requests the read-back sent, counted by the sandbox."""
    from runsync.sandbox import seed_project

    reads, reports = {}, {}
    for project, verify in (("p", True), ("q", False)):  # the same import with and without the read-back
        ids = seed_project(sandbox.store, "e", project, runs=700, seed=5)
        sheet = tmp_path / f"{project}.csv"
        invoke("export", f"e/{project}", "-o", sheet)
        edit_cells(sheet, {(run_id, "notes"): f"read back ✓ {i}" for i, run_id in enumerate(ids)})
        backend = WandbBackend()
        plan = runsync.plan(sheet, backend=backend, include_running=True)
        sandbox.reset_stats()
        reports[project] = runsync.apply(plan, journal=tmp_path / f"{project}.jsonl", backend=backend,
                                         verify=verify)
        reads[project] = sandbox.stats()["operations"].get("RunsyncRuns", 0)
        assert reports[project].ok and len(reports[project].applied) == 700
    verify_reads = reads["p"] - reads["q"]
    assert 1 <= verify_reads < 3  # 700 ids at the plan's grown size, not one query per 250
    assert reports["p"].verified_runs == 700 and reports["p"].verify_requests == verify_reads
    assert reports["q"].verify_requests == 0
