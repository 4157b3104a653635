"""The benchmark command runs end to end at a tiny size; runsync's request counts stay in budget.

Counts, not times: the timings of a CI machine mean nothing, the number of requests always does.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import DEAD_BASE_URL, DUMMY_API_KEY

REPO = Path(__file__).resolve().parent.parent
ROWS = ("import N=", "one run per request", "requests/s", "export N=", "→ .xlsx", "→ .csv", "gateway deadline",
        "vs `read_excel` (openpyxl)", "vs `read_excel` (calamine)", "(peak RSS)", "upsertBuckets/s", "MLflow import")


def test_benchmarks_smoke(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    env = {**os.environ, "WANDB_BASE_URL": DEAD_BASE_URL, "WANDB_API_KEY": DUMMY_API_KEY,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--smoke", "--json", str(out)], cwd=tmp_path,
                          env=env, capture_output=True, text=True,
                          timeout=480)  # the MLflow row starts a real mlflow server: 20-50 s on a busy machine
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = proc.stdout
    for label in ROWS:
        assert label in table, f"no row with {label!r} in:\n{table}"
    assert "| 100 |" in table and "| 300 |" in table  # the scaling rows
    assert DUMMY_API_KEY not in table + proc.stderr

    results = json.loads(out.read_text())
    rows = results["rows"]
    assert len(rows) == len(ROWS)
    for row in rows[:11]:  # the sandbox's rows (the MLflow server counts no requests)
        assert row["requests"] is not None and row["requests"] <= row["budget"], row
    # Written numbers, not runsync's constants (a smaller page or batch size must fail here). --smoke: import
    # N=200 K=20 = Viewer + plan read + the re-read before writing + the config-merge probe's read-back + the
    # read-back of the written runs; the probe's write alone, then the other 19 runs in one request;
    # export and plan of N=300 = Viewer + a page (or id query) of 250 runs + one of the 50 left (asked at 500).
    assert rows[0]["extra"]["operations"] == {"Viewer": 1, "RunsyncRuns": 4, "RunsyncUpsertBucket": 1,
                                              "RunsyncUpsertBuckets": 1}
    assert rows[0]["requests"] == rows[0]["budget"] == 7
    assert rows[2]["requests"] == 1 + 4 + 20  # one run per request
    assert [r["requests"] for r in rows[4:10]] == [3, 3, 3, 3, 3, 3]
    slow = rows[6]
    assert "gateway deadline" in slow["name"] and slow["extra"]["504"] == 0, slow  # no page over the deadline
    imported = rows[0]
    assert imported["extra"]["same_end_state"] is True  # runsync and the loop made the same changes
    # ... except what the loop destroys, which the comparison names
    [difference] = imported["extra"]["end_state_differences"]
    assert difference.startswith("config descriptions (the loop's run.update() drops them)")
    serial = rows[1]
    assert "concurrency 1" in serial["name"] and serial["extra"]["baseline_requests"] == imported["extra"]["baseline_requests"]
    limited = rows[3]
    assert limited["extra"]["429"] <= limited["extra"]["baseline_429"]
    # Every run written under a quota. On the sidecar client (this suite's) the headers are hidden and runsync
    # leaves the backoff to the client, so paced and not meet about as many 429s; tests/test_pacing.py checks
    # the headers rule on the classic clients.
    quota = rows[10]
    assert "200 runs written under a quota" in quota["name"]
    # The same client backoff on both sides: how many 429s each meets depends on timing, so no storm is all
    # this can say (a storm: several per request).
    assert quota["extra"]["429"] <= 2 * quota["extra"]["baseline_429"] + 4, quota
    assert imported["requests"] < imported["extra"]["baseline_requests"]
    # MLflow (a real local server, CI installs runsync[mlflow]): runsync's import and the set_tag loop made the
    # same edits: 6 runs of 30, two tags each (12 set_tag calls), and left the same tags.
    mlflow = rows[11]
    assert mlflow["name"].startswith("MLflow import N=30 K=6"), mlflow
    assert mlflow["extra"] == {"same_end_state": True, "runs_changed": 6, "baseline_calls": 12}
    assert mlflow["runsync_s"] > 0 and mlflow["baseline_s"] > 0
