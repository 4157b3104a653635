"""Config writes revert nobody (issue 11 §5b): only the changed top-level keys are sent, so a colleague's
edit made while an import runs stays; on a server that replaces the config instead (older self-hosted W&B),
the first write finds out, that run is restored from the journal, and the rest send whole configs re-read
just before each write.

The colleague is a thread using `wandb.Api` (`run.config[...] = ...; run.update()`), on the same runs, while
the import runs with latency. A sandbox request hook holds runsync's first per-run read until the colleague
is done, so the colleague's edits always land after runsync read the runs and before it writes them: the
interleaving that made the whole-config writes of earlier versions revert half of them.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import wandb
from helpers import edit_cells, invoke, upsert_inputs
from rich.console import Console

import runsync
from runsync.model import ABSENT, Action, Change, RunRecord
from runsync.report.text import render_apply_report
from runsync.sandbox import Store, start
from runsync.writer.apply import MERGE, REPLACE, write_fields

RUNS = 20
DESCS = {"lr": "learning rate", "epochs": "passes over the data", "batch_size": "per device"}


def make_runs(store: Store, n: int = RUNS) -> list[str]:
    ids = [f"run{i:02d}" for i in range(n)]
    for i, run_id in enumerate(ids):
        store.create_run("e", "p", run_id, config={"lr": 0.1 + i / 100, "epochs": 10 + i, "batch_size": 32,
                                                   "model": {"depth": 4 + i, "act": "relu"}},
                         config_descs=DESCS)
    return ids


def new_lr(i: int) -> float:
    return round(0.5 + i / 1000, 6)


def colleague_epochs(i: int) -> int:
    return 700 + i


class Colleague:
    """Sets config.epochs on the runs through wandb.Api, from its own threads, once runsync has read them."""

    def __init__(self, ids: list[str]) -> None:
        self.ids = ids
        self.may_start = threading.Event()
        self.done = threading.Event()
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._work, daemon=True)
        self.thread.start()

    def _work(self) -> None:
        try:
            self.may_start.wait(120)
            api = wandb.Api(timeout=60)

            def one(i_and_id: tuple[int, str]) -> None:
                i, run_id = i_and_id
                run = api.run(f"e/p/{run_id}")
                run.config["epochs"] = colleague_epochs(i)
                run.update()

            with ThreadPoolExecutor(10) as pool:
                list(pool.map(one, enumerate(self.ids)))
        except BaseException as exc:  # reported by the test
            self.errors.append(exc)
        finally:
            self.done.set()


class Gate:
    """A sandbox request hook: lets the colleague start at runsync's first read of the apply, and holds until the
    colleague is done either that read (`hold="read"`: the colleague edited between plan and apply) or runsync's
    first write (`hold="write"`: the colleague edited after runsync read the runs); records writes."""

    def __init__(self, colleague: Colleague, hold: str) -> None:
        self.colleague = colleague
        self.hold = hold
        self.reads = 0
        self.writes = 0
        self.upserts: list[dict] = []
        self._lock = threading.Lock()

    def __call__(self, label: str, variables: dict, is_mutation: bool) -> None:
        if is_mutation:
            with self._lock:
                self.upserts.extend(upsert_inputs(label, variables))
                self.writes += 1
                first_write = self.writes == 1
            if first_write and self.hold == "write":
                assert self.colleague.done.wait(120), "the colleague did not finish"
        elif label.startswith("Runsync"):
            with self._lock:
                self.reads += 1
                first_read = self.reads == 1
            if first_read:
                self.colleague.may_start.set()
                if self.hold == "read":
                    assert self.colleague.done.wait(120), "the colleague did not finish"


def stored(sandbox, run_id: str) -> dict:
    return sandbox.store.get_run("e", "p", run_id)["raw_config"]


def import_lr_with_a_colleague(sandbox, tmp_path: Path, latency_ms: int, hold: str):
    ids = make_runs(sandbox.store)
    sheet = tmp_path / "runs.csv"
    invoke("export", "e/p", "-o", sheet)
    edit_cells(sheet, {(run_id, "config.lr"): new_lr(i) for i, run_id in enumerate(ids)})
    plan = runsync.plan(sheet)
    assert {c.field for c in plan.changes} == {"config.lr"} and len(plan.changes) == RUNS
    colleague = Colleague(ids)
    gate = Gate(colleague, hold)
    sandbox.request_hooks.append(gate)
    sandbox.set_faults(latency_ms=latency_ms)
    try:
        report = runsync.apply(plan, journal=tmp_path / "j.jsonl")
    finally:
        sandbox.set_faults(latency_ms=0)
        sandbox.request_hooks.remove(gate)
    colleague.thread.join(60)
    assert not colleague.errors, colleague.errors
    assert colleague.done.is_set()
    return ids, report, gate


@pytest.mark.parametrize("latency_ms", [300, 120])
def test_merge_a_colleagues_concurrent_edits_all_stay(sandbox, tmp_path, latency_ms):
    # The colleague's edits land after runsync read the runs: only the changed key goes out, so they stay.
    ids, report, gate = import_lr_with_a_colleague(sandbox, tmp_path, latency_ms, hold="write")
    assert report.ok and not report.warnings and report.config_writes == MERGE
    assert len(report.applied) == RUNS and not report.did_not_stick
    for i, run_id in enumerate(ids):
        config = wandb.Api().run(f"e/p/{run_id}").config
        assert config["lr"] == new_lr(i), run_id  # the import's edit
        assert config["epochs"] == colleague_epochs(i), run_id  # the colleague's: not reverted
        assert config["model"] == {"depth": 4 + i, "act": "relu"} and config["batch_size"] == 32
    # Each write carried the changed key only (its description is the one W&B held: the colleague's
    # run.update() re-sends every key with desc null; descriptions are checked in the CLI tests below).
    assert len(gate.upserts) == RUNS
    assert sorted(json.loads(sent["config"])["lr"]["value"] for sent in gate.upserts) == sorted(map(new_lr, range(RUNS)))
    assert all(list(json.loads(sent["config"])) == ["lr"] for sent in gate.upserts), [list(json.loads(s["config"])) for s in gate.upserts]
    # The journal kept the whole config of the first config write only (the server's behaviour was unknown).
    writes = [e for e in map(json.loads, (tmp_path / "j.jsonl").read_text().splitlines()) if e["op"] == "write"]
    assert sum("config_before" in w for w in writes) == 1


@pytest.mark.parametrize("latency_ms", [300, 80])
def test_replace_is_detected_the_first_run_restored_and_the_rest_sent_whole(sandbox, tmp_path, latency_ms):
    sandbox.config_merge = "replace"
    # The colleague's edits land between the plan and the apply's read: the config journaled for the first run
    # (its restore) and the whole configs sent later come from reads made just before the writes, not the plan.
    ids, report, gate = import_lr_with_a_colleague(sandbox, tmp_path, latency_ms, hold="read")
    assert report.config_writes == REPLACE
    assert report.ok, report
    assert len(report.applied) == RUNS
    assert len(report.warnings) == 1 and "replaces a run's whole config" in report.warnings[0]
    events = [json.loads(line) for line in (tmp_path / "j.jsonl").read_text().splitlines()]
    (restore,) = [e for e in events if e["op"] == "restore"]
    first = restore["run"]
    assert set(restore["keys"]) == {"epochs", "batch_size", "model", "_wandb"}
    # The first run: its other keys back (the colleague's epochs included), the import's edit kept.
    i = ids.index(first)
    config = stored(sandbox, first)
    assert config["lr"]["value"] == new_lr(i) and config["epochs"]["value"] == colleague_epochs(i)
    assert config["model"]["value"] == {"depth": 4 + i, "act": "relu"} and "_wandb" in config
    # Nothing lost anywhere: every key of every run, the colleague's edits and the import's.
    for i, run_id in enumerate(ids):
        config = stored(sandbox, run_id)
        assert set(config) == {"lr", "epochs", "batch_size", "model", "_wandb"}, run_id
        assert config["lr"]["value"] == new_lr(i) and config["epochs"]["value"] == colleague_epochs(i), run_id
    # First the changed key alone (the probe), then the restore, then whole configs.
    sent = [set(json.loads(u["config"])) for u in gate.upserts]
    assert sent[0] == {"lr"} and len(sent) == RUNS + 1
    assert all(keys == {"lr", "epochs", "batch_size", "model", "_wandb"} for keys in sent[1:])
    # Every whole-config write is journaled with the config it replaced.
    writes = [e for e in events if e["op"] == "write"]
    assert len(writes) == RUNS and all("config_before" in w for w in writes)
    # ... and the report says so.
    console = Console(record=True, width=300)
    render_apply_report(report, console)
    text = console.export_text()
    assert "warning:" in text and "replaces a run's whole config" in text and first in text


def test_replace_batches_send_configs_read_just_before_them_not_at_the_start(sandbox, tmp_path):
    """On a replacing server the whole config goes out: a colleague's edit made after runsync's first read (once
    the probe is done) must be in what the later batch sends, so the batch's runs are read again first."""
    sandbox.config_merge = "replace"
    ids = make_runs(sandbox.store, 6)
    sheet = tmp_path / "runs.csv"
    invoke("export", "e/p", "-o", sheet)
    edit_cells(sheet, {(run_id, "config.lr"): new_lr(i) for i, run_id in enumerate(ids)})
    plan = runsync.plan(sheet)
    colleague = Colleague(ids[1:])  # not the probe's run (the first): its write and read-back are done by then
    reads = []

    def gate(label: str, variables: dict, is_mutation: bool) -> None:
        if is_mutation or not label.startswith("Runsync"):
            return
        reads.append(label)
        if len(reads) == 2:  # the probe's read-back: the probe is over, the other runs not yet written
            colleague.may_start.set()
            assert colleague.done.wait(120), "the colleague did not finish"

    sandbox.request_hooks.append(gate)
    try:
        report = runsync.apply(plan, journal=tmp_path / "j.jsonl", concurrency=1)
    finally:
        sandbox.request_hooks.remove(gate)
    assert not colleague.errors, colleague.errors
    assert report.ok and report.config_writes == REPLACE, report
    for i, run_id in enumerate(ids):
        config = stored(sandbox, run_id)
        assert config["lr"]["value"] == new_lr(i), run_id
        assert config["epochs"]["value"] == (10 if i == 0 else colleague_epochs(i - 1)), run_id


