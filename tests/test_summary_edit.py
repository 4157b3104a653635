"""Summary metrics, editable on request (issue 12 §1): judged through the plain wandb client and the store."""
from __future__ import annotations

import json
import math

import openpyxl
import pytest
import wandb
from helpers import edit_cells, invoke

import runsync

HIST = {"_type": "histogram", "values": [1, 2, 3], "bins": [0, 1, 2, 3]}


@pytest.fixture
def metrics(sandbox):
    store = sandbox.store
    store.create_run("e", "p", "m1", summary={"acc": 0.91, "epochs_done": 12, "loss": 0.3, "_step": 99,
                                              "_runtime": 12.5, "hist": HIST, "note": "ok"})
    store.create_run("e", "p", "m2", summary={"acc": math.nan, "epochs_done": 3, "loss": math.inf, "_step": 5})
    store.create_run("e", "p", "m3", summary={"acc": 0.5, "epochs_done": 7, "_step": 1}, state="running")
    return sandbox


def stored_summary(sandbox, run_id: str) -> dict:
    return sandbox.store.get_run("e", "p", run_id)["summary"]


def client_summary(run_id: str) -> dict:
    return dict(wandb.Api().run(f"e/p/{run_id}").summary)


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_summary_is_read_only_unless_exported_editable(metrics, tmp_path, fmt):
    sheet = tmp_path / f"ro.{fmt}"
    invoke("export", "e/p", "-o", sheet, "--summary", "acc,epochs_done")
    edit_cells(sheet, {("m1", "summary.acc"): 0.95})
    assert "read-only" in invoke("import", sheet, "--dry-run", exit_code=1).stderr
    editable = tmp_path / f"rw.{fmt}"
    invoke("export", "e/p", "-o", editable, "--summary", "acc,epochs_done,loss", "--edit-summary")
    assert runsync.plan(editable).empty  # NaN and inf come back as they went out
    if fmt == "xlsx":  # marked in the file: not greyed, and the header note says so
        ws = openpyxl.load_workbook(editable)["runs"]
        header = {c.value: c for c in ws[1]}
        assert "editable" in header["summary.acc"].comment.text
        assert "editable" not in header["state"].comment.text


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_an_edit_lands_and_nothing_else_in_the_summary_moves(metrics, tmp_path, fmt):
    before = {rid: stored_summary(metrics, rid) for rid in ("m1", "m2", "m3")}
    sheet = tmp_path / f"runs.{fmt}"
    invoke("export", "e/p", "-o", sheet, "--summary", "acc,epochs_done,loss", "--edit-summary")
    edit_cells(sheet, {("m1", "summary.acc"): 0.93, ("m2", "summary.epochs_done"): 4, ("m1", "summary.loss"): None})
    doc = json.loads(invoke("import", sheet, "--dry-run", "--format", "json").stdout)
    assert sorted((c["run_id"], c["field"]) for c in doc["changes"]) == [
        ("m1", "summary.acc"), ("m1", "summary.loss"), ("m2", "summary.epochs_done")]
    plan = runsync.plan(sheet)
    reads = []

    def run_logs_meanwhile(label: str, variables: dict, is_mutation: bool) -> None:
        # After apply's first read of the runs and before its first write, m1 logs: a new metric, a newer value.
        if not is_mutation and "Runs" not in label:
            return  # the client's own login query
        reads.append(is_mutation)
        if reads in ([False, False], [False, True]):
            metrics.store.upsert({"id": metrics.store.find_run("e", "p", "m1").storage_id,
                                  "summaryMetrics": json.dumps({"lr_final": 0.001, "epochs_done": 13})})

    metrics.request_hooks.append(run_logs_meanwhile)
    try:
        report = runsync.apply(plan, journal=tmp_path / "j.jsonl", concurrency=1)
    finally:
        metrics.request_hooks.remove(run_logs_meanwhile)
    assert report.ok and len(report.applied) == 3
    m1, m2 = stored_summary(metrics, "m1"), stored_summary(metrics, "m2")
    # the write was built from a read made just before it: the newer metrics are kept, only the edits changed
    assert m1 == {**before["m1"], "acc": 0.93, "loss": None, "lr_final": 0.001, "epochs_done": 13}
    assert m1["_step"] == 99 and m1["hist"] == HIST  # W&B's own keys and objects untouched
    assert type(m2["epochs_done"]) is int and m2["epochs_done"] == 4  # an int metric stays int
    assert math.isnan(m2["acc"]) and m2["loss"] == math.inf  # NaN / Infinity as W&B stores them
    assert client_summary("m1")["acc"] == 0.93  # what the official client reads
    invoke("undo", tmp_path / "j.jsonl", "--yes")
    assert stored_summary(metrics, "m1") == {**before["m1"], "lr_final": 0.001, "epochs_done": 13}
    restored = stored_summary(metrics, "m2")
    assert restored["epochs_done"] == 3 and math.isnan(restored["acc"])


def test_running_runs_are_skipped_and_w_and_b_objects_are_read_only(metrics, tmp_path):
    sheet = tmp_path / "runs.xlsx"
    invoke("export", "e/p", "-o", sheet, "--summary", "acc,hist", "--edit-summary")
    edit_cells(sheet, {("m3", "summary.acc"): 0.6})
    doc = json.loads(invoke("import", sheet, "--dry-run", "--format", "json").stdout)
    assert doc["changes"] == [] and [s["run_id"] for s in doc["skipped"]] == ["m3"]
    edit_cells(sheet, {("m1", "summary.hist"): '{"_type": "histogram", "values": [9]}'})
    refused = invoke("import", sheet, "--yes", exit_code=1)
    assert "W&B object" in refused.stderr and "summary.hist" in refused.stderr
    assert stored_summary(metrics, "m1")["hist"] == HIST


