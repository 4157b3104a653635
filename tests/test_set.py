"""`runsync set` (issue 12 §2): bulk edits without a sheet, through the CLI against the sandbox."""
from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
import wandb
from helpers import invoke

import runsync
from runsync.planner.set_edits import Cell


@pytest.fixture(autouse=True)
def _state_home(tmp_path, monkeypatch):
    """Default journals go to $XDG_STATE_HOME/runsync: keep them in the test's folder."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


@pytest.fixture
def runs(sandbox):
    store = sandbox.store
    store.create_run("e", "p", "a1", display_name="a-one", tags=["debug", "v2"], group="exp-a", job_type="train",
                     notes="first", config={"lr": 0.1, "code": "abc", "enc": "convnext", "opt": {"name": "adam"}})
    store.create_run("e", "p", "a2", display_name="a-two", tags=["debug"], group="exp-a", job_type="eval",
                     config={"lr": 0.2, "code": "x", "enc": "vit"})
    store.create_run("e", "p", "a3", display_name="a-live", tags=["debug"], group="exp-a", state="running",
                     config={"lr": 0.3})
    store.create_run("e", "p", "b1", display_name="b-one", tags=["v2"], group="exp-b", notes="keep",
                     config={"lr": 0.4, "batch": 32})
    store.create_run("e", "p", "b2", display_name="b-two", state="crashed", config={})
    return sandbox


def snapshot(project: str = "e/p") -> dict[str, dict]:
    """Every run as plain wandb.Api() reads it: the oracle."""
    return {r.id: {"name": r.name, "tags": sorted(r.tags), "group": r.group, "job_type": r.job_type,
                   "notes": r.notes, "config": dict(r.config), "state": r.state}
            for r in wandb.Api().runs(project)}


def undo_command(stderr: str) -> list[str]:
    line = next(x for x in stderr.splitlines() if x.startswith("Undo with: "))
    return shlex.split(line[len("Undo with: "):])[1:]  # drop "runsync"


# -- selection --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("selection, filters", [
    (["--filter", "group=exp-a"], {"group": "exp-a"}),
    (["--filters", '{"tags": {"$in": ["debug"]}}'], {"tags": {"$in": ["debug"]}}),
    (["--filter", "config.dataset=cifar10", "--filter", "state=finished"],
     {"$and": [{"config.dataset": "cifar10"}, {"state": "finished"}]}),
    (["--filters", '{"$or": [{"group": "exp-b"}, {"config.batch_size": {"$gte": 128}}]}'],
     {"$or": [{"group": "exp-b"}, {"config.batch_size": {"$gte": 128}}]}),
])
def test_group_rename_edits_exactly_the_runs_the_filter_selects(seeded_sandbox, selection, filters):
    before = snapshot()
    matching = {r.id for r in wandb.Api().runs("e/p", filters=filters)}
    finished = {rid for rid in matching if before[rid]["state"] != "running"}
    assert finished and len(finished) < len(before)  # a real selection, not every run
    result = invoke("set", "e/p", *selection, "--set", "group=renamed", "--yes")
    after = snapshot()
    assert {rid for rid, run in after.items() if run["group"] == "renamed"} == finished
    for rid, run in after.items():  # nothing else moved: not other fields, not other runs
        expected = dict(before[rid], group="renamed") if rid in finished else before[rid]
        assert run == expected, rid
    assert f"Selected {len(matching)} runs of e/p." in result.stderr
    changed = {rid for rid in finished if before[rid]["group"] != "renamed"}
    assert f"Applied {len(changed)} field changes to {len(changed)} runs." in result.stderr


def test_add_and_remove_tags(runs):
    result = invoke("set", "e/p", "--filters", '{"tags": {"$in": ["debug"]}}', "--add-tag", "reviewed",
                    "--remove-tag", "debug", "--yes")
    after = snapshot()
    assert after["a1"]["tags"] == ["reviewed", "v2"]
    assert after["a2"]["tags"] == ["reviewed"]
    assert after["a3"]["tags"] == ["debug"]  # running: skipped
    assert after["b1"]["tags"] == ["v2"] and after["b2"]["tags"] == []
    assert "a3" in result.stdout and "still running" in result.stdout
    assert [t for t in wandb.Api().run("e/p/a1").tags] == ["v2", "reviewed"]  # kept in order, the new one last


# -- values typed as a sheet cell would be ------------------------------------------------------------------

@pytest.mark.parametrize("held, value, expected", [
    ([0.1, 0.2], "0.01", 0.01),             # a float
    ([0.1, 0.2], "1", 1.0),                 # into floats: a float, as a cell typed over 0.1
    ([3, 4], "5", 5),
    ([3, 4], "0.5", 0.5),                   # not an int: read by its look
    ([3, 4], '"0.01"', "0.01"),             # quoted: text, whatever the key holds
    (["abc", "x"], "007", "007"),           # into text: stays text
    ([None], "007", 7),                     # no value to go by: as typed into an empty cell
    ([None], '"007"', "007"),
    ([None], "true", True),
    ([True, False], "FALSE", False),
    ([None], "[1, 2]", [1, 2]),
    ([None], '{"a": 1}', {"a": 1}),
    ([None], "fast", "fast"),
    ([[1], [2, 3]], "[4]", [4]),
    ([1, "mixed"], "8", 8),                 # no one type: by its look
])
def test_set_values_are_typed_like_a_cell(sandbox, held, value, expected):
    for i, v in enumerate(held):
        sandbox.store.create_run("e", "p", f"r{i}", config={} if v is None else {"k": v})
    invoke("set", "e/p", "--set", f"config.k={value}", "--yes", "--new-keys")  # [None]: runs without the key
    for run in wandb.Api().runs("e/p"):
        got = run.config["k"]
        assert got == expected and type(got) is type(expected), (run.id, got)


def test_config_lr_float_and_quoted_code_string(runs):
    invoke("set", "e/p", "--filter", "group=exp-a", "--set", "config.lr=0.01", "--set", 'config.code="007"',
           "--set", "notes=rerun needed", "--yes")
    after = snapshot()
    for rid in ("a1", "a2"):
        assert after[rid]["config"]["lr"] == 0.01 and isinstance(after[rid]["config"]["lr"], float)
        assert after[rid]["config"]["code"] == "007"
        assert after[rid]["notes"] == "rerun needed"
    assert after["b1"]["config"]["lr"] == 0.4 and after["a3"]["config"]["lr"] == 0.3


def test_a_key_with_a_dot_and_a_nested_key(runs):
    invoke("set", "e/p", "--filter", "display_name=a-one", "--set", r"config.opt.name=sgd",
           "--set", r"config.lr\.warmup=5", "--yes", "--new-keys")
    config = snapshot()["a1"]["config"]
    assert config["opt"] == {"name": "sgd"} and config["lr.warmup"] == 5


# -- clearing ----------------------------------------------------------------------------------------------

def test_clear_text_fields_and_config_keys(runs):
    invoke("set", "e/p", "--filter", "group=exp-a", "--clear", "notes", "--clear", "job_type",
           "--clear", "config.code", "--clear", "tags", "--yes")
    after = snapshot()
    assert after["a1"]["notes"] in (None, "") and after["a1"]["job_type"] in (None, "")
    assert after["a2"]["job_type"] in (None, "")
    assert after["a1"]["config"]["code"] is None and after["a2"]["config"]["code"] is None
    assert after["a1"]["tags"] == [] and after["a2"]["tags"] == []
    assert "code" not in after["a3"]["config"]  # running: untouched
    assert after["b1"]["notes"] == "keep"


def test_clear_a_key_a_run_lacks_adds_nothing(runs):
    result = invoke("set", "e/p", "--filter", "group=exp-b", "--clear", "config.code", "--dry-run")
    assert "No changes." in result.stdout
    assert "no selected run has this config key" in result.stderr


def test_clear_group_empties_it(runs):
    invoke("set", "e/p", "--filter", "group=exp-b", "--clear", "group", "--yes")
    assert snapshot()["b1"]["group"] in (None, "")


@pytest.mark.parametrize("args, message", [
    (["--clear", "name"], "--clear name: a run name cannot be cleared"),
    (["--set", "state=finished"], "--set state: not a field runsync can set"),
    (["--set", "summary.acc=1"], "--set summary.acc: not a field runsync can set"),
    (["--set", "id=x"], "--set id: not a field runsync can set"),
    (["--clear", "created_at"], "--clear created_at: not a field runsync can set"),
    (["--set", "lr=0.1"], "--set lr: not a field runsync can set"),
    (["--set", "config._wandb=1"], "W&B's own"),
    (["--set", "group"], "--set takes FIELD=VALUE"),
    (["--set", "group="], "--clear group clears it"),
    (["--set", "name= "], "a run name must be non-empty text"),
    (["--set", "group=a", "--clear", "group"], "edited twice"),
    (["--set", "tags=a", "--add-tag", "b"], "don't combine"),
    (["--add-tag", "x", "--remove-tag", "x"], "both name 'x'"),
    (["--filter", "group=exp-a"], "nothing to set"),
])
def test_bad_options_fail_in_one_line_before_any_request(runs, args, message):
    runs.reset_stats()
    result = invoke("set", "e/p", *args, "--yes", exit_code=1)
    assert message in result.stderr
    assert len([x for x in result.stderr.splitlines() if x.startswith("error:")]) == 1
    assert runs.stats()["requests"] == 0


def test_a_key_under_a_scalar_is_refused_as_import_refuses_it(runs):
    runs.reset_stats()
    result = invoke("set", "e/p", "--filter", "group=exp-a", "--set", "config.enc.layers=3", "--yes",
                    exit_code=1)
    assert "config.enc is 'convnext' in W&B, not a dict: setting config.enc.layers would replace it" in result.stderr
    assert "config.enc is 'vit' in W&B" in result.stderr
    assert runs.stats()["mutations"] == 0
    result = invoke("set", "e/p", "--filter", "display_name=a-one", "--set", "config.opt=1", "--yes", exit_code=1)
    assert "config.opt holds keys of its own in W&B" in result.stderr
    invoke("set", "e/p", "--filter", "display_name=a-one", "--clear", "config.opt", "--yes", exit_code=1)
    assert runs.stats()["mutations"] == 0


def test_a_value_the_key_cannot_take_is_an_error(sandbox):
    sandbox.store.create_run("e", "p", "r1", config={"layers": [1, 2]})
    result = invoke("set", "e/p", "--set", "config.layers=[1,", "--yes", exit_code=1)
    assert "not valid JSON" in result.stderr and "nothing written" in result.stderr


# -- the plan: text, JSON, exit codes, dry run -------------------------------------------------------------

def test_dry_run_writes_nothing_and_shows_the_plan(runs):
    before = snapshot()
    runs.reset_stats()
    result = invoke("set", "e/p", "--filter", "group=exp-a", "--set", "group=exp-a-final", "--dry-run")
    assert runs.stats()["mutations"] == 0 and snapshot() == before
    assert '~ a1 (a-one)\n    group: "exp-a" → "exp-a-final"' in result.stdout
    assert "Plan: 2 runs, 2 fields to change, 0 conflicts." in result.stdout
    assert "Dry run: nothing written." in result.stderr


def test_detailed_exitcode(runs):
    invoke("set", "e/p", "--filter", "group=exp-a", "--set", "group=x", "--dry-run", "--detailed-exitcode",
           exit_code=2)
    invoke("set", "e/p", "--filter", "group=exp-a", "--set", "group=exp-a", "--dry-run", "--detailed-exitcode",
           exit_code=0)
    invoke("set", "e/p", "--filter", "group=nothing", "--set", "group=x", "--dry-run", "--detailed-exitcode",
           exit_code=0)


def test_json_plan(runs):
    result = invoke("set", "e/p", "--filter", "group=exp-a", "--set", "config.lr=0.01", "--add-tag", "ok",
                    "--dry-run", "--format", "json")
    doc = json.loads(result.stdout)
    assert set(doc) >= {"format", "project", "changes", "conflicts", "errors", "skipped", "summary"}
    assert doc["project"] == "e/p" and doc["conflicts"] == [] and doc["errors"] == []
    assert {"run_id": "a1", "run_name": "a-one", "field": "config.lr", "old": 0.1, "new": 0.01} in doc["changes"]
    assert {"run_id": "a2", "run_name": "a-two", "field": "tags", "old": ["debug"], "new": ["debug", "ok"]} \
        in doc["changes"]
    assert doc["skipped"] == [{"run_id": "a3", "run_name": "a-live", "reason": "running"}]
    assert doc["summary"] == {"runs": 2, "fields": 4, "conflicts": 0, "errors": 0}


def test_no_terminal_without_yes_writes_nothing(runs):
    runs.reset_stats()
    result = invoke("set", "e/p", "--set", "group=x", exit_code=1)
    assert "not a terminal" in result.stderr and runs.stats()["mutations"] == 0


def test_no_run_matches(runs):
    result = invoke("set", "e/p", "--filter", "group=none", "--set", "group=x", "--yes")
    assert "no run of e/p matches the selection" in result.stderr and "No changes." in result.stdout


# -- journal, undo, conflicts, running runs ---------------------------------------------------------------

def test_undo_restores_exactly(runs, tmp_path):
    before = snapshot()
    result = invoke("set", "e/p", "--filter", "group=exp-a", "--set", "group=final", "--set", "config.lr=0.5",
                    "--set", "name=renamed", "--clear", "notes", "--add-tag", "reviewed", "--remove-tag", "debug",
                    "--yes")
    assert snapshot() != before
    journal = Path(next(x for x in result.stderr.splitlines() if x.startswith("Journal: "))[len("Journal: "):])
    assert journal.parent == tmp_path / "state" / "runsync" / "e" / "p" / "set.runsync-journals"
    begin = json.loads(journal.read_text().splitlines()[0])
    assert begin["source"].startswith("set: --filters '{\"group\": \"exp-a\"}' --set group=final")
    assert "runs will share the name 'renamed'" in result.stderr
    invoke(*undo_command(result.stderr), "--yes")
    assert snapshot() == before


def test_a_journal_path_can_be_given(runs, tmp_path):
    result = invoke("set", "e/p", "--set", "job_type=x", "--journal", tmp_path / "j.jsonl", "--yes")
    assert f"Journal: {tmp_path / 'j.jsonl'}" in result.stderr
    invoke("undo", tmp_path / "j.jsonl", "--yes")
    assert snapshot()["a1"]["job_type"] == "train"


def test_a_change_between_plan_and_write_is_refused_as_a_conflict(runs, monkeypatch):
    """The plan is one read; the write re-reads each run and refuses a field someone moved meanwhile."""
    import click

    from runsync.cli import set_cmd

    store = runs.store
    a2 = store.find_run("e", "p", "a2")
    asked = []

    def colleague_edits_while_you_read_the_plan(question, **kwargs):
        asked.append(question)
        store.upsert({"id": a2.storage_id, "groupName": "theirs"})
        return True

    monkeypatch.setattr(set_cmd, "_interactive", lambda: True)  # as on a terminal
    monkeypatch.setattr(click, "confirm", colleague_edits_while_you_read_the_plan)
    result = invoke("set", "e/p", "--filter", "group=exp-a", "--set", "group=mine", exit_code=1)
    assert asked == ["Write 2 field changes to 2 runs?"]
    assert "not applied: a2 group changed in W&B since the plan" in result.stderr
    after = snapshot()
    assert after["a1"]["group"] == "mine" and after["a2"]["group"] == "theirs"


def test_a_change_between_plan_and_apply_from_python(runs, tmp_path):
    plan = runsync.set("e/p", filters={"group": "exp-a"}, set={"notes": "mine"})
    assert plan.source == "set: --filters '{\"group\": \"exp-a\"}' --set notes=mine"
    a1 = runs.store.find_run("e", "p", "a1")
    runs.store.upsert({"id": a1.storage_id, "notes": "theirs"})
    report = runsync.apply(plan)
    assert [(c.run_id, c.field, c.live) for c in report.conflicts] == [("a1", "notes", "theirs")]
    assert snapshot()["a1"]["notes"] == "theirs" and snapshot()["a2"]["notes"] == "mine"
    assert Path(report.journal).is_relative_to(tmp_path / "state" / "runsync" / "e" / "p")


def test_running_runs_are_skipped_unless_included(runs):
    result = invoke("set", "e/p", "--filter", "group=exp-a", "--set", "config.lr=0.9", "--yes")
    assert "Skipped" in result.stdout and "a3 (a-live)" in result.stdout
    assert snapshot()["a3"]["config"]["lr"] == 0.3
    result = invoke("set", "e/p", "--filter", "group=exp-a", "--set", "config.lr=0.9", "--yes", "--include-running")
    assert "may overwrite" in result.stderr
    assert snapshot()["a3"]["config"]["lr"] == 0.9


def test_concurrency_option(runs):
    invoke("set", "e/p", "--set", "job_type=batch", "--concurrency", "1", "--yes", "--include-running")
    assert {r["job_type"] for r in snapshot().values()} == {"batch"}


def test_writes_are_read_back_unless_no_verify(runs):
    runs.reset_stats()
    result = invoke("set", "e/p", "--set", "job_type=a", "--yes")
    assert "Verified" in result.stderr
    reads = runs.stats()["operations"]["RunsyncRuns"]
    runs.reset_stats()
    result = invoke("set", "e/p", "--set", "job_type=b", "--yes", "--no-verify")
    assert "Verified" not in result.stderr
    assert runs.stats()["operations"]["RunsyncRuns"] == reads - 1  # the read-back is one request
    assert {r["job_type"] for r in snapshot().values() if r["state"] != "running"} == {"b"}


# -- Python ------------------------------------------------------------------------------------------------

def test_python_values_are_taken_as_they_are(runs):
    plan = runsync.set("e/p", filters={"group": "exp-b"}, set={"config.lr": 1, "config.code": "0.01"},
                       add_tags=["py"], remove_tags=["v2"], clear=["notes"])
    assert isinstance(plan, runsync.Plan)
    assert {(c.field, c.sheet) for c in plan.changes} == {("config.lr", 1), ("config.code", "0.01"),
                                                          ("tags", ("py",)), ("notes", None)}
    runsync.apply(plan, new_keys=True)  # config.code is new to b1
    b1 = snapshot()["b1"]
    assert b1["config"]["lr"] == 1 and type(b1["config"]["lr"]) is int and b1["config"]["code"] == "0.01"
    assert b1["tags"] == ["py"] and b1["notes"] in (None, "")
    cell = runsync.set("e/p", filters={"group": "exp-b"}, set={"config.lr": Cell("0.25")})
    assert [c.sheet for c in cell.changes] == [0.25]


def test_python_bad_field_raises_before_any_request(runs):
    runs.reset_stats()
    with pytest.raises(runsync.RunsyncError, match="not a field runsync can set"):
        runsync.set("e/p", set={"summary.acc": 1})
    assert runs.stats()["requests"] == 0


def test_set_writes_a_report_with_links_to_each_run(seeded_sandbox, tmp_path):
    from html.parser import HTMLParser

    report = tmp_path / "set-plan.html"
    invoke("set", "e/p", "--filter", "group=exp-a", "--set", "notes=reviewed", "--dry-run", "--report", report)
    links: list[str] = []

    class Links(HTMLParser):
        def handle_starttag(self, tag, attrs):
            links.extend(v for k, v in attrs if tag == "a" and k == "href")

    Links().feed(report.read_text(encoding="utf-8"))
    wanted = {r.id for r in wandb.Api().runs("e/p", filters={"group": "exp-a"}) if r.state != "running"}
    assert wanted and {link.rsplit("/", 1)[-1] for link in links if "/runs/" in link} == wanted


def test_text_for_a_boolean_key_is_refused_unless_allowed(seeded_sandbox):
    seeded_sandbox.reset_stats()
    selected = [r.id for r in wandb.Api().runs("e/p", filters={"group": "exp-a"}) if r.state != "running"]
    dry = invoke("set", "e/p", "--filter", "group=exp-a", "--set", "config.augment=Jä", "--dry-run", exit_code=1)
    assert "'Jä' is text where the selected runs hold bool values" in dry.stderr
    assert """quote it for text (--set 'config.augment="Jä"') or pass --allow-text""" in dry.stderr
    for extra in (["--yes"], ["--yes", "--strict"]):
        refused = invoke("set", "e/p", "--filter", "group=exp-a", "--set", "config.augment=Jä", *extra, exit_code=1)
        assert "config.augment" in refused.stderr and "nothing written" in refused.stderr
    assert seeded_sandbox.stats()["mutations"] == 0
    quoted = invoke("set", "e/p", "--filter", "group=exp-a", "--set", 'config.augment="Yes"', "--dry-run")
    assert "is text where" not in quoted.stderr  # quoted: text on purpose
    allowed = invoke("set", "e/p", "--filter", "group=exp-a", "--set", "config.augment=Jä", "--allow-text", "--yes")
    assert "written as text (--allow-text)" in allowed.stderr
    assert {rid: wandb.Api().run(f"e/p/{rid}").config["augment"] for rid in selected} == dict.fromkeys(selected, "Jä")
