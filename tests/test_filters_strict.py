"""Filters W&B refuses: the strict sandbox answers them HTTP 500 as the service does, runsync checks them first.

Through the real wandb client: the raw client against the strict sandbox fails (after its own retries);
runsync rewrites `$all` and gets the right runs, refuses a bare list on tags and non-RE2 regexes at once
with the operator named, and a listing answered with HTTP 500 is not retried for a minute.
"""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import wandb
from helpers import invoke

from runsync.backend.wandb import reads as backend_wandb
from runsync.backend.wandb.client import WandbBackend
from runsync.backend.wandb.filters import check_filters, re2_problem
from runsync.errors import BackendError, ConfigError
from runsync.sandbox import Sandbox
from runsync.sandbox.filters import _not_re2, service_refusal

# -- the check itself -------------------------------------------------------------------------------

RE2_OK = [
    "^(swift|bold)-", "river", r"a\d+b", r"(?i)ABC", r"(?P<x>a)", r"(?<x>a)b", r"a{2,3}?", r"[(?=]",
    r"\(?=x", r"\Qa(?=b\E", r"\pL+", r"[[:alpha:]]+", r"a*?b+?", r"x\12", r"{abc}", r"(?s:.)", r"\\1",
]
NOT_RE2 = [  # (pattern, what the message must name)
    (r"(?=x)", "look-ahead"), (r"a(?!b)", "look-ahead"), (r"(?<=a)b", "look-behind"), (r"(?<!a)b", "look-behind"),
    (r"(a)\1", "back-reference"), (r"(?P<n>a)(?P=n)", "back-reference"), (r"a++", "possessive"),
    (r"a{2}+", "possessive"), (r"(?>a)", "atomic"), (r"(a)(?(1)b|c)", "conditional"), (r"(?x)a b", "(?x)"),
    (r"end\Z", r"\Z"),
]


@pytest.mark.parametrize("pattern", RE2_OK)
def test_re2_patterns_pass(pattern: str) -> None:
    assert re2_problem(pattern) is None


@pytest.mark.parametrize(("pattern", "named"), NOT_RE2)
def test_non_re2_patterns_are_named(pattern: str, named: str) -> None:
    problem = re2_problem(pattern)
    assert problem is not None and named in problem


def _python_parses(pattern: str) -> bool:
    import re
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            re.compile(pattern)
    except re.error:
        return False
    return True


@pytest.mark.parametrize("pattern", [p for p in RE2_OK + [p for p, _ in NOT_RE2] if _python_parses(p)])
def test_runsync_and_sandbox_agree_on_re2(pattern: str) -> None:
    """Two independent checks (a scan in runsync, Python's own parse tree in the sandbox) agree wherever
    Python can parse the pattern at all (elsewhere the sandbox answers a GraphQL error)."""
    assert (re2_problem(pattern) is None) == (_not_re2(pattern) is None)


REFUSED = [  # (filters, words the one-line message must contain)
    ({"tags": ["baseline", "prod"]}, ["tags", "bare list"]),
    ({"$or": [{"state": "finished"}, {"tags": ["x"]}]}, ["tags", "bare list"]),
    ({"display_name": {"$regex": "^(?!swift)"}}, ["$regex", "look-ahead", "display_name"]),
    ({"$and": [{"group": {"$regex": r"(exp)-\1"}}]}, ["$regex", "back-reference"]),
    ({"config.lr": {"$foo": 1}}, ["$foo", "config.lr"]),
    ({"tags": {"$size": 2}}, ["$size"]),
    ({"$where": "this.x"}, ["$where"]),
    ({"state": {"$in": "finished"}}, ["$in", "list"]),
    ({"tags": {"$all": "baseline"}}, ["$all", "list"]),
]


