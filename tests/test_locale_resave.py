"""Differential test against the real program: awkward values exported, re-saved by LibreOffice Calc in several
locales (detect special numbers on and off), imported. No re-save ever writes, and every cell the program changed
is either warned about (a conversion: W&B's value kept) or still means the exported value.

The values come from a seeded generator (dates in many spellings, times, money, fractions, grouped numbers, tiny
and huge floats, number-like text). The default suite runs a quick subset (en-US and de-DE, detect on); the whole
matrix (five locales x detect on/off x CSV, CSV saved as XLSX, XLSX) is marked `matrix`, which `.ci/run` runs.
"""
from __future__ import annotations

import json
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import libreoffice as lo
import pytest
import wandb
from helpers import damaged_cells, invoke, write_counts

from runsync.api import read
from runsync.fields import codec

pytestmark = pytest.mark.libreoffice

# Windows LANGIDs for the CSV filter's language token, and the delimiter each locale's Calc user saves with
# (`;` where `,` is the decimal separator).
LOCALES = {"en_US": (1033, ","), "de_DE": (1031, ";"), "fr_FR": (1036, ";"), "pl_PL": (1045, ";"),
           "ja_JP": (1041, ",")}
QUICK = [("en_US", True), ("de_DE", True)]
MATRIX = [(loc, detect) for loc in LOCALES for detect in (True, False)]

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec", "March", "September"]


def awkward_values(seed: int, n: int = 4) -> list[object]:
    """Values a spreadsheet program is tempted to convert, n of each kind, from one seed."""
    rnd = random.Random(seed)
    out: list[object] = [
        "Apr-7", "7-Apr", "Sep 2023", "2024-01-02", "1/2", "12/31/2023", "31.12.2023", "3 mars 2024", "2024年1月2日",
        "7:45", "7:45 PM", "12:30:15.5", "23:59:59", "€3", "$4.50", "(5)", "(1,234.50)", "1 1/2", "3/4",
        "1,234", "3.250", "1.234.567", "12,345,678", "007", "1e5", "50%", "TRUE", "false", "+81 3", ".5",
        0.005, 0.001, 1e-310, 5e-324, 1e300, 3.14159265358979, 0.1 + 0.2, 2.5e-05, 12345678901234567890, 1000,
        True, 0.25, "0.25", "version 1.2",
        "1234.567", 123456.789, -123456789.123, "8 AM", "1:2:3", "12:30:45.123", "３．５", "0.5%",
    ]
    for _ in range(n):
        out.append(f"{rnd.choice(MONTHS)}{rnd.choice(['-', ' ', '-'])}{rnd.randint(1, 28)}")
        out.append(f"{rnd.randint(1, 12)}:{rnd.randint(0, 59):02d}" + rnd.choice(["", " AM", " PM", ":30"]))
        out.append(rnd.choice(["€", "$", "£"]) + f"{rnd.randint(1, 999)}" + rnd.choice(["", ".50", ".05"]))
        out.append(f"{rnd.randint(1, 999)}.{rnd.randint(0, 999):03d}")  # a grouped number in de-DE
        out.append(f"{rnd.randint(1, 99)},{rnd.randint(0, 999):03d}")  # a grouped number in en-US
        out.append(round(rnd.uniform(0.0001, 0.01), rnd.randint(3, 6)))  # a learning rate
        out.append(rnd.choice([1, -1]) * rnd.random() * 10.0 ** rnd.randint(-320, 300))  # tiny to huge
        out.append(f"{rnd.randint(1, 9)}/{rnd.randint(1, 12)}")
    return out


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory):
    """Three runs holding the awkward values (one config key each), exported as CSV and XLSX."""
    lo.soffice()
    from runsync.sandbox import start

    work = tmp_path_factory.mktemp("locales")
    sb = start(db=str(work / "sb.db"))
    with pytest.MonkeyPatch.context() as mp:
        for key, value in sb.env().items():
            mp.setenv(key, value)
        mp.setenv("WANDB_DIR", str(work))
        for i in range(3):
            values = awkward_values(seed=i)
            sb.store.create_run("e", "p", f"r{i}", display_name=f"run {i}", tags=[str(values[i])],
                                config={f"k{j:02d}": v for j, v in enumerate(values)})
        (work / "export").mkdir()
        for ext in ("csv", "xlsx"):
            invoke("export", "e/p", "-o", work / "export" / f"runs.{ext}")
        yield work, sb
        sb.stop()


