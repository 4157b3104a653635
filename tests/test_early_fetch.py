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


def _plan_read_whole(path):
    """Today's plan before issue 20 §4: every run read into one dict, then the diff (the oracle)."""
    from runsync.api.journals import advance_base
    from runsync.backend import connect
    from runsync.planner.diff import build_plan

    sheet = read(path)
    ids = [str(cells["id"]).strip() for _, cells in sheet.rows if cells.get("id") not in (None, "")]
    live = connect("e/p").fetch_by_ids("e/p", ids, on_warning=sheet.warnings.append)
    plan = build_plan(sheet, live, project="e/p", history=advance_base(sheet, live))
    return plan.with_run_urls(live)


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_a_plan_read_in_chunks_is_the_plan_read_whole(sandbox, tmp_path, monkeypatch, suffix):
    # Issue 20 §4: W&B's runs are read a chunk of ids at a time and forgotten once planned.
    from runsync.planner import live_runs

    monkeypatch.setattr(live_runs, "CHUNK_IDS", 3)
    for i in range(11):
        sandbox.store.create_run("e", "p", f"r{i:02d}", display_name=f"ñame {i}", tags=["β"] if i % 2 else [],
                                 config={"lr": i / 7, "deep": {"k": [i, None]}, "s": "x" * i},
                                 state="running" if i == 9 else "finished")
    path = tmp_path / f"s{suffix}"
    runsync.export("e/p", path)
    store = sandbox.store
    store.delete_run("e", "p", "r04")  # gone from W&B since the export: a warning, row skipped
    store.upsert({"id": store.find_run("e", "p", "r07").storage_id, "config": '{"lr": {"value": -1.5}}'})  # W&B moved
    edit_cells(path, {("r00", "config.lr"): 0.25, ("r07", "config.lr"): 9.0,  # an edit; a conflict
                      ("r08", "name"): "renamed ✓", ("r09", "config.s"): "edited while running",
                      ("r10", "id"): "r02",  # r02 twice (the second row last: released after it)
                      ("r05", "id"): "nope"})  # an id W&B never had
    asked: list[int] = []

    def on_request(label: str, variables: dict, is_mutation: bool) -> None:
        if label == "RunsyncRuns" and "$in" in variables.get("filters", ""):
            import json

            asked.append(len(json.loads(variables["filters"])["name"]["$in"]))

    whole = _plan_read_whole(path)
    sandbox.request_hooks.append(on_request)
    try:
        chunked = runsync.plan(path)
    finally:
        sandbox.request_hooks.remove(on_request)
    assert repr(chunked) == repr(whole)
    assert chunked.run_urls == whole.run_urls and chunked.run_urls
    assert chunked.errors and chunked.warnings  # the data is awkward enough to say something
    assert asked and max(asked) <= 3 and sum(asked) >= 10  # several chunks of at most CHUNK_IDS ids


def test_a_plan_holds_about_one_chunk_of_runs_not_planned_yet(sandbox, tmp_path, monkeypatch):
    from runsync.backend import connect
    from runsync.planner.live_runs import LiveRuns

    for i in range(12):
        sandbox.store.create_run("e", "p", f"r{i:02d}", config={"lr": i})
    ids = [f"r{i:02d}" for i in range(12)] + ["missing"]
    live = LiveRuns(connect("e/p"), "e/p", ids, False, chunk=4)
    import time

    time.sleep(1.0)  # nobody plans: the reader stops after about a chunk
    held = len(live._records)
    assert 4 <= held < 12
    for run_id in ids[:-1]:
        assert live.get(run_id).id == run_id  # type: ignore[union-attr]
        live.planned(run_id, keep=run_id == "r05")
    assert live.get("missing") is None
    live.finish()
    assert list(live._records) == ["r05"]  # only the run the plan names is kept
