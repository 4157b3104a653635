"""What people do in spreadsheets without LibreOffice in the loop: the sheet's own help, tag tick columns,
Excel's cell limit, a Google Sheets download, and what the commands say. All through the CLI."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import wandb
from helpers import edit_cells, invoke

from runsync.fields import is_readonly

FORMATS = ["xlsx", "csv"]
LONG_KEY = "prompt"


@pytest.fixture
def runs(sandbox):
    """Three runs with tags to tick, a long config value, booleans and text a formula guard protects."""
    store = sandbox.store
    store.create_run("e", "p", "r1", display_name="one", tags=["baseline", "ablation"],
                     config={"lr": 0.1, "use_amp": True, "note": "=1+1", LONG_KEY: "p" * 300})
    store.create_run("e", "p", "r2", display_name="two", tags=["baseline"],
                     config={"lr": 0.01, "use_amp": False, "note": "-x", "code": "007"})
    store.create_run("e", "p", "r3", display_name="three", tags=[], config={"lr": 1e-08, "use_amp": True})
    return sandbox


def dry_run(sheet: Path, *extra: str, exit_code: int = 0) -> dict:
    result = invoke("import", sheet, "--dry-run", "--format", "json", *extra, exit_code=exit_code)
    return json.loads(result.stdout)


def changes(doc: dict) -> list[tuple]:
    return [(c["run_id"], c["field"], c["new"]) for c in doc["changes"]]


# --- the sheet explains itself ----------------------------------------------------------------------------

def test_xlsx_header_notes_grey_read_only_frozen_filtered_and_sized(runs, tmp_path):
    from openpyxl import load_workbook
    from openpyxl.utils import get_column_letter

    sheet = tmp_path / "runs.xlsx"
    invoke("export", "e/p", "--tag-columns", "--summary", "acc", "-o", sheet)
    ws = load_workbook(sheet)["runs"]
    header = [c.value for c in ws[1]]
    assert {"tag:ablation", "tag:baseline", "config.prompt", "state"} <= set(header)
    assert ws.freeze_panes == "B2"  # header row and id column stay in view
    assert ws.auto_filter.ref == f"A1:{get_column_letter(len(header))}4"
    for i, column in enumerate(header, start=1):
        note = ws.cell(1, i).comment
        assert note is not None and 10 < len(note.text) <= 120, column
        readonly = is_readonly(column)
        assert note.text.startswith("read-only") == readonly, column
        for row in (1, 2):  # the header and a data cell: grey means "don't bother editing"
            fill = ws.cell(row, i).fill
            assert (fill.fill_type == "solid" and fill.start_color.rgb.endswith("E7E6E6")) == readonly, column
        width = ws.column_dimensions[get_column_letter(i)].width
        assert len(column) < width <= 60, column  # fits the header, capped for long values
    assert "TRUE = the run has this tag" in ws.cell(1, header.index("tag:baseline") + 1).comment.text
    assert ws.column_dimensions[get_column_letter(header.index("config.prompt") + 1)].width == 60


# --- tag tick columns -------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
def test_tag_columns_tick_untick_and_the_plain_tags_column(runs, tmp_path, fmt):
    sheet = tmp_path / f"runs.{fmt}"
    invoke("export", "e/p", "--tag-columns", "-o", sheet)
    true, false = (True, False) if fmt == "xlsx" else ("TRUE", "FALSE")
    edit_cells(sheet, {("r3", "tag:baseline"): true,  # tick: added
                       ("r1", "tag:ablation"): false,  # untick: removed
                       ("r2", "tags"): "baseline, from-tags-column"})  # the plain column still works
    doc = dry_run(sheet)
    assert sorted(changes(doc)) == [("r1", "tags", ["baseline"]), ("r2", "tags", ["baseline", "from-tags-column"]),
                                    ("r3", "tags", ["baseline"])]
    text = invoke("import", sheet, "--dry-run").stdout
    assert "tags: [baseline, ablation] → [baseline]" in text and "tags: [] → [baseline]" in text
    invoke("import", sheet, "--yes")
    assert {r.id: sorted(r.tags) for r in wandb.Api().runs("e/p")} == {
        "r1": ["baseline"], "r2": ["baseline", "from-tags-column"], "r3": ["baseline"]}


@pytest.mark.parametrize("fmt", FORMATS)
def test_tags_and_tag_column_both_edited_is_refused(runs, tmp_path, fmt):
    sheet = tmp_path / f"runs.{fmt}"
    invoke("export", "e/p", "--tag-columns", "-o", sheet)
    edit_cells(sheet, {("r2", "tag:baseline"): False if fmt == "xlsx" else "FALSE", ("r2", "tags"): "baseline, x"})
    doc = dry_run(sheet, exit_code=1)
    assert doc["changes"] == [] and [(e["run_id"], e["column"]) for e in doc["errors"]] == [("r2", "tags")]
    assert "edit one of them" in doc["errors"][0]["message"]
    result = invoke("import", sheet, "--yes", exit_code=1)
    assert "nothing written" in result.stderr
    assert sorted(wandb.Api().run("e/p/r2").tags) == ["baseline"]


# --- Excel's 32,767-character cell limit -----------------------------------------------------------------

def test_cell_over_excel_limit_is_refused_at_export_and_leaves_no_file(sandbox, tmp_path):
    sandbox.store.create_run("e", "p", "r1", config={"lr": 0.1})
    sandbox.store.create_run("e", "p", "huge", config={LONG_KEY: "y" * 40_000})
    out = tmp_path / "out"
    out.mkdir()
    result = invoke("export", "e/p", "-o", out / "runs.xlsx", exit_code=1)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert "run huge" in lines[0] and f"config.{LONG_KEY}" in lines[0] and "32,767" in lines[0]
    assert "--config-keys" in lines[0]  # a way out: leave the key out (or export CSV)
    assert list(out.iterdir()) == []  # no file, no half-written temp file


def test_csv_cut_by_excel_at_the_limit_is_named_not_written(sandbox, tmp_path):
    long_text = "z" * 40_000
    sandbox.store.create_run("e", "p", "huge", config={LONG_KEY: long_text})
    sheet = tmp_path / "runs.csv"
    invoke("export", "e/p", "-o", sheet)  # CSV has no cell limit: the way to export such a run
    edit_cells(sheet, {("huge", f"config.{LONG_KEY}"): long_text[:32_767]})  # what Excel does opening it
    result = invoke("import", sheet, "--dry-run", "--format", "json")
    assert json.loads(result.stdout)["changes"] == []
    assert f"column 'config.{LONG_KEY}': 1 cell changed by a spreadsheet program" in result.stderr
    assert "row 2, run huge: text cut at" in result.stderr


def test_export_into_a_missing_folder_is_a_clear_error(runs, tmp_path):
    result = invoke("export", "e/p", "-o", tmp_path / "nope" / "runs.xlsx", exit_code=1)
    assert "nope does not exist" in result.stderr and "internal error" not in result.stderr


# --- a Google Sheets download ----------------------------------------------------------------------------

def google_sheets_download(exported: Path, target: Path) -> None:
    """Rewrite our CSV as Sheets downloads it: UTF-8 without BOM, CRLF, TRUE/FALSE, the ' guard gone."""
    rows = list(csv.reader(io.StringIO(exported.read_text(encoding="utf-8-sig"))))
    for row in rows[1:]:
        for i, cell in enumerate(row):
            if cell in ("true", "false"):
                row[i] = cell.upper()
            elif cell.startswith("'"):
                row[i] = cell[1:]  # Sheets reads a leading ' as "this is text" and doesn't keep it
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    target.write_bytes(out.getvalue().encode("utf-8"))


