"""The sandbox as a W&B user meets it: the real `wandb.Api()` against it, no monkeypatching."""
from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
import wandb

from runsync.sandbox import Sandbox, seed_project, start

Row = dict[str, Any]


def store_runs(sb: Sandbox, entity: str = "e", project: str = "p") -> list[Row]:
    """Every run of a project as the store holds it, in insertion (rowid) order."""
    _, ordered, _ = sb.store.snapshot(entity, project)
    return [r.to_dict() for r in ordered]


def cfg(row: Row, key: str, default: Any = KeyError) -> Any:
    config = row["user_config"]
    if default is KeyError:
        return config[key]
    return config.get(key, default)


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.fixture
def big_sandbox(sandbox: Sandbox) -> Sandbox:
    seed_project(sandbox.store, "e", "p", runs=120, seed=7)
    # These cases check what each filter selects, `tags` + `$all` included, so the sandbox answers what the
    # service refuses; test_filters_strict.py checks the refusals.
    sandbox.strict_filters = False
    return sandbox


MID = "2024-05-02T12:00:00Z"

# (filter as a W&B user writes it, the same selection computed in plain Python over the store)
FILTER_CASES: list[tuple[dict, Callable[[Row], bool]]] = [
    ({"config.dataset": "cifar10"}, lambda r: cfg(r, "dataset") == "cifar10"),
    ({"config.dataset.value": "mnist"}, lambda r: cfg(r, "dataset") == "mnist"),
    ({"config.dataset": {"$eq": "cifar100"}}, lambda r: cfg(r, "dataset") == "cifar100"),
    ({"config.dataset": {"$ne": "mnist"}}, lambda r: cfg(r, "dataset") != "mnist"),
    ({"config.model.depth": 50}, lambda r: cfg(r, "model")["depth"] == 50),
    ({"config.model.value.depth": {"$lt": 50}}, lambda r: cfg(r, "model")["depth"] < 50),
    ({"config.lr": {"$gt": 0.001}}, lambda r: cfg(r, "lr") > 0.001),
    ({"config.lr.value": {"$gte": 0.001, "$lte": 0.01}}, lambda r: 0.001 <= cfg(r, "lr") <= 0.01),
    ({"config.batch_size": {"$in": [32, 64]}}, lambda r: cfg(r, "batch_size") in (32, 64)),
    ({"config.optimizer": {"$nin": ["sgd", "adamw"]}}, lambda r: cfg(r, "optimizer") not in ("sgd", "adamw")),
    ({"config.dropout": {"$exists": True}}, lambda r: "dropout" in r["user_config"]),
    ({"config.dropout": {"$exists": False}}, lambda r: "dropout" not in r["user_config"]),
    ({"config.augment": True}, lambda r: cfg(r, "augment") is True),
    ({"config.epochs": {"$gt": 50}}, lambda r: cfg(r, "epochs") > 50),
    ({"summary_metrics.acc": {"$gt": 0.6}}, lambda r: r["summary"]["acc"] > 0.6),
    ({"summary_metrics._step": {"$lte": 2000}}, lambda r: r["summary"]["_step"] <= 2000),
    ({"display_name": {"$regex": "^(swift|bold)-"}}, lambda r: re.match("^(swift|bold)-", r["display_name"])),
    ({"displayName": {"$regex": "river"}}, lambda r: "river" in r["display_name"]),
    ({"state": "finished"}, lambda r: r["state"] == "finished"),
    ({"state": {"$in": ["crashed", "running"]}}, lambda r: r["state"] in ("crashed", "running")),
    ({"group": "exp-a"}, lambda r: r["group"] == "exp-a"),
    ({"jobType": "eval"}, lambda r: r["job_type"] == "eval"),
    ({"job_type": {"$ne": "train"}}, lambda r: r["job_type"] != "train"),
    ({"tags": "baseline"}, lambda r: "baseline" in r["tags"]),
    ({"tags": {"$in": ["prod", "v2"]}}, lambda r: bool({"prod", "v2"} & set(r["tags"]))),
    ({"tags": {"$nin": ["debug"]}}, lambda r: "debug" not in r["tags"]),
    ({"tags": {"$all": ["baseline", "sweep"]}}, lambda r: {"baseline", "sweep"} <= set(r["tags"])),
    ({"createdAt": {"$gt": MID}}, lambda r: ts(r["created_at"]) > ts(MID)),
    ({"created_at": {"$lte": MID}}, lambda r: ts(r["created_at"]) <= ts(MID)),
    ({"$and": [{"config.dataset": "cifar10"}, {"summary_metrics.acc": {"$gt": 0.5}}]},
     lambda r: cfg(r, "dataset") == "cifar10" and r["summary"]["acc"] > 0.5),
    ({"$or": [{"config.dataset": "mnist"}, {"tags": "prod"}]},
     lambda r: cfg(r, "dataset") == "mnist" or "prod" in r["tags"]),
    ({"$nor": [{"state": "finished"}, {"group": "exp-b"}]},
     lambda r: r["state"] != "finished" and r["group"] != "exp-b"),
]


