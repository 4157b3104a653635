"""One measured job per process: `python -m benchmarks.tasks NAME ARGS...`; the last stdout line is JSON.

The contenders runsync is compared with are written the way the W&B docs and users write them.
"""
from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

from benchmarks.harness import PATH


def loop_update(edits_path: str) -> dict[str, Any]:
    """The hand-written way, minus its `time.sleep(5)`: walk every run, `run.update()` the edited ones."""
    import wandb

    with open(edits_path, encoding="utf-8") as fh:
        edits = json.load(fh)
    api = wandb.Api()
    updated = 0
    for run in api.runs(PATH):
        edit = edits.get(run.id)
        if edit is None:
            continue
        run.tags = edit["tags"]
        run.config["lr"] = edit["lr"]
        run.update()
        updated += 1
    return {"updated": updated}


def bare_paging(per_page: str) -> dict[str, Any]:
    """The client's own listing of full runs (`lazy=False`: config comes in the page, no per-run request)."""
    import wandb

    api = wandb.Api()
    n = 0
    for run in api.runs(PATH, per_page=int(per_page), lazy=False):
        _ = (run.id, run.name, run.tags, run.group, run.config)
        n += 1
    return {"runs": n}


def fetch(per_page: str) -> dict[str, Any]:
    """runsync's listing alone (no sheet), at a fixed page size or ("grown") at runsync's own sizes."""
    from runsync.backend.wandb.client import WandbBackend

    backend = WandbBackend()
    _ = backend.api  # connect first: the sidecar's start is not paging
    start = time.perf_counter()
    n = sum(1 for _ in backend.iter_runs(PATH, per_page=None if per_page == "grown" else int(per_page)))
    return {"runs": n, "fetch_s": time.perf_counter() - start}


def read_excel(path: str, engine: str) -> dict[str, Any]:
    import pandas as pd

    frame = pd.read_excel(path, sheet_name="runs", engine=None if engine == "default" else engine)
    return {"rows": len(frame), "columns": len(frame.columns)}


def plan(path: str) -> dict[str, Any]:
    """runsync.plan as a user calls it (W&B read while the sheet is read); its process's peak is the plan's own."""
    import runsync

    t0 = time.perf_counter()
    result = runsync.plan(path)
    return {"changes": len(result.changes), "errors": len(result.errors), "plan_s": time.perf_counter() - t0}


def read_sheet(path: str) -> dict[str, Any]:
    """The sheet read alone (`runsync.read`), in a process of its own: what reading W&B and the diff add to a
    plan beyond reading is the difference."""
    from runsync.api import read

    t0 = time.perf_counter()
    sheet = read(path)
    return {"rows": len(sheet.rows), "columns": len(sheet.columns), "read_s": time.perf_counter() - t0}


def apply(path: str, concurrency: str, journal: str, batch_size: str = "25") -> dict[str, Any]:
    """runsync.plan + runsync.apply at a given concurrency and batch size: for choosing DEFAULT_CONCURRENCY and
    DEFAULT_BATCH_SIZE."""
    import runsync

    t0 = time.perf_counter()
    the_plan = runsync.plan(path)
    t1 = time.perf_counter()
    report = runsync.apply(the_plan, journal=journal, concurrency=int(concurrency), batch_size=int(batch_size))
    t2 = time.perf_counter()
    return {"applied": len(report.applied), "failed": len(report.failed), "plan_s": t1 - t0, "apply_s": t2 - t1,
            "write_requests": report.write_requests}


def mlflow_set_tag(experiment_id: str, edits_path: str) -> dict[str, Any]:
    from benchmarks.mlflow_import import set_tag_loop

    return set_tag_loop(experiment_id, edits_path)


TASKS: dict[str, Callable[..., dict[str, Any]]] = {
    "loop-update": loop_update, "bare-paging": bare_paging, "fetch": fetch, "read-excel": read_excel,
    "plan": plan, "read-sheet": read_sheet, "apply": apply, "mlflow-set-tag": mlflow_set_tag,
}

if __name__ == "__main__":
    name, *args = sys.argv[1:]
    started = time.perf_counter()
    out = TASKS[name](*args)
    out["task_s"] = time.perf_counter() - started
    print(json.dumps(out))
