"""A CSV re-saved in a legacy encoding other than cp932/cp1252 (Central European Excel's cp1250, Mac Roman,
Cyrillic, Greek): the exported values decide the encoding, untouched cells stay untouched, and a file whose
encoding can't be told is refused with "save as CSV UTF-8" before anything is written.

Each project is exported by runsync from a sandbox, then the CSV's bytes are re-encoded here with Python's
own codecs, which are also the oracle for what the cells hold.
"""
from __future__ import annotations

import csv
import io
import os
import shutil
from pathlib import Path

import pytest
import wandb
from helpers import edit_cells, invoke

import runsync
from runsync.errors import SheetError
from runsync.sheets import sidecar_path

# project -> (encoding, runs: id -> (display name, tags, group, config)); every text fits the encoding.
PROJECTS = {
    "pl": ("cp1250", {
        "a1": ("Zażółć gęślą jaźń", ["ćma", "plain"], "Kraków",
               {"city": "Łódź", "motto": "Příliš žluťoučký kůň úpěl ďábelské ódy", "lr": 0.1}),
        "a2": ("Świętokrzyskie", ["Žižkov"], None, {"city": "Brno", "note": "Őrség és Ústí", "lr": 0.2}),
        "a3": ("plain ascii", [], "g", {"city": "Praha", "lr": 0.3}),
    }),
    "mac": ("mac_roman", {
        "m1": ("crème brûlée", ["Øresund", "naïve"], "café", {"city": "Ålesund", "dish": "smørrebrød", "lr": 0.1}),
        "m2": ("Ærøskøbing", ["façade"], None, {"city": "Zürich", "note": "déjà vu — “quoted”", "lr": 0.2}),
        "m3": ("plain ascii", [], "g", {"city": "Oslo", "lr": 0.3}),
    }),
    "ru": ("cp1251", {
        "c1": ("Съешь же ещё этих мягких", ["быстро", "plain"], "Москва",
               {"city": "Санкт-Петербург", "note": "Ёлка и ёж", "lr": 0.1}),
        "c2": ("Київ", ["Ђорђе"], None, {"city": "Беларусь", "note": "щука", "lr": 0.2}),
        "c3": ("plain ascii", [], "g", {"city": "Minsk", "lr": 0.3}),
    }),
    "el": ("cp1253", {
        "g1": ("Καλημέρα κόσμε", ["ψυχή", "plain"], "Αθήνα", {"city": "Θεσσαλονίκη", "note": "Ωραίο", "lr": 0.1}),
        "g2": ("Ξεσκεπάζω", ["Ζεύς"], None, {"city": "Πάτρα", "note": "άλφα βήτα", "lr": 0.2,
                                             "port": "Άγιος Νικόλαος (Crete, 2nd)"}),
        "g3": ("plain ascii", [], "g", {"city": "Chania", "lr": 0.3}),
    }),
}
# Rows saved in two code pages and pasted into one file: each code page misreads the other's row.
MIXED = {"x1": ("Łódź i Kraków", "cp1250"), "x2": ("Ærø café", "cp1252"), "x3": ("plain", "ascii")}
# A value to type into a cell in each encoding: edited non-ASCII text must arrive as typed.
TYPED = {"pl": "Gęś w Łebie", "mac": "Crêpe Suzette", "ru": "Новая заметка", "el": "Νέα σημείωση"}


@pytest.fixture
def projects(sandbox):
    for project, (_, runs) in PROJECTS.items():
        for run_id, (name, tags, group, config) in runs.items():
            sandbox.store.create_run("e", project, run_id, display_name=name, tags=tags, group=group, config=config)
    for run_id, (name, _) in MIXED.items():
        sandbox.store.create_run("e", "mix", run_id, display_name=name, config={"lr": 0.1})
    return sandbox


def export(project: str, folder: Path) -> Path:
    path = folder / f"{project}.csv"
    runsync.export(f"e/{project}", path)
    return path


def resave(path: Path, encoding: str, edits: dict | None = None) -> bytes:
    """What a spreadsheet saving "CSV" in a legacy code page does: the same cells, other bytes."""
    if edits:
        edit_cells(path, edits)
    text = path.read_bytes().decode("utf-8-sig")
    data = text.encode(encoding)
    path.write_bytes(data)
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")  # the legacy path is what's tested, not UTF-8 by luck
    return data


def oracle_cells(data: bytes, encoding: str) -> dict[tuple[str, str], str]:
    """(run id, column) -> cell text, read with Python's codecs and csv module only."""
    rows = list(csv.reader(io.StringIO(data.decode(encoding), newline="")))
    header = rows[0]
    return {(row[0], column): cell for row in rows[1:] for column, cell in zip(header, row)}


def changes(plan) -> list[tuple]:
    return [(c.run_id, c.field, c.new) for c in plan.changes]


@pytest.mark.parametrize("project", PROJECTS)
def test_untouched_legacy_csv_plans_nothing(projects, tmp_path, project):
    encoding, runs = PROJECTS[project]
    path = export(project, tmp_path)
    data = resave(path, encoding)
    cells = oracle_cells(data, encoding)
    for run_id, (name, tags, _group, config) in runs.items():  # the oracle sees the exported values intact
        assert cells[(run_id, "name")] == name and cells[(run_id, "config.city")] == config["city"]
        assert all(tag.encode(encoding) in data for tag in tags)
    plan = runsync.plan(path)
    assert (plan.changes, plan.conflicts, plan.errors) == ((), (), ())
    assert not [w for w in plan.warnings if "UTF-8" in w or "guessed" in w]
    sheet = runsync.read(path)  # runsync reads every cell as the oracle does
    assert {(r["id"], c): v for _, r in sheet.rows for c, v in r.items() if (r["id"], c) in cells} == {
        k: v for k, v in cells.items() if k[1] in sheet.columns}


@pytest.mark.parametrize("project", PROJECTS)
def test_edits_in_a_legacy_csv_arrive_exactly_and_the_rest_survives(projects, tmp_path, project):
    encoding, runs = PROJECTS[project]
    first, second, ascii_run = runs
    path = export(project, tmp_path)
    resave(path, encoding, {(ascii_run, "config.lr"): "0.5"})
    assert changes(runsync.plan(path)) == [(ascii_run, "config.lr", 0.5)]

    (tmp_path / "typed").mkdir()
    path = export(project, tmp_path / "typed")
    data = resave(path, encoding, {(ascii_run, "group"): "g2", (second, "config.note"): TYPED[project]})
    assert oracle_cells(data, encoding)[(second, "config.note")] == TYPED[project]
    plan = runsync.plan(path)
    assert sorted(changes(plan)) == sorted([(ascii_run, "group", "g2"), (second, "config.note", TYPED[project])])
    invoke("import", path, "--yes")
    api = wandb.Api()
    for run_id, (name, tags, group, config) in runs.items():
        run = api.run(f"e/{project}/{run_id}")
        want = dict(config, note=TYPED[project]) if run_id == second else config
        assert (run.name, run.tags, run.config) == (name, tags, want)
        assert run.group == ("g2" if run_id == ascii_run else group)


def assert_refused(path: Path, project: str, *extra: str) -> None:
    before = {r.id: (r.name, r.group, dict(r.config)) for r in wandb.Api().runs(f"e/{project}")}
    if not extra:
        with pytest.raises(SheetError) as caught:
            runsync.plan(path)
        message = str(caught.value)
        assert "UTF-8" in message and os.fspath(path) in message and len(message.strip().splitlines()) == 1
    result = invoke("import", path, "--yes", *extra, exit_code=1)
    assert "UTF-8" in result.stderr and "Traceback" not in result.stderr
    after = {r.id: (r.name, r.group, dict(r.config)) for r in wandb.Api().runs(f"e/{project}")}
    assert after == before  # nothing written


@pytest.mark.parametrize(("project", "encoding"), [
    ("ru", "koi8_u"),  # Cyrillic in an encoding runsync doesn't know: every candidate misreads the names
    ("mac", "cp437"),  # Western text in DOS's code page
])
def test_a_csv_no_candidate_reproduces_is_refused(projects, tmp_path, project, encoding):
    _, runs = PROJECTS[project]
    path = export(project, tmp_path)
    edit_cells(path, {(list(runs)[2], "config.lr"): "0.9"})  # something that would be written
    data = path.read_bytes().decode("utf-8-sig").encode(encoding, errors="replace")  # Ђ, “ ” are not in them
    for candidate in ("cp1250", "cp1251", "cp1252", "cp1253", "mac_roman"):  # oracle: no code page reads the names
        try:
            text = data.decode(candidate)
        except UnicodeDecodeError:
            continue
        assert not all(name in text for name, *_ in runs.values())
    path.write_bytes(data)
    assert_refused(path, project)


def test_rows_in_two_encodings_are_refused(projects, tmp_path):
    path = export("mix", tmp_path)
    edit_cells(path, {("x3", "config.lr"): "0.9"})
    lines = path.read_bytes().decode("utf-8-sig").split("\r\n")
    path.write_bytes(b"\r\n".join(line.encode(MIXED[line.split(",")[0]][1] if line.split(",")[0] in MIXED
                                               else "ascii") for line in lines))
    data = path.read_bytes()
    for name, encoding in MIXED.values():  # the oracle: each name is there, in its own code page
        assert name.encode(encoding) in data
    assert_refused(path, "mix")


def test_a_cell_that_looks_untouched_must_read_back(projects, tmp_path):
    # ISO 8859-7 is cp1253 but for Ά (and a few symbols): every other Greek cell reads back in cp1253, and
    # the one with Ά - its ASCII "(Crete, 2nd)" intact - would be planned as "¶γιος" if it were taken as edited.
    path = export("el", tmp_path)
    data = path.read_bytes().decode("utf-8-sig").encode("iso8859_7")
    assert "Άγιος".encode("iso8859_7") != "Άγιος".encode("cp1253")
    assert data.decode("cp1253").count("Καλημέρα κόσμε") == 1  # cp1253 reads the rest right
    path.write_bytes(data)
    assert_refused(path, "el")


