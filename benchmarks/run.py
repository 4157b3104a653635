"""Run every benchmark and print markdown tables: `python -m benchmarks [--smoke | --full] [--json OUT]`.

Default sizes are the issue's: import N=2,000 / K=200 under 100 ms latency, export N=20,000,
plan and memory at 50,000 runs, scaling at 1k/5k/20k/50k. `--smoke` shrinks everything (no latency)
for CI; `--full` adds 100,000 runs to the scaling (issue 20 §4: W&B's advice is to keep a project under that)
and the sweeps that chose DEFAULT_PER_PAGE, DEFAULT_CONCURRENCY and DEFAULT_BATCH_SIZE.
Times are wall times of fresh processes (interpreter and wandb start included); requests are the
sandbox's own count. Nothing here asserts on time.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    PATH,
    measure,
    runsync_cli,
    sandbox,
    scratch_copy,
    seeded_db,
    task,
)

# Requests a client makes besides its real work (Viewer at connect, and slack for the sidecar).
REQUEST_SLACK = 5
# The request budgets are written here, not computed from runsync's own constants, so that a change to
# those (a smaller page, smaller batches) shows up as a budget overrun: the import's (issue 13) counts one request
# per 250 runs read and one per 25 runs written; exports and plans count pages that grow (GROWING_PAGES below).
RUNS_PER_REQUEST = 250
RUNS_PER_WRITE = 25
# An import under rate limiting: W&B answers 429 past its limit (RateLimit-* headers, Retry-After maybe not).
RATE_LIMIT = 20.0  # requests per second
# The bare paging an export is measured against (issue 20 §1): the client's listing at 1,000 runs a page.
BARE_PER_PAGE = 1000
# Pages that grow (issue 20 §1): a listing asks for 250, 500, then 1,000 runs a page while the server answers fast;
# reads by id send 4 queries of 250 ids at once, then 500 (the 4 sent before one of 500 answered), then 1,000.
GROWING_PAGES = (250, 500)
GROWING_IDS = (250, 250, 250, 250, 500, 500, 500, 500)
GROWN_PAGE = 1000
# The slow-page mode: server time per run a page returns, and a gateway deadline twice a grown page's time.
SLOW_READ_MS_PER_RUN = 2.0
SLOW_GATEWAY_S = 4.0
# A per-project quota of writes the import of every run would exceed at full speed: it needs this many 1 s windows.
QUOTA_WINDOWS = 8
QUOTA_BATCH = 5  # small batches: many requests, so the pacer has windows to learn from


def import_budget(n: int, k: int) -> int:
    """Issue 13: the writes in batches, the plan's listing, and 5 more (Viewer, the re-read before writing, the
    config-merge probe's read-back, the read-back of the written runs, the probe's own write)."""
    return math.ceil(k / RUNS_PER_WRITE) + math.ceil(n / RUNS_PER_REQUEST) + 5


def one_per_request_budget(n: int, k: int) -> int:
    return k + math.ceil(n / RUNS_PER_REQUEST) + math.ceil(k / RUNS_PER_REQUEST) * 2 + 2 + 1 + REQUEST_SLACK


def _pages(n: int, first: tuple[int, ...]) -> int:
    """Requests for n runs asked in pages of `first`, then of GROWN_PAGE."""
    for count, size in enumerate(first, start=1):
        n -= size
        if n <= 0:
            return count
    return len(first) + math.ceil(n / GROWN_PAGE)


def growing_listing_budget(n: int) -> int:
    return _pages(n, GROWING_PAGES) + 1 + REQUEST_SLACK


def growing_ids_budget(n: int) -> int:
    return _pages(n, GROWING_IDS) + 1 + REQUEST_SLACK


@dataclass
class Sizes:
    import_runs: int
    import_edits: int
    export_runs: int
    plan_runs: int
    scaling: tuple[int, ...]
    latency_ms: float
    sweeps: bool
    mlflow_runs: int = 2000  # the MLflow import row (a local mlflow server, no added latency)
    mlflow_edits: int = 200


FULL = Sizes(2000, 200, 20000, 50000, (1000, 5000, 20000, 50000), 100.0, False)
SMOKE = Sizes(200, 20, 300, 300, (100, 300), 0.0, False, mlflow_runs=30, mlflow_edits=6)


@dataclass
class Row:
    name: str
    runsync_s: float
    baseline_s: float | None = None
    baseline: str = ""
    requests: int | None = None
    budget: int | None = None
    rss_mb: float | None = None
    goal: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        return None if not self.baseline_s else self.runsync_s / self.baseline_s


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- 1. import --------------------------------------------------------------------------------------
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


# -- 2. export --------------------------------------------------------------------------------------
def bench_export(sizes: Sizes, work: Path) -> list[Row]:
    n = sizes.export_runs
    budget = growing_listing_budget(n)
    bare_name = f"`Api().runs(per_page={BARE_PER_PAGE}, lazy=False)`"
    rows = []
    with sandbox(seeded_db(n), sizes.latency_ms, work) as sb:
        sb.reset_stats()
        log(f"export: bare wandb paging N={n}")
        bare = measure(task("bare-paging", BARE_PER_PAGE), sb.env(), work)
        bare_requests = sb.stats()["requests"]
        for suffix in ("xlsx", "csv"):
            sb.reset_stats()
            log(f"export: runsync export -o .{suffix}")
            m = measure(runsync_cli("export", PATH, "-o", work / f"export.{suffix}"), sb.env(), work)
            rows.append(Row(f"export N={n:,} → .{suffix} ({sizes.latency_ms:g} ms latency)", m.seconds, bare.seconds,
                            bare_name, sb.stats()["requests"], budget, m.max_rss_mb, "≤ 1.2× bare paging",
                            {"baseline_requests": bare_requests}))
        # Slow pages: server time per run returned, under a gateway deadline (HTTP 504 past it). Pages grow only
        # while answered well inside the client's deadline, so none should outlast the gateway's.
        slow = {"read_ms_per_run": SLOW_READ_MS_PER_RUN, "gateway_timeout_s": SLOW_GATEWAY_S}
        sb._call("POST", "/_sandbox/faults", slow)
        sb.reset_stats()
        log(f"export: bare wandb paging N={n}, slow pages")
        bare_slow = measure(task("bare-paging", BARE_PER_PAGE), sb.env(), work)
        bare_stats = sb.stats()
        sb.reset_stats()
        log("export: runsync export -o .csv, slow pages")
        m = measure(runsync_cli("export", PATH, "-o", work / "export-slow.csv"), sb.env(), work)
        stats = sb.stats()
        over = stats["faults"].get("504", 0)
        rows.append(Row(f"export N={n:,} → .csv, {SLOW_READ_MS_PER_RUN:g} ms server time a run, gateway deadline "
                        f"{SLOW_GATEWAY_S:g} s ({sizes.latency_ms:g} ms latency)", m.seconds, bare_slow.seconds,
                        bare_name, stats["requests"], budget, m.max_rss_mb,
                        f"pages over the deadline: 0 (measured {over})",
                        {"baseline_requests": bare_stats["requests"], "504": over,
                         "baseline_504": bare_stats["faults"].get("504", 0)}))
    return rows


# -- 3./4./5. plan, memory, scaling -------------------------------------------------------------------
def bench_scaling(sizes: Sizes, work: Path) -> tuple[list[Row], list[dict[str, Any]]]:
    """At each N: export (29 columns: tag columns and two summaries) and plan, at no latency."""
    rows: list[Row] = []
    scale: list[dict[str, Any]] = []
    for n in sizes.scaling:
        sheet = work / f"scale-{n}.xlsx"
        with sandbox(seeded_db(n), 0, work) as sb:
            log(f"scaling: export N={n}")
            sb.reset_stats()
            exp = measure(runsync_cli("export", PATH, "-o", sheet, "--summary", "acc,loss", "--tag-columns"),
                          sb.env(), work)
            exp_requests = sb.stats()["requests"]
            log(f"scaling: plan N={n}")
            sb.reset_stats()
            pl = measure(task("plan", sheet), sb.env(), work)
            plan_requests = sb.stats()["requests"]
            raw_s = _raw_paging(sb, n)
            bare = measure(task("bare-paging", BARE_PER_PAGE), sb.env(), work) if n == sizes.plan_runs else None
        log(f"scaling: pandas.read_excel N={n}")
        pd_default = measure(task("read-excel", sheet, "openpyxl"), sb.env(), work)
        pd_calamine = measure(task("read-excel", sheet, "calamine"), sb.env(), work)
        scale.append({"n": n, "export_s": exp.seconds, "plan_s": pl.seconds, "sandbox_s": raw_s,
                      "read_s": pl.result["read_s"], "live_and_diff_s": pl.result["plan_s"] - pl.result["read_s"],
                      "export_rss_mb": exp.max_rss_mb, "plan_rss_mb": pl.max_rss_mb,
                      "pandas_openpyxl_s": pd_default.seconds, "pandas_calamine_s": pd_calamine.seconds})
        if n == sizes.plan_runs:
            cols = pl.result["columns"]
            budget = growing_ids_budget(n)
            rows.append(Row(f"plan N={n:,} × {cols} columns vs `read_excel` (openpyxl)", pl.seconds,
                            pd_default.seconds, "`pandas.read_excel` (pandas' default engine, openpyxl)",
                            plan_requests, budget, pl.max_rss_mb, "≤ 1.5×", {"changes": pl.result["changes"]}))
            assert bare is not None
            rows.append(Row(f"plan N={n:,} × {cols} columns vs `read_excel` (calamine) + bare paging", pl.seconds,
                            pd_calamine.seconds + bare.seconds,
                            f"`pandas.read_excel(engine=\"calamine\")` {pd_calamine.seconds:.1f} s + "
                            f"`Api().runs(per_page={BARE_PER_PAGE}, lazy=False)` {bare.seconds:.1f} s =",
                            plan_requests, budget, pl.max_rss_mb, "≤ 1.5×"))
            rows.append(Row(f"export N={n:,} × {cols} columns → .xlsx (peak RSS)", exp.seconds, None, "",
                            exp_requests, growing_listing_budget(n), exp.max_rss_mb,
                            "RSS ≤ 1 GiB"))
    return rows, scale


def _raw_paging(sb: Any, n: int) -> float:
    """Page through every run with runsync's query over plain HTTP: the sandbox's share of the time."""
    from runsync.backend.wandb.queries import RUNS_QUERY

    start, cursor = time.perf_counter(), None
    while True:
        data = sb.graphql(RUNS_QUERY, {"project": "p", "entity": "e", "cursor": cursor, "perPage": BARE_PER_PAGE,
                                        "order": "+created_at", "filters": "{}", "withCount": False,
                                        "withSummary": False})
        runs = data["data"]["project"]["runs"]
        if not runs["pageInfo"]["hasNextPage"] or not runs["edges"]:
            return time.perf_counter() - start
        cursor = runs["edges"][-1]["cursor"]


# -- sweeps (--full): how the defaults were chosen -----------------------------------------------------
def sweep_per_page(sizes: Sizes, work: Path) -> list[dict[str, Any]]:
    out = []
    with sandbox(seeded_db(sizes.export_runs), sizes.latency_ms, work) as sb:
        sb._call("POST", "/_sandbox/faults", {"max_page_size": None})  # the sweep measures pages past its limit
        for per_page in ("250", "500", "1000", "2000", "5000", "grown"):  # grown: runsync's own (250, 500, 1000)
            log(f"sweep: per_page={per_page}")
            sb.reset_stats()
            m = measure(task("fetch", per_page), sb.env(), work)
            out.append({"per_page": per_page, "fetch_s": m.result["fetch_s"], "requests": sb.stats()["requests"],
                        "rss_mb": m.max_rss_mb})
    return out


def sweep_concurrency(sizes: Sizes, work: Path) -> list[dict[str, Any]]:
    edited = work / "import-edited.xlsx"  # from bench_import
    out = []
    for concurrency in (1, 4, 8, 16, 32):
        db = scratch_copy(seeded_db(sizes.import_runs), work, f"conc-{concurrency}")
        with sandbox(db, sizes.latency_ms, work) as sb:
            log(f"sweep: concurrency={concurrency}")
            # A fresh copy of the sheet each time: earlier imports' journals beside it would count as its base.
            sheet = work / f"conc-{concurrency}" / "import-edited.xlsx"  # its own folder (see _import_variant)
            sheet.parent.mkdir(exist_ok=True)
            shutil.copyfile(edited, sheet)
            m = measure(task("apply", sheet, concurrency, work / f"conc-{concurrency}.jsonl", 1), sb.env(), work)
            out.append({"concurrency": concurrency, "apply_s": m.result["apply_s"], "applied": m.result["applied"],
                        "failed": m.result["failed"]})
    return out


def sweep_batch_size(sizes: Sizes, work: Path) -> list[dict[str, Any]]:
    """Apply time by runs per write request, with no server time per write and with 30 ms of it (a GraphQL
    server runs a request's mutations in turn: batches save round trips, not the server's work)."""
    edited = work / "import-edited.xlsx"  # from bench_import
    out = []
    for write_ms in (0, 30):
        for batch in (1, 5, 10, 25, 50, 100):
            db = scratch_copy(seeded_db(sizes.import_runs), work, f"batch-{batch}-{write_ms}")
            with sandbox(db, sizes.latency_ms, work) as sb:
                sb._call("POST", "/_sandbox/faults", {"write_ms": write_ms})
                log(f"sweep: batch_size={batch} write_ms={write_ms}")
                sheet = work / f"batch-{batch}-{write_ms}" / "import-edited.xlsx"  # its own folder
                sheet.parent.mkdir(exist_ok=True)
                shutil.copyfile(edited, sheet)
                m = measure(task("apply", sheet, 8, work / f"batch-{batch}-{write_ms}.jsonl", batch), sb.env(),
                            work)
                out.append({"batch_size": batch, "write_ms": write_ms, "apply_s": m.result["apply_s"],
                            "write_requests": m.result["write_requests"], "applied": m.result["applied"],
                            "failed": m.result["failed"]})
    return out


# -- output -------------------------------------------------------------------------------------------
def _fmt(value: float | None, unit: str = "", digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}{unit}"


def _per_page_label(per_page: str) -> str:
    return "grown: 250, 500, then 1,000 (runsync's default)" if per_page == "grown" else f"{int(per_page):,}"


def render(rows: list[Row], scale: list[dict[str, Any]], sweeps: dict[str, list[dict[str, Any]]]) -> str:
    lines = ["| benchmark | runsync | baseline | runsync ÷ baseline | requests (budget) | peak RSS | goal |",
             "|---|---:|---|---:|---:|---:|---|"]
    for r in rows:
        base = f"{r.baseline} {_fmt(r.baseline_s, ' s')}" if r.baseline_s is not None else "–"
        if "baseline_requests" in r.extra:
            base += f", {r.extra['baseline_requests']:,} req"
        ratio = "–" if r.ratio is None else (f"{r.ratio:.2f}× ({1 / r.ratio:.1f}× faster)" if r.ratio < 1
                                             else f"{r.ratio:.2f}×")
        req = "–" if r.requests is None else f"{r.requests:,} ({r.budget:,})"
        lines.append(f"| {r.name} | {_fmt(r.runsync_s, ' s')} | {base} | {ratio} | {req} | "
                     f"{_fmt(r.rss_mb, ' MiB', 0)} | {r.goal} |")
    lines += ["", "Scaling (no latency; µs per run; 29-column sheets):", "",
              "| N | export | plan | plan: read sheet (alone) | plan: W&B + diff beyond the read | "
              "sandbox alone (raw paging) | "
              "`read_excel` openpyxl | `read_excel` calamine | RSS export / plan |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in scale:
        def per(key: str, s: dict = s) -> str:
            return f"{s[key] / s['n'] * 1e6:,.0f}"
        lines.append(f"| {s['n']:,} | {per('export_s')} | {per('plan_s')} | {per('read_s')} | "
                     f"{per('live_and_diff_s')} | {per('sandbox_s')} | {per('pandas_openpyxl_s')} | "
                     f"{per('pandas_calamine_s')} | {s['export_rss_mb']:.0f} / {s['plan_rss_mb']:.0f} MiB |")
    if sweeps.get("per_page"):
        lines += ["", "Page size (runsync's listing alone, 100 ms latency):", "", "| per_page | fetch | requests |",
                  "|---:|---:|---:|"]
        lines += [f"| {_per_page_label(s['per_page'])} | {s['fetch_s']:.1f} s | {s['requests']} |"
                  for s in sweeps["per_page"]]
    if sweeps.get("batch_size"):
        lines += ["", "Runs per write request (apply only, K runs, concurrency 8, 100 ms latency; server time per "
                  "write 0 or 30 ms):", "", "| batch size | apply (0 ms/write) | apply (30 ms/write) | write requests |",
                  "|---:|---:|---:|---:|"]
        by = {(s["batch_size"], s["write_ms"]): s for s in sweeps["batch_size"]}
        for batch in sorted({s["batch_size"] for s in sweeps["batch_size"]}):
            fast, slow = by.get((batch, 0)), by.get((batch, 30))
            lines.append(f"| {batch} | {_fmt(fast and fast['apply_s'], ' s')} | {_fmt(slow and slow['apply_s'], ' s')}"
                         f" | {(fast or slow or {}).get('write_requests', '–')} |")
    if sweeps.get("concurrency"):
        lines += ["", "Write concurrency (apply only, K writes one run per request, 100 ms latency):", "",
                  "| concurrency | apply | fields applied | failed |", "|---:|---:|---:|---:|"]
        lines += [f"| {s['concurrency']} | {s['apply_s']:.1f} s | {s['applied']} | {s['failed']} |"
                  for s in sweeps["concurrency"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--smoke", action="store_true", help="tiny sizes, no latency (CI)")
    size.add_argument("--full", action="store_true", help="the issue's sizes plus the sweeps behind the defaults")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    sizes = SMOKE if args.smoke else FULL
    if args.full:
        sizes = Sizes(**{**asdict(FULL), "scaling": (*FULL.scaling, 100_000), "sweeps": True})
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="runsync-bench-") as tmp:
        work = Path(tmp)
        rows = bench_import(sizes, work)
        rows += bench_rate_limited(sizes, work)
        rows += bench_export(sizes, work)
        scaling_rows, scale = bench_scaling(sizes, work)
        rows += scaling_rows
        rows += bench_quota(sizes, work)
        rows += bench_mlflow(sizes, work)
        sweeps = {}
        if sizes.sweeps:
            sweeps = {"per_page": sweep_per_page(sizes, work), "concurrency": sweep_concurrency(sizes, work),
                      "batch_size": sweep_batch_size(sizes, work)}
    print(render(rows, scale, sweeps))
    print(f"\n(total {time.perf_counter() - started:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps({"rows": [{**asdict(r), "ratio": r.ratio} for r in rows], "scaling": scale,
                                         "sweeps": sweeps}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