def test_replace_through_the_cli_keeps_every_key_and_description(sandbox, tmp_path):
    sandbox.config_merge = "replace"
    ids = make_runs(sandbox.store, 5)
    sheet = tmp_path / "runs.xlsx"
    invoke("export", "e/p", "-o", sheet)
    edit_cells(sheet, {(ids[0], "config.model.depth"): 99, (ids[2], "config.lr"): 0.25, (ids[3], "group"): "g",
                       (ids[4], "config.epochs"): 1})
    before = {run_id: stored(sandbox, run_id) for run_id in ids}
    result = invoke("import", sheet, "--yes")
    assert "replaces a run's whole config" in result.stderr and "Applied 4 field changes to 4 runs." in result.stderr
    for run_id in ids:
        config = stored(sandbox, run_id)
        assert set(config) == set(before[run_id])
        for key in DESCS:
            assert config[key]["desc"] == DESCS[key]
    assert stored(sandbox, ids[0])["model"]["value"] == {"depth": 99, "act": "relu"}
    assert stored(sandbox, ids[2])["lr"]["value"] == 0.25 and stored(sandbox, ids[4])["epochs"]["value"] == 1
    assert stored(sandbox, ids[1]) == before[ids[1]]
    # And undo puts every value back, on a replacing server too.
    journal = next((tmp_path / "runs.xlsx.runsync-journals").glob("*.jsonl"))
    invoke("undo", journal, "--yes")
    assert {run_id: stored(sandbox, run_id) for run_id in ids} == before