def test_google_sheets_download_with_base_and_two_way(runs, tmp_path):
    exported = tmp_path / "runs.csv"
    invoke("export", "e/p", "-o", exported)
    download = tmp_path / "Runs to curate - runs.csv"
    google_sheets_download(exported, download)
    data = download.read_bytes()
    assert not data.startswith(b"\xef\xbb\xbf") and b"\r\n" in data and b",TRUE," in data and b"'" not in data
    edit_cells(download, {("r2", "config.use_amp"): "TRUE"})
    download.write_bytes(download.read_bytes().removeprefix(b"\xef\xbb\xbf"))  # edit_cells adds a BOM
    want = [("r2", "config.use_amp", True)]
    for base in (exported, Path(str(exported) + ".runsync.json")):
        assert changes(dry_run(download, "--base", str(base))) == want
    result = invoke("import", download, "--dry-run", "--format", "json", "--project", "e/p")
    assert changes(json.loads(result.stdout)) == want
    assert "2-way" in result.stderr and "conflicts cannot be detected" in result.stderr
    invoke("import", download, "--base", str(exported), "--yes")
    assert wandb.Api().run("e/p/r2").config["use_amp"] is True


# --- what the commands say -------------------------------------------------------------------------------

def test_import_says_what_it_read_and_the_next_step(runs, tmp_path):
    sheet = tmp_path / "runs.xlsx"
    invoke("export", "e/p", "-o", sheet)
    quiet = invoke("import", sheet, "--dry-run")
    assert f"Read {sheet}: plan for e/p" in quiet.stderr and "No changes." in quiet.stdout
    edit_cells(sheet, {("r1", "group"): "g1"})
    pending = invoke("import", sheet, "--dry-run")
    assert f"To apply: runsync import {sheet}" in pending.stderr
    assert 'group: null → "g1"' in pending.stdout
    done = invoke("import", sheet, "--yes")
    assert "journal" in done.stderr.lower() and "runsync undo" in done.stderr


