"""A spreadsheet program's conversions (in any locale) are damage, never writes; a person's edit still lands.

The judgement (runsync.planner.conversions) is generative: what a program may read an exported text as, in each
locale's conventions (CLDR via Babel), against what the saved cell can be a rendering of.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import pytest
import wandb
from helpers import damaged_cells, invoke, write_counts

from runsync.planner.conversions import (
    LOCALES,
    locales_for_delimiter,
    misread,
    readings,
)

COMMA_LOCALES = locales_for_delimiter(";")

# (text as exported, the cell as a program saved it): each a conversion, never an edit.
CONVERSIONS = [
    # month-name dates, in the program's own date formats and orders
    ("Apr-7", "04/07/26"), ("Apr-7", "07.04.2026"), ("Apr-7", "01.04.07"), ("Sep 2023", "09/01/23"),
    ("Sep 2023", "2023-09-01"), ("7-Apr", "2026-04-07"), ("März 3", "03.03.26"), ("3 mars 2024", "03/03/2024"),
    ("Apr-7", dt.datetime(2026, 4, 7)), ("2024年1月2日", "2024-01-02"), ("1/2", "1月2日"),
    # times, with seconds, a day period, fractional seconds, or as a day fraction in XLSX
    ("7:45", "07:45:00"), ("7:45", "07:45:00 AM"), ("7:45 PM", "19:45:00"), ("7:45 PM", "07:45:00 PM"),
    ("12:30:15.5", "12:30:15.50"), ("12:30:15.5", "12:30:15,500"), ("7:45", 0.3229166666666667),
    ("23:59:59", "11:59:59 PM"), ("7:45 PM", dt.time(19, 45)),
    # money: the symbol dropped or added, other separators
    ("€3", "3"), ("€3", "3,00 €"), ("€3", "3.00 "), ("$4.50", "4.5"), ("£10", "10.00"), ("-€3", "-3"),
    # accounting negatives
    ("(5)", "-5"), ("(1,234.50)", "-1234.5"), ("(1,234.50)", "-1.234,5"), ("(7)", -7),
    # denormal floats flushed to 0
    ("1e-310", "0"), ("5e-324", "0"), ("-2.5e-315", 0),
    # numbers re-read with `.` as the thousands separator (de-DE, pl-PL, pt-BR Calc or Excel): x1000
    ("0.005", "5"), ("3.250", "3250"), ("0.001", "1"), ("1.234.567", "1234567"), ("12.500", "12500"),
    # grouped, scientific, percent, trailing zeros, 15 digits (rounded or truncated)
    ("1,234", "1234"), ("1,234", "1.234"), ("1e5", "1.00E+05"), ("1e5", "1,00E+05"), ("50%", "50.00%"),
    ("50%", "0.5"), ("3.250", "3.25"), ("12345678901234567890", "12345678901234600000"),
    ("12345678901234567890", "12345678901234500000"), ("0.30000000000000004", "0.3"),
    ("1 1/2", "1.5"), ("true", "WAHR"), ("false", "FALSCH"), ("TRUE", "VRAI"),
    # found by an adversarial tryout: Calc's lax grouping (any digits before the first `.`), hour-only and
    # one-digit times, hundredths of a second shown, fullwidth digits, a percentage shown with fewer digits
    ("1234.567", "1234567"), ("123456789.123", "123456789123"), ("-123456.789", "-123456789"),
    ("8 AM", "08:00:00 AM"), ("8 AM", "08:00:00"), ("8 PM", "20:00:00"), ("1:2:3", "01:02:03"),
    ("12:30:45.123", "12:30:45.12"), ("３．５", "3.5"), ("１２３", "123"), ("0.5%", "1%"), ("12.5%", "13%"),
]

# (text as exported, the cell as saved): edits a person made, never taken for a conversion.
EDITS = [
    ("0.005", "0.006"), ("0.005", "6"), ("Apr-7", "Apr-8"), ("Apr-7", "04/08/26"), ("7:45", "7:46"),
    ("7:45 PM", "07:45:00 AM"), ("€3", "4"), ("(5)", "-6"), ("(5)", "5"), ("1e-310", "1"), ("3.250", "3251"),
    ("hello", "5"), ("0.1", "0.2"), ("12345678901234567890", "12345678901234567891"), ("50%", "0.05"),
    ("true", "FALSCH"), ("Sep 2023", "Oct 2023"), ("1/2", "01/03/26"),
    ("8 AM", "09:00:00"), ("12:30:45.123", "12:30:45.13"), ("5%", "6%"), ("0.25", "0.3"), ("8", "08:00:00"),
    ("1234.567", "1234568"),
]


@pytest.mark.parametrize(("exported", "saved"), CONVERSIONS)
def test_a_programs_conversion_is_recognised(exported, saved):
    assert misread(exported, saved) is not None


@pytest.mark.parametrize(("exported", "saved"), EDITS)
def test_an_edit_is_not_taken_for_a_conversion(exported, saved):
    assert misread(exported, saved) is None


def test_a_semicolon_csv_is_read_in_the_locales_with_a_comma_decimal():
    assert "de_DE" in COMMA_LOCALES and "pl_PL" in COMMA_LOCALES and "pt_BR" in COMMA_LOCALES
    assert "en_US" not in COMMA_LOCALES and "ja_JP" not in COMMA_LOCALES
    assert misread("0.005", "5", COMMA_LOCALES)  # de-DE's grouping
    assert misread("1,234", "1234", COMMA_LOCALES) is None  # en-US's grouping: no such locale wrote a `;` CSV
    assert misread("1,234", "1234", LOCALES)


def test_the_reading_says_what_the_program_did():
    why = misread("0.005", "5")
    assert "'0.005'" in why and "the number 5" in why and "thousands separator" in why and "'5'" in why
    assert "accounting negative" in misread("(5)", "-5")
    assert "a time" in misread("7:45", "07:45:00 AM")
    assert {r.kind for r in readings("Apr-7")} == {"date"}
    assert readings("version 1.2") == [] and readings("") == []


# --- through the whole import: a de-DE Calc's save of an untouched CSV writes nothing ---------------------

CONFIG = {  # (exported value, what a German Calc with "detect special numbers" saves) per key
    "lr": (0.005, "5"), "wd": (0.001, "1"), "version": ("3.250", "3250"), "start": ("Apr-7", "07.04.26"),
    "month": ("Sep 2023", "01.09.23"), "at": ("7:45 PM", "19:45:00"), "short": ("7:45", "07:45:00"),
    "price": ("€3", "3,00 €"), "loss": ("(5)", "-5"), "tiny": (1e-310, "0"), "tinier": (5e-324, "0"),
    "secs": ("12:30:15.5", "12:30:15,50"), "big": (1234.567, "1234567"), "bigger": (123456789.123, "123456789123"),
}


def _german_save(sheet: Path, edits: dict[tuple[str, str], str]) -> Path:
    """The CSV as a German Calc user saves it: `;`-delimited, no BOM, LF, cells as Calc rendered them."""
    rows = list(csv.reader(io.StringIO(sheet.read_text(encoding="utf-8-sig"), newline="")))
    header = rows[0]
    for row in rows[1:]:
        for (run_id, column), value in edits.items():
            if row[0] == run_id:
                row[header.index(column)] = value
    out = io.StringIO()
    csv.writer(out, delimiter=";", lineterminator="\n").writerows(rows)
    target = sheet.with_name("runs-de.csv")
    target.write_text(out.getvalue(), encoding="utf-8")
    return target


@pytest.fixture
def exported_csv(sandbox, tmp_path):
    for i in range(3):
        sandbox.store.create_run("e", "p", f"r{i}", display_name=f"run {i}",
                                 config={k: v for k, (v, _) in CONFIG.items()} | {"other": 0.1 * (i + 1)})
    sheet = tmp_path / "runs.csv"
    invoke("export", "e/p", "-o", sheet)
    return sandbox, sheet


def test_untouched_csv_saved_by_a_german_calc_writes_nothing(exported_csv):
    sandbox, sheet = exported_csv
    conversions = {(f"r{i}", f"config.{k}"): saved for i in range(3) for k, (_, saved) in CONFIG.items()}
    resaved = _german_save(sheet, conversions)
    before = write_counts(sandbox)
    result = invoke("import", resaved, "--base", sheet, "--yes")
    assert "No changes." in result.stdout + result.stderr, result.stdout + result.stderr
    assert write_counts(sandbox) == before
    assert {r.id: r.config["lr"] for r in wandb.Api().runs("e/p")} == {"r0": 0.005, "r1": 0.005, "r2": 0.005}
    assert damaged_cells(result.stderr) == set(conversions)
    for key in CONFIG:  # one warning per column, with its count
        assert result.stderr.count(f"column 'config.{key}': 3 cells changed by a spreadsheet program") == 1
    assert "no base snapshot" not in result.stderr  # --base was given


def test_an_edit_beside_the_conversions_lands_exactly(exported_csv):
    sandbox, sheet = exported_csv
    edits = {(f"r{i}", f"config.{k}"): saved for i in range(3) for k, (_, saved) in CONFIG.items()}
    edits[("r2", "config.other")] = "7"
    resaved = _german_save(sheet, edits)
    invoke("import", resaved, "--base", sheet, "--yes")
    runs = {r.id: dict(r.config) for r in wandb.Api().runs("e/p")}
    assert runs["r2"]["other"] == 7
    assert runs["r0"]["other"] == 0.1 and runs["r0"]["lr"] == 0.005 and runs["r2"]["lr"] == 0.005
    assert runs["r1"]["tiny"] == 1e-310 and runs["r1"]["version"] == "3.250"


@pytest.mark.parametrize(("typed", "number"), [("0,01", "0.01"), ("-1,5", "-1.5"), ("1.234,5", "1234.5")])
def test_a_comma_decimal_typed_into_a_semicolon_csv_is_refused_as_a_locales_number(exported_csv, typed, number):
    """A `;` CSV comes from a locale with a decimal comma: `0,01` there is most likely the number 0.01, typed
    in that locale. Still never written as text unless --allow-text; the message says what it looks like."""
    sandbox, sheet = exported_csv
    edits = {(f"r{i}", f"config.{k}"): saved for i in range(3) for k, (_, saved) in CONFIG.items()}
    edits[("r1", "config.other")] = typed
    resaved = _german_save(sheet, edits)
    before = write_counts(sandbox)
    result = invoke("import", resaved, "--base", sheet, "--yes", exit_code=1)
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "run r1, column 'config.other'" in error
    assert f"{typed!r} looks like the number {number} typed in a locale with a decimal comma" in error, error
    assert f'type {number}, quote it for text ("{typed}") or pass --allow-text' in error
    assert write_counts(sandbox) == before
    assert {r.id: r.config["other"] for r in wandb.Api().runs("e/p")}["r1"] == 0.2


def test_a_csv_saved_as_xlsx_keeps_its_formula_guard_out_of_wandb(sandbox, tmp_path):
    from openpyxl import Workbook

    guarded = {"formula": "=SUM(A1:A2)", "phone": "+81 3", "dash": "-x", "at": "@user", "quote": "'already"}
    sandbox.store.create_run("e", "p", "g1", display_name="guarded", config=guarded | {"n": 1})
    sheet = tmp_path / "runs.csv"
    invoke("export", "e/p", "-o", sheet)
    rows = list(csv.reader(io.StringIO(sheet.read_text(encoding="utf-8-sig"), newline="")))
    assert "'=SUM(A1:A2)" in rows[1]  # the export's guard
    book = Workbook()  # what a program does when it opens the CSV and saves it as XLSX: text stays text
    for row in rows:
        book.active.append(row)
    header = rows[0]
    book.active.cell(row=2, column=header.index("config.n") + 1, value=2)  # one real edit
    xlsx = tmp_path / "runs.xlsx"
    book.save(xlsx)
    result = invoke("import", xlsx, "--base", sheet, "--dry-run", "--format", "json")
    assert '"field": "config.n"' in result.stdout and result.stdout.count('"field"') == 1, result.stdout
    invoke("import", xlsx, "--base", sheet, "--yes")
    config = dict(wandb.Api().run("e/p/g1").config)
    assert config == guarded | {"n": 2}


@pytest.mark.parametrize(("held", "typed"), [([1, 2], "wide"), ({"a": 1}, "resnet 50"), (["x"], "x, y")])
def test_plain_text_in_a_json_column_says_json_is_expected_and_how_to_type_text(sandbox, tmp_path, held, typed):
    from runsync.fields.codec import decode_cell

    problem = decode_cell(typed, column="config.k", base=held)
    assert "not valid JSON" in problem.message and '"like this"' in problem.message
    assert ("a list" if isinstance(held, list) else "a dict") in problem.message
    assert decode_cell(f'"{typed}"', column="config.k", base=held) == typed  # the way out it names works


@pytest.mark.parametrize("ext", ["csv", "xlsx"])
def test_a_total_row_below_the_data_is_skipped_with_a_warning(sandbox, tmp_path, ext):
    from openpyxl import load_workbook

    for i, lr in enumerate((0.1, 0.2)):
        sandbox.store.create_run("e", "p", f"t{i}", display_name=f"run {i}", config={"lr": lr, "epochs": 3})
    sheet = tmp_path / f"runs.{ext}"
    invoke("export", "e/p", "-o", sheet)
    if ext == "csv":
        rows = list(csv.reader(io.StringIO(sheet.read_text(encoding="utf-8-sig"), newline="")))
        header = rows[0]
        rows[1][header.index("config.epochs")] = "4"  # one real edit
        total = [""] * len(header)
        total[header.index("name")], total[header.index("config.lr")] = "Total (reviewed by Ana)", "0.3"
        out = io.StringIO()
        csv.writer(out, lineterminator="\r\n").writerows([*rows, [""] * len(header), total])
        sheet.write_text(out.getvalue(), encoding="utf-8-sig")
    else:
        book = load_workbook(sheet)
        ws = book["runs"]
        header = [c.value for c in ws[1]]
        ws.cell(row=2, column=header.index("config.epochs") + 1, value=4)
        ws.cell(row=5, column=header.index("name") + 1, value="Total (reviewed by Ana)")
        ws.cell(row=5, column=header.index("config.lr") + 1, value=0.3)
        book.save(sheet)
    result = invoke("import", sheet, "--yes")
    assert "has no id and comes after the runs (a comment or total row?): skipped" in result.stderr
    assert wandb.Api().run("e/p/t0").config["epochs"] == 4 and wandb.Api().run("e/p/t1").config["epochs"] == 3
    if ext == "xlsx":  # a formula in such a row is still refused, and nothing is written
        book = load_workbook(sheet)
        book["runs"].cell(row=5, column=header.index("config.lr") + 1, value="=SUM(M2:M3)")
        book["runs"].cell(row=3, column=header.index("config.epochs") + 1, value=9)
        book.save(sheet)
        result = invoke("import", sheet, "--yes", exit_code=1)
        assert "formula" in result.stderr and wandb.Api().run("e/p/t1").config["epochs"] == 3


def test_a_renamed_runs_sheet_is_read_only_when_no_other_sheet_could_be_it(seeded_sandbox, tmp_path):
    """Found by an adversarial tryout: with `runs` renamed, the first visible sheet was planned as the runs,
    even an overview a person added (blank groups there would have erased the runs' groups)."""
    from openpyxl import load_workbook

    sheet = tmp_path / "runs.xlsx"
    invoke("export", "e/p", "-o", sheet)
    book = load_workbook(sheet)
    ws = book["runs"]
    ws.title = "Läufe"
    header = [c.value for c in ws[1]]
    first_id = ws.cell(row=2, column=1).value
    group_before = wandb.Api().run(f"e/p/{first_id}").group
    ws.cell(row=2, column=header.index("group") + 1, value="renamed-sheet-edit")
    notes = book.create_sheet("Notizen", 0)  # no id column: not a candidate
    notes.append(["what", "who"])
    notes.append(["check lr", "Ana"])
    book.save(sheet)
    result = invoke("import", sheet, "--dry-run")
    assert "no sheet named 'runs'; reading 'Läufe'" in result.stderr and "renamed-sheet-edit" in result.stdout

    overview = book.create_sheet("Übersicht", 0)  # an overview with ids: it could be the runs too
    overview.append(["id", "group", "notes"])
    overview.append([first_id, None, "to check"])
    book.save(sheet)
    refused = invoke("import", sheet, "--yes", exit_code=1)
    assert "rename the exported sheet back to 'runs'" in refused.stderr and "'Übersicht'" in refused.stderr
    assert wandb.Api().run(f"e/p/{first_id}").group == group_before