def test_filters_select_exactly_the_matching_runs(big_sandbox: Sandbox) -> None:
    rows = store_runs(big_sandbox)
    api = wandb.Api(timeout=20)
    for spec, expected_pred in FILTER_CASES:
        expected = {r["name"] for r in rows if expected_pred(r)}
        assert 0 < len(expected) < len(rows), f"case {spec} does not discriminate: fix the case"
        runs = api.runs("e/p", filters=spec, per_page=17)
        got = [r.id for r in runs]
        assert len(runs) == len(expected), spec  # runCount(filters)
        assert sorted(got) == sorted(expected), spec


def test_name_in_filter_and_node_id(seeded_sandbox: Sandbox) -> None:
    rows = store_runs(seeded_sandbox)
    wanted = [r["name"] for r in rows[::3]] + ["no-such-run"]
    api = wandb.Api(timeout=20)
    got = {r.id for r in api.runs("e/p", filters={"name": {"$in": wanted}})}
    assert got == set(wanted) - {"no-such-run"}
    one = rows[4]
    assert [r.id for r in api.runs("e/p", filters={"name": one["name"]})] == [one["name"]]
    assert [r.id for r in api.runs("e/p", filters={"id": one["id"]})] == [one["name"]]


@pytest.mark.parametrize("order", ["+created_at", "-created_at", "createdAt", "name", "-display_name",
                                   "+config.lr.value", "-config.model.depth", "summary_metrics.acc"])
def test_order(seeded_sandbox: Sandbox, order: str) -> None:
    rows = store_runs(seeded_sandbox)
    field = order.lstrip("+-")
    key: Callable[[Row], Any] = {
        "created_at": lambda r: ts(r["created_at"]), "createdAt": lambda r: ts(r["created_at"]),
        "name": lambda r: r["name"], "display_name": lambda r: r["display_name"],
        "config.lr.value": lambda r: cfg(r, "lr"),
        "config.model.depth": lambda r: cfg(r, "model")["depth"],
        "summary_metrics.acc": lambda r: r["summary"]["acc"],
    }[field]
    expected = [r["name"] for r in sorted(rows, key=lambda r: (key(r), r["rowid"]),
                                          reverse=order.startswith("-"))]
    got = [r.id for r in wandb.Api(timeout=20).runs("e/p", order=order, per_page=7)]
    assert got == expected


def test_paging_2500_runs_yields_each_once(sandbox: Sandbox) -> None:
    ids = seed_project(sandbox.store, "e", "p", runs=2500, seed=3)
    api = wandb.Api(timeout=60)
    runs = api.runs("e/p", per_page=100)
    got = [r.id for r in runs]
    assert len(runs) == 2500
    assert len(got) == 2500 and set(got) == set(ids)
    desc = [r.id for r in api.runs("e/p", order="-created_at", per_page=100)]
    assert len(desc) == 2500 and set(desc) == set(ids)