def test_without_a_base_a_legacy_csv_is_refused(projects, tmp_path):
    for project in ("pl", "ru"):
        encoding, runs = PROJECTS[project]
        path = export(project, tmp_path)
        resave(path, encoding, {(list(runs)[2], "config.lr"): "0.7"})
        os.remove(sidecar_path(path))
        assert_refused(path, project, "--project", f"e/{project}")
        shutil.move(path, tmp_path / f"{project}-done.csv")


def test_with_a_base_given_by_flag_a_legacy_download_is_read(projects, tmp_path):
    encoding, runs = PROJECTS["pl"]
    exported = export("pl", tmp_path)
    download = tmp_path / "Runs - pl.csv"  # no sidecar beside it
    shutil.copy(exported, download)
    resave(download, encoding, {("a3", "config.lr"): "0.25"})
    plan = runsync.plan(download, base=sidecar_path(exported))
    assert changes(plan) == [("a3", "config.lr", 0.25)] and plan.errors == ()
    # Given the exported CSV itself as the base, the download is read before the base is (runsync.api.read),
    # so there is nothing to decide by yet: refused, nothing guessed.
    plan = runsync.plan(download, base=exported)
    assert plan.changes == () and "UTF-8" in plan.errors[0].message


def test_bytes_valid_in_no_code_page_that_fits_are_refused(projects, tmp_path):
    path = export("pl", tmp_path)
    data = path.read_bytes().decode("utf-8-sig").encode("cp1250")
    # A stray 0x81 byte after Łódź: undefined in cp1250 (so it can't be the file's encoding), while the code
    # pages that do decode it (cp1251, Mac Roman) misread every Polish letter.
    damaged = data.replace("Łódź".encode("cp1250"), "Łódź".encode("cp1250") + b"\x81")
    assert damaged != data
    path.write_bytes(damaged)
    assert_refused(path, "pl")


@pytest.mark.libreoffice
def test_libreoffice_resave_as_cp1250_plans_nothing(projects, tmp_path):
    import libreoffice as lo

    path = export("pl", tmp_path)
    out, = lo.convert([path], tmp_path / "calc", f"csv:{lo.CSV_FILTER}:44,34,33,1",  # T3 33: MS_1250
                      infilter=f"{lo.CSV_FILTER}:{lo.UTF8}")
    data = out.read_bytes()
    assert "Łódź".encode("cp1250") in data and "Příliš žluťoučký".encode("cp1250") in data
    shutil.copy(sidecar_path(path), sidecar_path(out))
    plan = runsync.plan(out)
    assert (plan.changes, plan.conflicts, plan.errors) == ((), (), ())
    cells = oracle_cells(data, "cp1250")
    assert cells[("a1", "name")] == "Zażółć gęślą jaźń" and cells[("a2", "config.note")] == "Őrség és Ústí"


def test_excel_unicode_text_is_read_like_a_csv(sandbox, tmp_path):
    """Excel's "Unicode Text" save: `.txt`, UTF-16 LE with a BOM, TAB-separated, CRLF."""
    sandbox.store.create_run("e", "p", "u1", display_name="naïve 実験", tags=["a,b", "x"],
                             config={"lr": 0.1, "note": "tab\there", "city": "Łódź"})
    sandbox.store.create_run("e", "p", "u2", display_name="plain", config={"lr": 0.2, "note": "n", "city": "Kyiv"})
    exported = tmp_path / "runs.csv"
    invoke("export", "e/p", "-o", exported)
    rows = list(csv.reader(io.StringIO(exported.read_text(encoding="utf-8-sig"), newline="")))

    def save_as_unicode_text(name: str, edit: tuple[str, str, str] | None) -> Path:
        table = [list(r) for r in rows]
        if edit:
            run_id, column, value = edit
            table[[r[0] for r in table].index(run_id)][table[0].index(column)] = value
        out = io.StringIO()
        csv.writer(out, delimiter="\t", lineterminator="\r\n").writerows(table)
        path = tmp_path / name
        path.write_bytes(b"\xff\xfe" + out.getvalue().encode("utf-16-le"))
        return path

    untouched = save_as_unicode_text("runs.txt", None)
    result = invoke("import", untouched, "--base", exported, "--dry-run")
    assert "No changes." in result.stdout + result.stderr, result.stderr
    edited = save_as_unicode_text("edited.txt", ("u2", "config.city", "Львів"))
    invoke("import", edited, "--base", exported, "--yes")
    assert wandb.Api().run("e/p/u2").config["city"] == "Львів"
    assert dict(wandb.Api().run("e/p/u1").config) == {"lr": 0.1, "note": "tab\there", "city": "Łódź"}
