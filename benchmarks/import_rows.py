"""The import rows: runsync import against the hand-written `run.update()` loop, its variants (one concurrency,
one run per request, under a rate limit, under a quota), and the MLflow import."""
from __future__ import annotations

import json
import math
import random
import shutil
from pathlib import Path
from typing import Any

from benchmarks.harness import PATH, measure, runsync_cli, sandbox, scratch_copy, seeded_db, task
from benchmarks.rows import (
    QUOTA_BATCH,
    QUOTA_WINDOWS,
    RATE_LIMIT,
    RUNS_PER_REQUEST,
    Row,
    Sizes,
    import_budget,
    log,
    one_per_request_budget,
)


def make_edits(sheet: Path, edited: Path, k: int) -> dict[str, dict[str, Any]]:
    """Edit K evenly spread rows as a person would: add a tag, change config.lr; save with openpyxl."""
    import openpyxl

    from runsync.fields.codec import format_tags, parse_tags

    book = openpyxl.load_workbook(sheet)
    ws = book["runs"]
    header = [c.value for c in ws[1]]
    col = {name: header.index(name) + 1 for name in ("id", "tags", "config.lr")}
    n = ws.max_row - 1
    edits: dict[str, dict[str, Any]] = {}
    for i in range(k):
        row = 2 + (i * n) // k
        tags = [*parse_tags(ws.cell(row, col["tags"]).value or ""), "bench"]
        lr = round(random.Random(i).uniform(1e-4, 1e-1), 6)
        ws.cell(row, col["tags"]).value = format_tags(tags)
        ws.cell(row, col["config.lr"]).value = lr
        edits[ws.cell(row, col["id"]).value] = {"tags": tags, "lr": lr}
    book.save(edited)
    return edits


END_FIELDS = ("display_name", "tags", "group", "job_type", "notes", "config", "summary")


def end_state(db: Path) -> dict[str, dict[str, Any]]:
    """Every field of every run as stored (config with its descriptions), for comparing two end states."""
    from runsync.sandbox import Store

    store = Store(str(db))
    try:
        out = {}
        for rec in store.snapshot("e", "p")[1]:
            run = rec.to_dict()
            out[rec.name] = {f: (sorted(run[f]) if f == "tags" else run[f]) for f in END_FIELDS}
        return out
    finally:
        store.close()


def compare_end_states(ours: dict[str, dict[str, Any]], theirs: dict[str, dict[str, Any]]) -> list[str]:
    """What differs between two end states, per field, with config descriptions told apart from values."""
    counts: dict[str, int] = {}
    for rid in sorted(set(ours) | set(theirs)):
        a, b = ours.get(rid), theirs.get(rid)
        if a is None or b is None:
            counts["run present in one only"] = counts.get("run present in one only", 0) + 1
            continue
        for f in END_FIELDS:
            if a[f] == b[f]:
                continue
            if f == "config":
                values = lambda c: {k: v.get("value") if isinstance(v, dict) else v for k, v in c.items()}  # noqa: E731
                descs = lambda c: {k: v.get("desc") for k, v in c.items() if isinstance(v, dict)}  # noqa: E731
                if values(a[f]) != values(b[f]):
                    counts["config values"] = counts.get("config values", 0) + 1
                if descs(a[f]) != descs(b[f]):
                    counts["config descriptions (the loop's run.update() drops them)"] = counts.get(
                        "config descriptions (the loop's run.update() drops them)", 0) + 1
            else:
                counts[f] = counts.get(f, 0) + 1
    return [f"{what}: {n} runs" for what, n in counts.items()]


