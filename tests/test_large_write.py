"""A write to many runs asks once more, with the counts, on a terminal; --yes and non-interactive use are unchanged.

The questions are answered through a real pseudo-terminal (the command runs in a child process whose stdin is a
pty), so `isatty()` and click's prompt are the ones a person meets.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import wandb
from helpers import invoke

from runsync.cli.common import LARGE_WRITE_RUNS

ROOT = Path(__file__).resolve().parent.parent
MANY = LARGE_WRITE_RUNS + 7


@pytest.fixture
def many(sandbox, tmp_path, monkeypatch):
    """MANY finished runs in e/p, and 3 more in group "few"; journals kept in the test's folder."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    for i in range(MANY):
        sandbox.store.create_run("e", "p", f"m{i:03d}", display_name=f"many {i}", group="bulk",
                                 config={"lr": 0.1, "note": "ç"})
    for i in range(3):
        sandbox.store.create_run("e", "p", f"f{i}", display_name=f"few {i}", group="few", config={"lr": 0.2})
    return sandbox


def notes() -> dict[str, str | None]:
    """Every run's notes as plain wandb.Api() reads them: the oracle."""
    return {r.id: r.notes for r in wandb.Api().runs("e/p")}


def on_a_terminal(*args: str, answers: str) -> subprocess.CompletedProcess[str]:
    """`runsync ARGS` with a pseudo-terminal on stdin, typing `answers` (one line per question)."""
    master, slave = os.openpty()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               NO_COLOR="1", COLUMNS="200")
    try:
        proc = subprocess.Popen([sys.executable, "-m", "runsync", *args], stdin=slave, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)
        os.close(slave)
        os.write(master, answers.encode())
        out, err = proc.communicate(timeout=120)
    finally:
        os.close(master)
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def test_a_large_write_asks_again_with_the_counts_and_no_writes_nothing(many):
    before = notes()
    done = on_a_terminal("set", "e/p", "--filter", "group=bulk", "--set", "notes=bulk ✓", "--set", "config.lr=0.3",
                         answers="y\nn\n")
    assert done.returncode == 1, done.stderr
    assert f"Write {2 * MANY} field changes to {MANY} runs?" in done.stderr
    assert (f"This write touches {MANY} runs (more than {LARGE_WRITE_RUNS}): config.lr in {MANY} runs, "
            f"notes in {MANY} runs. Write to all {MANY} runs?") in done.stderr, done.stderr
    assert "Nothing written." in done.stderr
    assert notes() == before


def test_a_large_write_confirmed_twice_is_written_and_its_undo_asks_again(many):
    done = on_a_terminal("set", "e/p", "--filter", "group=bulk", "--set", "notes=bulk ✓", answers="y\ny\n")
    assert done.returncode == 0, done.stderr
    after = notes()
    assert [rid for rid, n in after.items() if n == "bulk ✓"] == [f"m{i:03d}" for i in range(MANY)]
    journal = next(line.split("Journal: ", 1)[1] for line in done.stderr.splitlines() if "Journal: " in line)
    undo = on_a_terminal("undo", journal.strip(), answers="y\nn\n")
    assert undo.returncode == 1 and f"This write touches {MANY} runs" in undo.stderr, undo.stderr
    assert notes() == after


def test_a_small_write_asks_once(many):
    done = on_a_terminal("set", "e/p", "--filter", "group=few", "--set", "notes=small", answers="y\n")
    assert done.returncode == 0, done.stderr
    assert "Write 3 field changes to 3 runs?" in done.stderr and "This write touches" not in done.stderr
    assert sorted(rid for rid, n in notes().items() if n == "small") == ["f0", "f1", "f2"]


def test_without_a_terminal_or_with_yes_nothing_is_asked(many):
    before = notes()
    refused = invoke("set", "e/p", "--filter", "group=bulk", "--set", "notes=piped", exit_code=1)
    assert "not a terminal: nothing written; pass --yes" in refused.stderr and "This write touches" not in refused.stderr
    assert notes() == before
    done = invoke("set", "e/p", "--filter", "group=bulk", "--set", "notes=yes given", "--yes")
    assert "This write touches" not in done.stderr and "Write to all" not in done.stderr
    assert sum(n == "yes given" for n in notes().values()) == MANY
