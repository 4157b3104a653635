"""Shared by the fault, interrupt and secrets tests: run state as the sandbox stores it, planned edits,
and running the real `python -m runsync` in a subprocess with a tight wandb client.

A subprocess is needed whenever the client's own retry settings matter: `WANDB__GRAPHQL_RETRY_MAX` and
`WANDB_HTTP_TIMEOUT` are read once per process (the sidecar's settings, and `wandb.Api`'s class default),
so the pytest process, whose sidecar is already running, cannot tighten them.
"""
from __future__ import annotations

import contextlib
import copy
import csv
import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from runsync.sandbox import Store

TEXT = ("group", "job_type", "notes")


def _text(value: Any) -> Any:
    # W&B clears a text field with "" (null means "leave as is"); both are an empty cell.
    return None if value == "" else value


def snapshot(store: Store, entity: str = "e", project: str = "p") -> dict[str, dict[str, Any]]:
    """Every user-visible field of every run, exactly as stored (wrapped config with descriptions)."""
    _, records, _ = store.snapshot(entity, project)
    out = {}
    for rec in records:
        run = rec.to_dict()
        out[run["name"]] = {
            "display_name": run["display_name"], "tags": run["tags"], "group": _text(run["group"]),
            "job_type": _text(run["job_type"]), "notes": _text(run["notes"]), "config": run["raw_config"],
            "summary": run["summary"], "state": run["state"],
        }
    return out


# Editable columns the tests change, with the value written for run number i. Values are all
# non-null so an undo can put back what was there (W&B cannot delete a config key).
EDITS = (
    ("name", lambda i: f"renamed-{i}"),
    ("tags", lambda i: f"fault, t{i}"),
    ("group", lambda i: f"g-{i}"),
    ("job_type", lambda i: f"jt-{i}"),
    ("notes", lambda i: f"note {i}"),
    ("config.lr", lambda i: 0.5 + i / 1000),
    ("config.epochs", lambda i: 1000 + i),
    ("config.optimizer", lambda i: f"opt-{i}"),
    ("config.model.depth", lambda i: 200 + i),
    ("config.batch_size", lambda i: 100_000 + i),
)


def plan_edits(run_ids: list[str], total: int) -> dict[tuple[str, str], Any]:
    """`total` cell edits spread over the runs: each run gets total // runs fields, the first few one more."""
    edits: dict[tuple[str, str], Any] = {}
    per_run, extra = divmod(total, len(run_ids))
    assert per_run + 1 <= len(EDITS)
    for i, run_id in enumerate(run_ids):
        for k in range(per_run + (1 if i < extra else 0)):
            column, value = EDITS[(i + k) % len(EDITS)]
            edits[(run_id, column)] = value(i)
    return edits


def expected_state(before: dict[str, dict[str, Any]], edits: dict[tuple[str, str], Any]) -> dict[str, dict[str, Any]]:
    """The stored state once `edits` are applied: only those fields change, config descriptions kept."""
    after = copy.deepcopy(before)
    for (run_id, column), value in edits.items():
        run = after[run_id]
        if column == "name":
            run["display_name"] = value
        elif column == "tags":
            run["tags"] = [t.strip() for t in value.split(",")]
        elif column in TEXT:
            run[column] = value
        else:
            path = column.split(".")[1:]
            entry = run["config"][path[0]]
            if len(path) == 1:
                entry["value"] = value
            else:
                entry["value"][path[1]] = value
    return after


def edit_csv(path: Path, edits: dict[tuple[str, str], Any]) -> None:
    """Set many cells of an exported CSV at once (tests/helpers.edit_cells rewrites the file per call)."""
    table = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    header = table[0]
    rows = {row[header.index("id")]: row for row in table[1:]}
    for (run_id, column), value in edits.items():
        rows[run_id][header.index(column)] = str(value)
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(table)
    path.write_text(out.getvalue(), encoding="utf-8-sig")


def cli_env(base_url: str, api_key: str, tmp: Path, *, http_timeout: int = 3, retry_max: int = 1) -> dict[str, str]:
    """The environment for a `python -m runsync` subprocess against a sandbox, with a tight client."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    wandb_dir = tmp / "wandb-subprocess"
    wandb_dir.mkdir(exist_ok=True)
    env.update({
        "WANDB_BASE_URL": base_url, "WANDB_API_KEY": api_key, "WANDB_DIR": str(wandb_dir),
        "WANDB_CONFIG_DIR": str(wandb_dir), "WANDB_CACHE_DIR": str(wandb_dir), "WANDB_DATA_DIR": str(wandb_dir),
        "WANDB_SILENT": "true",
        # Per attempt and overall (an int: wandb parses it with int()); a hung request costs this long.
        "WANDB_HTTP_TIMEOUT": str(http_timeout),
        # The sidecar's own retries (~2 s, doubling); runsync's retries come on top.
        "WANDB__GRAPHQL_RETRY_MAX": str(retry_max),
        "NO_COLOR": "1", "COLUMNS": "200",
    })
    return env


def runsync_cmd(*args: Any) -> list[str]:
    return [sys.executable, "-m", "runsync", *map(str, args)]


def run_cli(env: dict[str, str], *args: Any, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(runsync_cmd(*args), env=env, capture_output=True, text=True, timeout=timeout)


@contextlib.contextmanager
def deleted_once_written(sandbox: Any, run_id: str, arrivals: list[float] | None = None,
                         entity: str = "e", project: str = "p") -> Iterator[None]:
    """While inside: the run is deleted in the sandbox once its first write is on its way, so that write and
    every later try fail at once (a real failure, not a mocked one). `arrivals`: each write's arrival time."""
    from helpers import upsert_inputs

    storage_id = sandbox.store.find_run(entity, project, run_id).storage_id

    def hook(label: str, variables: dict, is_mutation: bool) -> None:
        if is_mutation and any(i.get("id") == storage_id for i in upsert_inputs(label, variables)):
            if arrivals is not None:
                arrivals.append(time.monotonic())
            if sandbox.store.find_run(entity, project, run_id) is not None:
                sandbox.store.delete_run(entity, project, run_id)

    sandbox.request_hooks.append(hook)
    try:
        yield
    finally:
        sandbox.request_hooks.remove(hook)
