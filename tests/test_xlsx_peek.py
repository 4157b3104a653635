"""The project an XLSX export records, peeked from the start of its metadata sheet so the plan can start the
tracker's client before reading the sheet (runsync/sheets/xlsx_peek.py)."""
from __future__ import annotations

import threading
import zipfile
from pathlib import Path

import pytest
from helpers import invoke

import runsync
from runsync.sheets import xlsx_read
from runsync.sheets.xlsx_peek import peek_project


@pytest.mark.parametrize("project", ["e/p", "ü-team/prøj & <co> \"q\""])
def test_the_project_of_an_export_is_peeked(sandbox, tmp_path: Path, project: str) -> None:
    from runsync.sandbox import seed_project

    entity, name = project.split("/")
    seed_project(sandbox.store, entity, name, runs=3, seed=2)
    sheet = tmp_path / "runs.xlsx"
    invoke("export", project, "-o", sheet)
    assert peek_project(str(sheet)) == project


def test_what_is_no_runsync_export_peeks_nothing(tmp_path: Path) -> None:
    import openpyxl

    plain = tmp_path / "plain.xlsx"
    book = openpyxl.Workbook()
    book.active.append(["id", "name"])
    book.save(plain)
    fake = tmp_path / "fake.xlsx"
    fake.write_bytes(b"PK\x03\x04 not really a zip")
    empty = tmp_path / "empty.xlsx"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("xl/workbook.xml", "<workbook/>")
    for path in (plain, fake, empty, tmp_path / "missing.xlsx", tmp_path):
        assert peek_project(str(path)) is None, path


def test_the_plan_starts_connecting_before_it_reads_the_sheet(seeded_sandbox, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    sheet = tmp_path / "runs.xlsx"
    invoke("export", "e/p", "-o", sheet)
    seen: list[bool] = []
    real = xlsx_read.read_xlsx

    def reading(*args, **kwargs):
        seen.append(any(t.name == "runsync-connect" for t in threading.enumerate()))
        return real(*args, **kwargs)

    monkeypatch.setattr(xlsx_read, "read_xlsx", reading)
    monkeypatch.setattr("runsync.sheets.xlsx_io.read_xlsx", reading)
    plan = runsync.plan(sheet)  # no --project: the file's own project names the tracker
    assert seen == [True]
    assert plan.empty and plan.project == "e/p"
