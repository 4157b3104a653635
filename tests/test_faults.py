"""Nothing lost under server faults: 500s, 429 rate limits, hung requests, exhausted retries,
fields changed between plan and write, runs deleted since the export.

The sandbox runs in this process (so the test can read its stats and switch faults); imports that must
survive faults run as `python -m runsync` subprocesses with a tight client (see fault_support).
"""
from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import wandb
from fault_support import (
    cli_env,
    deleted_once_written,
    edit_csv,
    expected_state,
    plan_edits,
    run_cli,
    snapshot,
)
from helpers import edit_cells, invoke

import runsync
from runsync.backend.wandb.client import WandbBackend
from runsync.journal.events import read_journal
from runsync.sandbox import seed_project
from runsync.writer.apply import apply_plan
from runsync.writer.options import ApplyOptions


def _journal_events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_1000_changes_under_500s_429s_and_hangs_land_exactly(sandbox, tmp_path):
    ids = seed_project(sandbox.store, "e", "p", runs=300, seed=3)
    sheet = tmp_path / "runs.csv"
    invoke("export", "e/p", "-o", sheet)
    before = snapshot(sandbox.store)
    edits = plan_edits(ids, 1000)
    edit_csv(sheet, edits)
    expected = expected_state(before, edits)
    assert len(edits) == 1000 and len({run for run, _ in edits}) == 300

    # 20% HTTP 500, 20 requests/s (429 with Retry-After), 2% of requests never answered. Fault draws
    # are seeded; seed 5 draws the first few (login, plan read) fault-free: reads before the first
    # write are retried only by the client, and a failed read writes nothing (test_bad_sheets).
    sandbox.set_faults(error_rate=0.2, rate_limit=20, hang_rate=0.02, seed=5, retry_after=True)
    sandbox.reset_stats()
    journal = tmp_path / "j.jsonl"
    done = run_cli(cli_env(sandbox.url, sandbox.api_key, tmp_path, http_timeout=5), "import", sheet, "--yes",
                   "--include-running",
                   "--journal", journal, "--concurrency", "16", timeout=150)
    stats = sandbox.stats()
    sandbox.set_faults(error_rate=0, rate_limit=0, hang_rate=0)
    assert done.returncode == 0, done.stderr
    assert "Applied 1,000 field changes to 300 runs." in done.stderr
    # Every kind of fault really happened. At least one write per run reached W&B; more only when the
    # server applied a write but answered after the client's timeout (a busy machine), and then the
    # retry sets the very same values again: writes set fields, they never add to them.
    # (429s usually happen here too, but how many depends on timing: test_rate_limit_... makes sure.)
    # Batches that failed were sent again one run per request: both kinds of write request happened.
    assert stats["faults"]["500"] >= 5 and stats["faults"]["hang"] >= 1, stats
    assert stats["operations"]["RunsyncUpsertBuckets"] >= 1 and stats["operations"]["RunsyncUpsertBucket"] >= 1
    assert stats["mutations"] >= 300

    assert snapshot(sandbox.store) == expected  # nothing missing, nothing doubled, nothing else touched
    fresh = {r.id: r for r in wandb.Api(timeout=30).runs("e/p", lazy=False, per_page=500)}
    for run_id, want in expected.items():
        run = fresh[run_id]
        assert (run.name, list(run.tags), run.group or None, run.job_type or None, run.notes or None) == (
            want["display_name"], want["tags"], want["group"], want["job_type"], want["notes"])
        assert dict(run.config) == {k: v["value"] for k, v in want["config"].items() if k != "_wandb"}

    events = _journal_events(journal)
    writes = [e["run"] for e in events if e["op"] == "write"]
    assert sorted(writes) == sorted(ids)  # one journaled write per run, none repeated
    assert sorted(e["run"] for e in events if e["op"] == "done") == sorted(ids)
    assert "No changes." in invoke("import", sheet, "--dry-run").stdout


def test_rate_limited_writes_wait_and_all_land_once(seeded_sandbox, tmp_path):
    sheet = tmp_path / "runs.csv"
    invoke("export", "e/p", "-o", sheet)
    before = snapshot(seeded_sandbox.store)
    edits = plan_edits(sorted(before)[:5], 10)
    edit_csv(sheet, edits)
    backend = WandbBackend(timeout=30)
    plan = runsync.plan(sheet, backend=backend)
    # One request per second: the re-read takes the only token, so the writes start with 429s.
    seeded_sandbox.set_faults(rate_limit=1, retry_after=True)
    seeded_sandbox.reset_stats()
    report = runsync.apply(plan, journal=tmp_path / "j.jsonl", backend=backend, concurrency=5)
    stats = seeded_sandbox.stats()
    seeded_sandbox.set_faults(rate_limit=0)
    assert report.ok and len(report.applied) == 10
    assert stats["faults"]["429"] >= 1 and stats["mutations"] == 5
    assert snapshot(seeded_sandbox.store) == expected_state(before, edits)


