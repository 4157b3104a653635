"""Logged in the way W&B users are: `wandb login` (netrc), `wandb login --host` (settings file), no variables.

The real `wandb login --host URL KEY` CLI writes the credentials into a temporary HOME; runsync then finds
them exactly as `wandb.Api()` does, and says what it tried when they are missing or wrong.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import edit_cells, invoke

from runsync.backend.wandb.client import WandbBackend
from runsync.sandbox import Sandbox

WRONG_KEY = "wrongkey" * 5  # 40 characters: the client accepts its form, the sandbox refuses it


def clean_env(home: Path) -> dict[str, str]:
    """This process's environment without any W&B setting, with HOME and wandb's directories under `home`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_") and k not in ("NETRC", "HOME")}
    env.update(HOME=str(home), WANDB_CONFIG_DIR=str(home / "wandb-config"), WANDB_DIR=str(home / "wandb-dir"),
               WANDB_SILENT="true", NO_COLOR="1", COLUMNS="200")
    (home / "wandb-dir").mkdir(parents=True, exist_ok=True)
    return env


def wandb_login(home: Path, url: str, key: str) -> None:
    """`wandb login --host URL KEY`, the real CLI: netrc entry + base_url in the settings file."""
    done = subprocess.run([sys.executable, "-m", "wandb", "login", "--host", url, key], env=clean_env(home),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (home / ".netrc").exists() and "base_url" in (home / "wandb-config" / "settings").read_text()


def set_netrc_key(home: Path, key: str) -> None:
    lines = (home / ".netrc").read_text().splitlines()
    (home / ".netrc").write_text("\n".join(f"  password {key}" if ln.strip().startswith("password") else ln
                                           for ln in lines) + "\n")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user's home with nothing in it; this process sees no WANDB_API_KEY (the session guard sets one)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(home / "wandb-config"))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("NETRC", raising=False)
    return home


def group_of(sb: Sandbox, run_id: str) -> str | None:
    _, _, by_name = sb.store.snapshot("e", "p")
    return by_name[run_id].grp


def first_run(sb: Sandbox) -> str:
    _, ordered, _ = sb.store.snapshot("e", "p")
    return ordered[0].name


def test_netrc_login_with_base_url(seeded_sandbox: Sandbox, home: Path, tmp_path: Path) -> None:
    """WANDB_BASE_URL set, the key only in ~/.netrc: export, dry-run, import, undo all work."""
    wandb_login(home, seeded_sandbox.url, seeded_sandbox.api_key)
    assert "WANDB_API_KEY" not in os.environ
    run_id = first_run(seeded_sandbox)
    before = group_of(seeded_sandbox, run_id)
    sheet = tmp_path / "runs.csv"
    journal = tmp_path / "j.jsonl"
    invoke("export", "e/p", "-o", sheet)
    edit_cells(sheet, {(run_id, "group"): "logged-in-group"})
    dry = invoke("import", sheet, "--dry-run")
    assert "logged-in-group" in dry.stdout + dry.stderr
    assert group_of(seeded_sandbox, run_id) == before
    invoke("import", sheet, "--yes", "--journal", journal)
    assert group_of(seeded_sandbox, run_id) == "logged-in-group"
    invoke("undo", journal, "--yes")
    assert group_of(seeded_sandbox, run_id) == before
    backend = WandbBackend()
    backend.api  # noqa: B018 - connect
    assert backend.base_url == seeded_sandbox.url  # as the client resolved it


def test_wandb_login_host_only_no_variables(seeded_sandbox: Sandbox, tmp_path: Path) -> None:
    """No WANDB_BASE_URL, no WANDB_API_KEY: host from the settings file, key from netrc (fresh processes)."""
    home = tmp_path / "home"
    home.mkdir()
    wandb_login(home, seeded_sandbox.url, seeded_sandbox.api_key)
    env = clean_env(home)
    run_id = first_run(seeded_sandbox)
    before = group_of(seeded_sandbox, run_id)
    sheet, journal = tmp_path / "runs.xlsx", tmp_path / "j.jsonl"

    def runsync(*args: object) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "runsync", *map(str, args)], env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done

    runsync("export", "e/p", "-o", sheet)
    edit_cells(sheet, {(run_id, "group"): "from-settings-host"})
    dry = runsync("import", sheet, "--dry-run")
    assert "from-settings-host" in dry.stdout + dry.stderr
    runsync("import", sheet, "--yes", "--journal", journal)
    assert group_of(seeded_sandbox, run_id) == "from-settings-host"
    runsync("undo", journal, "--yes")
    assert group_of(seeded_sandbox, run_id) == before


def test_wrong_netrc_key_names_what_was_tried(seeded_sandbox: Sandbox, home: Path, tmp_path: Path) -> None:
    wandb_login(home, seeded_sandbox.url, seeded_sandbox.api_key)
    set_netrc_key(home, WRONG_KEY)
    started = time.monotonic()
    result = invoke("export", "e/p", "-o", tmp_path / "x.csv", exit_code=1)
    assert time.monotonic() - started < 10
    first = result.stderr.strip().splitlines()[0]
    assert str(home / ".netrc") in first and f"machine 127.0.0.1:{seeded_sandbox.port}" in first
    assert seeded_sandbox.url in first
    assert WRONG_KEY not in result.stderr + result.stdout
    assert seeded_sandbox.api_key not in result.stderr + result.stdout


def test_wrong_netrc_key_with_settings_host_in_a_fresh_process(seeded_sandbox: Sandbox, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    wandb_login(home, seeded_sandbox.url, seeded_sandbox.api_key)
    set_netrc_key(home, WRONG_KEY)
    done = subprocess.run([sys.executable, "-m", "runsync", "export", "e/p", "-o", tmp_path / "x.csv"],
                          env=clean_env(home), capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert seeded_sandbox.url in done.stderr and str(home / ".netrc") in done.stderr  # host from the settings file
    assert WRONG_KEY not in done.stderr and "Traceback" not in done.stderr


def test_no_credentials_at_all(sandbox: Sandbox, home: Path, tmp_path: Path) -> None:
    """Nothing anywhere: an error at once naming the variable, the netrc path and the host (no prompt)."""
    started = time.monotonic()
    result = invoke("export", "e/p", "-o", tmp_path / "x.csv", exit_code=1)
    assert time.monotonic() - started < 5
    message = result.stderr
    for part in ("WANDB_API_KEY", str(home / ".netrc"), sandbox.url, "wandb login"):
        assert part in message, message
    assert sandbox.stats()["requests"] == 0


def test_netrc_entry_for_another_host_does_not_count(sandbox: Sandbox, home: Path, tmp_path: Path) -> None:
    (home / ".netrc").write_text(f"machine 127.0.0.1:1\n  login user\n  password {sandbox.api_key}\n")
    result = invoke("export", "e/p", "-o", tmp_path / "x.csv", exit_code=1)
    assert f"no entry for machine 127.0.0.1:{sandbox.port}" in result.stderr


def test_environment_key_wins_over_netrc(seeded_sandbox: Sandbox, home: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    wandb_login(home, seeded_sandbox.url, seeded_sandbox.api_key)
    monkeypatch.setenv("WANDB_API_KEY", WRONG_KEY)
    result = invoke("export", "e/p", "-o", tmp_path / "x.csv", exit_code=1)
    assert "WANDB_API_KEY" in result.stderr and WRONG_KEY not in result.stderr
    monkeypatch.setenv("WANDB_API_KEY", seeded_sandbox.api_key)
    set_netrc_key(home, WRONG_KEY)
    invoke("export", "e/p", "-o", tmp_path / "y.csv")
