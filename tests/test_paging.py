"""Listing runs when the service's pages fail, overlap or skip (issue 11 §3, §4), through the real wandb client.

The sandbox answers HTTP 504 to a page over its `max_page_size` (as a gateway whose deadline a big page
outlasted) and, with `overlap_rate`, starts follow-up pages a few runs early or late (a live table re-sorted
while paging). The oracle is the sandbox store's own run list. The client's deadline is kept short
(3 s: WANDB_HTTP_TIMEOUT or the backend's timeout): each failing page costs one deadline. Request budgets are
numbers written here, not computed from runsync's constants.
"""
from __future__ import annotations

import csv
import time
from collections import Counter
from pathlib import Path

import pytest
from helpers import invoke

import runsync
from runsync.backend.wandb.client import WandbBackend
from runsync.errors import BackendError
from runsync.sandbox import Sandbox, seed_project


def store_ids(sb: Sandbox, entity: str = "e", project: str = "p") -> list[str]:
    return [r.name for r in sb.store.snapshot(entity, project)[1]]


def csv_ids(path: Path) -> list[str]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return [row["id"] for row in csv.DictReader(fh)]


@pytest.fixture
def short_client(monkeypatch: pytest.MonkeyPatch) -> None:
    # The client's own deadline per request, retries included; a listing gives up after four of them without
    # an answered page (12 s): room for a loaded machine, where one failing request can take longer.
    monkeypatch.setenv("WANDB_HTTP_TIMEOUT", "3")


def test_export_under_a_page_limit_below_the_start_size_has_every_run_once(sandbox: Sandbox, tmp_path: Path,
                                                                           short_client: None) -> None:
    seed_project(sandbox.store, "e", "p", runs=600, seed=4)
    sandbox.set_faults(max_page_size=100)
    sandbox.reset_stats()
    out = tmp_path / "runs.csv"
    result = invoke("--debug", "export", "e/p", "-o", out)
    ids = csv_ids(out)
    assert Counter(ids) == Counter(store_ids(sandbox))  # every run, exactly once
    # The sizes asked, in order: 250 and 125 get HTTP 504, 62 answers and is kept for the rest.
    assert "page sizes: 250 failed, 125 failed, 62" in result.stderr, result.stderr
    stats = sandbox.stats()
    assert stats["faults"].get("504", 0) >= 2
    # 2 failed sizes (the client may retry each once within its deadline) + 10 pages of 62.
    assert stats["operations"]["RunsyncRuns"] <= 16, stats


def test_the_size_that_answered_is_kept_for_later_listings(sandbox: Sandbox, short_client: None) -> None:
    seed_project(sandbox.store, "e", "p", runs=300, seed=4)
    sandbox.set_faults(max_page_size=100)
    backend = WandbBackend()
    assert len(list(backend.iter_runs("e/p"))) == 300
    sandbox.reset_stats()
    found = backend.fetch_by_ids("e/p", store_ids(sandbox))
    assert sorted(found) == sorted(store_ids(sandbox))
    stats = sandbox.stats()
    assert stats["faults"].get("504", 0) == 0  # starts at 62 runs per page: no page over the limit again
    assert stats["operations"]["RunsyncRuns"] <= 6, stats  # 2 chunks of ids (250 + 50), pages of 62


def test_a_service_answering_504_to_every_page_fails_in_seconds_with_one_line(sandbox: Sandbox, tmp_path: Path,
                                                                             short_client: None) -> None:
    seed_project(sandbox.store, "e", "p", runs=60, seed=4)
    sandbox.set_faults(max_page_size=1)
    out = tmp_path / "runs.csv"
    started = time.monotonic()
    result = invoke("export", "e/p", "-o", out, exit_code=1)
    elapsed = time.monotonic() - started
    assert elapsed < 25, elapsed  # four client deadlines (12 s) and one last try at most, not minutes
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert sandbox.url in lines[0] and "did not answer in time" in lines[0]
    assert "no page answered" in lines[0] and "250 failed, 125 failed" in lines[0]
    assert "Traceback" not in result.stderr and not out.exists()


