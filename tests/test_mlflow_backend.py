"""MLflow as a second tracker behind the backend protocol: addresses, filters, and reads and writes against a
real `mlflow server` (tests/mlflow_server.py), judged by reading back with the plain `MlflowClient`."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import pytest
from test_backend_protocol import _signature_gaps

from runsync.backend import Backend, ProjectAddress, RunPatch, capabilities, connect, parse_project_address
from runsync.backend.mlflow.client import MlflowBackend
from runsync.backend.mlflow.filters import filter_string, order_by
from runsync.backend.wandb.client import WandbBackend
from runsync.errors import BackendError, ConfigError

LONG_PARAM = "κ" * 5999 + "!"  # 6,000 characters: MLflow's limit exactly
# MLflow's keys: letters (any script), digits, spaces and _ - . / : ; values: any text.
UNICODE_TAGS = {"team ü": "α/β ✓", "ключ": "значение", "a/b: c.d-e": "🔥 hot", "quote": 'say "hi" it\'s'}


def test_the_mlflow_backend_implements_the_protocol() -> None:
    backend = MlflowBackend(tracking_uri="http://127.0.0.1:9")  # nothing is connected until first use
    assert isinstance(backend, Backend) and _signature_gaps(MlflowBackend) == []
    caps = backend.capabilities
    assert caps.tracker == "MLflow" and caps.min_per_page <= caps.default_per_page
    assert "tag_values" in caps.deletable and "config" in caps.add_only and "config" not in caps.deletable
    assert "summary" not in caps.editable and "tags" not in caps.editable  # metrics read-only; no tag list
    assert caps.filter_value("metrics.loss", "0.5") == 0.5 and caps.filter_value("params.lr", "0.5") == "0.5"


def test_the_factory_picks_mlflow_only_for_its_addresses() -> None:
    for address, owner, name in [("mlflow:exp ü/7", "name", "exp ü/7"), (" MLflow:id=12 ", "id", "12"),
                                 ("mlflow: spaced ", "name", "spaced")]:
        parsed = parse_project_address(address)
        assert (parsed.tracker, parsed.owner, parsed.name) == ("mlflow", owner, name), address
        assert parse_project_address(parsed.path) == parsed  # the recorded path names the same experiment
        assert isinstance(connect(address, tracking_uri="http://127.0.0.1:9"), MlflowBackend)
        assert capabilities(address).tracker == "MLflow"
    for address in ("e/p", "mlflow/proj", "https://wandb.ai/mlflow/p/runs/x"):  # an entity named mlflow is W&B's
        assert isinstance(connect(address, base_url="http://127.0.0.1:9"), WandbBackend), address
        assert parse_project_address(address).tracker == "wandb"
    assert parse_project_address("e/p") == ProjectAddress("wandb", "e", "p") and parse_project_address("e/p").path == "e/p"
    for bad, says in [("mlflow:", "names no MLflow experiment"), ("mlflow:id=x7", "id is a number")]:
        with pytest.raises(ConfigError, match=says):
            parse_project_address(bad)


@pytest.mark.parametrize("filters, expected", [
    ({"config.lr": 0.01}, "params.`lr` = '0.01'"),
    ({"tags.team ü": "α", "state": "finished"}, "tags.`team ü` = 'α' and attributes.`status` = 'FINISHED'"),
    ({"summary.loss": {"$lt": 0.5, "$gte": 0}}, "metrics.`loss` < 0.5 and metrics.`loss` >= 0"),
    ({"id": {"$in": ["a1", "b2"]}}, "attributes.run_id IN ('a1', 'b2')"),
    ({"params.opt": {"$in": ["adam"]}}, "params.`opt` = 'adam'"),
    # times as W&B filters take them (ISO 8601, UTC unless zoned), or MLflow's own milliseconds
    ({"created_at": {"$gte": "2023-11-14T22:13:21Z"}}, "attributes.`start_time` >= 1700000001000"),
    ({"created_at": {"$lt": "2023-11-14T23:13:21.5+01:00"}}, "attributes.`start_time` < 1700000001500"),
    ({"created_at": {"$gt": "2023-11-15"}}, "attributes.`start_time` > 1700006400000"),
    ({"start_time": {"$gt": 1700000001000}}, "attributes.`start_time` > 1700000001000"),
    ({"$and": [{"tags.k.x": "it's"}, {"params.p": {"$exists": False}}]},
     "tags.`k.x` = \"it's\" and params.`p` IS NULL"),
    ("metrics.acc > 0.9 and params.model LIKE 'res%'", "metrics.acc > 0.9 and params.model LIKE 'res%'"),
    (None, ""),
])
def test_runsync_filters_become_mlflow_filter_strings(filters: Any, expected: str) -> None:
    assert filter_string(filters) == expected


@pytest.mark.parametrize("filters, says", [
    ({"$or": [{"config.a": "1"}, {"config.a": "2"}]}, "no \\$or"),
    ({"config.opt": {"$in": ["adam", "sgd"]}}, "no `or`"),
    ({"name": {"$regex": "^x"}}, "no regular expressions"),
    ({"config.lr": {"$gt": "0.1"}}, "as text, with = and != only"),
    ({"summary.loss": "low"}, "with a number"),
    ({"created_at": {"$gt": "last tuesday"}}, "is not a time"),
    ({"group": "g"}, "no run field 'group'"),
    ({"tags.t": "both ' and \""}, "both kinds of quote"),
])
def test_a_filter_mlflow_cannot_run_is_refused_before_sending(filters: Any, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        filter_string(filters)


def test_orders_become_mlflow_order_by() -> None:
    assert order_by(None) == ["attributes.start_time ASC", "attributes.run_id ASC"]
    assert order_by("-config.lr rate") == ["-config.lr rate"]  # MLflow's own form, as is
    assert order_by("-summary.loss") == ["metrics.`loss` DESC", "attributes.run_id ASC"]
    assert order_by("+name") == ["attributes.`run_name` ASC", "attributes.run_id ASC"]


def test_log_batch_pieces_keep_to_mlflows_count_and_size() -> None:
    """100 keys and ~1 MB of JSON a call (mlflow/utils/validation.py). The 3.17 server measures `len()` of the
    parsed request dict, so it never refuses a big one: the size split is checked here, not by the server."""
    from runsync.backend.mlflow.writes import MAX_BATCH_BYTES, _chunks

    small = {f"t{n}": "v" for n in range(250)}
    assert [len(c) for c in _chunks(small)] == [100, 100, 50]
    assert [k for c in _chunks(small) for k in c] == list(small)  # every key once, in order
    escaped = {f"k{n}": '"\\' * 4000 for n in range(100)}  # 8,000 characters, 16,000 once in JSON
    pieces = _chunks(escaped)
    assert len(pieces) == 2 and {k: v for c in pieces for k, v in c.items()} == escaped
    for piece in pieces:
        assert len(json.dumps([{"key": k, "value": v} for k, v in piece.items()])) <= MAX_BATCH_BYTES


@dataclass
class Seeded:
    client: Any
    experiment: str  # name
    experiment_id: str
    runs: dict[str, str]  # label -> run id
    other_run: str  # in another experiment
    deleted_run: str


@pytest.fixture
def seeded(experiment: str, mlflow_uri: str) -> Seeded:
    """Runs of my own: unicode tags, a 6,000-character param, 150 tags on one run, one still running, a run in a
    second experiment and a deleted one."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    client = MlflowClient(mlflow_uri)
    exp_id = client.get_experiment_by_name(experiment).experiment_id
    start = 1_700_000_000_000
    runs = {}
    for n, label in enumerate(["wide", "unicode", "running"]):
        run = client.create_run(exp_id, start_time=start + n * 1000, run_name=f"{label} run ✓")
        runs[label] = run.info.run_id
    wide = runs["wide"]
    tags = [RunTag(f"t{n:03d}", f"v-{n}-ü") for n in range(150)]
    client.log_batch(wide, tags=tags[:100])
    client.log_batch(wide, tags=tags[100:], params=[Param("long", LONG_PARAM), Param("lr", "0.01")],
                     metrics=[Metric("loss", 0.25, 0, 0), Metric("loss", 0.125, 0, 1)])
    client.log_batch(runs["unicode"], tags=[RunTag(k, v) for k, v in UNICODE_TAGS.items()],
                     params=[Param("opt", "adam ü"), Param("lr", "0.1")])
    client.set_tag(runs["unicode"], "mlflow.note.content", "first line\nsecond ✓")
    for label in ("wide", "unicode"):
        client.set_terminated(runs[label])
    gone = client.create_run(exp_id, start_time=start + 9000, run_name="gone").info.run_id
    client.delete_run(gone)
    other_exp = client.create_experiment(f"{experiment} other")
    other = client.create_run(other_exp, run_name="elsewhere").info.run_id
    return Seeded(client, experiment, exp_id, runs, other, gone)


