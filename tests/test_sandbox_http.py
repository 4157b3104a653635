"""The sandbox's HTTP surface: auth, GraphQL errors, faults and counters, seen on the wire."""
from __future__ import annotations

import base64
import json
import socket
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from runsync.sandbox import Faults, Sandbox, start

RUN_QUERY = """query Run($project: String!, $entity: String!, $name: String!) {
  project(name: $project, entityName: $entity) { run(name: $name) { id name state config } } }"""


def post(sb: Sandbox, path: str, payload: Any, key: str | None = "", timeout: float = 10) -> tuple[int, Any, dict]:
    """POST JSON; key "" means the sandbox's own key, None means no Authorization header."""
    req = urllib.request.Request(sb.url + path, data=json.dumps(payload).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    key = sb.api_key if key == "" else key
    if key is not None:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"api:{key}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null"), dict(resp.headers)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null"), dict(e.headers)


def gql(sb: Sandbox, query: str, variables: dict | None = None, **kw: Any) -> tuple[int, Any, dict]:
    return post(sb, "/graphql", {"query": query, "variables": variables or {}, "operationName": ""}, **kw)


def test_missing_or_wrong_key_is_401(sandbox: Sandbox) -> None:
    assert gql(sandbox, "{ viewer { id } }", key=None)[0] == 401
    assert gql(sandbox, "{ viewer { id } }", key="y" * 40)[0] == 401
    status, body, _ = gql(sandbox, "{ viewer { id entity } }")
    assert status == 200 and body["data"]["viewer"]["entity"] == "e"
    assert post(sandbox, "/_sandbox/faults", {"latency_ms": 5}, key=None)[0] == 401


def test_generated_key_is_40_alphanumerics(sandbox: Sandbox) -> None:
    assert len(sandbox.api_key) >= 40 and sandbox.api_key.isalnum()
    assert sandbox.api_key not in repr(sandbox)


def test_otel_metrics_are_accepted_without_auth(sandbox: Sandbox) -> None:
    assert post(sandbox, "/sdk/otel/v1/metrics", {}, key=None)[0] == 200


def test_unknown_field_is_a_graphql_error_not_null(seeded_sandbox: Sandbox) -> None:
    status, body, _ = gql(seeded_sandbox, "{ viewer { id favouriteColour } }")
    assert body["data"] is None
    assert "favouriteColour" in body["errors"][0]["message"]


def test_operation_name_empty_means_the_only_operation(seeded_sandbox: Sandbox) -> None:
    name = seeded_sandbox.store.snapshot("e", "p")[1][0].name
    _, body, _ = gql(seeded_sandbox, RUN_QUERY, {"entity": "e", "project": "p", "name": name, "extra": 1})
    assert body["data"]["project"]["run"]["name"] == name
    assert seeded_sandbox.stats()["operations"] == {"Run": 1}


def test_bad_filter_json_and_operator_are_errors(seeded_sandbox: Sandbox) -> None:
    q = 'query C($f: JSONString) { project(name: "p", entityName: "e") { runCount(filters: $f) } }'
    assert "not valid JSON" in gql(seeded_sandbox, q, {"f": "{nope"})[1]["errors"][0]["message"]
    msg = gql(seeded_sandbox, q, {"f": json.dumps({"state": {"$where": "1"}})})[1]["errors"][0]["message"]
    assert "unsupported filter operator '$where'" in msg
    assert gql(seeded_sandbox, q, {"f": json.dumps({"state": "finished"})})[1]["data"]["project"]["runCount"] > 0