def test_the_backend_timeout_bounds_a_failing_listing(seeded_sandbox: Sandbox) -> None:
    backend = WandbBackend(timeout=1, page_deadline=30)
    backend.fetch_by_ids("e/p", ["x"])  # logged in before the server starts failing
    seeded_sandbox.set_faults(error_rate=1.0)  # HTTP 500 on every request: the client retries to its deadline
    started = time.monotonic()
    with pytest.raises(BackendError) as caught:
        list(backend.iter_runs("e/p"))
    assert time.monotonic() - started < 8  # min(30 s, 4 deadlines of 1 s) + one last attempt
    assert "\n" not in caught.value.message and "listing runs of e/p" in caught.value.message


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_overlapping_pages_export_each_run_once(sandbox: Sandbox, tmp_path: Path, seed: int) -> None:
    seed_project(sandbox.store, "e", "p", runs=400, seed=4)
    sandbox.set_faults(max_page_size=40, overlap_rate=0.5, seed=seed)
    out = tmp_path / "runs.csv"
    backend = WandbBackend()
    backend._page_cap = 40  # start under the limit: this test is about overlaps, not 504s
    result = runsync.export("e/p", out, backend=backend)
    ids = csv_ids(out)
    assert len(ids) == len(set(ids))  # a sheet never holds a run twice
    assert set(ids) <= set(store_ids(sandbox))
    if len(ids) < 400:  # what a second listing could not recover is said, with the numbers
        assert any("W&B counts 400" in w and f"gave {len(ids)}" in w for w in result.warnings), result.warnings
    else:
        assert not result.warnings


def test_skipped_runs_are_recovered_by_listing_again(sandbox: Sandbox) -> None:
    seed_project(sandbox.store, "e", "p", runs=400, seed=4)
    sandbox.set_faults(overlap_rate=0.5, seed=2)
    backend = WandbBackend()
    warnings: list[str] = []
    sandbox.reset_stats()
    ids = [r.id for r in backend.iter_runs("e/p", per_page=40, on_warning=warnings.append)]
    assert len(ids) == len(set(ids))
    assert sorted(ids) == sorted(store_ids(sandbox)) and not warnings
    # 10 pages of 40 (some runs skipped), then the reverse listing until the missing ones came.
    assert 11 <= sandbox.stats()["operations"]["RunsyncRuns"] <= 22


def test_runs_still_missing_after_listing_again_are_a_warning_with_the_numbers(sandbox: Sandbox) -> None:
    seed_project(sandbox.store, "e", "p", runs=400, seed=4)
    sandbox.set_faults(overlap_rate=1.0, seed=7)  # every follow-up page repeats or skips, in both orders
    warnings: list[str] = []
    ids = [r.id for r in WandbBackend().iter_runs("e/p", per_page=20, on_warning=warnings.append)]
    assert len(ids) == len(set(ids)) and set(ids) <= set(store_ids(sandbox))
    assert len(ids) < 400  # seed 7: some runs skipped in both orders (the draws are deterministic)
    assert len(warnings) == 1 and "W&B counts 400 matching runs" in warnings[0], warnings
    assert f"gave {len(ids)}" in warnings[0]


def test_fetch_by_ids_under_overlapping_pages_returns_every_id(sandbox: Sandbox) -> None:
    seed_project(sandbox.store, "e", "p", runs=300, seed=4)
    wanted = store_ids(sandbox)
    sandbox.set_faults(overlap_rate=1.0, seed=3)
    sandbox.reset_stats()
    warnings: list[str] = []
    found = WandbBackend().fetch_by_ids("e/p", [*wanted, "no-such-run"], per_page=25, on_warning=warnings.append)
    assert sorted(found) == sorted(wanted) and not warnings
    # 2 chunks of ids (250 + 51): 10 + 3 pages of 25, then the missing ids of each chunk once more.
    assert sandbox.stats()["operations"]["RunsyncRuns"] <= 30


def test_plan_rereads_under_overlapping_pages_see_every_run(sandbox: Sandbox, tmp_path: Path) -> None:
    seed_project(sandbox.store, "e", "p", runs=300, seed=4)
    out = tmp_path / "runs.csv"
    invoke("export", "e/p", "-o", out)
    sandbox.set_faults(overlap_rate=1.0, seed=5)
    backend = WandbBackend()
    backend._page_cap = 25  # several pages per chunk of ids, so pages can overlap
    plan = runsync.plan(out, backend=backend)
    assert not any("deleted in W&B" in w for w in plan.warnings), plan.warnings
    assert plan.empty
