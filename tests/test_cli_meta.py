"""The CLI as a newcomer meets it: the demo, help for every command, README coverage."""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import invoke

from runsync.cli import cli

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


@pytest.mark.e2e  # also run on every tested wandb release (test_e2e_versions.py, .ci/run)
def test_demo_runs_end_to_end(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env["NO_COLOR"] = "1"
    result = subprocess.run([sys.executable, "-m", "runsync", "demo", "--keep", str(tmp_path)], env=env,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "Plan: 4 runs, 4 fields to change, 0 conflicts." in out
    assert "Applied 4 field changes to 4 runs." in out
    assert out.rstrip().endswith("No changes.")
    assert "'reviewed'" in out and "optimizer='adam'" in out
    assert (tmp_path / "runs.xlsx").exists()
    journals = sorted((tmp_path / "runs.xlsx.runsync-journals").glob("*.jsonl"))
    assert len(journals) == 1  # one import, one journal; with --keep its undo command is printed
    assert f"Undo with: runsync undo {shlex.quote(str(journals[0]))}" in out


@pytest.mark.mlflow  # not e2e: the older-wandb venvs of .ci/run have no mlflow
def test_mlflow_demo_runs_end_to_end(tmp_path):
    """`runsync demo --tracker mlflow` on a real local mlflow server; the kept SQLite store read back with the plain
    MlflowClient (no server, no runsync) is the oracle."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "MLFLOW_"))}
    env["NO_COLOR"] = "1"
    result = subprocess.run([sys.executable, "-m", "runsync", "demo", "--tracker", "mlflow", "--keep", str(tmp_path)],
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "Plan: 4 runs, 5 fields to change, 0 conflicts." in out
    assert "(delete tag)" in out and "Applied 5 field changes to 4 runs." in out
    assert "W&B" not in out and "View run" not in out  # MLflow's words; MLflow's own chatter kept out
    assert out.rstrip().endswith("No changes.")
    journals = sorted((tmp_path / "runs.xlsx.runsync-journals").glob("*.jsonl"))
    assert len(journals) == 1
    assert f"Undo with: runsync undo {shlex.quote(str(journals[0]))}" in out

    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}")
    (experiment,) = [e for e in client.search_experiments() if e.name != "Default"]
    runs = {r.info.run_name: r.data for r in client.search_runs([experiment.experiment_id])}
    assert sorted(runs) == ["mobilenet", "resnet-18 (baseline)", "resnet-50 ✓", "vit-small-final"]
    assert runs["resnet-50 ✓"].tags["stage"] == "reviewed ✓" and runs["resnet-50 ✓"].tags["formula"] == "=1+1"
    assert "debug" not in runs["vit-small-final"].tags and "debug" not in runs["mobilenet"].tags
    assert runs["resnet-18 (baseline)"].tags["mlflow.note.content"] == 'said "good enough"\nchecked by hand ✓'
    assert runs["vit-small-final"].params == {"lr": "3e-4", "model": "vit"}  # params are never written
    assert runs["mobilenet"].tags["stage"] == "draft"


def test_demo_without_keep_prints_no_journal_it_deletes():
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env["NO_COLOR"] = "1"
    result = subprocess.run([sys.executable, "-m", "runsync", "demo"], env=env, capture_output=True, text=True,
                            timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "runsync undo" not in result.stdout and "Journal:" not in result.stdout
    assert "--keep DIR" in result.stdout


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_has_help_and_a_readme_mention(name):
    result = invoke(name, "--help")
    assert "Usage:" in result.stdout and len(result.stdout.splitlines()) > 3
    assert f"runsync {name}" in README


def test_readme_starts_with_the_two_commands():
    first_blocks = README.split("```bash")[1:3]
    assert first_blocks[0].strip().startswith("pip install -e . && runsync demo")
    assert first_blocks[1].strip().startswith("pip install -e '.[test]' && pytest")
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
    assert "pip install -q -e '.[test]'" in ci and "\npytest\n" in ci


def test_usage_errors_exit_1_not_2(tmp_path):
    # 2 means "changes pending" with --detailed-exitcode; a bad command line must not look like it.
    result = subprocess.run([sys.executable, "-m", "runsync", "import", str(tmp_path / "missing.xlsx")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "does not exist" in result.stderr


def test_top_level_help_shows_each_commands_whole_summary():
    out = invoke("--help").stdout
    listing = " ".join(out[out.index("Commands:"):].split())  # the summaries wrap in their column
    for name, command in cli.commands.items():
        summary = " ".join(command.help.split("\n\n")[0].split())
        assert f"{name} {summary}" in listing, (name, out)
    assert "..." not in out[out.index("Commands:"):]


# What a command's start must not pay for (STYLE.md "Import wandb / openpyxl lazily so `--help` is instant"):
# each costs 0.1-1.6 s at import; pandas only where a DataFrame is involved, babel only for a CSV's damage check.
HEAVY_MODULES = ("pandas", "openpyxl", "wandb", "babel", "numpy")


@pytest.mark.parametrize("code", [
    "import runsync",
    "import runsync.cli",
    "import sys; from runsync.cli import cli; sys.argv = ['runsync', '--help']; cli(standalone_mode=False)",
    "import sys; from runsync.cli import cli; sys.argv = ['runsync', 'import', '--help']; cli(standalone_mode=False)",
    "import sys; from runsync.cli import cli; sys.argv = ['runsync', 'export', '--help']; cli(standalone_mode=False)",
], ids=["import-runsync", "import-cli", "help", "import-help", "export-help"])
def test_starting_runsync_imports_no_heavy_module(code):
    check = f"{code}\nimport sys\nprint(sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules))"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    result = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout


@pytest.mark.parametrize("suffix", ["xlsx", "csv"])
def test_an_import_of_a_sheet_imports_neither_pandas_nor_openpyxl_nor_babel(sandbox, tmp_path, suffix):
    # An XLSX is read with calamine, a CSV with the csv module: no DataFrame, no workbook object, and babel
    # only when a CSV column looks changed by a spreadsheet program (not here).
    for n, run_id in enumerate(["r-Ω", "r 2", "r3"]):
        sandbox.store.create_run("e", "p", run_id, state="finished", config={"lr": 0.5 ** n, "name": "x,y"})
    sheet = tmp_path / f"runs.{suffix}"
    invoke("export", "e/p", "-o", sheet)
    check = ("import sys\nfrom runsync.cli import cli\n"
             f"sys.argv = ['runsync', 'import', {str(sheet)!r}, '--yes']\n"
             "try:\n    cli()\nexcept SystemExit as stop:\n    assert not stop.code, stop.code\n"
             "print(sorted(m for m in ('pandas', 'openpyxl', 'babel') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No changes." in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout
