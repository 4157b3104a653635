"""One journal per import, and the base moving past runsync's own writes (issue 10, items 11 and 12).

Everything goes through the CLI (or the Python API where a Python user would) and the real wandb client
against the sandbox: import, edit the same sheet again, import again; undo one import of several; re-export
to the same file name; copy the printed undo command; undo something that is not a journal.
"""
from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from types import SimpleNamespace

import click
import pytest
import wandb
from helpers import dry_run, edit_cells, fresh_run, invoke, set_in_wandb

import runsync
from runsync.journal.events import read_events

FORMATS = ["xlsx", "csv"]


def changes_of(doc: dict) -> set[tuple[str, str, str, str]]:
    return {(c["run_id"], c["field"], json.dumps(c["old"]), json.dumps(c["new"])) for c in doc["changes"]}


def journals(sheet: Path) -> list[Path]:
    return sorted(p for p in Path(str(sheet) + ".runsync-journals").glob("*.jsonl") if ".undo." not in p.name)


def undo_command(stderr: str) -> list[str]:
    """The undo command the import printed, split as a POSIX shell would."""
    (line,) = [line for line in stderr.splitlines() if line.startswith("Undo with: ")]
    return shlex.split(line.removeprefix("Undo with: "))


@pytest.fixture
def ids(seeded_sandbox) -> list[str]:
    """Runs an import writes to (a run still running is left alone)."""
    return sorted(r.id for r in wandb.Api().runs("e/p") if r.state != "running")


def export(tmp_path: Path, fmt: str = "xlsx", name: str = "runs") -> Path:
    sheet = tmp_path / f"{name}.{fmt}"
    invoke("export", "e/p", "-o", sheet)
    return sheet


# --- 11. the base advances with runsync's own writes ----------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
def test_fixing_a_value_again_after_its_import_plans_exactly_the_second_change(ids, tmp_path, fmt):
    sheet = export(tmp_path, fmt)
    a, b = ids[3], ids[7]
    edit_cells(sheet, {(a, "group"): "lr-sweep-typo", (b, "notes"): "checked by hand"})
    invoke("import", sheet, "--yes")
    edit_cells(sheet, {(a, "group"): "lr-sweep"})  # the typo fixed, in the same sheet

    doc = dry_run(sheet)
    assert changes_of(doc) == {(a, "group", '"lr-sweep-typo"', '"lr-sweep"')}
    assert doc["conflicts"] == []
    text = invoke("import", sheet, "--dry-run")
    assert "Changed only in W&B" not in text.stdout and "Conflicts" not in text.stdout
    done = invoke("import", sheet, "--yes")
    assert "Applied 1 field change to 1 run." in done.stderr
    assert fresh_run(a).group == "lr-sweep" and fresh_run(b).notes == "checked by hand"


def test_a_config_value_edited_three_times_plans_one_change_each_time(ids, tmp_path):
    sheet = export(tmp_path)
    a = ids[11]
    for value in (31, 32, 33):
        edit_cells(sheet, {(a, "config.epochs"): value})
        doc = dry_run(sheet)
        assert [(c["run_id"], c["field"], c["new"]) for c in doc["changes"]] == [(a, "config.epochs", value)]
        assert doc["conflicts"] == []
        invoke("import", sheet, "--yes")
    assert fresh_run(a).config["epochs"] == 33
    assert len(journals(sheet)) == 3  # one per import


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_untouched_rerun_after_an_import_plans_no_changes_and_blames_nobody(ids, tmp_path, fmt):
    sheet = export(tmp_path, fmt)
    edit_cells(sheet, {(ids[0], "tags"): "kept, 2024-review", (ids[1], "job_type"): "eval-final"})
    invoke("import", sheet, "--yes")
    again = invoke("import", sheet, "--dry-run")
    assert again.stdout.strip() == "No changes."  # no "Changed only in W&B" either
    assert dry_run(sheet)["changes"] == []


def test_a_colleague_changing_a_field_after_the_import_is_theirs_not_a_conflict(ids, tmp_path):
    sheet = export(tmp_path)
    a = ids[5]
    edit_cells(sheet, {(a, "group"): "mine"})
    invoke("import", sheet, "--yes")
    set_in_wandb(a, group="theirs")
    text = invoke("import", sheet, "--dry-run").stdout
    assert "Conflicts" not in text and "No changes." in text
    assert f'i {a} group: "mine" → "theirs"' in text  # base = what this sheet wrote, not the export


def test_a_write_without_done_counts_only_where_wandb_holds_it(ids, tmp_path):
    """A kill between the request and its `done` line: the write may or may not have landed."""
    sheet = export(tmp_path)
    a, b = ids[2], ids[4]
    base_group_b = fresh_run(b).group
    edit_cells(sheet, {(a, "notes"): "landed", (b, "group"): "maybe-landed"})
    invoke("import", sheet, "--yes")
    (journal,) = journals(sheet)
    kept = [line for line in journal.read_text().splitlines() if json.loads(line)["op"] != "done"]
    journal.write_text("\n".join(kept) + "\n")  # as if killed before either done line

    # a: W&B holds what was written, so it is the base: editing it again is a plain change.
    edit_cells(sheet, {(a, "notes"): "landed, then edited"})
    assert changes_of(dry_run(sheet)) == {(a, "notes", '"landed"', '"landed, then edited"')}
    # b: W&B does not hold it (say the request never arrived, then someone set it): the base stays
    # the export's, so the sheet and W&B disagree about a field both changed: a conflict, not a guess.
    set_in_wandb(b, group="someone-else")
    doc = dry_run(sheet, exit_code=1)  # conflicts: nothing would be written
    assert [(c["run_id"], c["field"], c["base"], c["live"]) for c in doc["conflicts"]] == [
        (b, "group", base_group_b, "someone-else")]


# --- 12. one journal per import; undo takes back that import only -----------------------------------------

def test_two_imports_then_undo_of_the_second_restores_only_the_second(ids, tmp_path):
    sheet = export(tmp_path)
    a, b = ids[8], ids[9]
    original_notes_b, original_epochs_a = fresh_run(b).notes, fresh_run(a).config["epochs"]
    edit_cells(sheet, {(a, "group"): "first-import"})
    invoke("import", sheet, "--yes")
    edit_cells(sheet, {(b, "notes"): "second import", (a, "config.epochs"): 777})
    second = invoke("import", sheet, "--yes")
    first_journal, second_journal = journals(sheet)
    assert first_journal.name < second_journal.name  # named by time: they sort in import order
    assert undo_command(second.stderr) == ["runsync", "undo", str(second_journal)]

    planned = invoke("undo", second_journal, "--dry-run").stdout
    assert "Plan: 2 runs, 2 fields to change" in planned and "group" not in planned
    invoke(*undo_command(second.stderr)[1:], "--yes")
    assert fresh_run(a).group == "first-import"  # the first import stays
    assert (fresh_run(b).notes or None) == (original_notes_b or None)  # W&B answers "" for a null text
    assert fresh_run(a).config["epochs"] == original_epochs_a
    # The undo moved the base back: the sheet (still holding the second import's values) plans them again.
    assert changes_of(dry_run(sheet)) == {
        (b, "notes", json.dumps(original_notes_b or None), '"second import"'),
        (a, "config.epochs", json.dumps(original_epochs_a), "777")}


def test_two_imports_into_one_journal_then_undo_restores_the_original_values(ids, tmp_path):
    sheet = export(tmp_path)
    a, b = ids[10], ids[11]
    original = (fresh_run(a).config["lr"], fresh_run(a).notes, sorted(fresh_run(b).tags))
    # In the sheet's journal folder, where planning the sheet again finds it (journal_base): no conflicts.
    journal = Path(str(sheet) + ".runsync-journals") / "one journal.jsonl"
    edit_cells(sheet, {(a, "config.lr"): 0.125, (a, "notes"): "first", (b, "tags"): "x, y"})
    invoke("import", sheet, "--yes", "--journal", journal)
    # (Adding to the first import's tags: taking them away again reads as a copy that predates that import.)
    edit_cells(sheet, {(a, "config.lr"): -3e-9, (a, "notes"): "second \u00e9", (b, "tags"): "x, y, z"})
    invoke("import", sheet, "--yes", "--journal", journal)
    assert (fresh_run(a).config["lr"], fresh_run(a).notes, sorted(fresh_run(b).tags)) == \
        (-3e-9, "second \u00e9", ["x", "y", "z"])
    # Each field was written twice in this journal: undo goes back to before the first write, not the second.
    invoke("undo", journal, "--yes")
    now = (fresh_run(a).config["lr"], fresh_run(a).notes, sorted(fresh_run(b).tags))
    assert (now[0], now[1] or None, now[2]) == (original[0], original[1] or None, original[2])


def test_undo_dry_run_with_yes_writes_nothing(ids, tmp_path, seeded_sandbox):
    sheet = export(tmp_path)
    a = ids[12]
    edit_cells(sheet, {(a, "group"): "imported", (a, "config.epochs"): 31337})
    invoke("import", sheet, "--yes")
    (journal,) = journals(sheet)
    seeded_sandbox.reset_stats()
    shown = invoke("undo", journal, "--dry-run", "--yes")
    assert "Plan: 1 run, 2 fields to change" in shown.stdout
    assert seeded_sandbox.stats()["mutations"] == 0
    assert fresh_run(a).group == "imported" and fresh_run(a).config["epochs"] == 31337
    assert runsync.undo(journal, dry_run=True)[1] is None  # the Python API's dry run too
    assert seeded_sandbox.stats()["mutations"] == 0
    assert not Path(str(journal).removesuffix(".jsonl") + ".undo.jsonl").exists()  # not even an undo journal


