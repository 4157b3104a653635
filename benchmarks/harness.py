"""Benchmark plumbing: cached seeded databases, a sandbox in its own process, measured subprocesses.

Everything measured runs in a fresh subprocess so that (a) the sandbox's CPU never competes with the
GIL of the process being measured (the machine has 2 cores), (b) wall time includes what a user pays
(interpreter, `import wandb`, the sidecar's start), and (c) peak RSS is the process's own (wait4).
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENTITY, PROJECT = "e", "p"
PATH = f"{ENTITY}/{PROJECT}"
SEED = 1
CACHE = Path(tempfile.gettempdir()) / "runsync-bench-cache"


def seeded_db(n: int) -> Path:
    """A SQLite file holding e/p with `n` seeded runs; built once, then reused (keyed by N and seed)."""
    from runsync.sandbox import seed_project

    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"seed-{n}-s{SEED}.db"
    if not path.exists():
        partial = path.with_suffix(".partial")
        for leftover in CACHE.glob(partial.name + "*"):
            leftover.unlink()
        seed_project(str(partial), ENTITY, PROJECT, runs=n, seed=SEED)
        _checkpoint(partial)
        partial.rename(path)
    return path


def _checkpoint(db: Path) -> None:
    # Fold the WAL into the file so a plain copy of the one file is the whole database.
    import sqlite3

    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.execute("PRAGMA journal_mode = DELETE")
    con.close()


def scratch_copy(db: Path, workdir: Path, name: str) -> Path:
    """A private copy of a cached database, for benchmarks that write."""
    target = workdir / f"{name}.db"
    shutil.copyfile(db, target)
    return target


@dataclass
class Measured:
    seconds: float
    max_rss_mb: float
    stdout: str
    result: dict[str, Any]


class Sandbox:
    """`runsync sandbox serve` in its own process; the key stays in memory, never printed."""

    def __init__(self, db: Path, latency_ms: float, workdir: Path) -> None:
        self.wandb_dir = workdir / "wandb"
        self.wandb_dir.mkdir(exist_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "runsync", "sandbox", "serve", "--db", str(db), "--latency-ms", str(latency_ms)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        env: dict[str, str] = {}
        assert self.proc.stdout is not None
        for _ in range(2):
            line = self.proc.stdout.readline()
            if not line.startswith("export "):
                self.stop()
                raise RuntimeError("the sandbox did not start")
            key, _, value = line[len("export "):].strip().partition("=")
            env[key] = value
        self.url, self._key = env["WANDB_BASE_URL"], env["WANDB_API_KEY"]

    def env(self) -> dict[str, str]:
        """The environment for a measured client process: loopback sandbox, private WANDB_DIR."""
        env = dict(os.environ)
        for name in ("WANDB_ENTITY", "WANDB_PROJECT", "WANDB_MODE"):
            env.pop(name, None)
        env.update(WANDB_BASE_URL=self.url, WANDB_API_KEY=self._key, WANDB_SILENT="true",
                   WANDB_DIR=str(self.wandb_dir), WANDB_CONFIG_DIR=str(self.wandb_dir / "config"),
                   WANDB_CACHE_DIR=str(self.wandb_dir / "cache"), WANDB_DATA_DIR=str(self.wandb_dir / "data"),
                   NO_COLOR="1", PYTHONPATH=_with_repo(env.get("PYTHONPATH")))
        return env

    def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        token = base64.b64encode(f"api:{self._key}".encode()).decode()
        data = json.dumps(payload or {}).encode() if method == "POST" else None
        req = urllib.request.Request(self.url + path, method=method, data=data,
                                     headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/_sandbox/stats")

    def reset_stats(self) -> None:
        self._call("POST", "/_sandbox/stats/reset")

    def set_latency(self, latency_ms: float) -> None:
        self._call("POST", "/_sandbox/faults", {"latency_ms": latency_ms})

    def graphql(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        """One raw GraphQL request (no wandb client): to time the sandbox on its own."""
        token = base64.b64encode(f"api:{self._key}".encode()).decode()
        body = json.dumps({"query": query, "variables": variables}).encode()
        req = urllib.request.Request(self.url + "/graphql", data=body, method="POST",
                                     headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as resp:
            return json.loads(resp.read())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _with_repo(pythonpath: str | None) -> str:
    # `python -m benchmarks.tasks` must import this package from any working directory.
    repo = str(Path(__file__).resolve().parent.parent)
    return os.pathsep.join([repo, *([pythonpath] if pythonpath else [])])


@contextmanager
def sandbox(db: Path, latency_ms: float, workdir: Path) -> Iterator[Sandbox]:
    sb = Sandbox(db, latency_ms, workdir)
    try:
        yield sb
    finally:
        sb.stop()


def measure(args: list[str], env: dict[str, str], cwd: Path) -> Measured:
    """Run one command to completion; wall time, its peak RSS, stdout (a task's last line is JSON)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:4])}... exited {proc.returncode}:\n{stderr[-3000:]}")
    result: dict[str, Any] = {}
    lines = stdout.strip().splitlines()
    if lines and lines[-1].startswith("{"):
        result = json.loads(lines[-1])
    # ru_maxrss is in KiB on Linux.
    return Measured(seconds, usage.ru_maxrss / 1024, stdout, result)


def task(name: str, *args: Any) -> list[str]:
    """The command line of one task in benchmarks/tasks.py."""
    return [sys.executable, "-m", "benchmarks.tasks", name, *map(str, args)]


def runsync_cli(*args: Any) -> list[str]:
    return [sys.executable, "-m", "runsync", *map(str, args)]