@pytest.mark.mlflow
def test_listing_gives_the_experiments_active_runs_as_records(seeded: Seeded) -> None:
    backend = connect(f"mlflow:{seeded.experiment}")
    totals: list[int] = []
    records = list(backend.iter_runs(f"mlflow:{seeded.experiment}", with_summary=True, on_total=totals.append))
    assert [r.id for r in records] == [seeded.runs[k] for k in ("wide", "unicode", "running")]  # oldest first
    assert totals == [3]
    wide, uni, running = records
    assert wide.storage_id == wide.id and wide.name == "wide run ✓" and wide.state == "finished"
    assert wide.config == {"long": LONG_PARAM, "lr": "0.01"} and len(wide.config["long"]) == 6000
    assert len(wide.tag_values) == 150 and wide.tag_values["t149"] == "v-149-ü"
    assert wide.summary == {"loss": 0.125}  # the latest point
    assert wide.system_tags.get("mlflow.runName") == "wide run ✓" and not any(
        k.startswith("mlflow.") for k in wide.tag_values)
    assert uni.tag_values == UNICODE_TAGS and uni.notes == "first line\nsecond ✓"
    assert running.state == "running" and running.notes is None and running.config == {}
    assert wide.url and wide.url.endswith(f"/#/experiments/{seeded.experiment_id}/runs/{wide.id}")
    assert wide.created_at == "2023-11-14T22:13:20"
    by_id = list(backend.iter_runs(f"mlflow:id={seeded.experiment_id}"))
    assert [r.id for r in by_id] == [r.id for r in records] and by_id[0].summary == {}  # no summary asked