@contextlib.contextmanager
def _faults_after(sandbox, operation: str, count: int, *, in_flight_together: bool = False,
                  **faults: Any) -> Iterator[None]:
    """While inside: `faults` are turned on once `count` requests of `operation` have drawn theirs (no fault),
    before any later request arrives, however slow the machine is.

    The switch is made by a sandbox request hook, which runs after a request's faults are drawn and before it
    executes: the `count`th request is the last one drawn without them. A later request is sent only once an
    earlier one is answered; with `in_flight_together` (the first `count` are sent at once) each of them is
    held until the `count`th has come, so none is answered before the switch (a watcher polling the counters
    could switch between a request's arrival and its draw, and fail it)."""
    lock, all_in, seen = threading.Lock(), threading.Event(), [0]

    def hook(label: str, variables: dict, is_mutation: bool) -> None:
        if label != operation:
            return
        with lock:
            seen[0] += 1
            nth = seen[0]
        if nth == count:
            sandbox.set_faults(**faults)
            all_in.set()
        elif nth < count and in_flight_together:
            all_in.wait(30)

    sandbox.request_hooks.append(hook)
    try:
        yield
    finally:
        sandbox.request_hooks.remove(hook)


def test_exhausted_retries_report_exactly_what_was_not_applied_and_a_rerun_finishes(seeded_sandbox, tmp_path):
    sheet = tmp_path / "runs.csv"
    invoke("export", "e/p", "-o", sheet)
    before = snapshot(seeded_sandbox.store)
    targets = sorted(before)[:6]
    edits = plan_edits(targets, 12)
    edit_csv(sheet, edits)
    backend = WandbBackend(timeout=1)  # the client gives up on a 500 after 1 s (its first retry is at ~2 s)
    plan = runsync.plan(sheet, backend=backend, include_running=True)
    assert len(plan.changes) == 12
    # Answers take 200 ms, as a real server's do (500s answered at once make the client's retries far longer).
    seeded_sandbox.set_faults(latency_ms=200)
    seeded_sandbox.reset_stats()
    # One run per request (the path a failed batch falls back to): a run's retries are its own.
    with _faults_after(seeded_sandbox, "RunsyncUpsertBucket", 2, error_rate=1.0):
        report = apply_plan(plan, backend, ApplyOptions(journal=str(tmp_path / "j.jsonl"), concurrency=1,
                                                        attempts=2, backoff_seconds=0.01, batch_size=1))
    seeded_sandbox.set_faults(error_rate=0, latency_ms=0)
    assert seeded_sandbox.stats()["mutations"] == 2

    now = snapshot(seeded_sandbox.store)
    applied = {c.run_id for c in report.applied}
    assert len(applied) == 2 and set(report.failed) == set(targets) - applied
    assert {(c.run_id, c.field) for c in report.failed_changes} == {k for k in edits if k[0] in report.failed}
    assert not report.ok and all(why.strip() and "\n" not in why for why in report.failed.values())
    want = expected_state(before, edits)
    for run_id in targets:  # the report is the truth: applied runs changed, failed runs untouched
        assert now[run_id] == (want[run_id] if run_id in applied else before[run_id])

    # A plain re-run plans exactly what failed and writes only those runs.
    again = runsync.plan(sheet, backend=backend)
    assert {(c.run_id, c.field, json.dumps(c.sheet)) for c in again.changes} == {
        (c.run_id, c.field, json.dumps(c.sheet)) for c in report.failed_changes}
    seeded_sandbox.reset_stats()
    assert runsync.apply(again, journal=tmp_path / "j.jsonl", backend=backend).ok
    assert seeded_sandbox.stats()["mutations"] == len(report.failed)
    assert snapshot(seeded_sandbox.store) == want
    contents = read_journal(tmp_path / "j.jsonl")
    assert all(h.done for h in contents.fields) and len(contents.fields) == 12


