"""The sweeps (--full) behind the defaults: runs per page, write concurrency, runs per write request."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from benchmarks.harness import measure, sandbox, scratch_copy, seeded_db, task
from benchmarks.rows import Sizes, log


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