def test_undo_through_the_python_api_still_takes_a_journal_alone(ids, tmp_path):
    sheet = export(tmp_path)
    a = ids[13]
    original = fresh_run(a).job_type
    edit_cells(sheet, {(a, "job_type"): "python-api"})
    invoke("import", sheet, "--yes")
    (journal,) = journals(sheet)
    undo_plan, report = runsync.undo(journal)
    assert len(undo_plan.changes) == 1 and report is not None and report.ok
    assert (fresh_run(a).job_type or None) == (original or None)
    with pytest.raises(runsync.RunsyncError, match="not of"):
        runsync.undo(tmp_path / "other.jsonl", plan=undo_plan)


def test_reexport_to_the_same_file_then_undo_of_an_old_journal_touches_only_that_import(ids, tmp_path):
    sheet = export(tmp_path)
    a, b = ids[14], ids[15]
    original_a = fresh_run(a).group
    edit_cells(sheet, {(a, "group"): "before-reexport"})
    invoke("import", sheet, "--yes")
    (old_journal,) = journals(sheet)

    sheet.unlink()
    # exported_at has microseconds: a re-export right away is a new export
    export(tmp_path)  # the same file name, a new export
    assert dry_run(sheet)["changes"] == []  # the old journal is not this export's: nothing replayed
    edit_cells(sheet, {(b, "group"): "after-reexport"})
    refused = invoke("import", sheet, "--yes", "--journal", old_journal, exit_code=1)
    assert "already holds an import of another" in refused.stderr and fresh_run(b).group != "after-reexport"
    invoke("import", sheet, "--yes")
    assert len(journals(sheet)) == 2

    undone = invoke("undo", old_journal, "--yes")
    assert "Applied 1 field change to 1 run." in undone.stderr
    assert fresh_run(a).group == original_a and fresh_run(b).group == "after-reexport"


def test_the_printed_undo_command_runs_as_printed_with_spaces_and_quotes(ids, tmp_path):
    folder = tmp_path / "team sheets" / "it's mine"
    folder.mkdir(parents=True)
    sheet = export(folder, "csv", name="o'brien runs (v2)")
    a = ids[20]
    original = fresh_run(a).notes
    edit_cells(sheet, {(a, "notes"): "quoted path"})
    done = invoke("import", sheet, "--yes")
    command = undo_command(done.stderr)
    assert command[:2] == ["runsync", "undo"] and Path(command[2]).parent == Path(str(sheet) + ".runsync-journals")
    invoke(*command[1:], "--yes")
    assert (fresh_run(a).notes or None) == (original or None)


def test_two_imports_in_the_same_second_get_two_journals(ids, tmp_path):
    from runsync.api import default_journal

    sheet = export(tmp_path)
    paths = [default_journal(str(sheet)) for _ in range(3)]
    assert len(set(paths)) == 3 and paths == sorted(paths)
    assert all(Path(p).parent.name == "runs.xlsx.runsync-journals" for p in paths)


# --- messages ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("content", [
    b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00\xff\xfe\x80\x81 binary",  # the start of an xlsx (zip)
    bytes(range(256)) * 4,
    b"just some notes\nabout runs\n",
    b'{"a": 1}\n',
    b"",
], ids=["zip", "binary", "text", "json", "empty"])
def test_undo_of_something_not_a_journal_says_so_in_one_line(seeded_sandbox, tmp_path, content):
    path = tmp_path / "runs.jsonl"  # (a sheet's name, .xlsx or .csv, lists that sheet's imports instead)
    path.write_bytes(content)
    result = invoke("undo", path, exit_code=1)
    assert result.stderr.strip().splitlines() == [f"error: {path}: not a runsync journal"]


def test_undo_of_a_sheet_never_imported_lists_nothing_and_last_refuses(ids, tmp_path):
    sheet = export(tmp_path)
    listed = invoke("undo", sheet, "--dry-run")
    assert listed.stdout == "" and f"No imports of {sheet} to undo" in listed.stderr
    refused = invoke("undo", sheet, "--last", exit_code=1)
    assert refused.stderr.strip().splitlines()[0].startswith(f"error: {sheet}: no imports to undo")