def test_a_run_s_own_write_retries_back_off_more_each_time(seeded_sandbox, tmp_path):
    sheet = tmp_path / "runs.csv"
    invoke("export", "e/p", "-o", sheet)
    target = sorted(snapshot(seeded_sandbox.store))[0]
    edit_cells(sheet, {(target, "group"): "never lands"})
    plan = runsync.plan(sheet)
    arrivals: list[float] = []
    with deleted_once_written(seeded_sandbox, target, arrivals):  # this try and every later one fail at once
        report = apply_plan(plan, WandbBackend(), ApplyOptions(journal=str(tmp_path / "j.jsonl"), concurrency=1,
                                                               batch_size=1, attempts=4, backoff_seconds=0.2))
    assert set(report.failed) == {target} and not report.applied
    assert len(arrivals) == 4
    gaps = [later - earlier for earlier, later in zip(arrivals, arrivals[1:])]
    # Backoff after try k: 0.2 s x 2**k x a jitter of 0.5 to 1.5; the server answers each try at once.
    for k, gap in enumerate(gaps):
        assert gap >= 0.2 * 2**k * 0.5, gaps


def test_cli_exits_1_naming_the_runs_and_fields_not_applied(seeded_sandbox, tmp_path):
    sheet = tmp_path / "runs.csv"
    invoke("export", "e/p", "-o", sheet)
    before = snapshot(seeded_sandbox.store)
    targets = sorted(before)[:4]
    edits = plan_edits(targets, 8)
    edit_csv(sheet, edits)
    # The client gives up on a 500 after 2 s; a request answered at once (no latency) is far inside that on a
    # loaded machine, and the first write is held only until the second has come.
    env = cli_env(seeded_sandbox.url, seeded_sandbox.api_key, tmp_path, http_timeout=2)
    seeded_sandbox.reset_stats()
    # Two writes in flight at once: the first two are drawn before the switch, the next two after.
    with _faults_after(seeded_sandbox, "RunsyncUpsertBucket", 2, in_flight_together=True, error_rate=1.0):
        failed = run_cli(env, "import", sheet, "--yes", "--include-running", "--concurrency", "2",
                         "--batch-size", "1", timeout=120)
    seeded_sandbox.set_faults(error_rate=0)
    assert failed.returncode == 1, failed.stderr
    assert seeded_sandbox.stats()["mutations"] == 2
    assert "Traceback" not in failed.stderr
    now = snapshot(seeded_sandbox.store)
    not_applied = [r for r in targets if now[r] == before[r]]
    assert len(not_applied) == 2
    lines = [line for line in failed.stderr.splitlines() if line.startswith("not applied")]
    assert len(lines) == 2
    for run_id, line in zip(sorted(not_applied), sorted(lines, key=lambda l: l.split()[3])):
        assert f"run {run_id} (" in line
        for (rid, column) in edits:
            if rid == run_id:
                assert column in line
    assert "Re-run the same import to finish" in failed.stderr

    seeded_sandbox.reset_stats()
    rerun = run_cli(env, "import", sheet, "--yes", "--include-running")
    assert rerun.returncode == 0, rerun.stderr
    assert "Applied 4 field changes to 2 runs." in rerun.stderr
    assert seeded_sandbox.stats()["mutations"] == 2  # only the runs that failed
    assert snapshot(seeded_sandbox.store) == expected_state(before, edits)


def test_a_field_changed_between_plan_and_write_is_refused_and_the_rest_applied(seeded_sandbox, tmp_path):
    sheet = tmp_path / "runs.xlsx"
    invoke("export", "e/p", "-o", sheet)
    runs = sorted(snapshot(seeded_sandbox.store))
    a, b = runs[0], runs[1]
    edit_cells(sheet, {(a, "notes"): "sheet notes", (a, "config.epochs"): 4242, (b, "group"): "sheet group"})
    plan = runsync.plan(sheet)
    assert len(plan.changes) == 3 and not plan.conflicts
    live = wandb.Api(timeout=20).run(f"e/p/{a}")
    live.notes = "someone else, meanwhile"
    live.update()
    seeded_sandbox.reset_stats()
    report = runsync.apply(plan, journal=tmp_path / "j.jsonl")
    assert [(c.run_id, c.field, c.live) for c in report.conflicts] == [(a, "notes", "someone else, meanwhile")]
    assert {(c.run_id, c.field) for c in report.applied} == {(a, "config.epochs"), (b, "group")}
    assert not report.ok
    after = snapshot(seeded_sandbox.store)
    assert after[a]["notes"] == "someone else, meanwhile"
    assert after[a]["config"]["epochs"]["value"] == 4242 and after[b]["group"] == "sheet group"
    assert seeded_sandbox.stats()["mutations"] == 2
    # The journal records only what was written, so undo never touches the refused field.
    assert {h.field for h in read_journal(tmp_path / "j.jsonl").fields} == {"config.epochs", "group"}