def test_merge_through_the_cli_sends_only_changed_keys(sandbox, tmp_path):
    ids = make_runs(sandbox.store, 4)
    sheet = tmp_path / "runs.csv"
    invoke("export", "e/p", "-o", sheet)
    edit_cells(sheet, {(ids[1], "config.model.act"): "gelu", (ids[1], "config.lr"): 0.75, (ids[3], "config.batch_size"): 64})
    seen: list[dict] = []
    sandbox.request_hooks.append(lambda label, v, m: seen.append(json.loads(v["input"]["config"])) if m else None)
    result = invoke("import", sheet, "--yes")
    assert "warning" not in result.stderr and "Verified: read 2 written runs back in 1 request." in result.stderr
    assert sorted(sorted(c) for c in seen) == [["batch_size"], ["lr", "model"]]
    assert stored(sandbox, ids[1])["model"] == {"value": {"depth": 5, "act": "gelu"}, "desc": None}
    assert stored(sandbox, ids[1])["lr"] == {"value": 0.75, "desc": "learning rate"}


# -- write_fields, the sandbox switch -----------------------------------------------------------------

def _record(raw: dict) -> RunRecord:
    config = {k: v["value"] for k, v in raw.items() if not k.startswith("_")}
    return RunRecord("r", "sid", "n", (), None, None, None, config, raw)


