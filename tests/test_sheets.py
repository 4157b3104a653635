"""Sheet files: write_sheet -> read_sheet for CSV and XLSX, foreign files, and broken ones."""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runsync.errors import SheetError
from runsync.fields.codec import decode_cell, to_csv_cell, values_equal
from runsync.model import ABSENT, SheetMeta
from runsync.sheets import read_sheet, sidecar_path, write_sheet
from runsync.sheets.meta import decode_value, encode_value

BIG = 12345678901234567890
COLUMNS = ["id", "name", "tags", "notes", "state", "config.a", "config.b", "config.c", "summary.loss"]
RECORDS = [
    {"id": "r1", "name": "first", "tags": ("x", "y, z"), "notes": "=SUM(A1:A2)", "state": "finished",
     "config.a": 3, "config.b": 3.0, "config.c": BIG, "summary.loss": 0.5},
    {"id": "r2", "name": "-minus", "tags": (), "notes": None, "state": "running",
     "config.a": "007", "config.b": [1, {"k": None}], "summary.loss": math.nan},
    {"id": "r3", "name": "日本語\nline", "tags": ("🚀",), "notes": "'quoted", "state": "crashed",
     "config.a": True, "config.b": 1e-08, "config.c": None},
]
BASE = {
    "r1": {"name": "first", "tags": ["x", "y, z"], "notes": "=SUM(A1:A2)", "config.a": 3, "config.b": 3.0,
           "config.c": BIG},
    "r2": {"name": "-minus", "tags": [], "notes": None, "config.a": "007", "config.b": [1, {"k": None}],
           "config.d": math.nan, "config.e": {"$f": "not a tag"}},
    "r3": {"name": "日本語\nline", "tags": ["🚀"], "notes": "'quoted", "config.a": True, "config.b": 1e-08,
           "config.c": None},
}


def make_meta(base=None) -> SheetMeta:
    return SheetMeta(project="ent/proj", selection={"filters": {"state": "finished"}, "order": None, "limit": 10},
                     exported_at="2024-01-02T03:04:05Z", runsync_version="0.1.0",
                     config_paths={"config.a": ["a"], "config.b": ["b"], "config.c": ["c"]},
                     base=BASE if base is None else base)


def assert_meta_equal(got: SheetMeta, want: SheetMeta) -> None:
    assert (got.project, got.selection, got.exported_at, got.config_paths, got.format_version) == (
        want.project, want.selection, want.exported_at, want.config_paths, want.format_version)
    assert got.base.keys() == want.base.keys()
    for rid, base in want.base.items():
        assert got.base[rid].keys() == base.keys(), rid  # a missing key (ABSENT) stays missing, null stays
        for column, value in base.items():
            assert type(got.base[rid][column]) is type(value) and values_equal(got.base[rid][column], value)


@pytest.mark.parametrize("ext", ["csv", "xlsx"])
def test_round_trip(tmp_path, ext):
    path = tmp_path / f"runs.{ext}"
    write_sheet(path, COLUMNS, RECORDS, make_meta())
    data = read_sheet(path)
    assert data.errors == [] and data.warnings == []
    assert data.columns == COLUMNS
    assert [n for n, _ in data.rows] == [2, 3, 4]
    assert_meta_equal(data.meta, make_meta())
    source = "xlsx" if ext == "xlsx" else "csv"
    for (_, row), record in zip(data.rows, RECORDS):
        assert row["id"] == record["id"]
        for column in COLUMNS[1:]:
            want = record.get(column, ABSENT)
            got = decode_cell(row[column], column=column, base=want, source=source)
            if want is ABSENT:
                assert got is None, column
            else:
                assert values_equal(got, want), (column, row[column], got)


def test_csv_bytes(tmp_path):
    path = tmp_path / "runs.csv"
    write_sheet(path, ["id", "notes"], [{"id": "r1", "notes": "a\nb"}, {"id": "r2", "notes": "=1+1"}], make_meta({}))
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbfid,notes\r\n")
    assert data.endswith(b'r2,\'=1+1\r\n')
    assert b'"a\nb"' in data
    assert json.loads(open(sidecar_path(path), encoding="utf-8").read())["project"] == "ent/proj"


