"""Shared fixtures: a sandbox W&B server per test, a real MLflow server per session (tests/mlflow_server.py),
and guards that keep the clients on loopback."""
from __future__ import annotations

import ipaddress
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import pytest
from mlflow_server import experiment, mlflow_server, mlflow_uri  # noqa: F401  # fixtures, for tests marked mlflow

if TYPE_CHECKING:
    from runsync.sandbox import Sandbox

# Where a test that forgot the sandbox fixture ends up: a closed loopback port, so it fails fast
# instead of reaching the client's default (cloud) host.
DEAD_BASE_URL = "http://127.0.0.1:9"
DUMMY_API_KEY = "sandbox0guard0key0never0valid0anywhere00"  # 40 chars: the client accepts the form


def is_loopback_url(url: str) -> bool:
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(scope="session", autouse=True)
def _wandb_guard() -> Iterator[None]:
    """Point wandb at loopback only, keep its files in a temp dir, never read a user's settings."""
    with tempfile.TemporaryDirectory(prefix="runsync-tests-wandb-") as tmp, pytest.MonkeyPatch.context() as mp:
        for name in ("WANDB_DIR", "WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
            path = Path(tmp) / name.lower()
            path.mkdir()
            mp.setenv(name, str(path))
        mp.setenv("WANDB_SILENT", "true")
        mp.setenv("WANDB_BASE_URL", DEAD_BASE_URL)
        mp.setenv("WANDB_API_KEY", DUMMY_API_KEY)  # never a real key in the test process
        for name in ("WANDB_ENTITY", "WANDB_PROJECT", "WANDB_MODE", "WANDB__GRAPHQL_RETRY_MAX"):
            mp.delenv(name, raising=False)
        # MLflow: no user's tracking server (the `mlflow_uri` fixture sets the test's), no telemetry.
        for name in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME",
                     "MLFLOW_TRACKING_PASSWORD", "MLFLOW_REGISTRY_URI"):
            mp.delenv(name, raising=False)
        mp.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        mp.setenv("DO_NOT_TRACK", "true")
        yield


@pytest.fixture(autouse=True)
def _loopback_only() -> Iterator[None]:
    """Fail any test that left WANDB_BASE_URL (or MLFLOW_TRACKING_URI) pointing off this machine."""
    yield
    url = os.environ.get("WANDB_BASE_URL", "")
    if not is_loopback_url(url):
        os.environ["WANDB_BASE_URL"] = DEAD_BASE_URL
        pytest.fail(f"WANDB_BASE_URL pointed off loopback: {url!r}")
    tracking = os.environ.get("MLFLOW_TRACKING_URI", "")
    if tracking.lower().startswith(("http://", "https://")) and not is_loopback_url(tracking):
        os.environ.pop("MLFLOW_TRACKING_URI")
        pytest.fail(f"MLFLOW_TRACKING_URI pointed off loopback: {tracking!r}")


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    """A fresh sandbox (SQLite file in tmp_path) with this process's wandb client pointed at it."""
    from runsync.sandbox import start

    sb = start(db=str(tmp_path / "sb.db"))
    for key, value in sb.env().items():
        monkeypatch.setenv(key, value)
    wandb_dir = tmp_path / "wandb-dir"
    wandb_dir.mkdir()
    monkeypatch.setenv("WANDB_DIR", str(wandb_dir))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_ENTITY", raising=False)
    try:
        yield sb
    finally:
        sb.stop()


@pytest.fixture
def seeded_sandbox(sandbox: Sandbox) -> Sandbox:
    """The sandbox with project e/p holding 30 deterministic runs (seed 1)."""
    from runsync.sandbox import seed_project

    seed_project(sandbox.store, "e", "p", runs=30, seed=1)
    return sandbox