def _change(path: tuple[str, ...], new) -> Change:
    return Change("r", "n", "config." + ".".join(path), None, new, None, Action.UPDATE, path)


@pytest.mark.parametrize("whole", [False, True])
def test_write_fields_sends_changed_top_level_keys_whole_with_their_description(whole):
    raw = {"lr": {"value": 0.1, "desc": "learning rate"}, "opt": {"value": {"name": "adam", "beta": 0.9}, "desc": "o"},
           "seed": {"value": 3, "desc": None}, "_wandb": {"value": {"cli_version": "0.31.0"}}}
    fields = write_fields(_record(raw), [_change(("opt", "beta"), 0.95), _change(("new",), ABSENT),
                                         _change(("lr",), 0.2)], whole_config=whole)
    config = fields["raw_config"]
    assert config["opt"] == {"value": {"name": "adam", "beta": 0.95}, "desc": "o"}
    assert config["lr"] == {"value": 0.2, "desc": "learning rate"}
    assert config["new"] == {"value": None, "desc": None}
    assert set(config) == ({"lr", "opt", "new", "seed", "_wandb"} if whole else {"lr", "opt", "new"})
    assert raw["opt"]["value"]["beta"] == 0.9  # the record is not changed


@pytest.mark.parametrize("mode", ["merge", "replace"])
def test_sandbox_config_merge_switch(tmp_path, mode):
    with start(db=str(tmp_path / "s.db"), config_merge=mode) as sb:
        sid = sb.store.create_run("e", "p", "r1", config={"a": 1, "b": {"x": 1, "y": 2}}, config_descs={"a": "A"})
        sb.store.upsert({"id": sid, "config": json.dumps({"b": {"value": {"x": 5}, "desc": None}})})
        got = sb.store.get_run("e", "p", "r1")["raw_config"]
        if mode == "merge":
            assert got["a"] == {"value": 1, "desc": "A"} and got["b"]["value"] == {"x": 5, "y": 2} and "_wandb" in got
        else:
            assert got == {"b": {"value": {"x": 5}, "desc": None}}
    with pytest.raises(ValueError):
        start(db=":memory:", config_merge="sometimes")


def test_serve_config_merge_replace_from_the_command_line(tmp_path):
    db = tmp_path / "s.db"
    store = Store(str(db))
    sid = store.create_run("e", "p", "r1", config={"a": 1, "b": 2})
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    proc = subprocess.Popen([sys.executable, "-m", "runsync", "sandbox", "serve", "--db", str(db),
                             "--config-merge", "replace"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        lines = dict(proc.stdout.readline().strip().removeprefix("export ").split("=", 1) for _ in range(2))
        body = json.dumps({"query": "mutation M($input: UpsertBucketInput!) { upsertBucket(input: $input) "
                                    "{ bucket { id } } }",
                           "variables": {"input": {"id": sid, "config": json.dumps({"b": {"value": 3}})}}})
        request = urllib.request.Request(lines["WANDB_BASE_URL"] + "/graphql", body.encode(), headers={
            "Content-Type": "application/json", "Authorization": "Bearer " + lines["WANDB_API_KEY"]})
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert json.loads(answer.read())["data"]["upsertBucket"]["bucket"]["id"] == sid
        assert set(Store(str(db)).get_run("e", "p", "r1")["raw_config"]) == {"b"}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
        store.close()
