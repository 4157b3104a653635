"""A plan taller than the terminal goes through a pager, as git's output does; piped output never does."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import edit_cells
from terminal import on_terminal

import runsync


@pytest.fixture
def edited(seeded_sandbox, tmp_path: Path) -> Path:
    """An exported sheet with every run regrouped (a plan of a few dozen lines)."""
    sheet = tmp_path / "runs.xlsx"
    runsync.export("e/p", sheet)
    ids = [run.id for run in runsync.frame("e/p").itertuples()]
    edit_cells(sheet, {(rid, "group"): f"regrouped «{i % 3}»" for i, rid in enumerate(ids)})
    return sheet


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PAGER", "RUNSYNC_PAGER", "LESS", "NO_COLOR")}
    return {**env, **extra}


def _piped(sheet: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "runsync", "import", str(sheet), "--dry-run", *extra], env=env,
                          capture_output=True, text=True, timeout=120)


def test_a_plan_taller_than_the_terminal_goes_through_runsync_pager(edited, tmp_path):
    paged = tmp_path / "paged.txt"
    piped = _piped(edited, _env(tmp_path)).stdout
    assert piped.count("\n") > 20
    run = on_terminal(["import", str(edited), "--dry-run"],
                      _env(tmp_path, RUNSYNC_PAGER=f"cat > '{paged}'", PAGER="false"), rows=12)
    assert run.exit_code == 0, run.text
    import re

    assert re.sub(r"\x1b\[[0-9;]*m", "", paged.read_text(encoding="utf-8")) == piped  # the whole plan, once
    assert "By field" not in run.text and "Plan: " not in run.text  # not also printed on the terminal
    assert "Dry run: nothing written" in run.text  # what follows the plan still shows


def test_pager_falls_back_to_PAGER_and_no_pager_turns_it_off(edited, tmp_path):
    paged = tmp_path / "paged.txt"
    run = on_terminal(["import", str(edited), "--dry-run"], _env(tmp_path, PAGER=f"cat > '{paged}'"), rows=12)
    assert run.exit_code == 0 and "Plan: " in paged.read_text(encoding="utf-8")
    paged.unlink()
    run = on_terminal(["import", str(edited), "--dry-run", "--no-pager"], _env(tmp_path, PAGER=f"cat > '{paged}'"),
                      rows=12)
    assert run.exit_code == 0 and not paged.exists()
    assert "By field" in run.text and "Plan: " in run.text


def test_a_plan_that_fits_or_is_piped_is_not_paged(edited, tmp_path):
    paged = tmp_path / "paged.txt"
    env = _env(tmp_path, RUNSYNC_PAGER=f"cat > '{paged}'")
    run = on_terminal(["import", str(edited), "--dry-run"], env, rows=200)
    assert run.exit_code == 0 and not paged.exists() and "Plan: " in run.text
    piped = _piped(edited, env)
    assert piped.returncode == 0 and not paged.exists() and "Plan: " in piped.stdout


def test_less_shows_the_plan_a_screen_at_a_time_and_q_quits(edited, tmp_path):
    # The default pager, as git runs it: less with LESS=FRX when LESS is unset.
    run = on_terminal(["import", str(edited), "--dry-run"], _env(tmp_path, PATH=os.environ["PATH"]), rows=12,
                      keys=[("By field", b"q")])
    assert run.exit_code == 0, run.text
    assert "By field" in run.text and "Plan: " not in run.text  # q before the last screen: the summary never shown
    assert "Dry run: nothing written" in run.text, repr(run.raw[-600:])


def test_undo_and_set_page_their_plans_too(edited, tmp_path):
    paged = tmp_path / "paged.txt"
    env = _env(tmp_path, RUNSYNC_PAGER=f"cat > '{paged}'")
    run = on_terminal(["set", "e/p", "--set", "notes=paged", "--dry-run"], env, rows=12)
    assert run.exit_code == 0 and "notes" in paged.read_text(encoding="utf-8"), run.text
    paged.unlink()
    report = runsync.apply(runsync.plan(edited))
    run = on_terminal(["undo", report.journal, "--dry-run"], env, rows=12)
    assert run.exit_code == 0 and "group" in paged.read_text(encoding="utf-8"), run.text


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])  # the XLSX reads W&B while the sheet is read; CSV after
def test_planning_shows_progress_on_a_terminal_only(seeded_sandbox, tmp_path, suffix):
    sheet = tmp_path / f"runs{suffix}"
    runsync.export("e/p", sheet)
    run = on_terminal(["import", str(sheet), "--dry-run"], _env(tmp_path), rows=50)
    assert run.exit_code == 0, run.text
    assert "Reading the sheet" in run.text and "Reading runs" in run.text and "30/30" in run.text, run.raw
    piped = _piped(sheet, _env(tmp_path))
    assert piped.returncode == 0 and "Reading" not in piped.stderr and "No changes." in piped.stdout