@pytest.mark.mlflow
def test_listing_pages_filters_orders_and_limits(seeded: Seeded) -> None:
    project = f"mlflow:{seeded.experiment}"
    backend = connect(project)
    paged = [r.id for r in backend.iter_runs(project, per_page=1)]
    assert paged == [seeded.runs[k] for k in ("wide", "unicode", "running")]
    newest = [r.id for r in backend.iter_runs(project, order="-created_at", limit=2, per_page=1)]
    assert newest == [seeded.runs["running"], seeded.runs["unicode"]]
    for filters, labels in [({"config.opt": "adam ü"}, ["unicode"]), ({"tags.team ü": "α/β ✓"}, ["unicode"]),
                            ({"state": "running"}, ["running"]), ({"tags.ключ": "значение"}, ["unicode"]),
                            ({"summary.loss": {"$lt": 0.2}}, ["wide"]), ({"config.lr": {"$exists": True}},
                                                                         ["wide", "unicode"]),
                            ("params.lr = '0.1' and attributes.run_name LIKE 'uni%'", ["unicode"]),
                            # start times 1_700_000_000_000 + 0, 1000, 2000 ms: 2023-11-14T22:13:20Z + 0, 1, 2 s
                            ({"created_at": {"$gte": "2023-11-14T22:13:21Z"}}, ["unicode", "running"]),
                            ({"created_at": {"$lt": "2023-11-14T23:13:21+01:00"}}, ["wide"])]:
        got = [r.id for r in backend.iter_runs(project, filters=filters)]
        assert got == [seeded.runs[k] for k in labels], filters
    with pytest.raises(BackendError, match="cannot list the runs.*bogus"):
        list(backend.iter_runs(project, filters="bogus.x = 1"))
    with pytest.raises(BackendError, match="has no experiment mlflow:no such ü"):
        list(connect("mlflow:no such ü").iter_runs("mlflow:no such ü"))


@pytest.mark.mlflow
def test_fetch_by_ids_reads_only_this_experiments_active_runs(seeded: Seeded) -> None:
    project = f"mlflow:{seeded.experiment}"
    asked = [seeded.runs["unicode"], seeded.other_run, seeded.deleted_run, "0" * 32, seeded.runs["wide"]]
    counted: list[None] = []
    found = connect(project).fetch_by_ids(project, asked, with_summary=True, on_run=lambda: counted.append(None))
    assert set(found) == {seeded.runs["unicode"], seeded.runs["wide"]} and len(counted) == 2
    assert found[seeded.runs["wide"]].summary == {"loss": 0.125}
    assert connect(project).fetch_by_ids(project, []) == {}


def _run(seeded: Seeded, label: str) -> Any:
    return seeded.client.get_run(seeded.runs[label]).data


@pytest.mark.mlflow
def test_writes_set_delete_add_rename_and_describe(seeded: Seeded) -> None:
    project = f"mlflow:{seeded.experiment}"
    backend = connect(project)
    wide, uni = seeded.runs["wide"], seeded.runs["unicode"]
    # 100 tags (MLflow's count per call) of 8,000 characters that JSON doubles: 1.6 MB, over MLflow's 1 MB a call
    many = {f"new {n} ü": '"\\ü' * 2000 + "\n" * 2000 for n in range(100)}
    outcomes = backend.write_runs([
        RunPatch(wide, {"tag_values": {**many, "t000": None, "t001": "changed ✓"}, "raw_config": {"new ü": 3.5},
                        "name": "renamed 🧪"}),
        RunPatch(uni, {"tag_values": {"team ü": None, "ключ": "новое ✓"}, "notes": "",
                       "raw_config": {"lr": "0.1", "added": "x'y"}}),  # lr as held: sent again, no change
    ])
    assert [(o.storage_id, o.error) for o in outcomes] == [(wide, None), (uni, None)]
    data = _run(seeded, "wide")
    assert all(data.tags[k] == v for k, v in many.items()) and "t000" not in data.tags
    assert data.tags["t001"] == "changed ✓" and data.tags["t149"] == "v-149-ü"
    assert data.params["new ü"] == "3.5" and data.params["long"] == LONG_PARAM
    assert seeded.client.get_run(wide).info.run_name == "renamed 🧪" and data.tags["mlflow.runName"] == "renamed 🧪"
    data = _run(seeded, "unicode")
    assert "team ü" not in data.tags and data.tags["ключ"] == "новое ✓" and data.tags["a/b: c.d-e"] == "🔥 hot"
    assert "mlflow.note.content" not in data.tags  # the emptied description is gone, not ""
    assert data.params == {"opt": "adam ü", "lr": "0.1", "added": "x'y"}
    again = backend.write_runs([RunPatch(uni, {"notes": "new ✓ note", "tag_values": {"team ü": None}})])
    assert again[0].landed and _run(seeded, "unicode").tags["mlflow.note.content"] == "new ✓ note"


