"""Generate the bad sheets in this folder: `python tests/bad_sheets/make.py` (re-run after a format change).

Every file starts from an export of the sandbox project the tests use (`seed_project(store, "e", "p",
runs=30, seed=1)`, the `seeded_sandbox` fixture), so the run ids in them are real ids there, and is then
broken in one way. tests/test_bad_sheets.py holds the table of files and the error each must give.
Generated at test time instead (not committed): the 100 MB cell.
"""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _export(tmp: Path) -> dict[str, Path]:
    """Export e/p (xlsx, csv, xlsx with tag columns) from a fresh seeded sandbox; also e/q (another project)."""
    os.environ["WANDB_DIR"] = str(tmp)
    os.environ["WANDB_SILENT"] = "true"
    import runsync
    from runsync.backend.wandb.client import WandbBackend
    from runsync.exporter.table import ExportShape
    from runsync.sandbox import seed_project, start

    with start(db=":memory:") as sb:
        seed_project(sb.store, "e", "p", runs=30, seed=1)
        seed_project(sb.store, "e", "q", runs=3, seed=99)
        backend = WandbBackend(base_url=sb.url, api_key=sb.api_key, timeout=30)
        out = {"xlsx": tmp / "runs.xlsx", "csv": tmp / "runs.csv", "tags": tmp / "tags.xlsx",
               "q": tmp / "q.csv"}
        runsync.export("e/p", out["xlsx"], backend=backend)
        runsync.export("e/p", out["csv"], backend=backend)
        runsync.export("e/p", out["tags"], backend=backend, shape=ExportShape(tag_columns=True))
        runsync.export("e/q", out["q"], backend=backend)
    return out


# -- editing helpers -----------------------------------------------------------------------------

def _csv_table(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))


def _write_csv(name: str, table: list[list[str]], sidecar_from: Path | None, *, encoding: str = "utf-8-sig") -> None:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(table)
    (HERE / name).write_bytes(out.getvalue().encode(encoding))
    if sidecar_from is not None:
        shutil.copyfile(str(sidecar_from) + ".runsync.json", HERE / (name + ".runsync.json"))


def _set_csv(table: list[list[str]], row: int, column: str, value: str) -> list[list[str]]:
    """A copy of `table` with one cell set; `row` is the spreadsheet row (2 = first run)."""
    table = [list(r) for r in table]
    table[row - 1][table[0].index(column)] = value
    return table


def _book(path: Path) -> Any:
    import openpyxl

    return openpyxl.load_workbook(path)


def _col(ws: Any, column: str) -> int:
    return [c.value for c in ws[1]].index(column) + 1


def _save(book: Any, name: str) -> None:
    book.save(HERE / name)


def _xlsx_cell(src: Path, name: str, row: int, column: str, value: Any, **attrs: Any) -> None:
    book = _book(src)
    ws = book["runs"]
    cell = ws.cell(row, _col(ws, column))
    cell.value = value
    for key, val in attrs.items():
        setattr(cell, key, val)
    _save(book, name)


