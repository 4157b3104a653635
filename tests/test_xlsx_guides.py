"""Sheets that guide the edit (issue 12 §4): drop-downs on group/job_type, read-only columns that say so.

Checked with openpyxl (not runsync's reader), and after a LibreOffice Calc re-save.
"""
from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest
import wandb
from helpers import invoke

from runsync.sheets.xlsx_io import read_fast, read_with_openpyxl

# Group names a project may hold: formula-like, commas and quotes (which break an inline list), edge
# spaces, Japanese, and enough of them that an inline list would pass its 255-character limit.
GROUPS = ["=SUM(A1)", "+plus", "-minus", "@at", 'a, "quoted"', " edge ", "実験グループ", "007", "TRUE",
          *(f"sweep-{i:02d}-{'x' * 12}" for i in range(30))]
JOB_TYPES = ["train", "eval", "=cmd|' /C calc'!A0"]
READ_ONLY = ("id", "state", "created_at", "url")


@pytest.fixture
def exported(sandbox, tmp_path) -> Path:
    for i, group in enumerate(GROUPS):
        sandbox.store.create_run("e", "p", f"r{i:02d}", display_name=f"run {i}", group=group,
                                 job_type=JOB_TYPES[i % len(JOB_TYPES)], config={"lr": i / 10})
    sandbox.store.create_run("e", "p", "nogroup", config={"lr": 1.0})  # no group, no job type: not offered
    sheet = tmp_path / "runs.xlsx"
    invoke("export", "e/p", "-o", sheet)
    return sheet


def used_in_wandb(field: str) -> set[str]:
    return {getattr(r, field) for r in wandb.Api().runs("e/p") if getattr(r, field)}


def list_range(book: openpyxl.Workbook, formula: str) -> list[tuple[object, str]]:
    """The cells a list validation's `'sheet'!$A$2:$A$9` formula points at: (value, data type)."""
    sheet, _, ref = formula.partition("!")
    ws = book[sheet.strip("'")]
    return [(c.value, c.data_type) for row in ws[ref.replace("$", "")] for c in row]


def check_guides(path: Path, runs: int) -> None:
    book = openpyxl.load_workbook(path)
    ws = book["runs"]
    header = [c.value for c in ws[1]]
    letter = {name: openpyxl.utils.get_column_letter(i + 1) for i, name in enumerate(header)}
    validations = ws.data_validations.dataValidation
    lists = {str(dv.sqref): dv for dv in validations if dv.type == "list"}
    for column, field in (("group", "group"), ("job_type", "job_type")):
        dv = lists[f"{letter[column]}2:{letter[column]}{runs + 1}"]
        offered = list_range(book, dv.formula1)
        assert {v for v, _ in offered} == used_in_wandb(field), column
        assert all(t == "s" for _, t in offered)  # "=SUM(A1)" is a choice, not a formula
        assert dv.showErrorMessage is False  # typing a new value is allowed
        assert dv.showInputMessage and dv.prompt
    assert len(lists["D2:D" + str(runs + 1)].formula1) < 255
    assert book["_lists"].sheet_state == "hidden" and book["_runsync"].sheet_state == "hidden"
    # Read-only columns: grey, and an input message (no hard protection).
    ro = [dv for dv in validations if dv.type in (None, "none") and dv.promptTitle == "Read-only"]
    assert len(ro) == 1 and ro[0].showInputMessage and "don't edit" in ro[0].prompt
    covered = set()
    for rng in ro[0].sqref.ranges:
        for row in ws[rng.coord]:
            covered |= {c.coordinate for c in row}
    for column in READ_ONLY:
        assert {f"{letter[column]}{r}" for r in range(2, runs + 2)} <= covered, column
        assert ws[f"{letter[column]}2"].fill.fgColor.rgb == "FFE7E6E6"
    editable = {f"{letter['name']}{r}" for r in range(2, runs + 2)}
    assert not editable & covered
    assert ws.freeze_panes == "B2" or ws.freeze_panes is None  # LibreOffice headless drops freeze panes
    assert ws.auto_filter.ref


def test_export_has_drop_downs_and_read_only_messages(exported):
    check_guides(exported, len(GROUPS) + 1)
    book = openpyxl.load_workbook(exported)
    assert book["runs"].freeze_panes == "B2" and book["runs"].auto_filter.ref.startswith("A1:")


def test_readers_ignore_the_lists_sheet(exported, tmp_path):
    fast, slow = read_fast(str(exported)), read_with_openpyxl(str(exported))
    assert (fast.columns, fast.rows) == (slow.columns, slow.rows)
    assert len(fast.rows) == len(GROUPS) + 1 and not fast.errors and not slow.errors
    assert "No changes." in invoke("import", exported, "--dry-run").stdout
    # A sheet whose "runs" tab was renamed is read from the first visible one, never from _lists.
    book = openpyxl.load_workbook(exported)
    book.move_sheet("_lists", offset=-2)
    book["runs"].title = "Sheet1"
    book.save(exported)
    assert openpyxl.load_workbook(exported).sheetnames[0] == "_lists"
    sheet = read_with_openpyxl(str(exported))
    assert sheet.columns[0] == "id" and len(sheet.rows) == len(GROUPS) + 1


def test_a_new_group_is_still_a_change(exported):
    book = openpyxl.load_workbook(exported)
    ws = book["runs"]
    header = [c.value for c in ws[1]]
    ws.cell(2, header.index("group") + 1).value = "brand-new-group"
    book.save(exported)
    out = invoke("import", exported, "--dry-run").stdout
    assert '"brand-new-group"' in out and "1 field to change" in out


def test_guides_can_be_turned_off(sandbox, tmp_path, monkeypatch):
    sandbox.store.create_run("e", "p", "a", group="g", job_type="train")
    monkeypatch.setenv("RUNSYNC_XLSX_GUIDES", "0")
    invoke("export", "e/p", "-o", tmp_path / "off.xlsx")
    book = openpyxl.load_workbook(tmp_path / "off.xlsx")
    assert book.sheetnames == ["runs", "_runsync"] and not book["runs"].data_validations.dataValidation


def test_no_runs_no_lists(sandbox, tmp_path):
    sandbox.store.create_run("e", "p", "a")  # no group or job type anywhere
    invoke("export", "e/p", "-o", tmp_path / "plain.xlsx")
    book = openpyxl.load_workbook(tmp_path / "plain.xlsx")
    assert book.sheetnames == ["runs", "_runsync"]
    assert [dv.promptTitle for dv in book["runs"].data_validations.dataValidation] == ["Read-only"]


@pytest.mark.libreoffice
def test_guides_survive_a_libreoffice_resave(exported, tmp_path):
    import libreoffice as lo

    resaved = lo.convert([exported], tmp_path / "lo", "xlsx")[0]
    check_guides(resaved, len(GROUPS) + 1)
    assert "No changes." in invoke("import", resaved, "--dry-run").stdout
