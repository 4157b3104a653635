"""Bad input writes nothing: every file in tests/bad_sheets/ (made by make.py from an export of the
`seeded_sandbox` project) gives one-line errors naming the file (and row, run, column where one applies),
exit 1, zero mutations, and no traceback unless --debug.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers import invoke

HERE = Path(__file__).parent / "bad_sheets"

# (file, fragments the error line must hold). "row N" / "column 'x'" / "run " are checked as written.
CASES = [
    # not a sheet at all
    ("empty.csv", ["the file is empty"]),
    ("empty.xlsx", ["the file is empty"]),
    ("whitespace_only.csv", ["the file is empty"]),
    ("binary_junk.csv", ["not a text file"]),
    ("binary_junk.xlsx", ["not an XLSX file"]),
    ("text_named.xlsx", ["not an XLSX file"]),
    ("xlsx_named.csv", ["zip (XLSX?) file, not a CSV"]),
    ("utf16_without_bom.csv", ["not a text file"]),
    ("password_protected.xlsx", ["password-protected"]),
    ("truncated.xlsx", ["damaged XLSX file"]),
    ("zip_without_workbook.xlsx", ["a zip without an Excel workbook"]),
    ("old_format.xls", ["unsupported format .xls"]),
    ("calc.ods", ["unsupported format .ods"]),
    ("ods_named.xlsx", ["unsupported format .ods"]),
    ("runs.txt", ["no base snapshot"]),  # read as a CSV (Excel's Unicode Text is a .txt); no sidecar beside it
    # structure
    ("header_only.csv", ["no runs in the sheet"]),
    ("header_only.xlsx", ["no runs in the sheet"]),
    ("no_id_column.csv", ["row 1", "no 'id' column"]),
    ("no_id_column.xlsx", ["row 1", "no 'id' column"]),
    ("duplicate_ids.csv", ["row 5", "column 'id'", "duplicate id", "(also row 2)"]),
    ("duplicate_ids.xlsx", ["row 7", "column 'id'", "duplicate id", "(also row 3)"]),
    ("blank_id.csv", ["row 4", "column 'id'", "blank id"]),
    ("blank_id.xlsx", ["row 6", "column 'id'", "blank id"]),
    ("unknown_id.csv", ["row 3", "run zzzzzzzz", "column 'id'", "not found in project e/p"]),
    ("unknown_id.xlsx", ["row 3", "run nosuchid", "column 'id'", "not found in project e/p"]),
    ("other_projects_id.csv", ["row 8", "column 'id'", "not found in project e/p"]),
    ("exported_from_other_project.csv", ["project e/q not found"]),
    ("duplicate_column.csv", ["row 1", "column 'group'", "duplicate column"]),
    ("ragged_rows.csv", ["row 7", "22 cells but the header has 20"]),
    ("value_without_header.xlsx", ["row 10", "which has no header"]),
    ("merged_cells.xlsx", ["row 4", "merged cells D4:D5"]),
    # cells
    ("formula_in_editable.xlsx", ["row 5", "column 'config.epochs'", "formula in an editable cell (=2*21)"]),
    ("error_value.xlsx", ["row 6", "column 'config.lr'", "error value #DIV/0!"]),
    ("bad_json.csv", ["row 2", "run eqh524yn", "column 'config.layers'", "not valid JSON"]),
    ("bad_json.xlsx", ["row 2", "run eqh524yn", "column 'config.layers'", "not valid JSON"]),
    ("tag_stray_quote.csv", ["row 3", "column 'tags'", "unbalanced double quote"]),
    ("tag_stray_quote.xlsx", ["row 4", "column 'tags'", "stray double quote"]),
    ("tag_column_not_bool.xlsx", ["row 5", "column 'tag:baseline'", "TRUE or FALSE"]),
    ("name_emptied.xlsx", ["row 2", "column 'name'", "cannot be emptied"]),
    ("readonly_state_edited.xlsx", ["row 8", "column 'state'", "read-only column edited"]),
    ("readonly_created_at_edited.csv", ["row 11", "column 'created_at'", "read-only column edited"]),
    # the metadata: the hidden sheet and the CSV sidecar
    ("meta_sheet_deleted.xlsx", ["_runsync sheet is missing"]),
    ("meta_marker_edited.xlsx", ["_runsync sheet is damaged"]),
    ("meta_json_cut.xlsx", ["_runsync sheet is damaged"]),
    ("meta_newer_format.xlsx", ["newer runsync", "upgrade runsync"]),
    ("sidecar_missing.csv", ["no base snapshot"]),
    ("sidecar_corrupt.csv", ["sidecar_corrupt.csv.runsync.json", "cannot read runsync metadata"]),
    ("sidecar_not_object.csv", ["sidecar_not_object.csv.runsync.json", "not a JSON object"]),
]


def _copy(name: str, tmp_path: Path) -> Path:
    """A copy (with its sidecar) in tmp_path: an import must never write beside the committed files."""
    target = tmp_path / name
    shutil.copyfile(HERE / name, target)
    sidecar = HERE / (name + ".runsync.json")
    if sidecar.exists():
        shutil.copyfile(sidecar, tmp_path / sidecar.name)
    return target


def _assert_refused(seeded_sandbox, sheet: Path, fragments: list[str], *extra: str) -> str:
    seeded_sandbox.reset_stats()
    result = invoke("import", sheet, "--yes", *extra, exit_code=1)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors, result.stderr
    matching = [line for line in errors if all(f in line for f in fragments)]
    assert matching, f"no error line holds {fragments}:\n{result.stderr}"
    assert sheet.name in matching[0]
    assert seeded_sandbox.stats()["mutations"] == 0
    assert not list(sheet.parent.glob("*journal*"))  # not even a journal was started
    return result.stderr


def test_the_table_covers_every_committed_file():
    committed = {p.name for p in HERE.iterdir()} - {"make.py"}
    sheets = {n for n in committed if not n.endswith(".runsync.json")}
    assert sheets == {name for name, _ in CASES}
    assert len(sheets) >= 30


@pytest.mark.parametrize(("name", "fragments"), CASES, ids=[c[0] for c in CASES])
def test_bad_sheet_is_refused_with_a_one_line_error(seeded_sandbox, tmp_path, name, fragments):
    stderr = _assert_refused(seeded_sandbox, _copy(name, tmp_path), fragments)
    assert "Traceback" not in stderr


@pytest.mark.parametrize("name", ["empty.csv", "truncated.xlsx", "exported_from_other_project.csv"])
def test_debug_adds_the_traceback(seeded_sandbox, tmp_path, name):
    fragments = dict(CASES)[name]
    seeded_sandbox.reset_stats()
    result = invoke("--debug", "import", _copy(name, tmp_path), "--yes", exit_code=1)
    assert all(f in result.stderr for f in fragments)
    assert "Traceback" in result.stderr
    assert seeded_sandbox.stats()["mutations"] == 0


def test_a_100_mb_cell_is_refused(seeded_sandbox, tmp_path):
    import csv
    import io

    sheet = _copy("unknown_id.csv", tmp_path).rename(tmp_path / "huge_cell.csv")
    (tmp_path / "unknown_id.csv.runsync.json").rename(tmp_path / "huge_cell.csv.runsync.json")
    table = list(csv.reader(io.StringIO(sheet.read_text(encoding="utf-8-sig"))))
    table[2][0] = "owoo3sb0"  # its real id: a valid sheet again,, but for one notes cell of 100 MB
    table[3][table[0].index("notes")] = "x" * 100_000_000
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(table)
    sheet.write_text(out.getvalue(), encoding="utf-8-sig")
    _assert_refused(seeded_sandbox, sheet, ["huge_cell.csv"])