# --- characters lost on the way (unit level; the real programs are in test_libreoffice.py) ----------------

@pytest.mark.parametrize(("base", "raw", "fragment"), [
    ("🚀 launch", "? launch", "encoding can't hold"),  # cp932 / Latin-1 save
    ("🚀 launch", "?? launch", "encoding can't hold"),  # one ? per UTF-16 unit
    ("波〜", "波～", "encoding can't hold"),  # cp932's look-alike for U+301C
    ("日本 🚀", "日本 ? done", "save the CSV as UTF-8"),  # edited, then saved as cp932
    (("a,b", "🔥hot"), '"a,b", ?hot', "in tags"),
    ("x" * 40_000, "x" * 32_767, "32,767"),
])
def test_lost_characters_are_named(base, raw, fragment):
    from runsync.planner.damage import mangled_by_program

    assert fragment in (mangled_by_program(base, raw) or "")


@pytest.mark.parametrize(("base", "raw"), [
    ("🚀 launch", "🚀 launched?"),  # a real edit that kept the emoji
    ("日本", "中国"),
    ("abc", "ab?"),  # ASCII can't be lost to an encoding
    ("x" * 40_000, "x" * 30_000),  # shortened by a person, not at the limit
    (("a", "b"), "a, c"),
])
def test_real_edits_are_not_mistaken_for_loss(base, raw):
    from runsync.planner.damage import mangled_by_program

    assert mangled_by_program(base, raw) is None


def test_every_cell_over_the_limit_is_named_in_one_refusal(sandbox, tmp_path):
    sandbox.store.create_run("e", "p", "ok1", config={"lr": 0.1, "prompt": "short"})
    sandbox.store.create_run("e", "p", "big1", config={"prompt": "p" * 33_000, "lr": 0.2})
    sandbox.store.create_run("e", "p", "big2", notes="n" * 40_000, config={"tokens": list(range(7_000)), "lr": 0.3})
    result = invoke("export", "e/p", "-o", tmp_path / "runs.xlsx", exit_code=1)
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1 and "3 cells too long for XLSX" in line and "32,767-character" in line, line
    assert "run big1: column 'config.prompt': 33,000 characters" in line
    assert "run big2: column 'notes': 40,000 characters" in line and "run big2: column 'config.tokens'" in line
    assert "ok1" not in line and ".csv" in line and "--columns" in line
    assert not (tmp_path / "runs.xlsx").exists()
    invoke("export", "e/p", "-o", tmp_path / "runs.csv")  # the way out it names works