def test_xlsx_layout(tmp_path):
    from openpyxl import load_workbook

    path = tmp_path / "runs.xlsx"
    write_sheet(path, COLUMNS, RECORDS, make_meta(), notes={"name": "custom note"})
    wb = load_workbook(path)
    ws = wb["runs"]
    assert wb.sheetnames == ["runs", "_runsync"] and wb["_runsync"].sheet_state == "hidden"
    assert ws.freeze_panes == "B2"
    assert ws.auto_filter.ref == "A1:I4"
    assert all(c.font.bold for c in ws[1])
    assert ws["A1"].comment.text.startswith("read-only")
    assert ws["B1"].comment.text == "custom note"
    assert "comma-separated" in ws["C1"].comment.text
    assert ws["E2"].fill.start_color.rgb.endswith("E7E6E6") and ws["B2"].fill.fill_type is None
    assert 2 < ws.column_dimensions["B"].width <= 62
    formulas = [c.coordinate for s in wb for row in s.iter_rows() for c in row if c.data_type == "f"]
    assert formulas == []
    assert ws["D2"].value == "=SUM(A1:A2)" and ws["D2"].data_type == "s" and ws["D2"].quotePrefix
    assert ws["H2"].value == str(BIG) and ws["H2"].data_type == "s"  # no spreadsheet rounds it
    assert ws["F2"].value == 3 and ws["F3"].value == "007" and ws["F3"].number_format == "@"


def test_xlsx_cell_limit(tmp_path):
    path = tmp_path / "runs.xlsx"
    path.write_bytes(b"old")
    ok = "x" * 32_767
    write_sheet(tmp_path / "ok.xlsx", ["id", "notes"], [{"id": "r1", "notes": ok}], make_meta({}))
    assert read_sheet(tmp_path / "ok.xlsx").rows[0][1]["notes"] == ok
    with pytest.raises(ValueError, match=r"run r2: column 'notes': 32,768 characters.*32,767"):
        write_sheet(path, ["id", "notes"], [{"id": "r1"}, {"id": "r2", "notes": ok + "y"}], make_meta({}))
    with pytest.raises(ValueError, match="run r3"):  # emoji are two UTF-16 units each in Excel
        write_sheet(path, ["id", "notes"], [{"id": "r3", "notes": "🚀" * 16_384}], make_meta({}))
    assert path.read_bytes() == b"old"  # atomic: the old file is untouched
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_write_rejects_other_extensions(tmp_path):
    with pytest.raises(ValueError, match="unsupported format .ods"):
        write_sheet(tmp_path / "x.ods", ["id"], [], make_meta({}))
    with pytest.raises(ValueError, match=".xlsx or .csv"):
        write_sheet(tmp_path / "x.json", ["id"], [], make_meta({}))


# --- CSV from other programs -------------------------------------------------------------------------

@pytest.mark.parametrize(("encoding", "text", "name"), [
    ("cp932", "id,name\r\nr1,日本語ｶﾅ\r\n", "日本語ｶﾅ"),  # Japanese Excel's "CSV"
    ("utf-16", "id\tname\r\nr1\t日本語\r\n", "日本語"),  # Excel's "Unicode text"
    ("utf-8", "id;name\nr1;naïve\n", "naïve"),  # European Excel, no BOM, LF
    ("utf-8", "id,name\r\nr1,a;b\r\n", "a;b"),
    ("utf-8", "id,name\rr1,old mac\r", "old mac"),
    ("utf-8-sig", 'id,name\r\nr1,"multi\r\nline"\r\n', "multi\r\nline"),
])
def test_csv_encodings(tmp_path, encoding, text, name):
    path = tmp_path / "in.csv"
    path.write_bytes(text.encode(encoding))
    data = read_sheet(path)
    assert data.columns == ["id", "name"] and data.errors == []
    # Without a sidecar to tell cp932 from cp1252 (many byte strings decode as both), the guess is said.
    assert [("guessed cp932" in w) for w in data.warnings] == ([True] if encoding == "cp932" else [])
    assert data.rows == [(2, {"id": "r1", "name": name})]
    assert data.meta is None


