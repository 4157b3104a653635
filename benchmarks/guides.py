"""Cost of the XLSX guides (drop-downs, read-only input messages): `python -m benchmarks.guides [--runs N]`.

Exports the same N runs (29 columns, as the scaling table) with guides on and off (RUNSYNC_XLSX_GUIDES=0),
alternating so that drift on the machine hits both alike; prints the medians and the overhead as markdown.
Each export is a fresh `runsync export` process against the sandbox in its own process, no latency. Besides
wall time, the export process's own CPU time (user + system): the guides add CPU work, and CPU time is not
inflated by other processes competing for the machine's two cores.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.harness import PATH, runsync_cli, sandbox, seeded_db

FLAGS = ("--summary", "acc,loss", "--tag-columns", "--overwrite")


def export(out: Path, env: dict[str, str], cwd: Path) -> tuple[float, float, float]:
    """One `runsync export`: (wall s, CPU s of the process, peak RSS MiB)."""
    start = time.perf_counter()
    proc = subprocess.Popen(runsync_cli("export", PATH, "-o", out, *FLAGS), env=env, cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"export failed: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
    if proc.stderr:
        proc.stderr.close()
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    wall: dict[str, list[float]] = {"on": [], "off": []}
    cpu: dict[str, list[float]] = {"on": [], "off": []}
    rss: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="runsync-bench-guides-") as tmp:
        work = Path(tmp)
        with sandbox(seeded_db(args.runs), 0, work) as sb:
            export(work / "warm.xlsx", sb.env(), work)  # warm the sandbox's and the OS's caches
            for i in range(args.repeat):
                for mode in (("on", "off") if i % 2 == 0 else ("off", "on")):
                    env = sb.env()
                    env["RUNSYNC_XLSX_GUIDES"] = "1" if mode == "on" else "0"
                    w, c, r = export(work / f"{mode}.xlsx", env, work)
                    wall[mode].append(w)
                    cpu[mode].append(c)
                    rss[mode] = max(rss.get(mode, 0.0), r)
                    print(f"guides {mode}: {w:.1f} s wall, {c:.1f} s CPU", file=sys.stderr, flush=True)
    med = {k: (statistics.median(wall[k]), statistics.median(cpu[k])) for k in wall}
    print(f"| export N={args.runs:,} × 29 columns → .xlsx (median of {args.repeat}) | wall | CPU (export process) "
          "| peak RSS |")
    print("|---|---:|---:|---:|")
    print(f"| without guides (`RUNSYNC_XLSX_GUIDES=0`) | {med['off'][0]:.1f} s | {med['off'][1]:.1f} s | "
          f"{rss['off']:.0f} MiB |")
    print(f"| with guides (default) | {med['on'][0]:.1f} s | {med['on'][1]:.1f} s | {rss['on']:.0f} MiB |")
    print(f"| overhead (goal ≤ +10%) | {100 * (med['on'][0] / med['off'][0] - 1):+.1f}% | "
          f"{100 * (med['on'][1] / med['off'][1] - 1):+.1f}% | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
