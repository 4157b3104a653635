"""Pacing by the service's own signal (issue 20 §2): a long import under a per-project quota meets a handful of
429s, not a storm, and every run is written; without a quota nothing waits.

The sandbox's quota sends W&B's `RateLimit-Remaining` / `RateLimit-Reset` on every answer and no `Retry-After`
(docs/sandbox.md). Which signal runsync can see depends on the client generation (runsync/backend/wandb/pacing.py):
the classic client hands back the headers, the sidecar only how long it held a request. Marker e2e: .ci/run runs
these on the classic clients too.
"""
from __future__ import annotations

import time

import pytest
import wandb
from fault_support import edit_csv
from helpers import invoke

import runsync
from runsync.backend.wandb.client import WandbBackend
from runsync.backend.wandb.pacing import PACING_ENV
from runsync.sandbox import seed_project

pytestmark = pytest.mark.e2e

RUNS = 240
CONCURRENCY = 8  # the default: this many requests can meet the first 429 of a window at once


def _edits(ids: list[str]) -> dict[tuple[str, str], str]:
    # Awkward values of our own: a formula-looking name, quotes, a non-BMP character, trailing spaces kept.
    return {**{(run_id, "name"): f"=paced \"{n}\" 🐢" for n, run_id in enumerate(ids)},
            **{(run_id, "notes"): f"  quota note {n} ; {'x' * (n % 7)}" for n, run_id in enumerate(ids)}}


def _import(sandbox, tmp_path, project: str, seed: int, **faults):
    """Export `e/<project>` (RUNS runs), edit every run's name and notes, import one run per request under
    `faults`; return (report, stats, backend, edits, seconds)."""
    ids = seed_project(sandbox.store, "e", project, runs=RUNS, seed=seed)
    sheet = tmp_path / f"{project}.csv"
    invoke("export", f"e/{project}", "-o", sheet)
    edits = _edits(ids)
    edit_csv(sheet, edits)
    backend = WandbBackend(timeout=60)
    plan = runsync.plan(sheet, backend=backend, include_running=True)
    assert len(plan.changes) == 2 * RUNS
    sandbox.set_faults(**faults)
    sandbox.reset_stats()
    started = time.monotonic()
    report = runsync.apply(plan, journal=tmp_path / f"{project}.jsonl", backend=backend, batch_size=1,
                           concurrency=CONCURRENCY)
    seconds = time.monotonic() - started
    stats = sandbox.stats()
    sandbox.set_faults(quota_per_s=None)
    return report, stats, backend, edits, seconds


def _assert_written(project: str, edits: dict[tuple[str, str], str]) -> None:
    """Every run holds its edits, read back with the plain client."""
    fresh = {r.id: r for r in wandb.Api(timeout=60).runs(f"e/{project}", per_page=1000)}
    for (run_id, column), value in edits.items():
        got = fresh[run_id].name if column == "name" else fresh[run_id].notes
        assert got == value, (run_id, column)


def test_a_long_import_under_a_quota_meets_a_handful_of_429s(sandbox, tmp_path, monkeypatch):
    monkeypatch.delenv(PACING_ENV, raising=False)
    # 25 requests per 1 s window: at full speed the import sends ~250 requests in well under a second.
    report, stats, backend, edits, seconds = _import(sandbox, tmp_path, "p", 11, quota_per_s=25, quota_window_s=1)
    assert report.ok and len(report.applied) == 2 * RUNS
    assert stats["mutations"] >= RUNS and stats["requests"] > 6 * 25  # the quota bit: many windows were needed
    pacer = backend.pacing
    if pacer.sees_headers:
        # With the headers in hand (classic client) the import slows before the quota runs out: at most a few
        # stragglers in flight; the pacer, not the client's retries, spaced the requests.
        assert pacer.signal == "headers" and stats["rate_limited"] <= 3, (stats, pacer.signal, seconds)
        assert pacer.waits > 0
    else:
        # The sidecar hides the headers (pacing.py): its own backoff alone, as before; nothing paced.
        assert pacer.signal is None and pacer.waits == 0, (stats, seconds)
    _assert_written("p", edits)


def test_a_quota_in_mutations_with_a_longer_window_is_met_too(sandbox, tmp_path, monkeypatch):
    monkeypatch.delenv(PACING_ENV, raising=False)
    # 40 upsertBuckets per 4 s window (reads are free): the client's retries alone wait 2, 4, 8 s.
    report, stats, backend, edits, seconds = _import(sandbox, tmp_path, "m", 12, quota_per_s=10, quota_window_s=4,
                                                     quota_unit="mutations")
    assert report.ok and len(report.applied) == 2 * RUNS
    # The sidecar retries each refused request at ~2 s, then ~4 s: in a 4 s window, twice.
    if backend.pacing.sees_headers:
        assert stats["rate_limited"] <= 3, (stats, backend.pacing.signal, seconds)
    else:
        assert backend.pacing.waits == 0, (stats, seconds)  # the sidecar's own backoff alone
    _assert_written("m", edits)


def test_without_a_quota_nothing_waits_and_no_request_is_added(sandbox, tmp_path, monkeypatch):
    monkeypatch.delenv(PACING_ENV, raising=False)
    paced, paced_stats, backend, edits, _ = _import(sandbox, tmp_path, "p", 13)
    assert paced.ok and backend.pacing.waits == 0 and backend.pacing.waited_seconds == 0
    assert paced_stats["rate_limited"] == 0
    _assert_written("p", edits)
    monkeypatch.setenv(PACING_ENV, "off")
    unpaced, unpaced_stats, _, _, _ = _import(sandbox, tmp_path, "q", 14)
    assert unpaced.ok
    assert paced_stats["requests"] == unpaced_stats["requests"]
    assert paced.write_requests == unpaced.write_requests == RUNS
