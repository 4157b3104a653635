"""Pages sized by how the server answers (issue 20 §1), through the real wandb client against the sandbox.

A listing (and reads by id) starts at 250 runs a page and doubles while pages come back well inside the client's
deadline, up to a cap; a page that is slow, or not answered, makes the next one half the size. The sandbox charges
server time per run a page returns (`read_ms_per_run`) and answers HTTP 504 past its gateway deadline
(`gateway_timeout_s`): the page sizes asked are seen by a sandbox request hook (what the server got, not what
runsync says it sent), 504s by the sandbox's counters, the runs by the plain client or the sandbox store. Every
number here is written out, not computed from runsync's constants. Timing margins are wide (CI's fresh 2-core
machine, other work beside it): what a page costs outside the server (the sandbox's own Python, the client's
parsing, ~1-2 s on a loaded machine) is never what decides a size. Server time per page is seconds and the client's
deadline big enough that a page whose size must grow leaves >= 2 s of its budget, a page that must not be slow >= 3 s;
where a page must be slow, or over the gateway, its server time alone is.
"""
from __future__ import annotations

import csv
import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import wandb
from helpers import invoke

from runsync.backend.wandb.client import WandbBackend
from runsync.sandbox import Sandbox, seed_project


class Pages:
    """A sandbox request hook: the runs each `RunsyncRuns` request asked for, and how many ids its `$in` named."""

    def __init__(self, sb: Sandbox, switch_at: int | None = None, switch_at_size: int | None = None,
                 **faults: Any) -> None:
        self.asked: list[int] = []
        self.ids: list[int] = []  # ids per `{"name": {"$in": [...]}}` query
        self.sb, self.switch_at, self.switch_at_size, self.faults = sb, switch_at, switch_at_size, faults
        self.switched = False
        sb.request_hooks.append(self)

    def __call__(self, label: str, variables: dict[str, Any], is_mutation: bool) -> None:
        if label != "RunsyncRuns" or variables.get("perPage") == 1:  # 1: the filter check's probe
            return
        self.asked.append(int(variables["perPage"]))
        wanted = json.loads(variables.get("filters") or "{}").get("name", {}).get("$in")
        if wanted is not None:
            self.ids.append(len(wanted))
        # `switch_at`: the Nth request; `switch_at_size`: the first asking that many (how fast the earlier ones
        # were answered, so how many came before it, does not matter).
        due = (self.switch_at is not None and len(self.asked) == self.switch_at) or (
            self.switch_at_size is not None and int(variables["perPage"]) == self.switch_at_size)
        if due and not self.switched:
            self.switched = True
            self.sb.set_faults(**self.faults)  # before this request is served: it is the first one charged


def plain_ids(sb: Sandbox) -> list[str]:
    """The project's runs as the plain client lists them (read before any server time is charged)."""
    return [r.id for r in wandb.Api(timeout=60).runs("e/p", per_page=1000, lazy=False)]


def csv_ids(path: Path) -> list[str]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return [row["id"] for row in csv.DictReader(fh)]


def client_deadline(monkeypatch: pytest.MonkeyPatch, seconds: str) -> None:
    monkeypatch.setenv("WANDB_HTTP_TIMEOUT", seconds)


def test_without_server_time_pages_grow_to_1000_and_no_further(sandbox: Sandbox, tmp_path: Path) -> None:
    seed_project(sandbox.store, "e", "p", runs=3_333, seed=11)
    expected = plain_ids(sandbox)
    sandbox.set_faults(max_page_size=0)  # no page limit: the cap is runsync's own
    sandbox.reset_stats()
    pages = Pages(sandbox)
    out = tmp_path / "runs.csv"
    result = invoke("--debug", "export", "e/p", "-o", out)
    assert Counter(csv_ids(out)) == Counter(expected)
    assert pages.asked == [250, 500, 1000, 1000, 1000], pages.asked  # 250+500+1000+1000+583: 5 pages, not 14
    assert "page sizes: 250, 500, 1000" in result.stderr, result.stderr
    assert sandbox.stats()["faults"].get("504", 0) == 0