def test_paging_is_stable_while_runs_are_updated(sandbox: Sandbox) -> None:
    ids = seed_project(sandbox.store, "e", "p", runs=2500, seed=4)
    stop = threading.Event()
    writes = 0

    def writer() -> None:
        nonlocal writes
        while not stop.is_set():
            rid = ids[(writes * 37) % len(ids)]
            node = sandbox.store.find_run("e", "p", rid)
            assert node is not None
            sandbox.store.upsert({"id": node.storage_id, "tags": [f"t{writes}"],
                                  "config": f'{{"epochs": {{"value": {writes}, "desc": null}}}}'})
            writes += 1
            time.sleep(0.001)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        got = [r.id for r in wandb.Api(timeout=60).runs("e/p", per_page=100)]
    finally:
        stop.set()
        thread.join(5)
    assert writes > 10  # the writer really ran during the paging
    assert len(got) == 2500 and set(got) == set(ids)


TYPED_CONFIG = {
    "an_int": 3, "a_float": 3.0, "a_small": 1e-08, "nested": {"a": {"b": [1, 2.5, None]}, "c": "x"},
    "a_list": [1, "two", 3.0, {"four": 4}], "nothing": None, "unicode": "naïve – 東京 🚀",
    "big": 2**53 + 1, "flag": False, "empty": {},
}


def test_update_round_trip_keeps_every_value_and_type(sandbox: Sandbox) -> None:
    sandbox.store.create_run("e", "p", "r1", display_name="first", tags=["a"], group="g0",
                             job_type="train", notes="n0", config=TYPED_CONFIG, summary={"acc": 0.5})
    api = wandb.Api(timeout=20)
    run = api.run("e/p/r1")
    assert dict(run.config) == TYPED_CONFIG
    assert isinstance(run.config["a_float"], float) and isinstance(run.config["an_int"], int)
    run.config["lr"] = 0.25
    run.config["an_int"] = 4
    run.tags = ["b", "c"]
    run.group = "g1"
    run.name = "renamed"
    run.notes = "notes ✓"
    run.job_type = "eval"
    run.update()

    fresh = wandb.Api(timeout=20).run("e/p/r1")
    assert fresh.config == {**TYPED_CONFIG, "lr": 0.25, "an_int": 4}
    for key, value in TYPED_CONFIG.items():
        if key != "an_int":
            assert type(fresh.config[key]) is type(value), key
    assert fresh.config["big"] == 2**53 + 1
    assert (fresh.tags, fresh.group, fresh.name, fresh.notes, fresh.job_type) == (
        ["b", "c"], "g1", "renamed", "notes ✓", "eval")
    assert fresh.summary["acc"] == 0.5
    assert sandbox.stats()["operations"]["UpsertBucket"] == 2  # the client always sends two


def test_deleted_config_key_comes_back_and_nested_dicts_merge(sandbox: Sandbox) -> None:
    # wandb/wandb#11055: the server deep-merges config, so deleting a key locally does nothing.
    sandbox.store.create_run("e", "p", "r1", config={"keep": 1, "gone": 2, "model": {"depth": 18, "width": 2.0}})
    run = wandb.Api(timeout=20).run("e/p/r1")
    del run.config["gone"]
    run.config["model"] = {"depth": 50}
    run.update()
    fresh = wandb.Api(timeout=20).run("e/p/r1")
    assert fresh.config["gone"] == 2
    assert fresh.config["model"] == {"depth": 50, "width": 2.0}


