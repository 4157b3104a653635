"""A real MLflow tracking server for the tests marked `mlflow`: `mlflow server` on SQLite, on loopback, on a free
port; one per test session (it takes seconds to start), a fresh experiment name per test."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

START_SECONDS = 90.0  # a cold start imports a lot (alembic migrations of a new SQLite database included)
# No telemetry, no retries with minutes of backoff when a test points the client at a dead port.
QUIET_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
             "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}


@dataclass(frozen=True)
class MlflowServer:
    uri: str  # http://127.0.0.1:PORT
    root: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthy(uri: str) -> bool:
    try:
        with urllib.request.urlopen(f"{uri}/health", timeout=2) as answer:
            return bool(answer.status == 200 and answer.read().strip() == b"OK")
    except OSError:
        return False


def start_server(root: Path) -> tuple[MlflowServer, subprocess.Popen[bytes]]:
    """Start `mlflow server` with its store under `root`; wait for GET /health == OK."""
    port = _free_port()
    uri = f"http://127.0.0.1:{port}"
    log = open(root / "server.log", "wb")  # noqa: SIM115  # closed with the process
    env = {**os.environ, **QUIET_ENV}
    env.pop("MLFLOW_TRACKING_URI", None)
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
               "--default-artifact-root", str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
               "--workers", "1"]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root,
                               start_new_session=True)  # its own process group: stopped with its workers
    deadline = time.monotonic() + START_SECONDS
    while not _healthy(uri):
        if process.poll() is not None or time.monotonic() > deadline:
            stop_server(process)
            tail = (root / "server.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"mlflow server did not become healthy at {uri}:\n{tail}")
        time.sleep(0.25)
    return MlflowServer(uri, root), process


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """Stop the server's process group (the server and the workers it started), by its id."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=5)  # uvicorn may linger on open connections
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """One real MLflow tracking server for the session (SQLite store, artifacts in a temp dir)."""
    if shutil.which("mlflow") is None and not _importable():
        raise RuntimeError("mlflow is not installed: pip install -e '.[mlflow]'")
    server, process = start_server(tmp_path_factory.mktemp("mlflow"))
    try:
        yield server
    finally:
        stop_server(process)


def _importable() -> bool:
    import importlib.util

    return importlib.util.find_spec("mlflow") is not None


@pytest.fixture
def mlflow_uri(mlflow_server: MlflowServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """MLFLOW_TRACKING_URI pointed at the session's server for this test."""
    for key, value in QUIET_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri)
    return mlflow_server.uri


@pytest.fixture
def experiment(mlflow_uri: str) -> str:
    """A fresh experiment on the server (awkward name, unique per test); its name."""
    from mlflow import MlflowClient

    name = f"exp ü/{uuid.uuid4().hex[:8]} 'q'"
    MlflowClient(mlflow_uri).create_experiment(name)
    return name
