"""The sandbox charges what the service charges (issue 20): server time per run a page returns (and a gateway
deadline a big page outlasts), a per-project request quota whose RateLimit-* headers ride on every answer, and
the service's size limits (a run config over 15 MB is HTTP 400 "run config cannot exceed 15 MB"; a request body
over 10 MB is HTTP 413).

Raw HTTP where the wire is the point (headers, status, body), the real wandb client where its behaviour is. The
oracle for what was written is the sandbox store or a fresh wandb.Api().run(...).
"""
from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
import wandb
from test_sandbox_http import gql, post

from runsync.sandbox import Sandbox, start

PAGE = """query Page($project: String!, $entity: String!, $perPage: Int, $filters: JSONString) {
  project(name: $project, entityName: $entity) {
    runs(first: $perPage, filters: $filters, order: "+created_at") { edges { node { name } cursor } } } }"""
ONE = """query One($project: String!, $entity: String!, $name: String!) {
  project(name: $project, entityName: $entity) { run(name: $name) { name } } }"""
UPSERT = """mutation U($input: UpsertBucketInput!) { upsertBucket(input: $input) { bucket { id name } } }"""
BATCH = """mutation Three($a: UpsertBucketInput!, $b: UpsertBucketInput!, $c: UpsertBucketInput!) {
  first: upsertBucket(input: $a) { bucket { id } }
  second: upsertBucket(input: $b) { bucket { id } }
  third: upsertBucket(input: $c) { bucket { id } }
}"""


def timed(fn: Any, *args: Any, **kw: Any) -> tuple[float, Any]:
    started = time.monotonic()
    out = fn(*args, **kw)
    return time.monotonic() - started, out


def page(sb: Sandbox, size: int, project: str = "p", filters: Any = None) -> tuple[int, Any, dict]:
    variables = {"entity": "e", "project": project, "perPage": size}
    if filters is not None:
        variables["filters"] = json.dumps(filters)
    return gql(sb, PAGE, variables)


def run_ids(sb: Sandbox, project: str = "p") -> list[str]:
    return [r.name for r in sb.store.snapshot("e", project)[1]]


# -- 1. slow pages ---------------------------------------------------------------------------------------------
def test_a_page_costs_server_time_per_run_it_returns(seeded_sandbox: Sandbox) -> None:
    seeded_sandbox.set_faults(read_ms_per_run=25)
    big, (status, body, _) = timed(page, seeded_sandbox, 24)
    assert status == 200 and len(body["data"]["project"]["runs"]["edges"]) == 24
    assert big >= 24 * 0.025
    small, (status, body, _) = timed(page, seeded_sandbox, 2)
    assert status == 200 and len(body["data"]["project"]["runs"]["edges"]) == 2
    assert small < big - 0.3  # the cost is the runs returned, not a flat price per request
    # A read by ids costs the runs it finds (3 of the 5 asked exist), and a single run read costs one.
    ids = run_ids(seeded_sandbox)
    by_ids, (status, body, _) = timed(page, seeded_sandbox, 100, filters={"name": {"$in": [
        ids[3], "no-such-run", ids[17], "ü/ß", ids[29]]}})
    assert status == 200 and [e["node"]["name"] for e in body["data"]["project"]["runs"]["edges"]] == [
        ids[3], ids[17], ids[29]]
    assert 3 * 0.025 <= by_ids < big - 0.3
    one, (status, body, _) = timed(gql, seeded_sandbox, ONE, {"entity": "e", "project": "p", "name": ids[11]})
    assert body["data"]["project"]["run"]["name"] == ids[11] and one >= 0.025
    assert seeded_sandbox.faults.settings()["read_ms_per_run"] == 25
    assert post(seeded_sandbox, "/_sandbox/faults", {"read_ms_per_run": -1})[0] == 400


def test_a_page_over_the_gateway_deadline_is_504_at_the_deadline(seeded_sandbox: Sandbox) -> None:
    seeded_sandbox.set_faults(read_ms_per_run=100, gateway_timeout_s=0.6)
    took, (status, body, _) = timed(page, seeded_sandbox, 25)  # 2.5 s of server time
    assert status == 504 and "gateway timeout" in body["errors"][0]["message"]
    assert 0.6 <= took < 2.0  # the gateway gives up at its deadline, it does not wait for the page
    assert seeded_sandbox.stats()["faults"]["504"] == 1
    status, body, _ = page(seeded_sandbox, 4)  # 0.4 s: under the deadline
    assert status == 200 and len(body["data"]["project"]["runs"]["edges"]) == 4


