"""`kill -9` of an import (and of an undo) at random points: re-running converges, the journal stays
readable, and undo puts back exactly what was there.

Everything runs as separate processes, as a user would: `runsync sandbox serve` holds the data (a SQLite
file this test also reads), `python -m runsync import` is started and killed with SIGKILL.
"""
from __future__ import annotations

import json
import random
import shlex
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_support import (
    cli_env,
    edit_csv,
    expected_state,
    plan_edits,
    run_cli,
    runsync_cmd,
    snapshot,
)
from helpers import invoke

from runsync.journal.events import read_journal
from runsync.sandbox import Store, seed_project

RUNS, FIELDS = 40, 100


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[dict[str, str], Store]]:
    """A `runsync sandbox serve` subprocess with 50 ms latency per request (time to be killed mid-write)."""
    db = tmp_path / "served.db"
    seed_project(str(db), "e", "p", runs=RUNS, seed=2)
    env = cli_env("http://127.0.0.1:9", "x" * 40, tmp_path, http_timeout=10, retry_max=1)
    proc = subprocess.Popen(runsync_cmd("sandbox", "serve", "--db", db, "--latency-ms", "50"), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    store = Store(str(db))
    try:
        lines = dict(proc.stdout.readline().strip().removeprefix("export ").split("=", 1) for _ in range(2))
        env.update(lines)
        for key, value in lines.items():  # this process's client too, for the export
            monkeypatch.setenv(key, value)
        yield env, store
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
        store.close()


def _journal_is_sound(path: Path) -> None:
    """Every line is whole JSON, except at most a torn last line (a kill during an append)."""
    if not path.exists():
        return
    lines = path.read_bytes().split(b"\n")
    complete, last = lines[:-1], lines[-1]
    for line in complete:
        if line.strip():
            json.loads(line)
    if last.strip():
        with pytest.raises(json.JSONDecodeError):
            json.loads(last)
    read_journal(path)


def _kill_after(cmd: list[str], env: dict[str, str], journal: Path, lines: int) -> int:
    """Start `cmd`, SIGKILL it once `journal` has `lines` lines (0: while it is still starting up)."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            seen = journal.read_bytes().count(b"\n") if journal.exists() else 0
            if seen >= lines:
                break
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    return proc.returncode


def _edited_export(store: Store, tmp_path: Path) -> tuple[Path, dict, dict, Path]:
    """The project exported to runs.csv with FIELDS edits: (sheet, state before, planned state, journal path)."""
    sheet = tmp_path / "runs.csv"
    invoke("export", "e/p", "-o", sheet)
    before = snapshot(store)
    edits = plan_edits(sorted(before), FIELDS)
    edit_csv(sheet, edits)
    return sheet, before, expected_state(before, edits), tmp_path / "j.jsonl"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kill_9_then_rerun_converges_and_undo_restores_exactly(served, tmp_path, seed):
    env, store = served
    sheet, before, planned, journal = _edited_export(store, tmp_path)
    rng = random.Random(seed)
    # One journal line per begin/write/done: 2 * RUNS + 2 in all. Kill somewhere in the writes
    # (possibly between a `write` and its `done`), or before anything was written.
    kill_at = 0 if seed == 1 else rng.randrange(1, 2 * RUNS)
    code = _kill_after(runsync_cmd("import", sheet, "--yes", "--include-running", "--journal", journal, "--concurrency", "2"),
                       env, journal, kill_at)
    assert code == -signal.SIGKILL
    _journal_is_sound(journal)
    if seed != 1:
        now = snapshot(store)
        assert now != planned  # really interrupted half-way ...
        for run_id, state in now.items():  # ... and every run is either untouched or fully written
            assert state in (before[run_id], planned[run_id])

    rerun = run_cli(env, "import", sheet, "--yes", "--include-running", "--journal", journal)
    assert rerun.returncode == 0, rerun.stderr
    assert snapshot(store) == planned
    _journal_is_sound(journal)
    assert "No changes." in run_cli(env, "import", sheet, "--dry-run").stdout

    # Undo, itself killed once mid-way for the odd seeds, then finished.
    undo_journal = tmp_path / "j.undo.jsonl"
    if seed % 2:
        code = _kill_after(runsync_cmd("undo", journal, "--yes"), env, undo_journal, rng.randrange(1, RUNS))
        assert code == -signal.SIGKILL
        _journal_is_sound(undo_journal)
    undone = run_cli(env, "undo", journal, "--yes")
    assert undone.returncode == 0, undone.stderr
    assert snapshot(store) == before
    assert "No changes." in run_cli(env, "undo", journal, "--dry-run").stdout


def test_a_torn_last_journal_line_is_tolerated(served, tmp_path):
    env, store = served
    sheet = tmp_path / "runs.csv"
    invoke("export", "e/p", "-o", sheet)
    before = snapshot(store)
    edits = plan_edits(sorted(before)[:3], 3)
    edit_csv(sheet, edits)
    journal = tmp_path / "j.jsonl"
    assert run_cli(env, "import", sheet, "--yes", "--include-running", "--journal", journal).returncode == 0
    with open(journal, "ab") as fh:  # what a kill in the middle of an append leaves behind
        fh.write(b'{"at": "2026-01-01T00:00:00+00:00", "op": "write", "run": "tor')
    dry = run_cli(env, "undo", journal, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "1 torn line(s) skipped" in dry.stderr
    # A later import appends after the torn line without gluing onto it.
    edit_csv(sheet, {(sorted(before)[5], "group"): "after-the-tear"})
    assert run_cli(env, "import", sheet, "--yes", "--include-running", "--journal", journal).returncode == 0
    assert read_journal(journal).torn_lines == 1
    assert run_cli(env, "undo", journal, "--yes").returncode == 0
    assert snapshot(store) == before


def test_ctrl_c_stops_the_writes_and_a_rerun_finishes(served, tmp_path):
    """SIGINT (Ctrl-C) mid-import: the runs not started are left alone, exit 130, a re-run converges."""
    env, store = served
    sheet, before, planned, journal = _edited_export(store, tmp_path)
    proc = subprocess.Popen(runsync_cmd("import", sheet, "--yes", "--include-running", "--journal", journal,
                                        "--concurrency", "1", "--batch-size", "5", "--no-verify"),
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:  # a few runs written, most still to go
        if journal.exists() and journal.read_bytes().count(b'"op": "done"') >= 3:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    written = sum(1 for run_id, state in snapshot(store).items() if state != before[run_id])
    # Runs go 5 per request: the request in flight may finish (and the probe's run went alone before the
    # batches); the other ~20 runs are not written.
    assert 3 <= written <= 16, written
    assert "interrupted" in stderr
    rerun = run_cli(env, "import", sheet, "--yes", "--include-running", "--journal", journal)
    assert rerun.returncode == 0, rerun.stderr
    assert snapshot(store) == planned


# --- issue 18: an import is one thing to undo, however it was interrupted -----------------------------------

def _read_back() -> dict[str, dict]:
    """Every run as the plain wandb client reads it: the oracle for "W&B is as it was"."""
    import wandb

    return {r.id: {"name": r.name, "tags": sorted(r.tags), "group": r.group or None, "job_type": r.job_type or None,
                   "notes": r.notes or None, "config": json.dumps(dict(r.config), sort_keys=True)}
            for r in wandb.Api(timeout=30).runs("e/p", per_page=100, lazy=False)}


def _import_journals(sheet: Path) -> list[Path]:
    return sorted(p for p in Path(str(sheet) + ".runsync-journals").glob("*.jsonl") if ".undo." not in p.name)


def _ctrl_c_mid_import(env: dict[str, str], sheet: Path) -> str:
    """Start `runsync import SHEET --yes` (its default journal), SIGINT it once 3 runs are written; its stderr."""
    proc = subprocess.Popen(runsync_cmd("import", sheet, "--yes", "--include-running", "--concurrency", "1",
                                        "--batch-size", "5", "--no-verify"),
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        if sum(p.read_bytes().count(b'"op": "done"') for p in _import_journals(sheet)) >= 3:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    return stderr


def _printed_command(stderr: str, prefix: str) -> list[str]:
    (line,) = [line for line in stderr.splitlines() if prefix in line]
    return shlex.split(line.split(prefix, 1)[1])


def test_ctrl_c_then_the_rerun_is_one_import_whose_printed_undo_restores_wandb_exactly(served, tmp_path):
    env, store = served
    sheet, _, planned, _ = _edited_export(store, tmp_path)
    before = _read_back()
    stderr = _ctrl_c_mid_import(env, sheet)
    (journal,) = _import_journals(sheet)
    now = _read_back()
    written = sum(1 for run_id in before if now[run_id] != before[run_id])
    assert 3 <= written < RUNS
    # The message says how far it got and names the journal.
    assert f"interrupted: {written} of {RUNS} runs written, journaled in {journal}" in stderr, stderr
    assert _printed_command(stderr, "To take back what was written instead: ") == ["runsync", "undo", str(journal)]

    rerun = run_cli(env, "import", sheet, "--yes", "--include-running")
    assert rerun.returncode == 0, rerun.stderr
    assert "Continuing the interrupted import of" in rerun.stderr and str(journal) in rerun.stderr
    assert _import_journals(sheet) == [journal]  # the same import: no second journal
    assert snapshot(store) == planned
    undo = _printed_command(rerun.stderr, "Undo with: ")
    assert undo == ["runsync", "undo", str(journal)]
    undone = run_cli(env, *undo[1:], "--yes")
    assert undone.returncode == 0, undone.stderr
    assert _read_back() == before  # the whole import taken back, not only the re-run's part


def test_ctrl_c_then_a_new_edit_makes_a_new_import_and_both_are_listed_and_undone(served, tmp_path):
    env, store = served
    sheet, _, _, _ = _edited_export(store, tmp_path)
    before = _read_back()
    _ctrl_c_mid_import(env, sheet)
    (interrupted,) = _import_journals(sheet)
    first = sorted(before)[0]  # plan_edits gave it name, tags and group: its notes are a new edit
    edit_csv(sheet, {(first, "notes"): "added after Ctrl-C: ünïcode, \"quotes\""})
    rerun = run_cli(env, "import", sheet, "--yes", "--include-running")
    assert rerun.returncode == 0, rerun.stderr
    assert "warning: not continuing the interrupted import of" in rerun.stderr
    assert "1 change(s) of this plan are not in it" in rerun.stderr
    assert _printed_command(rerun.stderr, "on its own: ") == ["runsync", "undo", str(interrupted)]
    older, newer = _import_journals(sheet)
    assert older == interrupted

    listed = run_cli(env, "undo", sheet)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.strip().splitlines()
    assert len(lines) == 2 and lines[0].endswith(str(newer)) and lines[1].endswith(str(interrupted))
    assert "  done  not undone  " in lines[0] and "interrupted: " in lines[1] and f"of {RUNS} runs written" in lines[1]
    assert run_cli(env, "undo", f"{sheet}.runsync-journals").stdout == listed.stdout  # the folder lists the same

    dry = run_cli(env, "undo", sheet, "--last", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert _printed_command(dry.stderr, "Dry run: nothing written. To apply: ") == ["runsync", "undo", str(newer)]
    assert run_cli(env, "undo", sheet, "--last", "--yes").returncode == 0
    assert "  undone  " in run_cli(env, "undo", sheet).stdout.splitlines()[0]
    assert run_cli(env, "undo", interrupted, "--yes").returncode == 0
    assert _read_back() == before


def _cli_env_for(sandbox, tmp_path: Path) -> dict[str, str]:
    return cli_env(sandbox.url, sandbox.api_key, tmp_path, http_timeout=30)


def test_ctrl_c_at_the_confirmation_exits_130_and_writes_nothing(seeded_sandbox, tmp_path):
    import os
    import pty
    import select

    sheet = tmp_path / "runs.csv"
    invoke("export", "e/p", "-o", sheet)
    run_id = next(r for r in sorted(snapshot(seeded_sandbox.store)) if r)
    edit_csv(sheet, {(run_id, "notes"): "never written"})
    before = _read_back()
    seeded_sandbox.reset_stats()
    master, slave = pty.openpty()  # a terminal, so import asks
    proc = subprocess.Popen(runsync_cmd("import", sheet, "--include-running"), env=_cli_env_for(seeded_sandbox, tmp_path),
                            stdin=slave, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    os.close(slave)
    seen, deadline = b"", time.monotonic() + 60
    while b"field changes to" not in seen and time.monotonic() < deadline and proc.poll() is None:
        if select.select([proc.stderr], [], [], 0.1)[0]:
            seen += os.read(proc.stderr.fileno(), 4096)
    assert b"Write 1 field change to 1 run?" in seen, seen
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    proc.wait(timeout=30)
    os.close(master)
    stderr = (seen + rest).decode()
    assert proc.returncode == 130, stderr
    assert "interrupted: nothing written" in stderr and "Aborted" not in stderr
    assert seeded_sandbox.stats()["mutations"] == 0 and _read_back() == before
    assert _import_journals(sheet) == []


def test_ctrl_c_during_an_export_says_it_stopped_and_nothing_went_to_wandb(seeded_sandbox, tmp_path):
    out = tmp_path / "half export.xlsx"
    seeded_sandbox.set_faults(latency_ms=4000)  # every request takes 4 s: time to press Ctrl-C during one
    seeded_sandbox.reset_stats()
    proc = subprocess.Popen(runsync_cmd("export", "e/p", "-o", out), env=_cli_env_for(seeded_sandbox, tmp_path),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while seeded_sandbox.stats()["requests"] < 1 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    seeded_sandbox.set_faults(latency_ms=0)
    assert proc.returncode == 130, stderr
    assert f"interrupted: the export stopped; nothing was written to W&B ({out} was not written)" in stderr
    assert "re-run" not in stderr.lower() and "journal" not in stderr
    assert not out.exists() and seeded_sandbox.stats()["mutations"] == 0
