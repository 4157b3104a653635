"""The sandbox executes several aliased upsertBuckets in one request as a GraphQL server does: in turn, with an
error per alias path (the others applied), a limit that refuses a request whole, and server time per write."""
from __future__ import annotations

import time

from test_sandbox_http import gql

from runsync.sandbox import Sandbox

BATCH = """mutation Three($a: UpsertBucketInput!, $b: UpsertBucketInput!, $c: UpsertBucketInput!) {
  first: upsertBucket(input: $a) { bucket { id name } }
  second: upsertBucket(input: $b) { bucket { id name } }
  third: upsertBucket(input: $c) { bucket { id name } }
}"""


def _three(sb: Sandbox, groups: tuple[str, str, str], middle_id: str | None = None) -> tuple[int, dict, list[str]]:
    runs = sb.store.snapshot("e", "p")[1][:3]
    ids = [r.storage_id for r in runs]
    if middle_id is not None:
        ids[1] = middle_id
    variables = {name: {"id": sid, "groupName": group} for name, sid, group in zip("abc", ids, groups)}
    status, body, _ = gql(sb, BATCH, variables)
    return status, body, [r.name for r in runs]


def _group(sb: Sandbox, run_id: str) -> str | None:
    return sb.store.find_run("e", "p", run_id).grp


def test_every_alias_is_executed_and_answered_under_its_name(seeded_sandbox: Sandbox) -> None:
    status, body, run_ids = _three(seeded_sandbox, ("g-one", "g-two", "g-three"))
    assert status == 200 and "errors" not in body
    assert set(body["data"]) == {"first", "second", "third"}
    assert [_group(seeded_sandbox, r) for r in run_ids] == ["g-one", "g-two", "g-three"]
    stats = seeded_sandbox.stats()
    assert stats["requests"] == 1 and stats["mutations"] == 3 and stats["operations"] == {"Three": 1}


def test_a_failing_alias_is_reported_at_its_path_and_the_others_still_land(seeded_sandbox: Sandbox) -> None:
    status, body, run_ids = _three(seeded_sandbox, ("g-one", "g-two", "g-three"), middle_id="UnVuOm5vLXN1Y2g=")
    assert status == 200
    assert body["data"]["second"] is None
    assert body["data"]["first"]["bucket"]["name"] == run_ids[0]
    assert body["data"]["third"]["bucket"]["name"] == run_ids[2]
    [error] = body["errors"]
    assert error["path"] == ["second"] and "not found" in error["message"]
    assert _group(seeded_sandbox, run_ids[0]) == "g-one" and _group(seeded_sandbox, run_ids[2]) == "g-three"
    assert _group(seeded_sandbox, run_ids[1]) != "g-two"
    assert seeded_sandbox.stats()["mutations"] == 2  # the two executed without error


def test_a_request_over_the_mutation_limit_is_refused_whole(seeded_sandbox: Sandbox) -> None:
    before = [r.grp for r in seeded_sandbox.store.snapshot("e", "p")[1][:3]]
    seeded_sandbox.set_faults(max_mutations=2)
    status, body, run_ids = _three(seeded_sandbox, ("g-one", "g-two", "g-three"))
    assert status == 200 and body["data"] is None
    assert "3 mutations in one request" in body["errors"][0]["message"] and "limit is 2" in body["errors"][0]["message"]
    assert [_group(seeded_sandbox, r) for r in run_ids] == before  # nothing applied
    assert seeded_sandbox.stats()["mutations"] == 0 and seeded_sandbox.stats()["faults"]["batch_refused"] == 1
    seeded_sandbox.set_faults(max_mutations=3)  # at the limit: executed
    status, body, _ = _three(seeded_sandbox, ("g-one", "g-two", "g-three"))
    assert "errors" not in body and [_group(seeded_sandbox, r) for r in run_ids] == ["g-one", "g-two", "g-three"]
    assert seeded_sandbox.faults.settings()["max_mutations"] == 3


def test_each_executed_mutation_costs_server_time_in_turn(seeded_sandbox: Sandbox) -> None:
    seeded_sandbox.set_faults(write_ms=150)
    started = time.monotonic()
    _three(seeded_sandbox, ("g-one", "g-two", "g-three"))
    assert time.monotonic() - started >= 0.45  # three writes one after another, not at once
    assert seeded_sandbox.faults.settings()["write_ms"] == 150
