"""The export rows against bare paging, and the scaling table (export and plan at each N, peak RSS)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from benchmarks.harness import PATH, measure, runsync_cli, sandbox, seeded_db, task
from benchmarks.rows import (
    BARE_PER_PAGE,
    SLOW_GATEWAY_S,
    SLOW_READ_MS_PER_RUN,
    Row,
    Sizes,
    growing_ids_budget,
    growing_listing_budget,
    log,
)


# -- export ----------------------------------------------------------------------------------------
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
            alone = measure(task("read-sheet", sheet), sb.env(), work)  # its own process: the plan's peak is its own
            raw_s = _raw_paging(sb, n)
            bare = measure(task("bare-paging", BARE_PER_PAGE), sb.env(), work) if n == sizes.plan_runs else None
        log(f"scaling: pandas.read_excel N={n}")
        pd_default = measure(task("read-excel", sheet, "openpyxl"), sb.env(), work)
        pd_calamine = measure(task("read-excel", sheet, "calamine"), sb.env(), work)
        scale.append({"n": n, "export_s": exp.seconds, "plan_s": pl.seconds, "sandbox_s": raw_s,
                      "read_s": alone.result["read_s"],
                      "live_and_diff_s": pl.result["plan_s"] - alone.result["read_s"],
                      "export_rss_mb": exp.max_rss_mb, "plan_rss_mb": pl.max_rss_mb,
                      "pandas_openpyxl_s": pd_default.seconds, "pandas_calamine_s": pd_calamine.seconds})
        if n == sizes.plan_runs:
            cols = alone.result["columns"]
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
