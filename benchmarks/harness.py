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


def _seed_code_digest() -> str:
    """A digest of the code that decides what a seeded database holds: a change to it must not reuse a cache."""
    import hashlib

    import runsync.sandbox as pkg

    folder = Path(pkg.__file__).parent
    digest = hashlib.sha256()
    for name in ("seed.py", "store.py", "records.py"):
        digest.update((folder / name).read_bytes())
    return digest.hexdigest()[:12]


def seeded_db(n: int) -> Path:
    """A SQLite file holding e/p with `n` seeded runs; built once, then reused (keyed by N, seed and seed code)."""
    from runsync.sandbox import seed_project

    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"seed-{n}-s{SEED}-{_seed_code_digest()}.db"
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


_WARM_UP = "query W($e: String!, $p: String!) { project(name: $p, entityName: $e) { runCount } }"


@contextmanager
def sandbox(db: Path, latency_ms: float, workdir: Path) -> Iterator[Sandbox]:
    """A served database, warmed (its project loaded) so that no contender pays for a cold server."""
    sb = Sandbox(db, latency_ms, workdir)
    try:
        sb.graphql(_WARM_UP, {"e": ENTITY, "p": PROJECT})
        sb.reset_stats()
        yield sb
    finally:
        sb.stop()


def _tree_rss_kib(pid: int) -> int:
    """Resident memory of a process and all its descendants (the wandb-core sidecar is a child), from /proc."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            with open(f"/proc/{current}/status") as fh:
                total += next((int(line.split()[1]) for line in fh if line.startswith("VmRSS:")), 0)
            for task_dir in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task_dir}/children") as fh:
                    todo += [int(c) for c in fh.read().split()]
        except (OSError, ValueError):
            continue  # it ended meanwhile
    return total


def measure(args: list[str], env: dict[str, str], cwd: Path) -> Measured:
    """Run one command to completion; wall time, peak RSS of it and its children, stdout (last line: JSON)."""
    import threading

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, text=True)
        peak_tree = [0]
        done = threading.Event()

        def sample() -> None:  # every 50 ms: the sidecar is not in the process's own ru_maxrss
            while not done.wait(0.05):
                peak_tree[0] = max(peak_tree[0], _tree_rss_kib(proc.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        done.set()
        sampler.join()
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
    # ru_maxrss is in KiB on Linux; the sampled tree (process + sidecar) is the larger one whenever sampled.
    return Measured(seconds, max(usage.ru_maxrss, peak_tree[0]) / 1024, stdout, result)


def task(name: str, *args: Any) -> list[str]:
    """The command line of one task in benchmarks/tasks.py."""
    return [sys.executable, "-m", "benchmarks.tasks", name, *map(str, args)]


def runsync_cli(*args: Any) -> list[str]:
    return [sys.executable, "-m", "runsync", *map(str, args)]
