"""runsync.plan reads W&B while it reads an XLSX sheet (runsync/planner/early_fetch.py): the same plan, the same requests."""
from __future__ import annotations

import pytest
from helpers import edit_cells

import runsync
from runsync.api import plan_sheet, read
from runsync.errors import BackendError, ConfigError


def _sequential(path, **options):
    return plan_sheet(read(path), **options)


def _requests(sandbox, plan_it, path, **options):
    sandbox.reset_stats()
    outcome = plan_it(path, **options)
    return outcome, sandbox.stats()["requests"]


@pytest.mark.parametrize("edits, wasted", [
    ({}, 0),  # untouched
    ({("run0", "config.lr"): 0.5, ("run1", "tags"): "a, z", ("run2", "name"): "renamed"}, 0),
    ({("run1", "id"): "nope"}, 0),  # an id that is no run: the guess and the sheet still agree
    ({("run2", "id"): "run1"}, 0),  # a duplicate id
    # A blank id of spaces: an error; the reader leaves such a row out of the runs, so the ids guessed ahead
    # are the sheet's and the read ahead is used (it was one wasted listing while the row stayed in).
    ({("run0", "id"): "  "}, 0),
])
def test_plan_reads_ahead_and_plans_what_reading_first_plans(sandbox, tmp_path, edits, wasted):
    for i in range(3):
        sandbox.store.create_run("e", "p", f"run{i}", display_name=f"n{i}", tags=["a"],
                                 config={"lr": 0.1 * i, "layers": [i, 2], "opt": None}, summary={"acc": 0.5})
    path = tmp_path / "s.xlsx"
    runsync.export("e/p", path, shape=runsync.ExportShape(summary=("acc",), edit_summary=True))
    sandbox.store.upsert({"id": sandbox.store.find_run("e", "p", "run1").storage_id, "config": '{"opt": {"value": "sgd"}}'})
    edit_cells(path, edits)
    early, early_requests = _requests(sandbox, runsync.plan, path)
    first, first_requests = _requests(sandbox, _sequential, path)
    assert repr(early) == repr(first)
    assert early_requests == first_requests + wasted


def test_plan_reads_ahead_only_for_the_project_asked(sandbox, tmp_path):
    sandbox.store.create_run("e", "p", "run0", config={"lr": 1})
    path = tmp_path / "s.xlsx"
    runsync.export("e/p", path)
    sandbox.reset_stats()
    with pytest.raises(ConfigError, match="exported from e/p, not e/other"):
        runsync.plan(path, project="e/other")
    assert sandbox.stats()["requests"] == 0


def test_a_failed_read_ahead_is_the_plan_s_error(sandbox, tmp_path):
    from runsync.model import SheetMeta
    from runsync.sheets import write_sheet

    sandbox.store.create_run("e", "p", "run0", config={"lr": 1})  # e/gone has no runs: W&B knows no such project
    path = tmp_path / "s.xlsx"
    meta = SheetMeta(project="e/gone", selection={}, exported_at="2024-01-01T00:00:00+00:00", runsync_version="t",
                     base={"run0": {"config.lr": 1}}, config_paths={"config.lr": ["lr"]})
    write_sheet(path, ["id", "config.lr"], [{"id": "run0", "config.lr": 2}], meta)
    with pytest.raises(BackendError) as first:
        _sequential(path)
    with pytest.raises(BackendError) as early:
        runsync.plan(path)
    assert early.value.message == first.value.message and str(path) in early.value.message


@pytest.mark.parametrize("export_options, needs_summary", [
    ({}, False),
    ({"summary": ("acc",)}, False),  # read-only summary columns: nothing of W&B's summary is compared
    ({"summary": ("acc", "loss"), "edit_summary": True}, True),
])
def test_the_read_ahead_asks_for_summaries_exactly_when_the_plan_needs_them(sandbox, tmp_path, export_options,
                                                                          needs_summary):
    for i in range(3):
        sandbox.store.create_run("e", "p", f"run{i}", config={"lr": 0.1 * i}, summary={"acc": i / 3, "loss": -i})
    path = tmp_path / "s.xlsx"
    runsync.export("e/p", path, shape=runsync.ExportShape(**export_options))
    edit_cells(path, {("run1", "config.lr"): 0.5})
    asked: list[bool] = []

    def on_request(label: str, variables: dict, is_mutation: bool) -> None:
        if label == "RunsyncRuns":
            asked.append(variables["withSummary"])

    sequential = _sequential(path)
    sandbox.request_hooks.append(on_request)
    try:
        early = runsync.plan(path)
    finally:
        sandbox.request_hooks.remove(on_request)
    assert repr(early) == repr(sequential)
    assert asked == [needs_summary]  # one read, the read ahead, used by the plan: none wasted, none again