def test_null_fields_leave_the_run_untouched(sandbox: Sandbox) -> None:
    sandbox.store.create_run("e", "p", "r1", notes="keep me", group="g", config={"a": 1})
    node = sandbox.store.find_run("e", "p", "r1")
    before = sandbox.store.get_run("e", "p", "r1")
    sandbox.store.upsert({"id": node.storage_id, "notes": None, "config": None, "tags": ["t"]})
    after = sandbox.store.get_run("e", "p", "r1")
    assert (after["notes"], after["group"], after["config"]) == ("keep me", "g", before["config"])
    assert after["tags"] == ["t"] and after["updated_at"] > before["updated_at"]


def test_project_and_projects_and_viewer(seeded_sandbox: Sandbox) -> None:
    seed_project(seeded_sandbox.store, "e", "q", runs=2, seed=2)
    api = wandb.Api(timeout=20)
    assert [p.name for p in api.projects("e")] == ["p", "q"]
    assert api.project("q", "e").id
    assert api.viewer.entity == "e"
    with pytest.raises(ValueError, match="Could not find project"):
        len(api.runs("e/nope"))


def test_missing_run_is_not_found(seeded_sandbox: Sandbox) -> None:
    with pytest.raises(Exception, match="Could not find run"):
        wandb.Api(timeout=20).run("e/p/does-not-exist")


def test_wrong_key_is_refused(seeded_sandbox: Sandbox) -> None:
    with pytest.raises(wandb.errors.AuthenticationError):
        wandb.Api(api_key="x" * 40, timeout=10)


def test_unsupported_filter_operator_is_an_error(seeded_sandbox: Sandbox) -> None:
    with pytest.raises(Exception, match=r"unsupported filter operator '\$near'"):
        len(wandb.Api(timeout=10).runs("e/p", filters={"config.lr": {"$near": 1}}))


def test_a_new_api_follows_a_new_base_url(seeded_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    first = wandb.Api(timeout=10)
    with start() as other:
        seed_project(other.store, "e", "p", runs=3, seed=5)
        for key, value in other.env().items():
            monkeypatch.setenv(key, value)
        assert len(wandb.Api(timeout=10).runs("e/p")) == 3
        assert len(first.runs("e/p")) == 30  # an existing Api keeps its own server


def test_rate_limit_is_retried_through(seeded_sandbox: Sandbox) -> None:
    api = wandb.Api(timeout=30)
    seeded_sandbox.set_faults(rate_limit=2)
    seeded_sandbox.reset_stats()
    for _ in range(3):
        assert len(api.runs("e/p", filters={"state": {"$ne": "nope"}}, per_page=10, order="-name")) == 30
        api.flush()
    stats = seeded_sandbox.stats()
    assert stats["faults"]["429"] >= 1
    assert stats["operations"]["Runs"] >= 3 + stats["faults"]["429"] - stats["operations"].get("GetDefaultEntity", 0)


def test_latency_applies_to_each_request(seeded_sandbox: Sandbox) -> None:
    api = wandb.Api(timeout=20)
    api.run("e/p/" + store_runs(seeded_sandbox)[0]["name"])  # warm up
    seeded_sandbox.set_faults(latency_ms=150)
    t0 = time.perf_counter()
    api.run("e/p/" + store_runs(seeded_sandbox)[1]["name"])
    assert time.perf_counter() - t0 >= 0.15


def test_server_errors_never_apply_the_mutation(sandbox: Sandbox) -> None:
    sandbox.store.create_run("e", "p", "r1", config={"a": 1})
    run = wandb.Api(timeout=3).run("e/p/r1")
    sandbox.set_faults(error_rate=1.0)
    sandbox.reset_stats()
    run.config["a"] = 2
    with pytest.raises(Exception):  # noqa: B017  (the client raises another type in each release)
        run.update()
    sandbox.set_faults(error_rate=0.0)
    assert sandbox.store.get_run("e", "p", "r1")["user_config"]["a"] == 1
    stats = sandbox.stats()
    assert stats["mutations"] == 0 and stats["faults"]["500"] >= 1
