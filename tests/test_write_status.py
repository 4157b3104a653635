"""--write-status: each row's outcome written back into the user's sheet (a runsync_status column), read back
with openpyxl / the csv module; the column is ignored by the next import, which plans "No changes."."""
from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import openpyxl
import pytest
import wandb
from fault_support import deleted_once_written
from helpers import dry_run, edit_cells, invoke, write_counts

import runsync
from runsync.backend.wandb.client import WandbBackend
from runsync.model import Action, ApplyReport, Change, Plan, Skip
from runsync.sheets.status import STATUS_COLUMN, annotate_sheet, run_statuses
from runsync.writer.apply import apply_plan
from runsync.writer.options import ApplyOptions

FORMATS = ["xlsx", "csv"]


def _states() -> dict[str, str]:
    return {r.id: r.state for r in wandb.Api(timeout=20).runs("e/p", lazy=False)}


def _pick(states: dict[str, str]) -> tuple[list[str], str]:
    """Four finished runs and one running run, in sheet (id) order."""
    done = sorted(r for r, s in states.items() if s == "finished")
    running = sorted(r for r, s in states.items() if s == "running")
    return done[:4], running[0]


def _table(path: Path) -> tuple[list[str], list[list]]:
    """(header, rows) of the runs sheet as plain values: openpyxl or the csv module, not runsync."""
    if path.suffix == ".xlsx":
        ws = openpyxl.load_workbook(path)["runs"]
        rows = [[c.value for c in row] for row in ws.iter_rows()]
    else:
        rows = list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8-sig"), newline="")))
    return rows[0], rows[1:]


def _statuses(path: Path) -> dict[str, str | None]:
    header, rows = _table(path)
    at, sid = header.index(STATUS_COLUMN), header.index("id")
    return {str(r[sid]): r[at] for r in rows if r[sid] not in (None, "")}


def _without_status(path: Path) -> tuple[list, list]:
    header, rows = _table(path)
    keep = [i for i, h in enumerate(header) if h != STATUS_COLUMN]
    return [header[i] for i in keep], [[r[i] if i < len(r) else None for i in keep] for r in rows]


@pytest.mark.parametrize("fmt", FORMATS)
def test_written_conflict_running_and_failed_runs_each_get_their_status(seeded_sandbox, tmp_path, fmt):
    sheet = tmp_path / f"runs.{fmt}"
    invoke("export", "e/p", "-o", sheet)
    (a, b, c, untouched), running = _pick(_states())
    edit_cells(sheet, {(a, "notes"): "\u00aba\u00bb note;\ntwo lines", (b, "group"): "g-sheet \u00e9",
                       (c, "notes"): "never lands", (running, "notes"): "-still running"})
    before_header, before_rows = _table(sheet)
    raw_before = sheet.read_bytes()
    plan = runsync.plan(sheet)
    assert {ch.run_id for ch in plan.changes} == {a, b, c} and [k.run_id for k in plan.skipped] == [running]
    live = wandb.Api(timeout=20).run(f"e/p/{b}")
    live.group = "moved in W&B meanwhile"
    live.update()
    with deleted_once_written(seeded_sandbox, c):  # c's write and every later try fail
        report = apply_plan(plan, WandbBackend(), ApplyOptions(journal=str(tmp_path / "j.jsonl"), concurrency=1,
                                                               batch_size=1, attempts=2, backoff_seconds=0.01))
    assert set(report.failed) == {c} and [x.run_id for x in report.conflicts] == [b]

    annotate_sheet(str(sheet), run_statuses(plan, report), journal=report.journal)
    status = _statuses(sheet)
    assert status[a] == "written"
    assert status[b].startswith("conflict") and "group" in status[b]
    assert status[c].startswith("error: ") and len(status[c]) > len("error: ")
    assert status[running] == "skipped: running"
    assert status[untouched] == "unchanged"
    # Every other cell as it was, in the same place; the column is added after the last one.
    assert _without_status(sheet) == (before_header, before_rows)
    assert _table(sheet)[0] == [*before_header, STATUS_COLUMN]
    if fmt == "xlsx":
        book = openpyxl.load_workbook(sheet)
        assert book["_runsync"].sheet_state == "hidden"
        assert book["runs"].data_validations.dataValidation, "the export's data validation is kept"
        note = book["runs"].cell(1, len(before_header) + 1).comment
        assert note is not None and "j.jsonl" in note.text and "ignored" in note.text
    else:
        raw = sheet.read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf") and raw.count(b"\r\n") == raw_before.count(b"\r\n")
        # the line break inside a's notes cell stays a bare LF; the rows keep their CRLF
        assert raw.count(b"\n") - raw.count(b"\r\n") == raw_before.count(b"\n") - raw_before.count(b"\r\n") == 1

    # The next plan ignores the column: no warning about it, and the same verdicts as the sheet without it.
    result = invoke("import", sheet, "--dry-run", "--format", "json", exit_code=1)
    again = json.loads(result.stdout)
    assert STATUS_COLUMN not in result.stderr and f"run {c} " in result.stderr  # c: deleted, said so
    assert {x["run_id"] for x in again["conflicts"]} == {b} and not again["changes"] and not again["errors"]