def test_upsert_by_name_creates_then_updates(sandbox: Sandbox) -> None:
    m = """mutation U($input: UpsertBucketInput!) { upsertBucket(input: $input) {
           bucket { id name displayName config } inserted } }"""
    inp = {"entityName": "e", "modelName": "new", "name": "r9", "displayName": "nine",
           "config": json.dumps({"a": {"value": 1, "desc": "d"}})}
    first = gql(sandbox, m, {"input": inp})[1]["data"]["upsertBucket"]
    assert first["inserted"] is True and first["bucket"]["displayName"] == "nine"
    again = gql(sandbox, m, {"input": {"id": first["bucket"]["id"], "config": '{"b": {"value": 2}}'}})[1]
    assert again["data"]["upsertBucket"]["inserted"] is False
    assert set(json.loads(again["data"]["upsertBucket"]["bucket"]["config"])) == {"a", "b", "_wandb"}
    assert sandbox.stats()["mutations"] == 2
    bad = gql(sandbox, m, {"input": {"id": "nope", "notes": "x"}})[1]
    assert bad["errors"] and sandbox.stats()["mutations"] == 2


def test_faults_endpoint_and_stats_endpoint(sandbox: Sandbox) -> None:
    status, settings, _ = post(sandbox, "/_sandbox/faults", {"latency_ms": 120})
    assert status == 200 and settings["latency_ms"] == 120
    t0 = time.perf_counter()
    gql(sandbox, "{ viewer { id } }")
    assert time.perf_counter() - t0 >= 0.12
    t0 = time.perf_counter()
    req = urllib.request.Request(sandbox.url + "/_sandbox/stats", headers={
        "Authorization": "Basic " + base64.b64encode(f"api:{sandbox.api_key}".encode()).decode()})
    with urllib.request.urlopen(req, timeout=5) as resp:
        stats = json.loads(resp.read())
    assert time.perf_counter() - t0 < 0.1  # faults never apply to /_sandbox/*
    assert stats["requests"] == 1 and stats["operations"] == {"anonymous": 1}
    assert post(sandbox, "/_sandbox/faults", {"nonsense": 1})[0] == 400
    assert post(sandbox, "/_sandbox/stats/reset", {})[1]["requests"] == 0


def test_rate_limit_answers_429_with_whole_second_retry_after(sandbox: Sandbox) -> None:
    sandbox.set_faults(rate_limit=1, retry_after=True)  # W&B may not send Retry-After: off by default
    codes = [gql(sandbox, "{ viewer { id } }") for _ in range(3)]
    limited = [c for c in codes if c[0] == 429]
    assert limited and codes[0][0] == 200
    assert all(int(c[2]["Retry-After"]) >= 1 for c in limited)
    assert all(c[2]["RateLimit-Remaining"] == "0" and int(c[2]["RateLimit-Reset"]) >= 1 for c in limited)
    assert sandbox.stats()["faults"]["429"] == len(limited)


def test_error_rate_is_deterministic_for_a_seed() -> None:
    def draws(seed: int) -> list[int]:
        faults = Faults(error_rate=0.5, seed=seed)
        return [faults.decide().status for _ in range(40)]

    assert draws(3) == draws(3)
    assert draws(3) != draws(4)
    assert 0 < draws(3).count(500) < 40


def test_hang_never_answers_and_stop_releases_it(tmp_path) -> None:
    sb = start(db=str(tmp_path / "h.db"), hang_rate=1.0)
    try:
        with pytest.raises((socket.timeout, TimeoutError, urllib.error.URLError)):
            gql(sb, "{ viewer { id } }", timeout=0.5)
        assert sb.stats()["faults"]["hang"] == 1
        assert post(sb, "/_sandbox/stats/reset", {})[0] == 200  # /_sandbox/* is never faulted
    finally:
        t0 = time.perf_counter()
        sb.stop()
        assert time.perf_counter() - t0 < 5


def test_loopback_by_default(sandbox: Sandbox) -> None:
    assert sandbox.host == "127.0.0.1" and sandbox.url == f"http://127.0.0.1:{sandbox.port}"
    assert sandbox.env() == {"WANDB_BASE_URL": sandbox.url, "WANDB_API_KEY": sandbox.api_key}


def test_short_api_key_is_refused() -> None:
    with pytest.raises(ValueError, match="40"):
        start(api_key="short")