def resave(work: Path, locale: str, detect: bool) -> dict[str, tuple[Path, tuple[str, ...]]]:
    """The export as a Calc user in `locale` saves it: the CSV as CSV and as XLSX, the XLSX as XLSX.
    Returns name -> (file, extra import options)."""
    langid, delimiter = LOCALES[locale]
    infilter = f"{lo.CSV_FILTER}:44,34,76,1,,{langid},false,{str(detect).lower()}"
    out = work / f"{locale}-{detect}"
    sep = {",": 44, ";": 59}[delimiter]
    jobs = [
        (out / "csv", f"csv:{lo.CSV_FILTER}:{sep},34,76,1", work / "export" / "runs.csv", infilter),
        (out / "csv-as-xlsx", f"xlsx:{lo.XLSX_FILTER}", work / "export" / "runs.csv", infilter),
        (out / "xlsx", f"xlsx:{lo.XLSX_FILTER}", work / "export" / "runs.xlsx", None),
    ]
    with ThreadPoolExecutor(2) as pool:
        files = list(pool.map(lambda j: lo.convert([j[2]], j[0], j[1], infilter=j[3], locale=locale)[0], jobs))
    base = ("--base", str(work / "export" / "runs.csv"))
    return {"csv": (files[0], base), "csv-as-xlsx": (files[1], base),
            "xlsx": (files[2], ())}


def check_no_write(work: Path, sb, name: str, sheet: Path, extra: tuple[str, ...]) -> None:
    """Import the re-saved sheet for real: nothing written; each changed cell warned or still the same value."""
    before = write_counts(sb)
    configs = {r.id: dict(r.config) for r in wandb.Api().runs("e/p")}
    result = invoke("import", sheet, *extra, "--yes")
    assert "No changes." in result.stdout + result.stderr, f"{name}: {result.stdout}\n{result.stderr}"
    assert write_counts(sb) == before, f"{name}: something was written\n{result.stderr}"
    assert {r.id: dict(r.config) for r in wandb.Api().runs("e/p")} == configs  # the plain client's oracle
    warned = damaged_cells(result.stderr)
    exported_sheet = read(work / "export" / "runs.csv")
    resaved = read(sheet, base=extra[1] if extra else None)
    original = {cells["id"]: cells for _, cells in exported_sheet.rows}
    base = resaved.meta.base
    silent = []
    for _, cells in resaved.rows:
        run_id = str(cells["id"])
        for column, raw in cells.items():
            if column == "id" or column not in original[run_id] or raw == original[run_id][column]:
                continue
            if (run_id, column) in warned:
                continue
            value = codec.decode_cell(raw, column=column, base=base[run_id].get(column),
                                      source="xlsx" if sheet.suffix == ".xlsx" else "csv")
            if column.startswith("config.") and not codec.values_equal(value, base[run_id].get(column)):
                silent.append((run_id, column, original[run_id][column], raw))
    assert not silent, f"{name}: changed cells neither warned nor the same value: {silent}"


def _run_case(exported, locale: str, detect: bool) -> None:
    work, sb = exported
    for name, (sheet, extra) in resave(work, locale, detect).items():
        check_no_write(work, sb, f"{locale} detect={detect} {name}", sheet, extra)


@pytest.mark.parametrize(("locale", "detect"), QUICK, ids=[f"{loc}-detect" for loc, _ in QUICK])
def test_calc_resave_in_another_locale_never_writes(exported, locale, detect):
    _run_case(exported, locale, detect)


@pytest.mark.matrix
@pytest.mark.parametrize(("locale", "detect"), [m for m in MATRIX if m not in QUICK],
                         ids=[f"{loc}-{'detect' if d else 'plain'}" for loc, d in MATRIX if (loc, d) not in QUICK])
def test_calc_resave_matrix_never_writes(exported, locale, detect):
    _run_case(exported, locale, detect)


def test_the_generator_makes_what_it_says():
    values = awkward_values(seed=5)
    assert values == awkward_values(seed=5) and values != awkward_values(seed=6)
    kinds = {type(v) for v in values}
    assert {str, float, int, bool} <= kinds
    assert any(isinstance(v, float) and 0 < abs(v) < 1e-300 for v in values)
    assert json.dumps([v for v in values if isinstance(v, str)], ensure_ascii=False)
