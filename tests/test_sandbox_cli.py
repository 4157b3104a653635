"""`runsync sandbox seed` and `runsync sandbox serve`, used from a shell as a person would."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from runsync.cli.sandbox import sandbox as sandbox_cli
from runsync.sandbox import Store

REPO = Path(__file__).resolve().parents[1]
# The sandbox group on its own, so these tests don't depend on every other command importing.
CLI = [sys.executable, "-c", "from runsync.cli.sandbox import sandbox; sandbox()"]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(PYTHONPATH=str(REPO), WANDB_DIR=str(tmp_path), WANDB_CONFIG_DIR=str(tmp_path),
               WANDB_SILENT="true", **extra)
    return env


def test_seed_command(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    runner = CliRunner()
    result = runner.invoke(sandbox_cli, ["seed", "--db", str(db), "--entity", "x", "--project", "y",
                                         "--runs", "25", "--seed", "3"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(sandbox_cli, ["seed", "--db", str(db), "--demo"])
    assert result.exit_code == 0, result.output
    store = Store(str(db))
    assert store.count_runs("x", "y") == 25 and store.count_runs("demo", "image-classification") == 12
    store.close()


def test_serve_refuses_a_remote_host_without_allow_remote(tmp_path: Path) -> None:
    result = CliRunner().invoke(sandbox_cli, ["serve", "--db", str(tmp_path / "s.db"), "--host", "0.0.0.0"])
    assert result.exit_code != 0 and "--allow-remote" in result.output


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_prints_env_and_a_plain_wandb_client_works(tmp_path: Path, stop_signal: int) -> None:
    db = tmp_path / "s.db"
    subprocess.run([*CLI, "seed", "--db", str(db), "--runs", "12", "--seed", "2"], check=True,
                   env=_env(tmp_path), timeout=60)
    proc = subprocess.Popen([*CLI, "serve", "--db", str(db), "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env(tmp_path))
    try:
        lines = [proc.stdout.readline().strip(), proc.stdout.readline().strip()]
        assert lines[0].startswith("export WANDB_BASE_URL=http://127.0.0.1:")
        assert lines[1].startswith("export WANDB_API_KEY=") and len(lines[1].split("=", 1)[1]) >= 40
        env = _env(tmp_path, **dict(line.removeprefix("export ").split("=", 1) for line in lines))
        client = subprocess.run(
            [sys.executable, "-c", "import wandb; print(len(wandb.Api().runs('e/p', per_page=5)))"],
            env=env, capture_output=True, text=True, timeout=60)
        assert client.returncode == 0, client.stderr
        assert client.stdout.strip() == "12"
    finally:
        proc.send_signal(stop_signal)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert lines[1].split("=", 1)[1] not in err + out  # the key is printed once, nowhere else


def test_serve_takes_the_services_charges_and_limits_as_flags(tmp_path: Path) -> None:
    import base64
    import json
    import urllib.error
    import urllib.request

    db = tmp_path / "s.db"
    subprocess.run([*CLI, "seed", "--db", str(db), "--runs", "3", "--seed", "5"], check=True,
                   env=_env(tmp_path), timeout=60)
    proc = subprocess.Popen([*CLI, "serve", "--db", str(db), "--read-ms-per-run", "7.5", "--quota-per-s", "40",
                             "--quota-unit", "mutations", "--max-config-bytes", "4321", "--max-body-bytes", "2500"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(tmp_path))
    try:
        url = proc.stdout.readline().strip().split("=", 1)[1]
        key = proc.stdout.readline().strip().split("=", 1)[1]
        auth = "Basic " + base64.b64encode(f"api:{key}".encode()).decode()

        def post(path: str, payload: object) -> tuple[int, dict]:
            req = urllib.request.Request(url + path, data=json.dumps(payload).encode(), method="POST",
                                         headers={"Content-Type": "application/json", "Authorization": auth})
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:
                    return resp.status, json.loads(resp.read())
            except urllib.error.HTTPError as e:
                return e.code, json.loads(e.read())

        status, settings = post("/_sandbox/faults", {})  # changes nothing, answers the settings
        assert status == 200
        assert (settings["read_ms_per_run"], settings["quota_per_s"], settings["quota_unit"],
                settings["max_config_bytes"], settings["max_body_bytes"]) == (7.5, 40, "mutations", 4321, 2500)
        status, body = post("/graphql", {"query": "{ viewer { id } }", "padding": "ü" * 1300})  # 2,600+ bytes
        assert status == 413 and "0.0025 MB" in body["errors"][0]["message"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)
    # 0 switches a size limit off; defaults are the service's.
    result = CliRunner().invoke(sandbox_cli, ["serve", "--help"])
    for flag in ("--read-ms-per-run", "--quota-per-s", "--quota-unit", "--max-config-bytes", "--max-body-bytes"):
        assert flag in result.output
    assert "15000000" in result.output and "10000000" in result.output
    bad = CliRunner().invoke(sandbox_cli, ["serve", "--db", str(db), "--quota-unit", "bytes"])
    assert bad.exit_code == 2 and "--quota-unit" in bad.output