def test_csv_latin1_fallback_warns(tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes(b"id,name\r\nr1,\x81\xff\r\n")
    data = read_sheet(path)
    assert data.rows[0][1]["name"] == "\x81\xff" and "guessed Latin-1" in data.warnings[0]


def test_csv_structure_errors(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("id,name,\nr1,a\nr1,b,,\n,c\nr2,d,extra\n\nr3\n", encoding="utf-8")
    data = read_sheet(path)
    assert data.columns == ["id", "name"]
    messages = {(e.row, e.column): e.message for e in data.errors}
    assert "duplicate id 'r1' (also row 2)" in messages[(3, "id")]
    assert "blank id" in messages[(4, "id")]
    assert "header has 2" in messages[(5, None)]
    assert data.rows[-1] == (7, {"id": "r3", "name": ""})  # short row padded; blank row 6 skipped


def test_missing_id_column(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("name\nx\n", encoding="utf-8")
    assert "no 'id' column" in read_sheet(path).errors[0].message


def test_sidecar_base_path(tmp_path):
    path = tmp_path / "runs.csv"
    write_sheet(path, ["id"], [{"id": "r1"}], make_meta())
    moved = tmp_path / "elsewhere.json"
    os.replace(sidecar_path(path), moved)
    assert read_sheet(path).meta is None
    assert_meta_equal(read_sheet(path, base_path=str(moved)).meta, make_meta())
    with pytest.raises(SheetError, match="base file not found"):
        read_sheet(path, base_path=str(tmp_path / "nope.json"))


def test_newer_format_refused(tmp_path):
    path = tmp_path / "runs.csv"
    write_sheet(path, ["id"], [{"id": "r1"}], make_meta())
    meta = json.loads(open(sidecar_path(path), encoding="utf-8").read())
    meta["format_version"] = 99
    open(sidecar_path(path), "w", encoding="utf-8").write(json.dumps(meta))
    with pytest.raises(SheetError, match="newer runsync"):
        read_sheet(path)


# --- XLSX edited by people and programs --------------------------------------------------------------

def test_xlsx_formulas_merges_and_booleans(tmp_path):
    from openpyxl import load_workbook

    path = tmp_path / "runs.xlsx"
    write_sheet(path, ["id", "name", "config.a", "state"], [{"id": f"r{i}", "config.a": True} for i in range(4)],
                make_meta({}))
    wb = load_workbook(path)
    ws = wb["runs"]
    ws["B2"] = "=1+1"  # a formula a person typed
    ws["C3"] = "=FALSE()"  # how LibreOffice saves a boolean
    ws["D4"] = "=A4"  # a formula in a read-only column is harmless
    ws.merge_cells("B5:C5")
    del wb["_runsync"]
    wb.save(path)
    data = read_sheet(path)
    errors = {(e.row, e.column): e.message for e in data.errors}
    assert "formula in an editable cell (=1+1)" in errors[(2, "name")] and (4, "state") not in errors
    assert "merged cells B5:C5" in errors[(5, None)]
    assert data.rows[1][1]["config.a"] is False
    assert data.meta is None and "hidden _runsync sheet is missing" in data.warnings[0]


@pytest.mark.parametrize(("name", "content", "fragment"), [
    ("empty.xlsx", b"", "empty"),
    ("empty.csv", b"", "empty"),
    ("junk.xlsx", b"\x00\x01binary junk" * 10, "not an XLSX"),
    ("junk.csv", b"\x00\x01binary junk" * 10, "not a text file"),
    ("locked.xlsx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "password-protected"),
    ("old.xls", b"\xd0\xcf\x11\xe0", "unsupported format .xls"),
    ("sheet.ods", b"PK", "unsupported format .ods"),
    ("zip.xlsx", None, "zip without an Excel workbook"),
    ("zip.csv", None, "not a CSV"),
])
def test_unreadable_files(tmp_path, name, content, fragment):
    path = tmp_path / name
    if content is None:
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("hello.txt", "hi")
    else:
        path.write_bytes(content)
    with pytest.raises(SheetError, match=fragment) as info:
        read_sheet(path)
    assert len(info.value.errors) == 1 and info.value.errors[0].row is None


# --- round trips of random values through real files -------------------------------------------------

XLSX_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from("\n\t"), max_size=12)
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**20), max_value=10**20) | st.floats() | XLSX_TEXT
    | st.sampled_from(["007", "1e5", "TRUE", "null", "2024-01-02", "=SUM(A1:A2)", "-x", "'q", "3.0", "a\r\nb"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(XLSX_TEXT, children, max_size=3),
    max_leaves=6)


@pytest.mark.parametrize("ext", ["csv", "xlsx"])
@given(values=st.lists(VALUES, min_size=1, max_size=8))
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_file_round_trip(tmp_path, ext, values):
    path = tmp_path / f"h.{ext}"
    columns = ["id"] + [f"config.v{i}" for i in range(len(values))]
    record = {"id": "r1", **{f"config.v{i}": v for i, v in enumerate(values)}}
    base = {"r1": {c: v for c, v in record.items() if c != "id"}}
    write_sheet(path, columns, [record], make_meta(base))
    data = read_sheet(path)
    assert data.errors == []
    _, row = data.rows[0]
    for column, value in base["r1"].items():
        got = decode_cell(row[column], column=column, base=value, source=ext)
        assert values_equal(got, value), (column, row[column], got)
        assert values_equal(data.meta.base["r1"][column], value)


def test_tagged_json_encoding():
    value = {"$f": 1, "a": [math.inf, -math.inf], "b": {"$d": 2}, "n": math.nan}
    text = json.dumps(encode_value(value), allow_nan=False)
    assert values_equal(decode_value(json.loads(text)), value)


# --- LibreOffice ---------------------------------------------------------------------------------------

@pytest.mark.libreoffice
@pytest.mark.skipif(shutil.which("soffice") is None and not os.environ.get("CI"), reason="LibreOffice not installed")
def test_libreoffice_resave(tmp_path):
    path = tmp_path / "runs.xlsx"
    write_sheet(path, COLUMNS, RECORDS, make_meta())
    out = tmp_path / "out"
    subprocess.run(["soffice", f"-env:UserInstallation=file://{tmp_path}/profile", "--headless",
                    "--convert-to", "xlsx:Calc MS Excel 2007 XML", "--outdir", str(out), str(path)],
                   check=True, capture_output=True, timeout=120)
    data = read_sheet(out / "runs.xlsx")
    assert data.errors == [] and data.columns == COLUMNS
    assert_meta_equal(data.meta, make_meta())
    for (_, row), record in zip(data.rows, RECORDS):
        for column in COLUMNS[1:]:
            want = record.get(column, ABSENT)
            got = decode_cell(row[column], column=column, base=None if want is ABSENT else want, source="xlsx")
            assert values_equal(got, None if want is ABSENT else want), (column, row[column])
    assert to_csv_cell(True) == "true"


@pytest.mark.libreoffice
@pytest.mark.skipif(shutil.which("soffice") is None and not os.environ.get("CI"), reason="LibreOffice not installed")
def test_libreoffice_csv_resave(tmp_path):
    """Calc opening our CSV with its defaults and saving it (UTF-8): only '007' is lost, and it is noticed."""
    from runsync.planner.damage import mangled_by_program

    path = tmp_path / "runs.csv"
    write_sheet(path, COLUMNS, RECORDS, make_meta())
    out = tmp_path / "out"
    subprocess.run(["soffice", f"-env:UserInstallation=file://{tmp_path}/profile", "--headless",
                    "--infilter=Text - txt - csv (StarCalc):44,34,76,1", "--convert-to",
                    "csv:Text - txt - csv (StarCalc):44,34,76,1", "--outdir", str(out), str(path)],
                   check=True, capture_output=True, timeout=120)
    data = read_sheet(out / "runs.csv", base_path=sidecar_path(path))
    assert data.errors == [] and data.columns == COLUMNS
    lost = []
    for (_, row), record in zip(data.rows, RECORDS):
        for column in COLUMNS[1:]:
            want = record.get(column)
            if not values_equal(decode_cell(row[column], column=column, base=want), want):
                lost.append((column, mangled_by_program(want, row[column])))
    assert lost == [("config.c", "big integer rounded to 15 digits: 12345678901234567890 became 1.23456789012346E+019"),
                    ("config.a", "leading zeros lost: '007' became 7")]


def test_western_csv_is_not_misread_as_japanese(tmp_path):
    # b"cr\xe8me br\xfbl\xe9e" decodes as cp932 too (to CJK garbage); the sidecar's base tells them apart.
    meta = SheetMeta(project="e/p", selection={}, exported_at="2024-01-01T00:00:00+00:00", runsync_version="t",
                     base={"r1": {"name": "crème brûlée"}, "r2": {"name": "日本語"}})
    path = tmp_path / "in.csv"
    write_sheet(path, ["id", "name"], [{"id": "r1", "name": "crème brûlée"}, {"id": "r2", "name": "x"}], meta)
    path.write_bytes("id,name\r\nr1,crème brûlée\r\nr2,x\r\n".encode("cp1252"))
    data = read_sheet(path)
    assert data.rows[0][1]["name"] == "crème brûlée" and data.warnings == []
    path.write_bytes("id,name\r\nr1,x\r\nr2,日本語\r\n".encode("cp932"))
    assert read_sheet(path).rows[1][1]["name"] == "日本語"
