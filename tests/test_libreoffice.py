"""Real LibreOffice Calc round trips: re-saves change nothing (or are named, cell by cell), edits arrive exactly.

One module-wide setup exports tricky runs from a sandbox, then does all LibreOffice work in two soffice
starts run side by side (a `--convert-to` for the XLSX files, one UNO session for the CSV re-saves and the
cells typed in Calc); the tests only read the results.
"""
from __future__ import annotations

import json
import shutil
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import libreoffice as lo
import pytest
import wandb
from helpers import damaged_cells, invoke

from runsync.sheets import read_sheet, sidecar_path

pytestmark = pytest.mark.libreoffice

LONG = ("long text 長い, " * 400)[:5000]
TRICKY_CONFIG = {
    "s007": "007", "big": 12345678901234567890, "f01": 0.1, "tiny": 1e-08, "three": 3.0, "btrue": True,
    "strue": "TRUE", "date": "2024-01-02", "frac": "1/2", "formula": "=SUM(A1:A2)", "phone": "+81 3",
    "dash": "-x", "at": "@user", "none": None, "snull": "null", "ja": "日本語テキスト〜",
    "emoji": "🚀 launch",
    "long": LONG, "nested": {"a": {"b": 1.5}, "c": "d"}, "lst": [1, "two", {"k": None}], "pi": 3.14159265358979,
}
T1_NAME = "実験 🧪 one"
T1_TAGS = ["a,b", "ベースライン", "baseline", "🔥hot"]
T1_NOTES = "line one\nline two, with a comma"
XLSX_EDIT = "edited in Calc ✓\nsecond line"

# What Calc's defaults do to the CSV on opening (not on saving): '007' and '008' become numbers and
# '1/2' a date. Each re-save must name exactly these cells, and change nothing.
# Opening the CSV turns these into numbers or dates; the 20-digit int loses its last digits.
OPENED = {("t1", "config.s007"), ("t2", "config.s007"), ("t1", "config.frac"), ("t1", "config.big")}
# cp932 (what Japanese Excel saves) can't hold emoji ('?') and writes 〜 as ～.
CP932_LOST = {("t1", "name"), ("t1", "tags"), ("t1", "config.emoji"), ("t1", "config.ja")}
CSV_RESAVES = {  # name -> (filter options, cells a warning must name)
    "utf8": (lo.UTF8, OPENED),
    "cp932": (lo.CP932, OPENED | CP932_LOST),
    "semicolon": (lo.SEMICOLON_UTF8, OPENED),
    "as-shown": (lo.AS_SHOWN_UTF8, OPENED | {("t1", "config.pi")}),  # pi formatted 0.00 first
}


@dataclass
class World:
    work: Path
    sandbox: object

    def path(self, *parts: str) -> Path:
        return self.work.joinpath(*parts)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    """Tricky runs in a sandbox, exported four ways, and everything LibreOffice does to those files."""
    lo.soffice()  # fail on CI / skip elsewhere before doing any work
    from runsync.sandbox import start

    work = tmp_path_factory.mktemp("lo")
    sb = start(db=str(work / "sb.db"))
    with pytest.MonkeyPatch.context() as mp:
        for key, value in sb.env().items():
            mp.setenv(key, value)
        mp.setenv("WANDB_DIR", str(work))
        sb.store.create_run("e", "p", "t1", display_name=T1_NAME, tags=T1_TAGS, notes=T1_NOTES,
                            config=TRICKY_CONFIG)
        sb.store.create_run("e", "p", "t2", display_name="plain", tags=["baseline"], group="g",
                            config={"f01": 0.5, "s007": "008"})
        export = work / "export"
        export.mkdir()
        for stem, extra in (("runs", ()), ("tags", ("--tag-columns",))):
            for ext in ("xlsx", "csv"):
                invoke("export", "e/p", *extra, "-o", export / f"{stem}.{ext}")
        _run_libreoffice(work, export)
        try:
            yield World(work, sb)
        finally:
            sb.stop()