@pytest.mark.parametrize(("spec", "words"), REFUSED)
def test_refused_filters_name_the_operator(spec: dict, words: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        check_filters(spec)
    message = caught.value.message
    assert "\n" not in message
    for word in words:
        assert word in message, message


@pytest.mark.parametrize("spec", [
    {"config.dataset": "cifar10"}, {"summary_metrics.acc": {"$gt": 0.5}}, {"tags": "baseline"},
    {"tags": {"$in": ["a"]}, "state": {"$ne": "crashed"}}, {"display_name": {"$regex": "^s", "$options": "i"}},
    {"name": {"$in": ["r1", "r2"]}}, {"displayName": "x"}, {"sweep": "abc"}, {"created_at": {"$gt": "2024-01-01"}},
    {"createdAt": {"$lte": "2024-01-01"}}, {"$nor": [{"jobType": "eval"}]}, {"duration": {"$exists": True}},
    {"config.layers": [1, 2]}, {"config.model": {"depth": 3}},
])
def test_documented_filters_pass_unchanged(spec: dict) -> None:
    assert check_filters(spec) == spec


def test_all_becomes_an_and_of_ins() -> None:
    assert check_filters({"tags": {"$all": ["a", "b"]}, "state": "finished"}) == {
        "state": "finished", "$and": [{"tags": {"$in": ["a"]}}, {"tags": {"$in": ["b"]}}]}
    # nested, beside another operator, and into an existing $and
    assert check_filters({"$and": [{"group": "g"}], "tags": {"$all": ["a"], "$nin": ["debug"]}}) == {
        "$and": [{"group": "g"}, {"tags": {"$in": ["a"]}}], "tags": {"$nin": ["debug"]}}
    assert check_filters({"$or": [{"tags": {"$all": []}}]}) == {"$or": [{"$and": [{"tags": {"$in": []}}]}]}


def test_sandbox_refusals() -> None:
    assert service_refusal({"tags": {"$all": ["a"]}}) == "$all on tags"
    assert service_refusal({"$or": [{"state": "x"}, {"tags": ["a"]}]}) == "a bare list on tags"
    assert service_refusal({"x": {"$not": {"$regex": "(?=a)"}}}) == "look-around"
    for fine in ({"tags": {"$in": ["a"]}}, {"config.tags": ["a"]}, {"display_name": {"$regex": "^a"}}, {}):
        assert service_refusal(fine) is None


# -- through the real client ------------------------------------------------------------------------

def _ids_with_all_tags(sb: Sandbox, wanted: set[str]) -> set[str]:
    _, ordered, _ = sb.store.snapshot("e", "p")
    return {r.name for r in ordered if wanted <= set(r.tag_list)}


@pytest.mark.parametrize("spec", [
    {"tags": {"$all": ["baseline"]}},
    {"tags": ["baseline", "prod"]},
    {"display_name": {"$regex": "^(?!swift)"}},
])
def test_raw_client_gets_an_error_from_the_strict_sandbox(seeded_sandbox: Sandbox, spec: dict) -> None:
    api = wandb.Api(timeout=3)
    started = time.monotonic()
    with pytest.raises(Exception):  # noqa: B017 - the client's own error types vary by version
        len(api.runs("e/p", filters=spec))
    assert time.monotonic() - started < 15
    # Lenient: the same filter is answered.
    seeded_sandbox.strict_filters = False
    assert len(wandb.Api(timeout=10).runs("e/p", filters=spec)) >= 0


@pytest.mark.parametrize("tags", [["baseline"], ["baseline", "sweep"], ["prod", "v2"], ["résumé", "debug", "prod"]])
def test_runsync_rewrites_all_and_gets_the_right_runs(seeded_sandbox: Sandbox, tmp_path: Path, tags: list) -> None:
    from runsync.sandbox import seed_project

    seed_project(seeded_sandbox.store, "e", "p", runs=90, seed=4)  # enough runs for every combination
    expected = _ids_with_all_tags(seeded_sandbox, set(tags))
    out = tmp_path / "runs.csv"
    invoke("export", "e/p", "--filters", json.dumps({"tags": {"$all": tags}}), "-o", out)
    with out.open(encoding="utf-8-sig") as fh:
        got = {row["id"] for row in csv.DictReader(fh)}
    assert got == expected
    if len(tags) > 1:
        assert len(expected) < len(_ids_with_all_tags(seeded_sandbox, {tags[0]}))  # $all, not $in


@pytest.mark.parametrize(("spec", "words"), [
    ({"tags": ["baseline"]}, ["bare list", "tags"]),
    ({"display_name": {"$regex": "(?<=swift)-"}}, ["$regex", "look-behind"]),
    ({"group": {"$regex": "a++"}}, ["$regex", "possessive"]),
    ({"config.lr": {"$foo": 1}}, ["$foo"]),
])
def test_runsync_refuses_quickly_sending_nothing(seeded_sandbox: Sandbox, tmp_path: Path, spec: dict,
                                                 words: list[str]) -> None:
    seeded_sandbox.reset_stats()
    started = time.monotonic()
    result = invoke("export", "e/p", "--filters", json.dumps(spec), "-o", tmp_path / "x.csv", exit_code=1)
    assert time.monotonic() - started < 2
    for word in words:
        assert word in result.stderr, result.stderr
    assert not (tmp_path / "x.csv").exists()
    assert seeded_sandbox.stats()["operations"].get("RunsyncRuns", 0) == 0


def test_a_filter_answered_with_500_fails_in_seconds_naming_the_filter(seeded_sandbox: Sandbox,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # As if runsync's check missed one: the service answers it HTTP 500, the client retries until its deadline.
    monkeypatch.setattr(backend_wandb, "check_filters", lambda f: f)
    backend = WandbBackend(filter_timeout=3)
    spec = {"tags": {"$all": ["baseline", "prod"]}}
    started = time.monotonic()
    with pytest.raises(BackendError) as caught:
        list(backend.iter_runs("e/p", filters=spec))
    assert time.monotonic() - started < 12
    message = caught.value.message
    assert "failed on the filter" in message and json.dumps(spec) in message
    assert seeded_sandbox.url in message


def test_a_failing_server_is_not_blamed_on_the_filter(seeded_sandbox: Sandbox) -> None:
    backend = WandbBackend(filter_timeout=3)
    assert len(list(backend.iter_runs("e/p", filters={"state": "finished"}))) > 0  # connected, filter fine
    seeded_sandbox.set_faults(error_rate=1.0)
    started = time.monotonic()
    with pytest.raises(BackendError) as caught:
        list(backend.iter_runs("e/p", filters={"state": "finished"}))
    assert time.monotonic() - started < 12
    assert "is failing" in caught.value.message and '{"state": "finished"}' in caught.value.message
    assert "failed on the filter" not in caught.value.message


def test_ids_listing_is_never_checked(seeded_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """runsync's own `name $in` reads skip the check (and the bounded first page) entirely."""
    def boom(_: object) -> None:
        raise AssertionError("checked")

    monkeypatch.setattr(backend_wandb, "check_filters", boom)
    _, ordered, _ = seeded_sandbox.store.snapshot("e", "p")
    ids = [r.name for r in ordered[:5]]
    assert set(WandbBackend().fetch_by_ids("e/p", ids)) == set(ids)


def test_serve_lenient_filters_switch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`runsync sandbox serve --lenient-filters` answers `tags` + `$all`; without it: HTTP 500."""
    from runsync.sandbox import seed_project

    db = tmp_path / "sb.db"
    seed_project(str(db), "e", "p", runs=20, seed=2)
    results = {}
    for lenient in (True, False):
        args = [sys.executable, "-m", "runsync", "sandbox", "serve", "--db", str(db)]
        proc = subprocess.Popen(args + (["--lenient-filters"] if lenient else []), stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True, env={**os.environ, "NO_COLOR": "1"})
        try:
            env = dict(line.removeprefix("export ").strip().split("=", 1)
                       for line in (proc.stdout.readline(), proc.stdout.readline()))  # type: ignore[union-attr]
            for key, value in env.items():
                monkeypatch.setenv(key, value)
            try:
                results[lenient] = len(wandb.Api(timeout=3).runs("e/p", filters={"tags": {"$all": ["baseline"]}}))
            except Exception as exc:  # noqa: BLE001
                results[lenient] = exc
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    assert isinstance(results[True], int) and results[True] > 0
    assert isinstance(results[False], Exception)


# -- --filter KEY=VALUE on fields that are always text ------------------------------------------------

@pytest.fixture
def texty(sandbox: Sandbox) -> Sandbox:
    store = sandbox.store
    store.create_run("e", "p", "007", display_name="1e3", tags=["2024", "x"], group="2024", job_type="true",
                     config={"seed": 7, "tag": "2024"})
    store.create_run("e", "p", "t2", display_name="1000", tags=["2024"], group="null", job_type="1",
                     config={"seed": 2024, "tag": 2024})
    store.create_run("e", "p", "t3", display_name="-0.5", tags=["1.50", "null"], group="x", job_type="false",
                     state="crashed", config={"seed": 1.5, "tag": None})
    return sandbox


def _exported_ids(tmp_path: Path, *args: str) -> set[str]:
    out = tmp_path / "sel.csv"
    invoke("export", "e/p", *args, "-o", out, "--overwrite")
    with out.open(encoding="utf-8-sig") as fh:
        return {row["id"] for row in csv.DictReader(fh)}


@pytest.mark.parametrize(("pairs", "ids"), [
    (["tags=2024"], {"007", "t2"}),
    (["tags=1.50"], {"t3"}),
    (["tags=null"], {"t3"}),
    (["group=2024"], {"007"}),
    (["group=null"], {"t2"}),
    (["display_name=1e3"], {"007"}),
    (["display_name=-0.5"], {"t3"}),
    (["job_type=true"], {"007"}),
    (["job_type=1"], {"t2"}),
    (["name=007"], {"007"}),
    (["tags=2024", "job_type=1"], {"t2"}),
    (['tags="2024"'], {"007", "t2"}),  # JSON text is still that text
    (["config.seed=2024"], {"t2"}),  # a config value is still JSON: the number
    (["config.tag=2024"], {"t2"}),
    (['config.tag="2024"'], {"007"}),
    (['state={"$in": ["crashed"]}'], {"t3"}),  # an operator is still one
])
def test_filter_on_a_text_field_compares_as_text(texty: Sandbox, tmp_path: Path, pairs: list[str],
                                                 ids: set[str]) -> None:
    args = [a for pair in pairs for a in ("--filter", pair)]
    assert _exported_ids(tmp_path, *args) == ids
    # The oracle: the plain client, with the filter written out by hand.
    spec = {"$and": [{k: json.loads(v) if k.startswith("config.") or v.startswith(("{", '"')) else v
                      for k, v in [p.split("=", 1)]} for p in pairs]}
    assert {r.id for r in wandb.Api().runs("e/p", filters=spec)} == ids