def test_the_real_client_lists_in_small_pages_and_fails_on_a_big_one(seeded_sandbox: Sandbox) -> None:
    seeded_sandbox.set_faults(read_ms_per_run=50, gateway_timeout_s=0.5)
    api = wandb.Api(timeout=3)
    assert sorted(r.id for r in api.runs("e/p", per_page=6)) == sorted(run_ids(seeded_sandbox))  # 0.3 s a page
    with pytest.raises(Exception) as caught:  # 30 runs at 50 ms is 1.5 s: HTTP 504 on every try
        list(wandb.Api(timeout=3).runs("e/p", per_page=30, filters={"state": {"$ne": "crashed?"}}))
    assert "504" in str(caught.value) or "busy" in str(caught.value) or "timed out" in str(caught.value).lower()
    assert seeded_sandbox.stats()["faults"]["504"] >= 1


def test_without_a_gateway_deadline_the_clients_own_timeout_applies(seeded_sandbox: Sandbox) -> None:
    seeded_sandbox.set_faults(read_ms_per_run=150)  # 30 runs: 4.5 s, over the client's 2 s
    took, _ = timed(lambda: pytest.raises(Exception, lambda: list(wandb.Api(timeout=2).runs("e/p", per_page=30))))  # noqa: B017  (its type differs by release)
    assert took < 4.4 and seeded_sandbox.stats()["faults"].get("504", 0) == 0


def test_writes_past_the_gateway_deadline_are_applied_and_answered_504(seeded_sandbox: Sandbox) -> None:
    runs = seeded_sandbox.store.snapshot("e", "p")[1][:3]
    seeded_sandbox.set_faults(write_ms=250, gateway_timeout_s=0.5)  # three writes in turn: 0.75 s
    variables = {a: {"id": r.storage_id, "notes": f"late ✓ {a}"} for a, r in zip("abc", runs)}
    status, body, _ = gql(seeded_sandbox, BATCH, variables)
    assert status == 504  # the answer is lost, the writes are not
    assert [seeded_sandbox.store.find_run("e", "p", r.name).notes for r in runs] == [
        "late ✓ a", "late ✓ b", "late ✓ c"]
    assert seeded_sandbox.stats()["mutations"] == 3


# -- 2. per-project quota and RateLimit-* on every answer --------------------------------------------------
def test_quota_headers_ride_on_every_answer_and_429_after_the_window_is_spent(seeded_sandbox: Sandbox) -> None:
    seeded_sandbox.store.create_run("e", "other 项目", "o1")
    seeded_sandbox.set_faults(quota_per_s=2.5, quota_window_s=4)  # 10 requests per 4 s window, per project
    answers = [page(seeded_sandbox, 1) for _ in range(11)]
    assert [a[0] for a in answers] == [200] * 10 + [429]
    assert [a[2]["RateLimit-Limit"] for a in answers] == ["1000"] * 11
    assert [a[2]["RateLimit-Remaining"] for a in answers] == [
        "900", "800", "700", "600", "500", "400", "300", "200", "100", "0", "0"]
    assert all(1 <= int(a[2]["RateLimit-Reset"]) <= 4 for a in answers)
    assert "Retry-After" not in answers[-1][2]  # W&B may not send it; only with retry_after on
    assert seeded_sandbox.stats()["rate_limited"] == 1
    # Another project, and a request with no project, have quotas of their own.
    status, _, headers = page(seeded_sandbox, 1, project="other 项目")
    assert status == 200 and headers["RateLimit-Remaining"] == "900"
    status, _, headers = gql(seeded_sandbox, "{ viewer { id } }")
    assert status == 200 and headers["RateLimit-Remaining"] == "900"
    # A write to the spent project is refused whole: nothing applied.
    run = seeded_sandbox.store.snapshot("e", "p")[1][0]
    status, body, headers = gql(seeded_sandbox, UPSERT, {"input": {"id": run.storage_id, "notes": "¡no!"}})
    assert status == 429 and headers["RateLimit-Remaining"] == "0"
    assert seeded_sandbox.store.find_run("e", "p", run.name).notes != "¡no!"
    assert seeded_sandbox.stats()["rate_limited"] == 2 and seeded_sandbox.stats()["mutations"] == 0


def test_the_window_resets_and_retry_after_is_sent_only_when_switched_on(seeded_sandbox: Sandbox) -> None:
    seeded_sandbox.set_faults(quota_per_s=2, quota_window_s=1, retry_after=True)
    answers = [page(seeded_sandbox, 1) for _ in range(3)]
    assert [a[0] for a in answers] == [200, 200, 429]
    assert answers[-1][2]["Retry-After"] == answers[-1][2]["RateLimit-Reset"] == "1"
    assert "Retry-After" not in answers[0][2]
    time.sleep(float(answers[-1][2]["RateLimit-Reset"]) + 0.05)
    status, _, headers = page(seeded_sandbox, 1)
    assert status == 200 and headers["RateLimit-Remaining"] == "500"