def test_a_status_that_looks_like_a_formula_stays_text(seeded_sandbox, tmp_path):
    ids = sorted(_states())[:4]
    texts = ["=SUM(A1:A9)", "+1", "-2", "@me", "plain"]
    for fmt in FORMATS:
        sheet = tmp_path / f"runs.{fmt}"
        invoke("export", "e/p", "-o", sheet)
        annotate_sheet(str(sheet), dict(zip(ids, texts)), journal=None)
        if fmt == "xlsx":
            ws = openpyxl.load_workbook(sheet)["runs"]
            at = [c.value for c in ws[1]].index(STATUS_COLUMN) + 1
            cells = {ws.cell(r, 1).value: ws.cell(r, at) for r in range(2, ws.max_row + 1)}
            assert all(cells[i].data_type == "s" for i in ids)
            assert [cells[i].value for i in ids] == texts[:4]
        else:
            got = _statuses(sheet)
            assert [got[i] for i in ids] == ["'=SUM(A1:A9)", "'+1", "'-2", "'@me"]
        assert not dry_run(sheet)["changes"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_cli_import_write_status_then_reimport_plans_no_changes_and_writes_nothing(seeded_sandbox, tmp_path, fmt):
    sheet = tmp_path / f"runs.{fmt}"
    invoke("export", "e/p", "-o", sheet)
    (a, b, _, _), running = _pick(_states())
    header, rows = _table(sheet)
    group = next(r for r in rows if str(r[header.index("id")]) == running)[header.index("group")]
    edit_cells(sheet, {(a, "notes"): "status \u2014 written", (b, "config.lr"): 0.125,
                       (running, "group"): "left alone"})
    done = invoke("import", sheet, "--yes", "--write-status")
    assert f"{STATUS_COLUMN}" in done.stderr and str(sheet) in done.stderr
    status = _statuses(sheet)
    assert status[a] == status[b] == "written" and status[running] == "skipped: running"
    assert wandb.Api(timeout=20).run(f"e/p/{a}").notes == "status \u2014 written"

    # A team member adds a remark into the status column; still ignored.
    edit_cells(sheet, {(a, STATUS_COLUMN): "checked by Ana"})
    seeded_sandbox.reset_stats()
    again = invoke("import", sheet, "--yes")
    assert "No changes." in again.stdout and "not a runsync column" not in again.stderr
    assert write_counts(seeded_sandbox) == (0, 0)
    # A second annotated import overwrites the column in place (no second column).
    invoke("import", sheet, "--yes", "--write-status")
    header, _ = _table(sheet)
    assert header.count(STATUS_COLUMN) == 1 and _statuses(sheet)[a] == "unchanged"
    # The status is not an unsaved edit: once the skipped edit is put back, a fresh export may replace the
    # sheet without --overwrite.
    edit_cells(sheet, {(running, "group"): group})
    invoke("export", "e/p", "-o", sheet)
    assert STATUS_COLUMN not in _table(sheet)[0]


def test_cli_conflicts_are_written_as_such_and_nothing_else_is(seeded_sandbox, tmp_path):
    sheet = tmp_path / "runs.xlsx"
    invoke("export", "e/p", "-o", sheet)
    (a, b, _, _), _ = _pick(_states())
    edit_cells(sheet, {(a, "notes"): "mine", (b, "notes"): "also mine"})
    live = wandb.Api(timeout=20).run(f"e/p/{b}")
    live.notes = "theirs"
    live.update()
    seeded_sandbox.reset_stats()
    invoke("import", sheet, "--yes", "--write-status", exit_code=1)
    status = _statuses(sheet)
    assert status[b].startswith("conflict") and status[a] == "not written: the import stopped on conflicts"
    assert write_counts(seeded_sandbox) == (0, 0)


def test_cli_undo_write_status_marks_the_sheet_the_journal_names(seeded_sandbox, tmp_path):
    sheet = tmp_path / "runs.csv"
    invoke("export", "e/p", "-o", sheet)
    (a, b, _, _), _ = _pick(_states())
    edit_cells(sheet, {(a, "notes"): "to be undone"})
    invoke("import", sheet, "--yes")
    undone = invoke("undo", sheet, "--last", "--yes", "--write-status")
    assert str(sheet) in undone.stderr
    status = _statuses(sheet)
    assert status[a] == "undone" and status[b] == "unchanged"
    assert wandb.Api(timeout=20).run(f"e/p/{a}").notes != "to be undone"
    # The sheet is gone: said, skipped, the undo itself stands.
    edit_cells(sheet, {(a, "notes"): "again"})
    invoke("import", sheet, "--yes")
    journal = sorted((tmp_path / "runs.csv.runsync-journals").glob("*.jsonl"))[-1]
    moved = tmp_path / "elsewhere.csv"
    shutil.move(sheet, moved)
    gone = invoke("undo", journal, "--yes", "--write-status")
    assert "status not written" in gone.stderr and str(sheet) in gone.stderr
    assert not sheet.exists()


def test_status_of_a_write_that_did_not_stick():
    change = Change("r1", None, "notes", "a", "b", "a", Action.UPDATE)
    plan = Plan("e/p", "s.csv", (change, Change("r2", None, "group", None, "g", None, Action.UPDATE)), (), (),
                skipped=(Skip("r3", None, "running"),))
    report = ApplyReport(applied=[change, plan.changes[1]], did_not_stick=[change])
    assert run_statuses(plan, report) == {"r1": "did not stick: notes", "r2": "written", "r3": "skipped: running"}


def test_libreoffice_resave_of_an_annotated_sheet_still_imports(seeded_sandbox, tmp_path):
    from libreoffice import convert

    sheet = tmp_path / "runs.xlsx"
    invoke("export", "e/p", "-o", sheet)
    (a, b, _, _), _ = _pick(_states())
    edit_cells(sheet, {(a, "notes"): "before LibreOffice"})
    invoke("import", sheet, "--yes", "--write-status")
    resaved = convert([sheet], tmp_path / "lo", "xlsx")[0]
    shutil.copy(resaved, sheet)
    assert _statuses(sheet)[a] == "written"
    assert not dry_run(sheet)["changes"]
    edit_cells(sheet, {(b, "notes"): "after LibreOffice"})
    invoke("import", sheet, "--yes", "--write-status")
    assert _statuses(sheet)[b] == "written" and _statuses(sheet)[a] == "unchanged"
    assert openpyxl.load_workbook(sheet)["_runsync"].sheet_state == "hidden"
