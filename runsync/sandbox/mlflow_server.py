"""A real `mlflow server` on loopback with a SQLite store in a folder: started and stopped here for the MLflow
demo (`runsync demo --tracker mlflow`), the tests marked `mlflow` (tests/mlflow_server.py) and the benchmark's
MLflow row. Not a stand-in like the W&B sandbox: MLflow's own server, run as `python -m mlflow server`."""
from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

START_SECONDS = 90.0  # a cold start imports a lot (alembic migrations of a new SQLite database included)
# No telemetry, no retries with minutes of backoff when a client is pointed at a dead port.
QUIET_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
             "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}


@dataclass(frozen=True)
class MlflowServer:
    uri: str  # http://127.0.0.1:PORT
    root: Path  # the folder holding mlflow.db, artifacts/ and server.log

    @property
    def store(self) -> Path:
        return self.root / "mlflow.db"


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


def server_command(store: Path, artifacts: Path, port: int) -> list[str]:
    """The command line of a server on 127.0.0.1:port over an existing or new SQLite store."""
    return [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{store}",
            "--default-artifact-root", str(artifacts), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]


def start_server(root: Path) -> tuple[MlflowServer, subprocess.Popen[bytes]]:
    """Start `mlflow server` with its store under `root`; wait for GET /health == OK (RuntimeError if never)."""
    root.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    uri = f"http://127.0.0.1:{port}"
    log = open(root / "server.log", "wb")  # noqa: SIM115  # closed with the process
    env = {**os.environ, **QUIET_ENV}
    env.pop("MLFLOW_TRACKING_URI", None)
    process = subprocess.Popen(server_command(root / "mlflow.db", root / "artifacts", port), stdout=log,
                               stderr=subprocess.STDOUT, env=env, cwd=root,
                               start_new_session=True)  # its own process group: stopped with its workers
    log.close()  # the child holds its own copy
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


@contextmanager
def running_server(root: Path) -> Iterator[MlflowServer]:
    """A server for the `with` block; stopped at its end, whatever happened."""
    server, process = start_server(root)
    try:
        yield server
    finally:
        stop_server(process)


# The demo experiment: awkward on purpose (unicode, a quote, a slash in the name; a tag value that looks like a
# formula, a multi-line description, a number-looking param), as real experiments are.
DEMO_EXPERIMENT = "demo/image classification ü 'v2'"
DEMO_RUNS = [  # name, user tags, params, description, accuracy
    ("resnet-50 ✓", {"team": "vision", "stage": "draft", "formula": "=1+1"}, {"lr": "0.010", "model": "resnet"},
     "first try\nwith augmentation", 0.91),
    ("vit-small", {"team": "vision", "stage": "draft", "debug": "true"}, {"lr": "3e-4", "model": "vit"}, None, 0.88),
    ("resnet-18 (baseline)", {"team": "vision ü", "stage": "final"}, {"lr": "0.1", "model": "resnet"},
     'said "good enough"', 0.84),
    ("mobilenet", {"team": "edge", "stage": "draft", "debug": "true"}, {"lr": "0.05", "model": "mobilenet"}, None,
     0.79),
]
NOTE_TAG = "mlflow.note.content"  # MLflow's description


def seed_mlflow_demo(uri: str) -> str:
    """Create the demo experiment and its finished runs on the server at `uri`; its `mlflow:NAME` address."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    client = MlflowClient(uri)
    experiment_id = client.create_experiment(DEMO_EXPERIMENT)
    # MLflow 3 prints "View run ... at: URL" on stdout for each finished run: not the demo's output.
    with contextlib.redirect_stdout(io.StringIO()):
        for n, (name, tags, params, description, accuracy) in enumerate(DEMO_RUNS):
            run = client.create_run(experiment_id, start_time=1_700_000_000_000 + n * 60_000, run_name=name)
            extra = [RunTag(NOTE_TAG, description)] if description else []
            client.log_batch(run.info.run_id, tags=[RunTag(k, v) for k, v in tags.items()] + extra,
                             params=[Param(k, v) for k, v in params.items()],
                             metrics=[Metric("accuracy", accuracy, 1_700_000_000_000, 0)])
            client.set_terminated(run.info.run_id)
    return f"mlflow:{DEMO_EXPERIMENT}"