def test_force_holds_at_write_time_for_a_field_moved_between_plan_and_write(seeded_sandbox, tmp_path):
    sheet = tmp_path / "runs.xlsx"
    invoke("export", "e/p", "-o", sheet)
    a, b = sorted(snapshot(seeded_sandbox.store))[:2]
    edit_cells(sheet, {(a, "notes"): "the sheet's notes \u2014 v2", (a, "config.epochs"): -7, (b, "group"): "  g "})
    plan = runsync.plan(sheet, force=True)
    assert len(plan.changes) == 3 and not plan.conflicts
    for run_id, field, value in ((a, "notes", "moved meanwhile"), (b, "group", "moved too")):
        live = wandb.Api(timeout=20).run(f"e/p/{run_id}")
        setattr(live, field, value)
        live.update()
    report = runsync.apply(plan, journal=tmp_path / "j.jsonl", force=True)
    assert report.ok and not report.conflicts
    assert {(c.run_id, c.field) for c in report.applied} == {(a, "notes"), (a, "config.epochs"), (b, "group")}
    after = {r.id: r for r in wandb.Api(timeout=20).runs("e/p", lazy=False) if r.id in (a, b)}
    assert after[a].notes == "the sheet's notes \u2014 v2" and after[a].config["epochs"] == -7
    assert after[b].group == "  g "
    # The journal's "before" is what the write replaced (the value moved in W&B), so undo puts that back.
    befores = {h.field: h.before for h in read_journal(tmp_path / "j.jsonl").fields}
    assert befores["notes"] == "moved meanwhile" and befores["group"] == "moved too"


def test_cli_reports_a_write_time_conflict_and_exits_1(seeded_sandbox, tmp_path, monkeypatch, capsys):
    from runsync.cli import cli

    sheet = tmp_path / "runs.csv"
    invoke("export", "e/p", "-o", sheet)
    a, b = sorted(snapshot(seeded_sandbox.store))[:2]
    edit_cells(sheet, {(a, "group"): "from sheet", (b, "group"): "from sheet too"})
    api = wandb.Api(timeout=20)

    class MoveThenConfirm:
        """A terminal whose user answers the prompt only after someone moved the field in W&B."""

        def readline(self, *args: object) -> str:
            run = api.run(f"e/p/{a}")
            run.group = "moved meanwhile"
            run.update()
            return "y\n"

        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", MoveThenConfirm())
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["import", str(sheet)], standalone_mode=False)
    stderr = capsys.readouterr().err
    assert exit_info.value.code == 1, stderr
    assert f"not applied: {a} group changed in W&B since the plan" in stderr
    after = snapshot(seeded_sandbox.store)
    assert after[a]["group"] == "moved meanwhile" and after[b]["group"] == "from sheet too"


def test_a_run_deleted_since_the_export_is_reported_and_the_rest_applied(seeded_sandbox, tmp_path):
    sheet = tmp_path / "runs.csv"
    invoke("export", "e/p", "-o", sheet)
    gone, kept = sorted(snapshot(seeded_sandbox.store))[:2]
    edit_cells(sheet, {(gone, "group"): "g1", (kept, "group"): "g2"})
    seeded_sandbox.store.delete_run("e", "p", gone)
    seeded_sandbox.reset_stats()
    result = invoke("import", sheet, "--yes")
    assert f"run {gone} (row" in result.stderr and "deleted in W&B since the export" in result.stderr
    assert "Applied 1 field change to 1 run." in result.stderr
    assert snapshot(seeded_sandbox.store)[kept]["group"] == "g2"
    assert seeded_sandbox.stats()["mutations"] == 1


def test_a_run_deleted_between_plan_and_write_is_reported(seeded_sandbox, tmp_path):
    sheet = tmp_path / "runs.csv"
    invoke("export", "e/p", "-o", sheet)
    gone, kept = sorted(snapshot(seeded_sandbox.store))[:2]
    edit_cells(sheet, {(gone, "group"): "g1", (kept, "group"): "g2"})
    plan = runsync.plan(sheet)
    seeded_sandbox.store.delete_run("e", "p", gone)
    report = runsync.apply(plan, journal=tmp_path / "j.jsonl")
    assert report.missing == [gone] and not report.ok
    assert [c.run_id for c in report.failed_changes] == [gone]
    assert snapshot(seeded_sandbox.store)[kept]["group"] == "g2"
