"""A real MLflow tracking server for the tests marked `mlflow`: `mlflow server` on SQLite, on loopback, on a free
port; one per test session (it takes seconds to start), a fresh experiment name per test. Started and stopped by
runsync/sandbox/mlflow_server.py, as for the demo and the benchmark."""
from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator

import pytest

from runsync.sandbox.mlflow_server import QUIET_ENV, MlflowServer, running_server


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """One real MLflow tracking server for the session (SQLite store, artifacts in a temp dir)."""
    if shutil.which("mlflow") is None and not _importable():
        raise RuntimeError("mlflow is not installed: pip install -e '.[mlflow]'")
    with running_server(tmp_path_factory.mktemp("mlflow")) as server:
        yield server


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
