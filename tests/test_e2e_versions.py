"""The end-to-end set run on every tested wandb release (marker `e2e`; README "Supported wandb versions").

The main run executes it with the newest wandb; `.ci/run` runs it again (`pytest -m e2e`) in one venv per
older release; the demo's test (test_cli_meta.py) carries the marker too. Only what every supported client
offers is used here: the CLI, the sandbox, and `wandb.Api()`
reading runs back.
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time

import pytest
import wandb
from helpers import edit_cells, invoke

from runsync.backend.wandb import transport
from runsync.backend.wandb.client import WandbBackend
from runsync.errors import BackendError

pytestmark = pytest.mark.e2e


def _snapshot(run_id: str) -> tuple:
    run = wandb.Api().run(f"e/p/{run_id}")
    return run.name, sorted(run.tags), run.group, run.job_type, run.notes or None, run.config.get("lr")  # "" = null


def _undo_command(stderr: str) -> list[str]:
    (line,) = [line for line in stderr.splitlines() if line.startswith("Undo with: ")]
    return shlex.split(line.removeprefix("Undo with: "))


def test_the_transport_is_the_one_the_installed_client_offers(sandbox):
    backend = WandbBackend()
    chosen = backend.api
    api = chosen.api
    offers_service = callable(getattr(getattr(api, "_service_api", None), "execute_graphql", None))
    assert type(chosen) is (transport.ServiceTransport if offers_service else transport.ClassicTransport)
    assert chosen.execute("query { viewer { id } }", {})["viewer"]["id"]
    assert backend.base_url == sandbox.url
    assert chosen.app_url.startswith("http")


def test_a_failing_server_is_reported_within_the_bound(seeded_sandbox):
    # The bounded first filtered page: each transport turns "its retries ran out" into a timeout.
    backend = WandbBackend(filter_timeout=2)
    assert list(backend.iter_runs("e/p", filters={"state": "finished"}))
    seeded_sandbox.set_faults(error_rate=1.0)
    started = time.monotonic()
    with pytest.raises(BackendError, match="is failing"):
        list(backend.iter_runs("e/p", filters={"state": "finished"}))
    assert time.monotonic() - started < 12


def test_a_server_gone_mid_session_is_said_at_once(seeded_sandbox):
    backend = WandbBackend(timeout=3)
    assert list(backend.iter_runs("e/p"))
    seeded_sandbox.stop()
    started = time.monotonic()
    with pytest.raises(BackendError, match=f"cannot connect to {seeded_sandbox.url}"):
        list(backend.iter_runs("e/p"))
    assert time.monotonic() - started < 8  # not the classic client's 20 s of retrying a refused connection


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_export_dry_run_import_undo(seeded_sandbox, tmp_path, fmt):
    sheet = tmp_path / f"runs.{fmt}"
    invoke("export", "e/p", "-o", sheet, "--summary", "acc")
    finished = sorted(r.id for r in wandb.Api().runs("e/p") if r.state != "running")
    a, b = finished[:2]
    before = {run_id: _snapshot(run_id) for run_id in (a, b)}
    edit_cells(sheet, {(a, "name"): "renamed", (a, "tags"): "x, y", (a, "config.lr"): 0.5,
                       (b, "group"): "regrouped", (b, "notes"): "line one\nline two"})

    mutations = seeded_sandbox.stats()["mutations"]
    doc = json.loads(invoke("import", sheet, "--dry-run", "--format", "json").stdout)
    assert {(c["run_id"], c["field"]) for c in doc["changes"]} == {
        (a, "name"), (a, "tags"), (a, "config.lr"), (b, "group"), (b, "notes")}
    assert seeded_sandbox.stats()["mutations"] == mutations  # a dry run writes nothing

    result = invoke("import", sheet, "--yes")
    assert seeded_sandbox.stats()["mutations"] == mutations + 2  # one upsertBucket per run
    assert _snapshot(a)[:2] == ("renamed", ["x", "y"]) and _snapshot(a)[5] == 0.5
    assert _snapshot(b)[2] == "regrouped" and _snapshot(b)[4] == "line one\nline two"
    assert "No changes." in invoke("import", sheet, "--dry-run").stdout

    invoke(*_undo_command(result.stderr)[1:], "--yes")
    assert {run_id: _snapshot(run_id) for run_id in (a, b)} == before


def test_wandb_login_is_enough(seeded_sandbox, tmp_path, monkeypatch):
    # The key only where this release's own `wandb login --host URL KEY` put it (its netrc): found without a prompt.
    home = tmp_path / "home"
    (home / "wandb-config").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_") and k not in ("NETRC", "HOME")}
    env.update(HOME=str(home), WANDB_CONFIG_DIR=str(home / "wandb-config"), WANDB_SILENT="true")
    done = subprocess.run([sys.executable, "-m", "wandb", "login", "--host", seeded_sandbox.url, seeded_sandbox.api_key],
                          env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(home / "wandb-config"))
    monkeypatch.delenv("WANDB_API_KEY")
    monkeypatch.delenv("NETRC", raising=False)
    invoke("export", "e/p", "-o", tmp_path / "runs.csv")
    # Without it, a fresh process with no variables (the host from the settings file `wandb login --host` wrote)
    # stops at once naming the host and what it looked at (an old client would prompt).
    (home / ".netrc").unlink()
    done = subprocess.run([sys.executable, "-m", "runsync", "export", "e/p", "-o", str(tmp_path / "again.csv")],
                          env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode != 0 and "WANDB_API_KEY" in done.stderr and "wandb login" in done.stderr, done.stderr
    assert f"no W&B credentials for {seeded_sandbox.url}" in done.stderr, done.stderr