def test_without_a_quota_no_ratelimit_headers_are_sent(seeded_sandbox: Sandbox) -> None:
    status, _, headers = page(seeded_sandbox, 1)
    assert status == 200 and not any(h.lower().startswith("ratelimit") for h in headers)
    assert seeded_sandbox.stats()["rate_limited"] == 0


def test_a_mutation_quota_charges_each_write_and_lets_reads_through(seeded_sandbox: Sandbox) -> None:
    runs = seeded_sandbox.store.snapshot("e", "p")[1][:3]
    seeded_sandbox.set_faults(quota_per_s=0.25, quota_window_s=20, quota_unit="mutations")
    variables = {a: {"id": r.storage_id, "groupName": f"g{a}"} for a, r in zip("abc", runs)}
    status, _, headers = gql(seeded_sandbox, BATCH, variables)
    assert status == 200 and headers["RateLimit-Remaining"] == "400"  # 3 of 5 spent
    variables = {a: {"id": r.storage_id, "groupName": f"again {a}"} for a, r in zip("abc", runs)}
    status, _, headers = gql(seeded_sandbox, BATCH, variables)
    assert status == 429 and headers["RateLimit-Remaining"] == "400"  # 3 more do not fit: none applied
    assert [seeded_sandbox.store.find_run("e", "p", r.name).grp for r in runs] == ["ga", "gb", "gc"]
    status, _, headers = page(seeded_sandbox, 5)  # reads are not metered in this unit
    assert status == 200 and headers["RateLimit-Remaining"] == "400"
    with pytest.raises(ValueError, match="quota_unit"):
        seeded_sandbox.set_faults(quota_unit="bytes")
    with pytest.raises(ValueError, match="quota_per_s"):
        seeded_sandbox.set_faults(quota_per_s=-1)


def test_the_real_client_waits_out_429s_and_the_count_is_reported(seeded_sandbox: Sandbox) -> None:
    api = wandb.Api(timeout=30)
    seeded_sandbox.set_faults(quota_per_s=1, quota_window_s=1)
    seeded_sandbox.reset_stats()
    ids = [r.id for r in api.runs("e/p", per_page=10, order="+created_at")]  # three pages back to back
    assert sorted(ids) == sorted(run_ids(seeded_sandbox))
    assert seeded_sandbox.stats()["rate_limited"] >= 1


# -- 3. size limits ------------------------------------------------------------------------------------------
def test_a_config_over_the_limit_is_400_with_the_services_message_and_body(sandbox: Sandbox) -> None:
    sandbox.store.create_run("e", "p", "big", config={"keep": "ça"})
    sandbox.set_faults(max_config_bytes=20_000)
    rec = sandbox.store.find_run("e", "p", "big")
    # 3,000 emoji are 12,000 UTF-8 bytes stored, but 36,000 as the client sends them (\\ud83d\\ude80 escapes).
    blob = json.dumps({"rocket": {"value": "🚀" * 3000}})
    status, body, _ = gql(sandbox, UPSERT, {"input": {"id": rec.storage_id, "config": blob}})
    assert status == 400
    assert body == {"data": {"upsertBucket": None}, "errors": [
        {"message": "run config cannot exceed 0.02 MB", "path": ["upsertBucket"],
         "locations": body["errors"][0]["locations"]}]}
    assert wandb.Api().run("e/p/big").config == {"keep": "ça"}
    assert sandbox.stats()["mutations"] == 0 and sandbox.stats()["faults"]["config_too_large"] == 1


def test_a_small_write_that_grows_the_stored_config_past_the_limit_is_refused(sandbox: Sandbox) -> None:
    sandbox.store.create_run("e", "p", "grow", config={"history": "x" * 9_000})
    sandbox.set_faults(max_config_bytes=10_000)
    rec = sandbox.store.find_run("e", "p", "grow")
    status, body, _ = gql(sandbox, UPSERT, {"input": {"id": rec.storage_id, "config": json.dumps(
        {"more": {"value": "y" * 1_500}})}})
    assert status == 400 and "run config cannot exceed" in body["errors"][0]["message"]
    assert set(wandb.Api().run("e/p/grow").config) == {"history"}
    status, _, _ = gql(sandbox, UPSERT, {"input": {"id": rec.storage_id, "config": json.dumps(
        {"more": {"value": "y" * 500}})}})
    assert status == 200 and set(wandb.Api().run("e/p/grow").config) == {"history", "more"}


