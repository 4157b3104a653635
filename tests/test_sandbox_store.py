"""The sandbox's storage, filter language and seeding, without the HTTP layer."""
from __future__ import annotations

import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runsync.sandbox import FilterError, Store, seed_demo, seed_project
from runsync.sandbox.filters import compile_filter
from runsync.sandbox.query import page_runs
from runsync.sandbox.records import merge_config


def test_merge_config_never_deletes_and_merges_nested_values() -> None:
    stored = {"a": {"value": 1, "desc": "keep?"}, "m": {"value": {"x": 1, "y": {"z": 2}}, "desc": None},
              "_wandb": {"value": {"cli_version": "0.31.0"}}}
    out = merge_config(stored, {"m": {"value": {"y": {"w": 3}}, "desc": None}, "b": {"value": [1], "desc": None}})
    assert out["a"] == stored["a"] and out["_wandb"] == stored["_wandb"]
    assert out["m"] == {"value": {"x": 1, "y": {"z": 2, "w": 3}}, "desc": None}
    assert out["b"] == {"value": [1], "desc": None}
    # the wrapper is replaced: a description sent as null is gone, as on the real server
    assert merge_config(stored, {"a": {"value": 2, "desc": None}})["a"] == {"value": 2, "desc": None}
    # a non-dict value replaces a dict
    assert merge_config(stored, {"m": {"value": 5}})["m"] == {"value": 5}


def test_other_process_writes_are_seen(tmp_path) -> None:
    path = str(tmp_path / "shared.db")
    a, b = Store(path), Store(path)
    try:
        seed_project(a, "e", "p", runs=5, seed=1)
        assert len(b.snapshot("e", "p")[1]) == 5
        rec = a.find_run("e", "p", a.snapshot("e", "p")[1][0].name)
        b.upsert({"id": rec.storage_id, "notes": "from b"})
        assert a.get_run("e", "p", rec.name)["notes"] == "from b"
        seed_project(path, "e", "p", runs=2, seed=2)  # a third connection, by path
        assert a.count_runs("e", "p") == 7 and len(a.snapshot("e", "p")[1]) == 7
    finally:
        a.close()
        b.close()


def test_seed_is_deterministic_and_realistic() -> None:
    s1, s2 = Store(), Store()
    ids = seed_project(s1, runs=40, seed=5)
    assert ids == seed_project(s2, runs=40, seed=5)
    assert ids != seed_project(Store(), runs=40, seed=6)
    runs = [s1.get_run("e", "p", i) for i in ids]
    assert [r["config"] for r in runs] == [s2.get_run("e", "p", i)["config"] for i in ids]
    configs = [r["user_config"] for r in runs]
    assert {c["dataset"] for c in configs} == {"cifar10", "cifar100", "mnist"}
    assert 0 < sum("dropout" in c for c in configs) < len(configs)
    assert all(isinstance(c["lr"], float) and isinstance(c["batch_size"], int) for c in configs)
    assert all(isinstance(c["augment"], bool) and c["seed_note"] is None for c in configs)
    assert all(set(c["model"]) == {"depth", "width"} for c in configs)
    assert any(r["config"]["lr"]["desc"] for r in runs)
    assert {r["state"] for r in runs} >= {"finished", "crashed"}
    assert all(r["created_at"].endswith("Z") and len(r["created_at"]) == 20 for r in runs)
    assert all({"acc", "loss", "_step"} <= set(r["summary"]) for r in runs)
    assert len({r["id"] for r in runs}) == 40
    with pytest.raises(ValueError, match="already has runs"):
        seed_project(s1, runs=3, seed=5)


def test_seed_demo_is_idempotent(tmp_path) -> None:
    path = tmp_path / "demo.db"
    assert seed_demo(path) == ("demo", "image-classification")
    assert seed_demo(path) == ("demo", "image-classification")
    store = Store(str(path))
    assert store.count_runs("demo", "image-classification") == 12
    optimizers = [r.to_dict()["user_config"]["optimizer"] for r in store.snapshot("demo", "image-classification")[1]]
    assert optimizers.count("adma") == 2  # the typo `runsync demo` fixes
    store.close()


@pytest.mark.slow
def test_seeding_and_listing_50k_runs_is_fast() -> None:
    store = Store()
    t0 = time.perf_counter()
    ids = seed_project(store, runs=50_000, seed=9)
    assert time.perf_counter() - t0 < 15
    t0 = time.perf_counter()
    seen, after = 0, None
    while True:
        page = page_runs(store, "e", "p", json.dumps({"config.dataset": "cifar10"}), None, 1000, after)
        seen += len(page["items"])
        after = page["end_cursor"]
        if not page["has_next"]:
            break
    assert seen == page["total"] > 0
    page = page_runs(store, "e", "p", json.dumps({"name": {"$in": ids[:200]}}), None, 1000, None)
    assert len(page["items"]) == 200
    assert time.perf_counter() - t0 < 15


def test_cursor_survives_inserts_and_deletes() -> None:
    store = Store()
    ids = seed_project(store, runs=10, seed=1)
    first = page_runs(store, "e", "p", None, None, 4, None)
    store.delete_run("e", "p", first["items"][0][0].name)
    store.delete_run("e", "p", first["items"][-1][0].name)
    for i in range(3):  # created now: after every seeded run
        store.create_run("e", "p", f"late{i}")
    rest, after = [], first["end_cursor"]
    while after:
        page = page_runs(store, "e", "p", None, None, 4, after)
        rest += [r.name for r, _ in page["items"]]
        after = page["end_cursor"] if page["has_next"] else None
    assert rest[:6] == ids[4:]  # nothing skipped or repeated despite the deletes
    assert rest[6:] == ["late0", "late1", "late2"]


@pytest.mark.parametrize("spec", [{"state": {"$near": 1}}, {"$where": "x"}, {"bogus_field": 1},
                                  {"state": {"$in": "x"}}, {"display_name": {"$regex": "("}}, [1]])
def test_bad_filters_raise(spec) -> None:
    with pytest.raises(FilterError):
        compile_filter(spec)


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(-5, 5, allow_nan=False),
                         st.sampled_from(["a", "b", "c"]))


@settings(max_examples=150, deadline=None)
@given(values=st.lists(json_scalars, min_size=1, max_size=12), probe=st.lists(json_scalars, max_size=4))
def test_in_nin_eq_agree_with_python(values, probe) -> None:
    store = Store()
    for i, v in enumerate(values):
        store.create_run("e", "p", f"r{i}", config={"x": v})
    recs = store.snapshot("e", "p")[1]

    def same(a, b) -> bool:  # MongoDB equality: no True == 1, but 1 == 1.0
        return type(a) is type(b) and a == b or (
            isinstance(a, (int, float)) and isinstance(b, (int, float))
            and not isinstance(a, bool) and not isinstance(b, bool) and a == b)

    pick_in = compile_filter({"config.x": {"$in": probe}})
    pick_nin = compile_filter({"config.x": {"$nin": probe}})
    for rec, v in zip(recs, values):
        expected = any(same(v, p) for p in probe)
        assert pick_in(rec) is expected and pick_nin(rec) is not expected
        if probe:
            assert compile_filter({"config.x": probe[0]})(rec) is same(v, probe[0])
