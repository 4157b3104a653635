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
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from benchmarks.export_rows import bench_export, bench_scaling
from benchmarks.import_rows import bench_import, bench_mlflow, bench_quota, bench_rate_limited
from benchmarks.render import render
from benchmarks.rows import FULL, SMOKE, Sizes
from benchmarks.sweeps import sweep_batch_size, sweep_concurrency, sweep_per_page


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