def bench_import(sizes: Sizes, work: Path) -> list[Row]:
    n, k = sizes.import_runs, sizes.import_edits
    seed = seeded_db(n)
    ours, theirs = scratch_copy(seed, work, "import-runsync"), scratch_copy(seed, work, "import-loop")
    sheet, edited = work / "import.xlsx", work / "import-edited.xlsx"
    with sandbox(ours, 0, work) as sb:
        measure(runsync_cli("export", PATH, "-o", sheet), sb.env(), work)
        edits = make_edits(sheet, edited, k)
        (work / "edits.json").write_text(json.dumps(edits))
        sb.set_latency(sizes.latency_ms)
        sb.reset_stats()
        log(f"import: runsync import --yes, N={n} K={k}")
        # --include-running: the run.update() loop writes running runs too, so both make the same changes.
        m_ours = measure(runsync_cli("import", edited, "--yes", "--include-running"), sb.env(), work)
        s_ours = sb.stats()
    with sandbox(theirs, sizes.latency_ms, work) as sb:
        log("import: run.update() loop")
        m_loop = measure(task("loop-update", work / "edits.json"), sb.env(), work)
        s_loop = sb.stats()
    m_serial, s_serial = _import_variant(seed, work, sizes, "c1", "--concurrency", "1")
    m_single, s_single = _import_variant(seed, work, sizes, "b1", "--batch-size", "1")
    differences = compare_end_states(end_state(ours), end_state(theirs))
    same_values = not [d for d in differences if not d.startswith("config descriptions")]
    budget, lat = import_budget(n, k), f"{sizes.latency_ms:g} ms latency"
    loop = {"baseline_requests": s_loop["requests"]}
    return [Row(f"import N={n:,} K={k} ({lat})", m_ours.seconds, m_loop.seconds,
                "`run.update()` loop", s_ours["requests"], budget, m_ours.max_rss_mb, "≥ 30× faster",
                {**loop, "same_end_state": same_values, "end_state_differences": differences,
                 "operations": s_ours["operations"], "baseline_operations": s_loop["operations"]}),
            Row(f"import N={n:,} K={k} at concurrency 1 ({lat})", m_serial.seconds, m_loop.seconds,
                "`run.update()` loop", s_serial["requests"], budget, m_serial.max_rss_mb,
                "what batches and the pipeline gain without concurrency", loop),
            Row(f"import N={n:,} K={k} one run per request, `--batch-size 1` ({lat})", m_single.seconds,
                m_loop.seconds, "`run.update()` loop", s_single["requests"], one_per_request_budget(n, k),
                m_single.max_rss_mb, "what concurrency gains without batches", loop)]


def _import_variant(seed: Path, work: Path, sizes: Sizes, name: str, *options: str,
                    faults: dict[str, Any] | None = None, edited: str = "import-edited.xlsx",
                    env: dict[str, str] | None = None) -> tuple[Any, dict[str, Any]]:
    """`runsync import --yes` of the edited sheet (`edited`, in `work`) with `options`, on a fresh copy of the
    seeded database; `env`: more environment for runsync."""
    db = scratch_copy(seed, work, f"import-runsync-{name}")
    with sandbox(db, sizes.latency_ms, work) as sb:
        if faults:
            sb._call("POST", "/_sandbox/faults", faults)
        sb.reset_stats()
        log(f"import: runsync import --yes {' '.join(options)}")
        # A fresh copy of the sheet in a folder of its own: the other imports' journals beside it would count
        # for its base (copies of one export see each other's imports), though each starts from a fresh database.
        fresh = work / f"import-{name}" / edited
        fresh.parent.mkdir(exist_ok=True)
        shutil.copyfile(work / edited, fresh)
        measured = measure(runsync_cli("import", fresh, "--yes", "--include-running", *options),
                           {**sb.env(), **(env or {})}, work)
        return measured, sb.stats()