def _run_libreoffice(work: Path, export: Path) -> None:
    csv_in = lo.UTF8  # opened as a person double-clicking a UTF-8 CSV gets it: Calc's default guesses
    jobs = [lo.Job(str(export / "runs.csv"), str(work / name / "runs.csv"), in_options=csv_in, out_options=opts,
                   edits=[lo.Edit("config.pi", "t1", "0.00", "format")] if name == "as-shown" else [])
            for name, (opts, _) in CSV_RESAVES.items()]
    jobs += [
        lo.Job(str(export / "tags.csv"), str(work / "cp932-tags" / "tags.csv"), in_options=csv_in,
               out_options=lo.CP932),
        lo.Job(str(export / "runs.xlsx"), str(work / "edit-xlsx" / "runs.xlsx"),
               edits=[lo.Edit("notes", "t2", XLSX_EDIT)]),
        lo.Job(str(export / "runs.csv"), str(work / "edit-csv" / "runs.csv"), in_options=csv_in,
               out_options=lo.UTF8, edits=[lo.Edit("config.f01", "t2", 0.25, "value")]),
        lo.Job(str(export / "tags.xlsx"), str(work / "tick-xlsx" / "tags.xlsx"),
               edits=[lo.Edit("tag:a,b", "t2", "TRUE", "input")]),
        lo.Job(str(export / "tags.csv"), str(work / "untick-csv" / "tags.csv"), in_options=csv_in,
               out_options=lo.UTF8, edits=[lo.Edit("tag:baseline", "t2", "FALSE", "input")]),
        lo.Job(str(export / "tags.xlsx"), str(work / "both-xlsx" / "tags.xlsx"),
               edits=[lo.Edit("tag:baseline", "t2", "FALSE", "input"), lo.Edit("tags", "t2", "baseline, new")]),
    ]
    with ThreadPoolExecutor(2) as pool:  # two soffice processes with their own profiles, side by side
        resave = pool.submit(lo.convert, [export / "runs.xlsx", export / "tags.xlsx"], work / "resaved-xlsx",
                             "xlsx:" + lo.XLSX_FILTER)
        session = pool.submit(lo.run_jobs, jobs, work)
        resave.result()
        session.result()
    for job in jobs:  # a CSV re-save keeps the sidecar only if it sits next to it (or comes with --base)
        if job.target.endswith(".csv") and "semicolon" not in job.target:
            shutil.copy(sidecar_path(job.source), sidecar_path(job.target))


def dry_run(sheet: Path, *extra: str, exit_code: int = 0) -> tuple[dict, str]:
    result = invoke("import", sheet, "--dry-run", "--format", "json", *extra, exit_code=exit_code)
    return (json.loads(result.stdout) if result.stdout.strip() else {}), result.stderr


def warned_cells(stderr: str) -> set[tuple[str, str]]:
    return damaged_cells(stderr)


def assert_no_changes(doc: dict) -> None:
    assert (doc["changes"], doc["conflicts"], doc["errors"]) == ([], [], [])


def saved_by_libreoffice(path: Path) -> bool:
    with zipfile.ZipFile(path) as zf:
        return b"LibreOffice" in zf.read("docProps/app.xml")


# --- 1. XLSX re-saved -----------------------------------------------------------------------------------

@pytest.mark.parametrize("stem", ["runs", "tags"])
def test_xlsx_resave_changes_nothing_and_keeps_the_base(world, stem):
    from openpyxl import load_workbook

    resaved = world.path("resaved-xlsx", f"{stem}.xlsx")
    assert saved_by_libreoffice(resaved)
    doc, stderr = dry_run(resaved)
    assert_no_changes(doc)
    assert "warning" not in stderr
    book = load_workbook(resaved)
    assert book["_runsync"].sheet_state == "hidden"
    original = read_sheet(world.path("export", f"{stem}.xlsx")).meta
    assert read_sheet(resaved).meta.base == original.base
    if stem == "tags":  # Calc writes booleans as formulas; they must still read as the ticks they were
        rows = list(book["runs"].iter_rows(values_only=True))
        ticks = {r[0]: r[rows[0].index("tag:baseline")] for r in rows[1:]}
        assert ticks == {"t1": "=TRUE()", "t2": "=TRUE()"}


