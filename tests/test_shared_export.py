"""Teams sharing one export (issue 17, section 2; and section 6: undo names the later import).

A stale copy of an exported sheet must not revert a colleague's import; a row the export never had writes
nothing; tags from the sheet and from W&B merge as sets. Everything goes through the CLI and the real wandb
client against the sandbox; W&B is judged by reading it back with `wandb.Api()`.
"""
from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest
import wandb
from helpers import append_row, dry_run, edit_cells, fresh_run, invoke, set_in_wandb

import runsync
from runsync.api import plan_undo_journal
from runsync.journal.events import read_events

FORMATS = ["xlsx", "csv"]


def journals(sheet: Path) -> list[Path]:
    return sorted(p for p in Path(str(sheet) + ".runsync-journals").glob("*.jsonl") if ".undo." not in p.name)


def began(journal: Path) -> str:
    """When the journal's import began, as a conflict names it (whole seconds, UTC)."""
    events, _ = read_events(journal)
    at = next(e["at"] for e in events if e["op"] == "begin")
    return f"{datetime.fromisoformat(at):%Y-%m-%d %H:%M:%S} UTC"


def export(folder: Path, fmt: str, *extra: str, name: str = "runs") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    sheet = folder / f"{name}.{fmt}"
    invoke("export", "e/p", "-o", sheet, *extra)
    return sheet


def take_copy(sheet: Path, to: Path) -> Path:
    """A colleague's copy of the sheet file alone (a CSV's sidecar stays where it is)."""
    to.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(sheet, to)
    return to


@pytest.fixture
def ids(seeded_sandbox) -> list[str]:
    """Runs an import writes to (a run still running is left alone)."""
    return sorted(r.id for r in wandb.Api().runs("e/p") if r.state != "running")


def stale_conflict(doc: dict, run_id: str, field: str) -> dict:
    (conflict,) = [c for c in doc["conflicts"] if (c["run_id"], c["field"]) == (run_id, field)]
    return conflict


# --- 2a. a stale copy reverts nobody -----------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
def test_a_stale_copy_saved_over_the_shared_file_is_a_conflict_naming_the_import(ids, tmp_path, fmt):
    shared = export(tmp_path / "team share", fmt)
    b_copy = take_copy(shared, tmp_path / "bob" / shared.name)  # both take the sheet as exported
    x, y = ids[3], ids[8]
    exported_group_x, exported_notes_y = fresh_run(x).group or None, fresh_run(y).notes or None
    edit_cells(shared, {(x, "group"): "ärger/ΔA, 'final'"})  # A edits run X and imports
    invoke("import", shared, "--yes")
    (a_journal,) = journals(shared)
    edit_cells(b_copy, {(y, "notes"): 'B\'s note, "quoted"\nsecond line'})  # B edits only run Y ...
    shutil.copy2(b_copy, shared)  # ... and saves her copy over the shared file

    doc = dry_run(shared, exit_code=1)
    assert [(c["run_id"], c["field"], c["new"]) for c in doc["changes"]] == [
        (y, "notes", 'B\'s note, "quoted"\nsecond line')]
    conflict = stale_conflict(doc, x, "group")
    assert (conflict["base"], conflict["sheet"], conflict["live"]) == (
        "ärger/ΔA, 'final'", exported_group_x, "ärger/ΔA, 'final'")
    assert str(a_journal) in conflict["reason"] and began(a_journal) in conflict["reason"]
    text = invoke("import", shared, "--dry-run", exit_code=1)
    assert str(a_journal) in text.stdout and "Plan: 1 run, 1 field to change, 1 conflict." in text.stdout

    forced = invoke("import", shared, "--yes", "--force", exit_code=1)  # --force does not revert A either
    assert "nothing written" in forced.stderr
    with pytest.raises(runsync.RunsyncError, match="nothing written"):  # nor does the Python API's
        runsync.apply(runsync.plan(shared, force=True), force=True)
    assert fresh_run(x).group == "ärger/ΔA, 'final'" and (fresh_run(y).notes or None) == exported_notes_y
    assert len(journals(shared)) == 1

    edit_cells(shared, {(x, "group"): "ärger/ΔA, 'final'"})  # B takes A's value: the sheet agrees with it
    invoke("import", shared, "--yes")
    assert fresh_run(x).group == "ärger/ΔA, 'final'"
    assert fresh_run(y).notes == 'B\'s note, "quoted"\nsecond line'


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("where", ["beside, another name", "elsewhere, journals copied along"])
def test_a_copy_finds_the_exports_journals_by_the_export_not_the_file_name(ids, tmp_path, fmt, where):
    shared = export(tmp_path / "share", fmt)
    x, y = ids[5], ids[11]
    exported_epochs_x = fresh_run(x).config["epochs"]
    if where.startswith("beside"):
        b_copy = take_copy(shared, shared.with_name(f"runs (Bob's copy).{fmt}"))
    else:
        b_copy = take_copy(shared, tmp_path / "bob" / f"mine.{fmt}")
    if fmt == "csv":
        shutil.copy2(str(shared) + ".runsync.json", str(b_copy) + ".runsync.json")
    edit_cells(shared, {(x, "config.epochs"): 4099})
    invoke("import", shared, "--yes")
    if where.startswith("elsewhere"):
        shutil.copytree(str(shared) + ".runsync-journals", b_copy.parent / f"runs.{fmt}.runsync-journals")
    edit_cells(b_copy, {(y, "job_type"): "eval ∞"})

    doc = dry_run(b_copy, exit_code=1)
    assert [(c["run_id"], c["field"]) for c in doc["changes"]] == [(y, "job_type")]
    conflict = stale_conflict(doc, x, "config.epochs")
    assert (conflict["sheet"], conflict["live"]) == (exported_epochs_x, 4099)
    assert "runsync-journals" in conflict["reason"] and began(journals(shared)[0]) in conflict["reason"]
    invoke("import", b_copy, "--yes", exit_code=1)
    assert fresh_run(x).config["epochs"] == 4099 and fresh_run(y).job_type != "eval ∞"