def test_with_server_time_pages_grow_only_while_well_inside_the_deadline(sandbox: Sandbox, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    seed_project(sandbox.store, "e", "p", runs=1_337, seed=12)
    expected = plain_ids(sandbox)
    client_deadline(monkeypatch, "18")  # grow under 4.5 s a page, halve over 9 s
    # 10 ms a run: 250 runs take 2.5 s (grow), 500 take 5 s (keep: never under 4.5 s, 4 s short of slow);
    # 1,000 would take 10 s, over the gateway.
    sandbox.set_faults(read_ms_per_run=10, gateway_timeout_s=8)
    sandbox.reset_stats()
    pages = Pages(sandbox)
    out = tmp_path / "runs.csv"
    result = invoke("--debug", "export", "e/p", "-o", out)
    assert Counter(csv_ids(out)) == Counter(expected)
    assert pages.asked == [250, 500, 500, 500], pages.asked  # 250+500+500+87: not today's 6 pages of 250
    assert sandbox.stats()["faults"].get("504", 0) == 0  # never a page over the deadline
    assert "page sizes: 250, 500" in result.stderr and "failed" not in result.stderr, result.stderr


def test_a_gateway_deadline_met_while_growing_is_kept_and_never_met_again(sandbox: Sandbox, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    seed_project(sandbox.store, "e", "p", runs=2_154, seed=13)
    expected = plain_ids(sandbox)
    client_deadline(monkeypatch, "16")  # grow under 4 s a page, halve over 8 s
    # 2 ms a run: 500 runs take 1 s (grow, 3 s to spare; 7 s short of slow), 1,000 take 2 s, over the gateway's
    # 1.95 s whatever else the request costs: HTTP 504.
    sandbox.set_faults(read_ms_per_run=2, gateway_timeout_s=1.95)
    sandbox.reset_stats()
    pages = Pages(sandbox)
    out = tmp_path / "runs.csv"
    result = invoke("--debug", "export", "e/p", "-o", out)
    assert Counter(csv_ids(out)) == Counter(expected)
    tries = pages.asked.count(1000)  # the client retries a 504 until its deadline
    # 250 + 500, then 1,000 (504) asked again at 500 from the same cursor, and 500 kept: 750 + 3×500 ≥ 2,154.
    assert tries >= 1 and pages.asked == [250, 500, *[1000] * tries, 500, 500, 500], pages.asked
    # Every 504 is a request for 1,000 runs (the client's retries of it), none once the size settled at 500.
    assert sandbox.stats()["faults"].get("504", 0) == pages.asked.count(1000) >= 1
    assert "page sizes: 250, 500, 1000 failed, 500" in result.stderr, result.stderr


def test_a_server_that_gets_slow_mid_listing_makes_the_pages_shrink(sandbox: Sandbox, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    seed_project(sandbox.store, "e", "p", runs=3_333, seed=14)
    expected = plain_ids(sandbox)
    client_deadline(monkeypatch, "14")  # grow under 3.5 s a page, halve over 7 s
    sandbox.set_faults(gateway_timeout_s=11)
    sandbox.reset_stats()
    # From the fourth page on, 8 ms a run: 1,000 runs take 8 s (slow), 500 take 4 s (kept: never under 3.5 s,
    # 3 s short of slow).
    pages = Pages(sandbox, switch_at=4, read_ms_per_run=8)
    out = tmp_path / "runs.csv"
    result = invoke("--debug", "export", "e/p", "-o", out)
    assert Counter(csv_ids(out)) == Counter(expected)
    assert pages.asked == [250, 500, 1000, 1000, 500, 500], pages.asked  # 1,750 fast, 1,000 slow, 583 in 500s
    assert sandbox.stats()["faults"].get("504", 0) == 0
    assert "page sizes: 250, 500, 1000, 1000 slow, 500" in result.stderr, result.stderr


def test_reads_by_id_grow_their_queries_to_1000_ids(sandbox: Sandbox, caplog: pytest.LogCaptureFixture) -> None:
    seed_project(sandbox.store, "e", "p", runs=5_555, seed=15)
    wanted = plain_ids(sandbox)[::-1]
    sandbox.set_faults(max_page_size=0)
    sandbox.reset_stats()
    pages = Pages(sandbox)
    with caplog.at_level(logging.DEBUG, logger="runsync"):
        found = WandbBackend().fetch_by_ids("e/p", [*wanted, "no-such-run-ü"])
    assert sorted(found) == sorted(wanted)
    assert pages.ids[:4] == [250, 250, 250, 250], pages.ids  # 4 queries at once before any has answered
    assert max(pages.ids) == 1000 and 1000 in pages.ids[4:], pages.ids
    assert sum(pages.ids) == len(wanted) + 1 and len(pages.ids) < 23 - 6, pages.ids  # today: 23 queries of 250
    assert pages.asked == pages.ids  # one page per query
    assert sandbox.stats()["faults"].get("504", 0) == 0
    assert any("ids per query: 250, 500" in r.getMessage() for r in caplog.records), caplog.text


def test_reads_by_id_grow_only_while_well_inside_the_deadline(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch,
                                                              ) -> None:
    seed_project(sandbox.store, "e", "p", runs=2_222, seed=16)
    wanted = plain_ids(sandbox)
    client_deadline(monkeypatch, "22")  # grow under 5.5 s a query, halve over 11 s
    # 12 ms a run: 250 ids take 3 s (grow, with four at once), 500 take 6 s (keep: never under 5.5 s, 5 s short
    # of slow), 1,000 would be over the gateway.
    sandbox.set_faults(read_ms_per_run=12, gateway_timeout_s=10)
    sandbox.reset_stats()
    pages = Pages(sandbox)
    found = WandbBackend().fetch_by_ids("e/p", wanted)
    assert sorted(found) == sorted(wanted)
    # 4×250 at once, then 500 (the last one the 222 left): 1,000 + 2×500 + 222, not 9 queries of 250.
    assert pages.ids[:4] == [250, 250, 250, 250] and sorted(pages.ids[4:]) == [222, 500, 500], pages.ids
    assert sandbox.stats()["faults"].get("504", 0) == 0


def test_reads_by_id_shrink_when_the_server_gets_slow(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    seed_project(sandbox.store, "e", "p", runs=7_777, seed=17)
    wanted = plain_ids(sandbox)
    client_deadline(monkeypatch, "16")  # grow under 4 s a query, halve over 8 s
    sandbox.set_faults(gateway_timeout_s=14)
    sandbox.reset_stats()
    # From the first query of 1,000 ids on, 10 ms a run: 1,000 ids take 10 s (slow), 500 take 5 s (kept: never
    # under 4 s). Before any slow one answers, at most 4×250 + 4×500 + 4×1,000 ids are asked: 777 are left.
    pages = Pages(sandbox, switch_at_size=1000, read_ms_per_run=10)
    found = WandbBackend().fetch_by_ids("e/p", wanted)
    assert sorted(found) == sorted(wanted)
    assert 1000 in pages.ids, pages.ids  # grown to 1,000 (by the queries answered before the switch)
    assert max(pages.ids[-2:]) <= 500, pages.ids  # the queries after the slow ones are halved
    assert sandbox.stats()["faults"].get("504", 0) == 0


def test_a_callers_page_size_is_kept(sandbox: Sandbox) -> None:
    seed_project(sandbox.store, "e", "p", runs=345, seed=18)
    pages = Pages(sandbox)
    got = [r.id for r in WandbBackend().iter_runs("e/p", per_page=60)]
    assert sorted(got) == sorted(plain_ids(sandbox))
    assert pages.asked == [60] * 6  # a size asked for is not grown


def test_a_read_by_ids_in_chunks_goes_on_at_the_size_the_last_chunk_reached(sandbox: Sandbox) -> None:
    """A plan reads its runs a chunk of ids at a time (planner/live_runs.py): the second chunk's queries start at
    the size the first chunk grew to, not at 250 again."""
    seed_project(sandbox.store, "e", "p", runs=4_444, seed=19)
    wanted = plain_ids(sandbox)
    backend = WandbBackend()
    pages = Pages(sandbox)
    first = backend.fetch_by_ids("e/p", wanted[:2_222])
    grown = max(pages.ids)
    assert grown >= 500, pages.ids  # grown within the first chunk
    pages.ids.clear()
    second = backend.fetch_by_ids("e/p", wanted[2_222:])
    assert sorted(first) + sorted(second) == sorted(wanted[:2_222]) + sorted(wanted[2_222:])
    assert pages.ids[0] >= grown // 2 and pages.ids[0] > 250, pages.ids  # not back to 250