def make() -> list[str]:
    for old in HERE.iterdir():
        if old.name not in ("make.py", "README.md") and old.is_file():
            old.unlink()
    with tempfile.TemporaryDirectory(prefix="runsync-bad-sheets-") as t:
        src = _export(Path(t))
        x, c = src["xlsx"], src["csv"]
        table = _csv_table(c)
        header = table[0]
        ids = [r[header.index("id")] for r in table[1:]]

        # --- not a sheet at all -------------------------------------------------------------------
        (HERE / "empty.csv").write_bytes(b"")
        (HERE / "empty.xlsx").write_bytes(b"")
        (HERE / "whitespace_only.csv").write_bytes(b" \r\n\r\n")
        junk = bytes((i * 37 + 11) % 256 for i in range(4096))  # deterministic "random" bytes, with NULs
        (HERE / "binary_junk.xlsx").write_bytes(junk)
        (HERE / "binary_junk.csv").write_bytes(junk)
        (HERE / "text_named.xlsx").write_bytes(c.read_bytes())
        (HERE / "xlsx_named.csv").write_bytes(x.read_bytes())
        # An encrypted (password-protected) XLSX is an OLE2 compound file, as is an old .xls.
        (HERE / "password_protected.xlsx").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504)
        (HERE / "truncated.xlsx").write_bytes(x.read_bytes()[:2000])
        (HERE / "old_format.xls").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504)
        with zipfile.ZipFile(HERE / "calc.ods", "w") as z:
            z.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
            z.writestr("content.xml", "<office:document-content/>")
        shutil.copyfile(HERE / "calc.ods", HERE / "ods_named.xlsx")
        with zipfile.ZipFile(HERE / "zip_without_workbook.xlsx", "w") as z:
            z.writestr("hello.txt", "not a workbook")
        shutil.copyfile(c, HERE / "runs.txt")

        # --- structure ----------------------------------------------------------------------------
        _write_csv("header_only.csv", table[:1], c)
        book = _book(x)
        book["runs"].delete_rows(2, 40)
        _save(book, "header_only.xlsx")
        _write_csv("no_id_column.csv", [r[1:] for r in table], c)
        book = _book(x)
        book["runs"].cell(1, 1).value = "run"
        _save(book, "no_id_column.xlsx")
        _write_csv("duplicate_ids.csv", _set_csv(table, 5, "id", ids[0]), c)
        _xlsx_cell(x, "duplicate_ids.xlsx", 7, "id", ids[1])
        _write_csv("blank_id.csv", _set_csv(table, 4, "id", ""), c)
        _xlsx_cell(x, "blank_id.xlsx", 6, "id", None)
        _write_csv("unknown_id.csv", _set_csv(table, 3, "id", "zzzzzzzz"), c)
        _xlsx_cell(x, "unknown_id.xlsx", 3, "id", "nosuchid")
        q_id = _csv_table(src["q"])[1][0]
        _write_csv("other_projects_id.csv", _set_csv(table, 8, "id", q_id), c)
        _write_csv("exported_from_other_project.csv", _csv_table(src["q"]), src["q"])
        _write_csv("duplicate_column.csv", [r + [r[header.index("group")]] for r in table], c)
        _write_csv("ragged_rows.csv", [r + (["stray", "cells"] if i == 6 else []) for i, r in enumerate(table)], c)
        book = _book(x)
        ws = book["runs"]
        ws.cell(10, len(header) + 3).value = "a note beyond the last column"
        _save(book, "value_without_header.xlsx")
        book = _book(x)
        book["runs"].merge_cells(start_row=4, start_column=_col(book["runs"], "group"), end_row=5,
                                 end_column=_col(book["runs"], "group"))
        _save(book, "merged_cells.xlsx")

        # --- cells ----------------------------------------------------------------------------------
        _xlsx_cell(x, "formula_in_editable.xlsx", 5, "config.epochs", "=2*21")
        _xlsx_cell(x, "error_value.xlsx", 6, "config.lr", "#DIV/0!", data_type="e")
        # A row whose run has a list in config.layers (on runs without the key, text is just text).
        listed = next(i for i, r in enumerate(table) if r[header.index("config.layers")].startswith("["))
        _xlsx_cell(x, "bad_json.xlsx", listed + 1, "config.layers", '[64, 128')
        _write_csv("bad_json.csv", _set_csv(table, listed + 1, "config.layers", "[64; 128]"), c)
        _write_csv("tag_stray_quote.csv", _set_csv(table, 3, "tags", 'baseline, "v2'), c)
        _xlsx_cell(x, "tag_stray_quote.xlsx", 4, "tags", 'sweep, ab"c')
        _xlsx_cell(x, "name_emptied.xlsx", 2, "name", None)
        _xlsx_cell(x, "readonly_state_edited.xlsx", 8, "state", "finished-ish")
        _write_csv("readonly_created_at_edited.csv", _set_csv(table, 11, "created_at", "2020-01-01T00:00:00Z"), c)
        _xlsx_cell(src["tags"], "tag_column_not_bool.xlsx", 5, f"tag:{'baseline'}", "maybe")
        # UTF-16 without its byte-order mark: every other byte is NUL.
        _write_csv("utf16_without_bom.csv", table, c, encoding="utf-16-le")

        # --- the metadata ------------------------------------------------------------------------------
        book = _book(x)
        del book["_runsync"]
        _save(book, "meta_sheet_deleted.xlsx")
        book = _book(x)
        book["_runsync"].cell(1, 1).value = "edited"
        _save(book, "meta_marker_edited.xlsx")
        book = _book(x)
        cell = book["_runsync"].cell(1, 3)
        cell.value = cell.value[:-5]  # the JSON header, cut short
        _save(book, "meta_json_cut.xlsx")
        book = _book(x)
        book["_runsync"].cell(1, 2).value = 99
        header_cell = book["_runsync"].cell(1, 3)
        header_cell.value = header_cell.value.replace('"format_version":1', '"format_version":99')
        _save(book, "meta_newer_format.xlsx")
        _write_csv("sidecar_missing.csv", table, None)
        _write_csv("sidecar_corrupt.csv", table, None)
        (HERE / "sidecar_corrupt.csv.runsync.json").write_text('{"format_version": 1, "project": ')
        _write_csv("sidecar_not_object.csv", table, None)
        (HERE / "sidecar_not_object.csv.runsync.json").write_text(json.dumps([1, 2, 3]))
    return sorted(p.name for p in HERE.iterdir() if p.name != "make.py")


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent.parent))
    made = make()
    print(f"{len(made)} files in {HERE}")