def bench_rate_limited(sizes: Sizes, work: Path) -> list[Row]:
    """The import under a rate limit, in batches and one run per request: how many 429s each meets. Requests
    count those answered (a 429 is asked again)."""
    n, k = sizes.import_runs, sizes.import_edits
    seed = seeded_db(n)
    limit = {"rate_limit": RATE_LIMIT, "retry_after": False}
    m_batched, s_batched = _import_variant(seed, work, sizes, "rl", faults=limit)
    m_single, s_single = _import_variant(seed, work, sizes, "rl-b1", "--batch-size", "1", faults=limit)
    ours, theirs = s_batched["faults"].get("429", 0), s_single["faults"].get("429", 0)
    return [Row(f"import N={n:,} K={k} under {RATE_LIMIT:g} requests/s ({sizes.latency_ms:g} ms latency)",
                m_batched.seconds, m_single.seconds, "one run per request (`--batch-size 1`)",
                s_batched["requests"] - ours, import_budget(n, k), m_batched.max_rss_mb,
                f"fewer 429s than one run per request: {ours} vs {theirs}",
                {"baseline_requests": s_single["requests"], "429": ours, "baseline_429": theirs})]


def bench_quota(sizes: Sizes, work: Path) -> list[Row]:
    """Every run written under a per-project quota of upsertBuckets the import would exceed at full speed (1 s
    windows, RateLimit-* on every answer, no Retry-After): how many 429s it meets and how long it takes, paced
    by the server's signal and not (RUNSYNC_PACING=off). Requests count those answered (a 429 is asked again)."""
    n = sizes.import_runs
    seed = seeded_db(n)
    sheet, edited = work / "quota.xlsx", "quota-edited.xlsx"
    with sandbox(scratch_copy(seed, work, "quota-export"), 0, work) as sb:
        measure(runsync_cli("export", PATH, "-o", sheet), sb.env(), work)
    make_edits(sheet, work / edited, n)
    per_s = max(QUOTA_BATCH, n // QUOTA_WINDOWS)  # the import needs about QUOTA_WINDOWS windows
    quota = {"quota_per_s": per_s, "quota_window_s": 1, "quota_unit": "mutations", "retry_after": False}
    small = ("--batch-size", str(QUOTA_BATCH))
    m_paced, s_paced = _import_variant(seed, work, sizes, "quota", *small, faults=quota, edited=edited)
    m_full, s_full = _import_variant(seed, work, sizes, "quota-off", *small, faults=quota, edited=edited,
                                     env={"RUNSYNC_PACING": "off"})
    ours, theirs = s_paced["rate_limited"], s_full["rate_limited"]
    budget = math.ceil(n / QUOTA_BATCH) + 2 * math.ceil(n / RUNS_PER_REQUEST) + 5
    return [Row(f"{n:,} runs written under a quota of {per_s:g} upsertBuckets/s, `--batch-size {QUOTA_BATCH}` "
                f"({sizes.latency_ms:g} ms latency)",
                m_paced.seconds, m_full.seconds, "the same import without pacing (`RUNSYNC_PACING=off`)",
                s_paced["requests"] - ours, budget, m_paced.max_rss_mb,
                f"a handful of 429s, not a storm: {ours} vs {theirs}",
                {"baseline_requests": s_full["requests"], "429": ours, "baseline_429": theirs})]


def bench_mlflow(sizes: Sizes, work: Path) -> list[Row]:
    """The MLflow import row (benchmarks/mlflow_import.py); none when mlflow is not installed (runsync[mlflow])."""
    from benchmarks import mlflow_import

    if not mlflow_import.available():
        log("mlflow: not installed (pip install -e '.[mlflow]'): no MLflow row")
        return []
    n, k = sizes.mlflow_runs, sizes.mlflow_edits
    r = mlflow_import.bench_mlflow_import(n, k, work, log)
    return [Row(f"MLflow import N={n:,} K={k} (local `mlflow server`, no added latency)", r["runsync_s"], r["loop_s"],
                "`MlflowClient.set_tag` loop", None, None, r["runsync_rss_mb"], "faster than the loop, same tags",
                {"same_end_state": r["same_end_state"], "runs_changed": r["runs_changed"],
                 "baseline_calls": r["loop_calls"]})]
