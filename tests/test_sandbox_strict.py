"""The sandbox is as strict as the service (issue 11 §8): a page-size limit (HTTP 504 beyond it), pages that
repeat or skip runs, 429s with RateLimit-* and no Retry-After by default, and 64 concurrent clients served.

Raw HTTP against the sandbox (no wandb client) where the wire itself is the point.
"""
from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import wandb

from runsync.sandbox import Sandbox, seed_project, start

RUNS = """query Page($project: String!, $entity: String!, $cursor: String, $perPage: Int) {
  project(name: $project, entityName: $entity) {
    runs(after: $cursor, first: $perPage, order: "+created_at") {
      edges { node { name } cursor } pageInfo { endCursor hasNextPage } } } }"""


def post(sb: Sandbox, query: str, variables: dict[str, Any] | None = None) -> tuple[int, Any, dict[str, str]]:
    conn = http.client.HTTPConnection(sb.host, sb.port, timeout=30)
    try:
        body = json.dumps({"query": query, "variables": variables or {}, "operationName": ""})
        token = base64.b64encode(f"api:{sb.api_key}".encode()).decode()
        conn.request("POST", "/graphql", body=body,
                     headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null"), dict(resp.getheaders())
    finally:
        conn.close()


def page(sb: Sandbox, size: int, cursor: str | None = None) -> tuple[int, Any]:
    status, body, _ = post(sb, RUNS, {"project": "p", "entity": "e", "perPage": size, "cursor": cursor})
    return status, body


def test_a_page_over_the_limit_is_504_and_the_limit_is_a_switch(seeded_sandbox: Sandbox) -> None:
    assert seeded_sandbox.faults.settings()["max_page_size"] == 1000  # on by default
    seeded_sandbox.set_faults(max_page_size=10)
    assert page(seeded_sandbox, 10)[0] == 200
    status, body = page(seeded_sandbox, 11)
    assert status == 504 and "over the limit of 10" in body["errors"][0]["message"]
    assert seeded_sandbox.stats()["faults"]["504"] == 1
    seeded_sandbox.set_faults(max_page_size=0)  # off
    status, body = page(seeded_sandbox, 5000)
    assert status == 200 and len(body["data"]["project"]["runs"]["edges"]) == 30


def test_the_wandb_client_gets_504s_as_a_failure_after_its_deadline(seeded_sandbox: Sandbox) -> None:
    seeded_sandbox.set_faults(max_page_size=5)
    api = wandb.Api(timeout=2)
    assert len(list(api.runs("e/p", per_page=5))) == 30
    with pytest.raises(Exception, match="did not respond in time|busy"):
        list(wandb.Api(timeout=2).runs("e/p", order="-created_at", per_page=6))


def _walk(sb: Sandbox, size: int) -> list[str]:
    names: list[str] = []
    cursor = None
    while True:
        status, body = page(sb, size, cursor)
        assert status == 200
        runs = body["data"]["project"]["runs"]
        names += [e["node"]["name"] for e in runs["edges"]]
        if not runs["pageInfo"]["hasNextPage"] or not runs["edges"]:
            return names
        cursor = runs["edges"][-1]["cursor"]


def test_overlapping_pages_repeat_and_skip_runs_deterministically(seeded_sandbox: Sandbox) -> None:
    stable = _walk(seeded_sandbox, 4)
    assert len(stable) == len(set(stable)) == 30  # off by default: stable paging
    seeded_sandbox.set_faults(overlap_rate=1.0, seed=11)
    first = _walk(seeded_sandbox, 4)
    seeded_sandbox.set_faults(seed=11)
    assert _walk(seeded_sandbox, 4) == first  # seeded
    assert len(first) != len(set(first)) or set(first) != set(stable)  # repeats or skips (here: both)
    assert len(first) != len(set(first)) and set(first) < set(stable)
    assert first[:4] == stable[:4]  # the first page is never moved


def test_429_carries_ratelimit_headers_and_retry_after_only_with_the_switch(sandbox: Sandbox) -> None:
    sandbox.set_faults(rate_limit=1)
    answers = [post(sandbox, "{ viewer { id } }") for _ in range(3)]
    limited = [headers for status, _, headers in answers if status == 429]
    assert limited
    for headers in limited:
        assert "Retry-After" not in headers
        assert headers["RateLimit-Limit"] == "1" and headers["RateLimit-Remaining"] == "0"
        assert int(headers["RateLimit-Reset"]) >= 1
    sandbox.set_faults(rate_limit=1, retry_after=True)
    answers = [post(sandbox, "{ viewer { id } }") for _ in range(3)]
    assert all(int(h["Retry-After"]) >= 1 for status, _, h in answers if status == 429)
    assert any(status == 429 for status, _, _ in answers)


def test_64_concurrent_clients_are_all_served(seeded_sandbox: Sandbox) -> None:
    seeded_sandbox.set_faults(latency_ms=200)  # keep the requests in flight together
    barrier = threading.Barrier(64)
    results: list[Any] = [None] * 64

    def client(i: int) -> None:
        barrier.wait()
        try:
            results[i] = post(seeded_sandbox, "{ viewer { id } }")[0]
        except Exception as exc:  # ConnectionResetError, ConnectionRefusedError, ...
            results[i] = exc

    threads = [threading.Thread(target=client, args=(i,)) for i in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    failed = [r for r in results if r != 200]
    assert not failed, failed[:5]


def test_start_and_set_faults_take_the_switches(tmp_path: Path) -> None:
    with start(db=str(tmp_path / "s.db"), max_page_size=7, overlap_rate=0.25, retry_after=True) as sb:
        assert {k: sb.faults.settings()[k] for k in ("max_page_size", "overlap_rate", "retry_after")} == {
            "max_page_size": 7, "overlap_rate": 0.25, "retry_after": True}
        with pytest.raises(ValueError):
            sb.set_faults(overlap_rate=2)
        with pytest.raises(ValueError):
            sb.set_faults(max_page_size=-1)


def test_serve_options(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    db = tmp_path / "s.db"
    proc = subprocess.Popen([sys.executable, "-m", "runsync", "sandbox", "serve", "--db", str(db),
                             "--max-page-size", "3", "--overlap-rate", "0.5", "--retry-after"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        lines = dict(proc.stdout.readline().strip().removeprefix("export ").split("=", 1) for _ in range(2))
        url, key = lines["WANDB_BASE_URL"], lines["WANDB_API_KEY"]
        host, port = url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        token = base64.b64encode(f"api:{key}".encode()).decode()
        conn.request("POST", "/_sandbox/faults", body="{}", headers={"Authorization": f"Basic {token}"})
        settings = json.loads(conn.getresponse().read())
        conn.close()
        assert settings["max_page_size"] == 3 and settings["overlap_rate"] == 0.5 and settings["retry_after"] is True
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)


def test_default_sandbox_holds_runsync_default_page(tmp_path: Path) -> None:
    from runsync.backend.wandb.client import DEFAULT_PER_PAGE, IDS_PER_QUERY

    with start(db=str(tmp_path / "s.db")) as sb:
        seed_project(sb.store, "e", "p", runs=3, seed=1)
        assert max(DEFAULT_PER_PAGE, IDS_PER_QUERY) <= sb.faults.settings()["max_page_size"]