def test_a_copy_taken_between_two_imports_names_the_second(ids, tmp_path):
    shared = export(tmp_path / "share", "xlsx")
    x, z = ids[2], ids[9]
    edit_cells(shared, {(x, "notes"): "first pass"})
    invoke("import", shared, "--yes")
    b_copy = take_copy(shared, tmp_path / "bob" / "runs.xlsx")  # holds "first pass"
    edit_cells(shared, {(x, "notes"): "second pass"})
    invoke("import", shared, "--yes")
    first, second = journals(shared)
    edit_cells(b_copy, {(z, "notes"): "  bob: re-checked  "})
    shutil.copy2(b_copy, shared)

    conflict = stale_conflict(dry_run(shared, exit_code=1), x, "notes")
    assert (conflict["sheet"], conflict["base"]) == ("first pass", "second pass")
    assert str(second) in conflict["reason"] and str(first) not in conflict["reason"]
    # A value neither exported nor written by an import is an edit, judged against the last import's value.
    edit_cells(shared, {(x, "notes"): "third pass (B)"})
    doc = dry_run(shared)
    assert {(c["run_id"], c["field"], c["old"], c["new"]) for c in doc["changes"]} == {
        (x, "notes", "second pass", "third pass (B)"), (z, "notes", fresh_run(z).notes or None, "  bob: re-checked  ")}
    assert doc["conflicts"] == []


# --- 2b. rows the export never had ---------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
def test_a_pasted_row_of_a_run_outside_the_selection_is_refused_even_with_force(seeded_sandbox, tmp_path, fmt):
    sheet = export(tmp_path, fmt, "--filter", "group=exp-a", name="exp-a")
    runs = [r for r in wandb.Api().runs("e/p") if r.state != "running"]
    inside = next(r for r in runs if r.group == "exp-a")
    outsider = next(r for r in runs if r.group not in (None, "", "exp-a") and r.tags and r.job_type)
    before = (sorted(outsider.tags), outsider.group, outsider.job_type, outsider.notes, outsider.name)
    writes = seeded_sandbox.stats()["mutations"]
    edit_cells(sheet, {(inside.id, "job_type"): "not-written"})
    row = append_row(sheet, {"id": outsider.id, "name": outsider.name, "notes": "pasted ✂ row"})

    result = invoke("import", sheet, "--yes", "--force", exit_code=1)
    (line,) = [line for line in result.stderr.splitlines() if outsider.id in line]
    assert line.startswith(f"error: {sheet}, row {row}, run {outsider.id}, column 'id': ")
    assert "not in this export" in line and f"--filter name={outsider.id}" in line
    again = fresh_run(outsider.id)
    assert (sorted(again.tags), again.group, again.job_type, again.notes, again.name) == before
    assert fresh_run(inside.id).job_type == inside.job_type  # a refused row writes nothing at all
    assert seeded_sandbox.stats()["mutations"] == writes
    doc = dry_run(sheet, "--force", exit_code=1)
    assert [(e["row"], e["run_id"], e["column"]) for e in doc["errors"]] == [(row, outsider.id, "id")]


# --- 2c. tags from two sources merge as sets -------------------------------------------------------------------

def tagged(ids: list[str], at_least: int) -> str:
    return next(i for i in ids if len(fresh_run(i).tags) >= at_least)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_tag_added_in_the_sheet_and_another_in_wandb_are_both_kept(ids, tmp_path, fmt):
    sheet = export(tmp_path, fmt)
    a = tagged(ids, 2)
    b = next(i for i in ids if i != a and len(fresh_run(i).tags) >= 2)
    tags_a, tags_b = list(fresh_run(a).tags), list(fresh_run(b).tags)
    edit_cells(sheet, {(a, "tags"): ", ".join([*tags_a, "from-sheet ✓"]),
                       (b, "tags"): ", ".join(tags_b[1:] + ["sheet-added"])})  # b: one removed, one added
    set_in_wandb(a, tags=[*tags_a, '"w&b, tag"'])  # a colleague adds tags in W&B since the export
    set_in_wandb(b, tags=[*tags_b[:-1], "ui-added"])  # ... and removes one of b's

    doc = dry_run(sheet)
    assert doc["conflicts"] == []
    assert {c["run_id"]: set(c["new"]) for c in doc["changes"] if c["field"] == "tags"} == {
        a: {*tags_a, "from-sheet ✓", '"w&b, tag"'}, b: {*tags_b[1:-1], "sheet-added", "ui-added"}}
    invoke("import", sheet, "--yes")
    assert set(fresh_run(a).tags) == {*tags_a, "from-sheet ✓", '"w&b, tag"'}
    assert set(fresh_run(b).tags) == {*tags_b[1:-1], "sheet-added", "ui-added"}


