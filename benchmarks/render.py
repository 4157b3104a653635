"""The markdown tables `python -m benchmarks` prints (docs/performance.md holds them)."""
from __future__ import annotations

from typing import Any

from benchmarks.rows import Row


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