@pytest.mark.mlflow
def test_a_changed_param_fails_its_run_whole_and_names_the_param(seeded: Seeded) -> None:
    project = f"mlflow:{seeded.experiment}"
    wide, uni = seeded.runs["wide"], seeded.runs["unicode"]
    before = _run(seeded, "unicode")
    outcomes = connect(project).write_runs([
        RunPatch(uni, {"raw_config": {"fresh": "1", "opt": "sgd"}, "tag_values": {"ключ": "never"}, "name": "no"}),
        RunPatch(wide, {"tag_values": {"landed": "yes"}}),
    ])
    assert not outcomes[0].landed and outcomes[1].landed
    assert uni in (outcomes[0].error or "") and "param 'opt'" in (outcomes[0].error or "")
    assert "cannot change a logged param" in (outcomes[0].error or "")
    after = _run(seeded, "unicode")
    assert after.params == before.params and after.tags == before.tags  # no partial write: "fresh" not added
    assert seeded.client.get_run(uni).info.run_name == "unicode run ✓"
    assert _run(seeded, "wide").tags["landed"] == "yes"


@pytest.mark.mlflow
@pytest.mark.parametrize("fields, says", [
    ({"tag_values": {"mlflow.user": "me"}}, "tag 'mlflow.user' is MLflow's own"),
    ({"group": "g"}, "no a group"),
    ({"summary": {"loss": 1}}, "no writable metrics"),
    ({"name": "  "}, "cannot be emptied"),
    ({"raw_config": {"huge": "x" * 6001}}, "6,001 characters; MLflow takes at most 6,000"),
    ({"tag_values": {"big": "y" * 8001}}, "8,001 characters"),
    ({"raw_config": {"lr": None}}, "cannot delete or empty a param"),
    ({"tag_values": {"emoji 🧪": "x"}}, "tag key 'emoji 🧪': MLflow keys hold only"),
    ({"raw_config": {"a//b": "x"}}, "param key 'a//b': MLflow refuses a key that reads as another path"),
])
def test_what_mlflow_would_refuse_or_cut_is_not_written(seeded: Seeded, fields: dict, says: str) -> None:
    uni = seeded.runs["unicode"]
    before = seeded.client.get_run(uni)
    fields = {**fields, "tag_values": {**fields.get("tag_values", {}), "beside": "never"}}
    [outcome] = connect(f"mlflow:{seeded.experiment}").write_runs([RunPatch(uni, fields)])
    assert not outcome.landed and says.replace("no a", "no") in (outcome.error or "").replace("no a", "no")
    after = seeded.client.get_run(uni)
    assert after.data.tags == before.data.tags and after.data.params == before.data.params


@pytest.mark.mlflow
def test_a_write_to_a_deleted_run_fails_with_the_servers_reason(seeded: Seeded) -> None:
    backend = connect(f"mlflow:{seeded.experiment}")
    [tagged, param] = backend.write_runs([RunPatch(seeded.deleted_run, {"tag_values": {"a": "b"}}),
                                          RunPatch(seeded.deleted_run, {"raw_config": {"a": "b"}})])
    assert not tagged.landed and seeded.deleted_run in (tagged.error or "")
    assert not param.landed and "deleted" in (param.error or "")
    assert "a" not in seeded.client.get_run(seeded.deleted_run).data.tags


@pytest.mark.mlflow
def test_nothing_listening_or_no_uri_is_one_line_at_once(mlflow_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    started = time.monotonic()
    with pytest.raises(BackendError, match=f"nothing answers at MLflow tracking server {dead}") as caught:
        MlflowBackend(tracking_uri=dead).login()
    assert time.monotonic() - started < 10 and "\n" not in caught.value.message
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    with pytest.raises(ConfigError, match="no MLflow tracking server given"):
        list(connect("mlflow:x").iter_runs("mlflow:x"))