def test_ticked_tag_columns_merge_with_tags_added_in_wandb(ids, tmp_path):
    sheet = export(tmp_path, "xlsx", "--tag-columns")
    header = [c.value for c in openpyxl.load_workbook(sheet)["runs"][1]]
    vocabulary = [h[len("tag:"):] for h in header if h.startswith("tag:")]
    a = next(i for i in ids if set(vocabulary) - set(fresh_run(i).tags))
    tick = sorted(set(vocabulary) - set(fresh_run(a).tags))[0]
    tags_a = list(fresh_run(a).tags)
    edit_cells(sheet, {(a, f"tag:{tick}"): True})
    set_in_wandb(a, tags=[*tags_a, "added in W&B"])
    invoke("import", sheet, "--yes")
    assert set(fresh_run(a).tags) == {*tags_a, tick, "added in W&B"}


def test_tags_merge_past_this_sheets_own_import_and_a_later_wandb_edit(ids, tmp_path):
    sheet = export(tmp_path, "csv")
    a = tagged(ids, 1)
    tags_a = list(fresh_run(a).tags)
    edit_cells(sheet, {(a, "tags"): ", ".join([*tags_a, "a-1"])})
    invoke("import", sheet, "--yes")
    set_in_wandb(a, tags=[*tags_a, "a-1", "ui"])
    edit_cells(sheet, {(a, "tags"): ", ".join([*tags_a, "a-1", "a-2"])})
    doc = dry_run(sheet)
    assert doc["conflicts"] == [] and [set(c["new"]) for c in doc["changes"]] == [{*tags_a, "a-1", "ui", "a-2"}]
    invoke("import", sheet, "--yes")
    assert set(fresh_run(a).tags) == {*tags_a, "a-1", "ui", "a-2"}


@pytest.mark.parametrize("import_does", ["removes a tag", "adds a tag"])
@pytest.mark.parametrize("columns", [(), ("--tag-columns",)], ids=["tags", "tags and tag columns"])
def test_a_stale_copys_tags_conflict_with_what_an_import_changed(ids, tmp_path, import_does, columns):
    shared = export(tmp_path / "share", "xlsx", *columns)
    a = tagged(ids, 2)
    tags_a = list(fresh_run(a).tags)
    b_copy = take_copy(shared, tmp_path / "bob" / "runs.xlsx")
    after_import = tags_a[1:] if import_does == "removes a tag" else [*tags_a, "alice's"]
    edit_cells(shared, {(a, "tags"): ", ".join(after_import)})
    invoke("import", shared, "--yes")
    (a_journal,) = journals(shared)
    edit_cells(b_copy, {(a, "tags"): ", ".join([*tags_a, "bob's"])})  # B adds a tag in her stale copy
    shutil.copy2(b_copy, shared)

    doc = dry_run(shared, exit_code=1)
    assert doc["errors"] == []  # the tags cell and its tick columns agree (both as exported): one stale value
    conflict = stale_conflict(doc, a, "tags")
    changed = tags_a[0] if import_does == "removes a tag" else "alice's"
    assert str(a_journal) in conflict["reason"] and repr(changed) in conflict["reason"]
    invoke("import", shared, "--yes", "--force", exit_code=1)
    assert set(fresh_run(a).tags) == set(after_import)


# --- 6. undo conflicts caused by a later import name it --------------------------------------------------------

def test_undo_of_an_import_overwritten_by_a_later_one_names_the_later_import(ids, tmp_path):
    sheet = export(tmp_path, "xlsx")
    a, b = ids[6], ids[7]
    edit_cells(sheet, {(a, "group"): "first", (b, "group"): "only-first"})
    invoke("import", sheet, "--yes")
    edit_cells(sheet, {(a, "group"): "second ✓"})
    invoke("import", sheet, "--yes")
    first, second = journals(sheet)
    set_in_wandb(b, group="by hand")  # not an import: no journal to name

    by_run = {c.run_id: c for c in plan_undo_journal(first).conflicts}
    assert str(second) in by_run[a].reason and began(second) in by_run[a].reason
    assert by_run[b].reason is None  # changed by hand: no import to name
    text = invoke("undo", first, "--dry-run", exit_code=1).stdout
    assert str(second) in text
    invoke("undo", second, "--yes")  # undoing the later import first lets the earlier one be undone
    invoke("undo", first, "--dry-run", exit_code=1)  # b was changed by hand: still a conflict
    assert fresh_run(a).group == "first"