def test_undo_last_with_a_journal_is_refused(ids, tmp_path):
    sheet = export(tmp_path)
    edit_cells(sheet, {(ids[24], "group"): "last-refused"})
    invoke("import", sheet, "--yes")
    (journal,) = journals(sheet)
    refused = invoke("undo", journal, "--last", exit_code=1)
    assert "--last takes a sheet or its journals folder" in refused.stderr


def test_undo_dry_run_prints_the_exact_command_and_it_runs_as_printed(ids, tmp_path):
    folder = tmp_path / "shared sheets" / "bob's"
    folder.mkdir(parents=True)
    sheet = export(folder, "csv", name="runs (copy)")
    a, b = ids[25], ids[26]
    originals = (fresh_run(a).group, fresh_run(b).job_type)
    edit_cells(sheet, {(a, "group"): "to undo", (b, "job_type"): "ÿ job"})
    invoke("import", sheet, "--yes")
    set_in_wandb(b, job_type="changed since")  # a conflict: only --force restores it
    dry = invoke("undo", sheet, "--last", "--dry-run", "--force")
    (line,) = [x for x in dry.stderr.splitlines() if x.startswith("Dry run: nothing written. To apply: ")]
    command = shlex.split(line.removeprefix("Dry run: nothing written. To apply: "))
    (journal,) = journals(sheet)
    assert command == ["runsync", "undo", str(journal), "--force"]
    assert fresh_run(a).group == "to undo"  # the dry run wrote nothing
    invoke(*command[1:], "--yes")  # as printed (--yes: no terminal here)
    assert ((fresh_run(a).group or None), (fresh_run(b).job_type or None)) == tuple(x or None for x in originals)
    assert "No changes." in invoke("undo", journal, "--dry-run").stdout
    assert "Dry run" not in invoke("undo", journal, "--dry-run").stderr  # nothing to apply: no command


def test_import_dry_run_repeats_journal_and_the_command_runs_as_printed(ids, tmp_path):
    sheet = export(tmp_path)
    a = ids[-1]
    edit_cells(sheet, {(a, "notes"): "via --journal"})
    journal = tmp_path / "my journals" / "it's here.jsonl"
    dry = invoke("import", sheet, "--dry-run", "--journal", journal)
    (line,) = [x for x in dry.stderr.splitlines() if "To apply: " in x]
    command = shlex.split(line.split("To apply: ", 1)[1])
    assert command == ["runsync", "import", str(sheet), "--journal", str(journal)]
    assert not journal.exists()
    invoke(*command[1:], "--yes")
    assert fresh_run(a).notes == "via --journal"
    assert [e["run"] for e in read_events(journal)[0] if e["op"] == "write"] == [a]


def test_undo_applies_exactly_the_plan_it_confirmed(ids, tmp_path, monkeypatch):
    from runsync.cli import undo_cmd

    sheet = export(tmp_path)
    a, b = ids[22], ids[23]
    original_b = fresh_run(b).group
    edit_cells(sheet, {(a, "group"): "import-a", (b, "group"): "import-b"})
    done = invoke("import", sheet, "--yes")
    set_in_wandb(b, group=original_b)  # someone put b back by hand: the undo has only a left to do

    asked: list[str] = []

    def confirm(text: str, **_: object) -> bool:
        asked.append(text)
        set_in_wandb(b, group="import-b")  # ... and while the question is open, b moves again
        return True

    monkeypatch.setattr(click, "confirm", confirm)
    monkeypatch.setattr(undo_cmd, "sys", SimpleNamespace(stdin=SimpleNamespace(isatty=lambda: True), exit=sys.exit))
    undone = invoke(*undo_command(done.stderr)[1:])
    assert asked == ["Restore 1 field of 1 run?"]
    assert "Applied 1 field change to 1 run." in undone.stderr
    assert fresh_run(b).group == "import-b"  # not in the confirmed plan: not touched
    (journal,) = journals(sheet)
    undo_events, _ = read_events(str(journal).removesuffix(".jsonl") + ".undo.jsonl")
    assert [(e["run"], [f["field"] for f in e["fields"]]) for e in undo_events if e["op"] == "write"] == [
        (a, ["group"])]


def test_re_export_after_an_import_is_not_refused_as_unsaved_edits(seeded_sandbox, tmp_path):
    sheet = tmp_path / "runs.xlsx"
    invoke("export", "e/p", "-o", sheet)
    run_id = next(r.id for r in wandb.Api().runs("e/p") if r.state != "running")
    edit_cells(sheet, {(run_id, "group"): "imported-group"})
    refused = invoke("export", "e/p", "-o", sheet, exit_code=1)
    assert "edits not imported" in refused.stderr
    invoke("import", sheet, "--yes")
    invoke("export", "e/p", "-o", sheet)  # the edit is in W&B now: nothing would be lost
    assert runsync.plan(sheet).empty