def test_in_a_batch_the_other_writes_land_and_the_answer_is_400(seeded_sandbox: Sandbox) -> None:
    runs = seeded_sandbox.store.snapshot("e", "p")[1][:3]
    seeded_sandbox.set_faults(max_config_bytes=50_000)
    variables = {"a": {"id": runs[0].storage_id, "notes": "a ✓"},
                 "b": {"id": runs[1].storage_id, "config": json.dumps({"w": {"value": [0.1] * 20_000}})},
                 "c": {"id": runs[2].storage_id, "notes": "c ✓"}}
    status, body, _ = gql(seeded_sandbox, BATCH, variables)
    assert status == 400 and body["data"]["second"] is None
    assert [e["path"] for e in body["errors"]] == [["second"]]
    assert [seeded_sandbox.store.find_run("e", "p", r.name).notes for r in (runs[0], runs[2])] == ["a ✓", "c ✓"]
    assert "w" not in seeded_sandbox.store.find_run("e", "p", runs[1].name).raw_config
    assert seeded_sandbox.stats()["mutations"] == 2


def test_the_default_limits_are_the_services(tmp_path) -> None:
    with start(db=str(tmp_path / "d.db"), max_body_bytes=None) as sb:
        settings = sb.faults.settings()
        assert settings["max_config_bytes"] == 15_000_000
        sb.store.create_run("e", "p", "r")
        sid = sb.store.find_run("e", "p", "r").storage_id
        over = json.dumps({"k": {"value": "z" * 15_000_000}})
        status, body, _ = gql(sb, UPSERT, {"input": {"id": sid, "config": over}}, timeout=60)
        assert status == 400 and body["errors"][0]["message"] == "run config cannot exceed 15 MB"
        under = json.dumps({"k": {"value": "z" * 14_900_000}})
        assert gql(sb, UPSERT, {"input": {"id": sid, "config": under}}, timeout=60)[0] == 200
        assert len(sb.store.find_run("e", "p", "r").raw_config["k"]["value"]) == 14_900_000


def utf8_upsert(sb: Sandbox, inp: dict[str, Any]) -> tuple[int, Any]:
    """POST an upsertBucket with its body as raw UTF-8 JSON (no \\u escapes): a body of known bytes."""
    body = json.dumps({"query": UPSERT, "variables": {"input": inp}, "operationName": ""}, ensure_ascii=False)
    req = urllib.request.Request(sb.url + "/graphql", data=body.encode(), method="POST", headers={
        "Content-Type": "application/json",
        "Authorization": "Basic " + base64.b64encode(f"api:{sb.api_key}".encode()).decode()})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_a_request_body_over_10_mb_is_413_and_nothing_is_applied(sandbox: Sandbox) -> None:
    assert sandbox.faults.settings()["max_body_bytes"] == 10_000_000  # on by default
    sandbox.store.create_run("e", "p", "r", config={"a": 1})
    sid = sandbox.store.find_run("e", "p", "r").storage_id
    notes = "ñ" * 5_000_001  # 5,000,001 characters, 10,000,002 UTF-8 bytes: the body is measured in bytes
    status, body = utf8_upsert(sandbox, {"id": sid, "notes": notes})
    assert status == 413 and "10 MB" in body["errors"][0]["message"]
    assert sandbox.store.find_run("e", "p", "r").notes != notes
    assert sandbox.stats()["faults"]["413"] == 1
    status, body = utf8_upsert(sandbox, {"id": sid, "notes": "ñ" * 4_999_000})  # 9,998,000 bytes and the rest
    assert status == 200 and len(sandbox.store.find_run("e", "p", "r").notes) == 4_999_000
    sandbox.set_faults(max_body_bytes=1_000)
    assert utf8_upsert(sandbox, {"id": sid, "notes": "x" * 2_000})[0] == 413
    sandbox.set_faults(max_body_bytes=None)
    assert utf8_upsert(sandbox, {"id": sid, "notes": "ñ" * 6_000_000})[0] == 200


def test_the_real_client_reports_an_oversized_config(sandbox: Sandbox) -> None:
    sandbox.store.create_run("e", "p", "c", config={"lr": 0.5})
    sandbox.set_faults(max_config_bytes=5_000)
    run = wandb.Api().run("e/p/c")
    run.config["table"] = {"cells": ["∑" * 10] * 400}
    with pytest.raises(Exception, match="run config cannot exceed"):
        run.update()
    assert wandb.Api().run("e/p/c").config == {"lr": 0.5}


def test_limits_settings_are_validated_and_reported(sandbox: Sandbox) -> None:
    status, settings, _ = post(sandbox, "/_sandbox/faults", {"max_config_bytes": 123, "gateway_timeout_s": 2.5})
    assert status == 200 and settings["max_config_bytes"] == 123 and settings["gateway_timeout_s"] == 2.5
    assert post(sandbox, "/_sandbox/faults", {"max_body_bytes": 1.5})[0] == 400
    assert post(sandbox, "/_sandbox/faults", {"gateway_timeout_s": -3})[0] == 400
    sandbox.set_faults(max_config_bytes=0, max_body_bytes=None)  # 0/None: no limit
    assert sandbox.faults.settings()["max_config_bytes"] is None
