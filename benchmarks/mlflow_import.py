"""The MLflow import row: `runsync import` of K edited runs out of N against the hand-written way, a loop of
`MlflowClient.set_tag` calls over the experiment's runs; the same edits, each in a fresh process, against one real
`mlflow server` (runsync/sandbox/mlflow_server.py) started once for the row. Two experiments seeded alike, one
per contender, so neither starts from the other's writes."""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import CACHE, measure, runsync_cli, task

EDITED_TAGS = ("stage", "team")  # the tags every edited run gets new values of
EXPERIMENTS = ("bench runsync", "bench loop")  # seeded alike: one per contender


def available() -> bool:
    import importlib.util

    return importlib.util.find_spec("mlflow") is not None


def _env(uri: str) -> dict[str, str]:
    from benchmarks.harness import _with_repo
    from runsync.sandbox.mlflow_server import QUIET_ENV

    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return {**env, **QUIET_ENV, "MLFLOW_TRACKING_URI": uri, "NO_COLOR": "1",
            "PYTHONPATH": _with_repo(env.get("PYTHONPATH"))}


def _seed(client: Any, name: str, n: int) -> str:
    """An experiment of n finished runs named run-00000...; its id. Tags, params and a metric per run."""
    import contextlib
    import io

    from mlflow.entities import Metric, Param, RunTag

    experiment_id = client.create_experiment(name)
    with contextlib.redirect_stdout(io.StringIO()):  # MLflow 3's "View run ... at" line per finished run
        for i in range(n):
            run = client.create_run(experiment_id, start_time=1_700_000_000_000 + i * 1000, run_name=f"run-{i:05d}")
            client.log_batch(run.info.run_id, tags=[RunTag("stage", "draft"), RunTag("team", f"team {i % 7} ü")],
                             params=[Param("lr", str(10 ** -(1 + i % 4))), Param("seed", f"{i:03d}")],
                             metrics=[Metric("acc", (i % 100) / 100, 0, 0)])
            client.set_terminated(run.info.run_id)
    return str(experiment_id)


def _edit_sheet(sheet: Path, edited: Path, k: int) -> dict[str, dict[str, str]]:
    """K evenly spread rows get new `stage` and `team` tags, saved with openpyxl; the edits by run name."""
    import openpyxl

    book = openpyxl.load_workbook(sheet)
    ws = book["runs"]
    header = [c.value for c in ws[1]]
    col = {name: header.index(name) + 1 for name in ("name", *(f"tags.{t}" for t in EDITED_TAGS))}
    n = ws.max_row - 1
    edits: dict[str, dict[str, str]] = {}
    for i in range(k):
        row = 2 + (i * n) // k
        new = {"stage": "reviewed ✓", "team": f"moved {i} ü"}
        for tag, value in new.items():
            ws.cell(row, col[f"tags.{tag}"]).value = value
        edits[ws.cell(row, col["name"]).value] = new
    book.save(edited)
    return edits


def _tags_by_name(client: Any, experiment_id: str) -> dict[str, dict[str, str]]:
    """Every run's user tags by run name, read with the plain client (the oracle, not runsync's reader)."""
    out: dict[str, dict[str, str]] = {}
    token = None
    while True:
        page = client.search_runs([experiment_id], max_results=1000, page_token=token)
        for run in page:
            out[run.info.run_name] = {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")}
        token = page.token
        if not token:
            return out


def seeded_store(n: int) -> Path:
    """A migrated SQLite store holding both experiments of n runs, seeded in process (no server: a request each
    would cost minutes) once, then reused (keyed by N, this file and the mlflow version), as harness.seeded_db."""
    import hashlib
    import importlib.metadata

    from mlflow import MlflowClient

    digest = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]
    path = CACHE / f"mlflow-{n}-{importlib.metadata.version('mlflow')}-{digest}.db"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        client = MlflowClient(f"sqlite:///{partial}")
        for name in EXPERIMENTS:
            _seed(client, name, n)
        partial.rename(path)
    return path


def bench_mlflow_import(n: int, k: int, work: Path, log: Any) -> dict[str, Any]:
    """Both contenders' wall time and peak RSS, and whether they left the same tags."""
    from mlflow import MlflowClient

    from runsync.sandbox.mlflow_server import running_server

    store = seeded_store(n)
    (work / "mlflow").mkdir()
    shutil.copyfile(store, work / "mlflow" / "mlflow.db")  # a private copy: both contenders write
    started = time.perf_counter()
    with running_server(work / "mlflow") as server:
        log(f"mlflow: server up in {time.perf_counter() - started:.1f} s")
        client = MlflowClient(server.uri)
        ours, theirs = (client.get_experiment_by_name(name).experiment_id for name in EXPERIMENTS)
        env = _env(server.uri)
        sheet, edited = work / "mlflow.xlsx", work / "mlflow-edited.xlsx"
        measure(runsync_cli("export", f"mlflow:id={ours}", "-o", sheet), env, work)
        edits = _edit_sheet(sheet, edited, k)
        (work / "mlflow-edits.json").write_text(json.dumps(edits))
        before = _tags_by_name(client, theirs)
        log(f"mlflow: runsync import --yes, N={n} K={k}")
        m_ours = measure(runsync_cli("import", edited, "--yes"), env, work)
        log("mlflow: MlflowClient.set_tag loop")
        m_loop = measure(task("mlflow-set-tag", theirs, work / "mlflow-edits.json"), env, work)
        after_ours, after_loop = _tags_by_name(client, ours), _tags_by_name(client, theirs)
    changed = sum(after_loop[name] != before[name] for name in before)
    return {"runsync_s": m_ours.seconds, "loop_s": m_loop.seconds, "runsync_rss_mb": m_ours.max_rss_mb,
            "same_end_state": after_ours == after_loop, "runs_changed": changed,
            "loop_calls": m_loop.result["set_tag_calls"]}


def set_tag_loop(experiment_id: str, edits_path: str) -> dict[str, Any]:
    """The hand-written way: walk the experiment's runs, `set_tag` each edited tag of the edited ones."""
    from mlflow import MlflowClient

    with open(edits_path, encoding="utf-8") as fh:
        edits = json.load(fh)
    client = MlflowClient()
    calls, token = 0, None
    while True:
        page = client.search_runs([experiment_id], max_results=1000, page_token=token)
        for run in page:
            for key, value in edits.get(run.info.run_name, {}).items():
                client.set_tag(run.info.run_id, key, value)
                calls += 1
        token = page.token
        if not token:
            return {"set_tag_calls": calls}