def test_xlsx_that_lost_its_hidden_sheet_says_so_and_falls_back(world):
    from openpyxl import load_workbook

    damaged = world.path("no-meta", "runs.xlsx")
    damaged.parent.mkdir()
    book = load_workbook(world.path("resaved-xlsx", "runs.xlsx"))
    del book["_runsync"]
    book.save(damaged)
    result = invoke("import", damaged, "--dry-run", exit_code=1)
    assert "no base snapshot" in result.stderr and "--base" in result.stderr and "--project" in result.stderr
    doc, stderr = dry_run(damaged, "--base", world.path("export", "runs.xlsx"))
    assert_no_changes(doc)
    doc, stderr = dry_run(damaged, "--project", "e/p")
    assert_no_changes(doc)
    assert "2-way" in stderr and "_runsync sheet is missing" in stderr


# --- 2. CSV re-saved ------------------------------------------------------------------------------------

@pytest.mark.parametrize("flavour", list(CSV_RESAVES))
def test_csv_resave_changes_nothing_and_names_what_was_destroyed(world, flavour):
    resaved = world.path(flavour, "runs.csv")
    extra = ("--base", str(world.path("export", "runs.csv"))) if flavour == "semicolon" else ()
    doc, stderr = dry_run(resaved, *extra)
    assert_no_changes(doc)
    assert warned_cells(stderr) == CSV_RESAVES[flavour][1], stderr
    data = resaved.read_bytes()
    if flavour == "cp932":
        assert "日本語".encode("cp932") in data and b"? launch" in data
    else:
        assert "🚀 launch".encode() in data and not data.startswith(b"\xef\xbb\xbf")  # Calc writes no BOM
    assert data.split(b"\n", 1)[0].count(b";" if flavour == "semicolon" else b",") > 20
    if flavour == "as-shown":
        assert b",3.14," in data and "rounded to the shown digits" in stderr


def test_cp932_damaged_tag_header_is_ignored_not_a_new_tag(world):
    doc, stderr = dry_run(world.path("cp932-tags", "tags.csv"))
    assert_no_changes(doc)
    assert "column 'tag:?hot' is 'tag:🔥hot' damaged" in stderr


# --- 3. cells edited in Calc ----------------------------------------------------------------------------

def test_cell_typed_in_calc_xlsx_is_the_one_change_and_arrives_exactly(world):
    sheet = world.path("edit-xlsx", "runs.xlsx")
    doc, _ = dry_run(sheet)
    assert [(c["run_id"], c["field"], c["old"], c["new"]) for c in doc["changes"]] == [
        ("t2", "notes", None, XLSX_EDIT)]
    invoke("import", sheet, "--yes")
    assert wandb.Api().run("e/p/t2").notes == XLSX_EDIT
    (journal,) = Path(str(sheet) + ".runsync-journals").glob("*.jsonl")  # one import, one journal
    invoke("undo", journal, "--yes")
    assert not wandb.Api().run("e/p/t2").notes


def test_cell_typed_in_calc_csv_is_the_one_change(world):
    doc, stderr = dry_run(world.path("edit-csv", "runs.csv"))
    assert [(c["run_id"], c["field"], c["old"], c["new"]) for c in doc["changes"]] == [
        ("t2", "config.f01", 0.5, 0.25)]
    assert warned_cells(stderr) == OPENED


def test_tag_ticked_in_calc_xlsx(world):
    doc, _ = dry_run(world.path("tick-xlsx", "tags.xlsx"))
    assert [(c["run_id"], c["field"], c["new"]) for c in doc["changes"]] == [("t2", "tags", ["baseline", "a,b"])]


def test_tag_unticked_in_calc_csv(world):
    doc, stderr = dry_run(world.path("untick-csv", "tags.csv"))
    assert [(c["run_id"], c["field"], c["new"]) for c in doc["changes"]] == [("t2", "tags", [])]
    assert warned_cells(stderr) == OPENED


def test_tags_and_tag_column_both_edited_in_calc_is_refused(world):
    doc, stderr = dry_run(world.path("both-xlsx", "tags.xlsx"), exit_code=1)
    assert doc["changes"] == [] and len(doc["errors"]) == 1
    error = doc["errors"][0]
    assert error["run_id"] == "t2" and "both the tags column and tag: columns" in error["message"]