@pytest.mark.parametrize("metric", ["_step", "_runtime"])
def test_wandb_own_keys_cannot_be_made_editable(metrics, tmp_path, metric):
    result = invoke("export", "e/p", "-o", tmp_path / "x.xlsx", "--summary", f"acc,{metric}", "--edit-summary",
                    exit_code=1)
    assert metric in result.stderr and not (tmp_path / "x.xlsx").exists()


# --- nested metrics: `--summary a.b` (issue 17 §5) --------------------------------------------------------------

@pytest.fixture
def nested(sandbox):
    store = sandbox.store
    store.create_run("e", "p", "n1", summary={"val": {"acc": 0.5, "loss": {"ce": 1.25}}, "val.acc": "flat one",
                                              "top": 3})
    store.create_run("e", "p", "n2", summary={"val": {"acc": -0.0}, "top": 4})
    store.create_run("e", "p", "n3", summary={"top": 5})  # no nested metric at all
    return sandbox


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_a_dotted_summary_name_exports_the_nested_metric_and_a_literal_dot_the_flat_key(nested, tmp_path, fmt):
    sheet = tmp_path / f"runs.{fmt}"
    invoke("export", "e/p", "-o", sheet, "--summary", "val.acc,val.loss.ce,val\\.acc")
    header_rows = list(openpyxl.load_workbook(sheet)["runs"].iter_rows(values_only=True)) if fmt == "xlsx" else [
        row.split(",") for row in sheet.read_text(encoding="utf-8-sig").splitlines()]
    header = list(header_rows[0])
    cells = {row[header.index("id")]: row for row in header_rows[1:]}

    def cell(run_id: str, column: str) -> object:
        value = cells[run_id][header.index(column)]
        return None if value == "" else value

    assert [float(cell(r, "summary.val.acc")) if cell(r, "summary.val.acc") is not None else None
            for r in ("n1", "n2", "n3")] == [0.5, -0.0, None]
    assert float(cell("n1", "summary.val.loss.ce")) == 1.25
    assert cell("n1", "summary.val\\.acc") == "flat one" and cell("n2", "summary.val\\.acc") is None
    assert runsync.plan(sheet).empty  # an untouched sheet: nothing to write


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_an_edit_of_a_nested_metric_lands_on_it_and_adds_no_flat_key(nested, tmp_path, fmt):
    before = {rid: stored_summary(nested, rid) for rid in ("n1", "n2", "n3")}
    sheet = tmp_path / f"runs.{fmt}"
    invoke("export", "e/p", "-o", sheet, "--summary", "val.acc,val.loss.ce,val\\.acc", "--edit-summary")
    edit_cells(sheet, {("n1", "summary.val.acc"): 0.75, ("n1", "summary.val.loss.ce"): 2,
                       ("n2", "summary.val.acc"): 1e-300, ("n3", "summary.val.acc"): 0.125,
                       ("n2", "summary.val\\.acc"): "flat two"})
    plan = runsync.plan(sheet)
    assert sorted((c.run_id, c.field, c.path) for c in plan.changes) == [
        ("n1", "summary.val.acc", ("val", "acc")), ("n1", "summary.val.loss.ce", ("val", "loss", "ce")),
        ("n2", "summary.val.acc", ("val", "acc")), ("n2", "summary.val\\.acc", ("val.acc",)),
        ("n3", "summary.val.acc", ("val", "acc"))]
    journal = tmp_path / "j.jsonl"
    assert runsync.apply(plan, journal=journal).ok
    after = {rid: stored_summary(nested, rid) for rid in ("n1", "n2", "n3")}
    assert after["n1"]["val"] == {"acc": 0.75, "loss": {"ce": 2}} and after["n1"]["val.acc"] == "flat one"
    assert after["n2"]["val"] == {"acc": 1e-300} and after["n2"]["val.acc"] == "flat two"
    assert after["n3"]["val"] == {"acc": 0.125} and "val.acc" not in after["n3"]
    assert wandb.Api().run("e/p/n3").summary["val"]["acc"] == 0.125  # as the plain client reads it
    assert all(after[r]["top"] == before[r]["top"] for r in after)
    assert runsync.plan(sheet).empty  # the base moved past the import
    runsync.undo(journal)
    assert stored_summary(nested, "n1")["val"] == before["n1"]["val"]
    assert stored_summary(nested, "n2")["val"] == before["n2"]["val"]
    assert stored_summary(nested, "n2").get("val.acc") is None


def test_a_nested_metric_under_a_scalar_is_refused_not_written(nested, tmp_path):
    nested.store.create_run("e", "p", "n4", summary={"val": 7, "top": 6})
    sheet = tmp_path / "runs.xlsx"
    invoke("export", "e/p", "-o", sheet, "--summary", "val.acc", "--edit-summary")
    edit_cells(sheet, {("n4", "summary.val.acc"): 0.5, ("n1", "summary.val.acc"): 0.25})
    plan = runsync.plan(sheet)
    assert [(e.run_id, e.column, e.message) for e in plan.errors] == [
        ("n4", "summary.val.acc", "summary.val is 7 in W&B, not a dict: setting summary.val.acc would replace it; "
                                  "edit summary.val instead")]
    assert invoke("import", sheet, "--yes", exit_code=1) and stored_summary(nested, "n4")["val"] == 7


def test_an_unknown_summary_metric_is_warned_about(nested, tmp_path):
    result = invoke("export", "e/p", "-o", tmp_path / "runs.csv", "--summary", "val.acc,val.nope,nope")
    assert "--summary val.nope: no exported run has this summary metric" in result.stderr
    assert "--summary nope: no exported run has this summary metric" in result.stderr
    assert "val.acc:" not in result.stderr
