"""The XLSX writer's shortcuts (rows written as XML, quick text checks, JSON without tags) change nothing."""
from __future__ import annotations

import json
import math
import zipfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runsync.fields.codec import GUARD_CHARS
from runsync.model import SheetMeta
from runsync.sheets import read_sheet, write_sheet, xlsx_fast, xlsx_io, xlsx_write
from runsync.sheets.meta import dumps, encode_value, loads

TEXTS = ["", " ", "solar-river-1", "http://x/e/p/runs/a", "exp-a", "finished", "007", "1e5", "1.5", ".5", "5.",
         "TRUE", "true", "False", "null", "None", "nan", "inf", "Infinity", "2024-01-02", "1/2", "12.3.4", "[1, 2]",
         "{\"a\": 1}", "[", "{x", "=1+1", "+x", "-1", "@u", "'q", "\tx", "x\n", "١٢٣", "１２", "a1", "résumé",
         "日本語", "_x0041_", "x" * 40]


def _full_answer(text: str) -> bool:
    if text.startswith(GUARD_CHARS) or text.strip() != text:
        return True
    return xlsx_write._reads_as_other(text)


@pytest.mark.parametrize("text", TEXTS)
def test_quick_special_text_check_agrees_with_decoding(text):
    assert xlsx_write._looks_special(text) == _full_answer(text)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=12))
def test_quick_special_text_check_agrees_with_decoding_on_any_text(text):
    assert xlsx_write._looks_special(text) == _full_answer(text)


def _slow_dumps(value):
    return json.dumps(encode_value(value), ensure_ascii=True, allow_nan=False, separators=(",", ":"))


@pytest.mark.parametrize("value", [
    {"a": 1, "b": [1.5, "x", None, True]}, {"$a": 1}, {"k": {"$ref": "x"}}, {"k": ["$x", "a,\"$b"]},
    {"f": math.nan}, {"f": [math.inf, -math.inf]}, {"t": (1, 2)}, {"é": "日本"}, {1: "int key"},
])
def test_dumps_without_tags_is_the_tagged_json(value):
    assert dumps(value) == _slow_dumps(value)
    assert repr(loads(dumps(value))) == repr(loads(_slow_dumps(value)))


def _meta(base):
    return SheetMeta(project="e/p", selection={}, exported_at="2024-01-02T03:04:05Z", runsync_version="0",
                     config_paths={"config.t": ["t"]}, base=base)


@pytest.mark.parametrize("reader", ["fast", "openpyxl"])
def test_base_longer_than_a_cell_once_stored_reads_back(tmp_path, reader):
    # `_x0041_` typed literally is stored as `_x005F_x0041_`: 30,000 characters of it don't fit one cell
    text = "_x0041_" * 5_000
    rows = [{"id": "r1", "config.t": "short"}]
    path = tmp_path / "s.xlsx"
    write_sheet(path, ["id", "config.t"], rows, _meta({"r1": {"config.t": "short", "extra": text}}))
    with zipfile.ZipFile(path) as zf:
        hidden = zf.read("xl/worksheets/sheet2.xml").decode()
    assert max(len(t) for t in hidden.split("<t>")) < xlsx_io.MAX_CELL_CHARS
    read = xlsx_io.read_fast if reader == "fast" else xlsx_io.read_with_openpyxl
    assert read(str(path)).meta.base["r1"]["extra"] == text


def test_text_over_the_limit_once_stored_is_refused(tmp_path):
    # 5,000 control characters take 7 characters each as stored (`_x0001_`): over Excel's cell limit
    with pytest.raises(ValueError, match=r"run r1: column 'notes'.*as stored"):
        write_sheet(tmp_path / "s.xlsx", ["id", "notes"], [{"id": "r1", "notes": "\x01" * 5_000}], _meta({}))


def test_every_kind_of_cell_reads_back_through_both_readers(tmp_path):
    values = ["", " ", "\t", " x", "x ", "a\nb", "=1+1", "007", "TRUE", "a&b<c>d", "_x0041_", "\x01", "日本",
              0, -1, 10**15 - 1, 10**15, 0.1, 0.1 + 0.2, 1e-7, math.nan, -math.inf, True, False, None, [1, "x"],
              {"a": 1}]
    columns = ["id", "name", "config.v", "state"]
    rows = [{"id": f"r{i}", "name": f"n{i}", "config.v": v, "state": v if isinstance(v, str) else "x"}
            for i, v in enumerate(values)]
    path = tmp_path / "s.xlsx"
    write_sheet(path, columns, rows, _meta({r["id"]: {k: v for k, v in r.items() if k != "id"} for r in rows}))
    slow = xlsx_io.read_with_openpyxl(str(path))
    sheet = read_sheet(path)  # whitespace-only text sends it to openpyxl: calamine trims such text
    assert sheet.rows == slow.rows and repr(sheet.meta) == repr(slow.meta) and not sheet.errors
    rows = [r for r in rows if not (isinstance(r["config.v"], str) and r["config.v"].isspace())]
    write_sheet(path, columns, rows, _meta({r["id"]: {k: v for k, v in r.items() if k != "id"} for r in rows}))
    assert xlsx_fast.plain_values_only(str(path), xlsx_io.DATA_SHEET)
    fast, slow = xlsx_io.read_fast(str(path)), xlsx_io.read_with_openpyxl(str(path))
    assert fast.rows == slow.rows and repr(fast.meta) == repr(slow.meta)
    sheet = read_sheet(path)
    assert repr(sheet.meta.base) == repr({r["id"]: {k: v for k, v in r.items() if k != "id"} for r in rows})


@pytest.mark.libreoffice
def test_a_sheet_written_with_zip64_records_reads_the_same(tmp_path, monkeypatch):
    # Sheets of over LARGE_CELLS cells are written with ZIP64 records (their XML may pass 2 GiB).
    import libreoffice as lo

    rows = [{"id": f"r{i}", "name": f"n {i}", "config.t": i * 0.5, "state": "finished"} for i in range(40)]
    columns = ["id", "name", "config.t", "state"]
    meta = _meta({r["id"]: {k: v for k, v in r.items() if k != "id"} for r in rows})
    write_sheet(tmp_path / "plain.xlsx", columns, rows, meta)
    monkeypatch.setattr(xlsx_write, "LARGE_CELLS", 10)
    path = tmp_path / "zip64.xlsx"
    write_sheet(path, columns, rows, meta)
    with zipfile.ZipFile(path) as zf, open(path, "rb") as fh:
        sheet = zf.getinfo("xl/worksheets/sheet1.xml")
        fh.seek(sheet.header_offset)
        local = fh.read(30)
        assert local[4:6] == b"\x2d\x00" and int.from_bytes(local[28:30], "little") > 0  # ZIP64 version, extra
    want = xlsx_io.read_with_openpyxl(str(tmp_path / "plain.xlsx"))
    for read in (xlsx_io.read_fast, xlsx_io.read_with_openpyxl):
        got = read(str(path))
        assert got.rows == want.rows and repr(got.meta) == repr(want.meta)
    resaved = lo.convert([path], tmp_path / "lo", "xlsx")[0]
    assert read_sheet(resaved).rows == want.rows
