"""Floats judged digit by digit with an oracle apart from runsync's codec (Decimal of repr): a sheet never
loses a digit, and an edit at the 13th-17th significant digit is a change that lands exactly (issue 11 §9)."""
from __future__ import annotations

import csv
import io
import math
from decimal import ROUND_DOWN, Context, Decimal

import openpyxl
import pytest
import wandb
from helpers import edit_cells, invoke

import runsync

VALUES = [0.1 + 0.2, 1 / 3, 2 / 3 * 1e-5, math.pi, 3.3e-17, 123456.78901234567, 0.1234567890123,
          6.02214076e23, 1.7976931348623157e308, 2.5, 1e-300 / 3]


def digits(x: float) -> Decimal:
    return Decimal(repr(x))


def edited_at(x: float, k: int) -> float:
    """`x` with its k-th significant digit raised by the smallest step that changes the double."""
    d = Decimal(f"{x:.16e}")  # 17 significant digits: the most a double needs
    for step in range(1, 10):  # at the 17th digit one step may round back to the same double
        new = float(d + step * Decimal(1).scaleb(d.adjusted() - (k - 1)))
        if new != x:
            return new
    return x


@pytest.fixture
def floats(sandbox):
    for i, value in enumerate(VALUES):
        sandbox.store.create_run("e", "p", f"f{i}", config={"x": value, "other": i})
    return sandbox


def cells(sheet) -> dict[str, object]:
    if sheet.suffix == ".xlsx":
        rows = [[c.value for c in r] for r in openpyxl.load_workbook(sheet)["runs"].iter_rows()]
    else:
        rows = list(csv.reader(io.StringIO(sheet.read_text(encoding="utf-8-sig"))))
    header = rows[0]
    return {r[header.index("id")]: r[header.index("config.x")] for r in rows[1:]}


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_no_digit_is_lost_and_an_untouched_sheet_is_no_change(floats, tmp_path, fmt):
    sheet = tmp_path / f"runs.{fmt}"
    invoke("export", "e/p", "-o", sheet)
    for i, value in enumerate(VALUES):
        cell = cells(sheet)[f"f{i}"]
        assert Decimal(repr(float(cell))) == digits(value), (value, cell)  # exact, whatever the cell kind
    assert runsync.plan(sheet).empty


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
@pytest.mark.parametrize("k", [13, 14, 15, 16, 17])
def test_an_edit_at_a_late_significant_digit_is_a_change_that_lands_exactly(floats, tmp_path, fmt, k):
    sheet = tmp_path / f"runs.{fmt}"
    invoke("export", "e/p", "-o", sheet)
    wanted = {}
    for i, value in enumerate(VALUES):
        new = edited_at(value, k)
        if new != value and new != float(f"{value:.15g}"):  # a digit past a float's precision changes nothing
            wanted[f"f{i}"] = new
    assert len(wanted) >= 6  # the case still discriminates
    # Typed as text: that is how a person enters 17 digits (a number cell keeps 15).
    edit_cells(sheet, {(rid, "config.x"): repr(new) for rid, new in wanted.items()})
    plan = runsync.plan(sheet)
    got = {c.run_id: c.sheet for c in plan.changes}
    assert sorted(got) == sorted(wanted) and not plan.conflicts
    assert all(digits(got[rid]) == digits(new) for rid, new in wanted.items())
    invoke("import", sheet, "--yes")
    stored = {r.id: r.config["x"] for r in wandb.Api().runs("e/p", lazy=False)}
    for rid, new in wanted.items():
        assert digits(stored[rid]) == digits(new), (rid, stored[rid], new)


# Values whose 16th digit would round up: Excel cutting them at 15 digits gives another number than rounding.
TRUNCATED = [6.666666666666667e-06, 123456.78901234567, 1.7976931348623157e308, -0.12345678901234566]


def cut_at_15(x: float) -> float:
    """`x`'s shortest digits cut (not rounded) to 15 significant ones, as Excel keeps typed digits."""
    return float(Context(prec=15, rounding=ROUND_DOWN).plus(Decimal(repr(x))))


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_excel_cutting_digits_at_15_is_recognised_not_written(sandbox, tmp_path, fmt):
    for i, value in enumerate(TRUNCATED):
        sandbox.store.create_run("e", "p", f"t{i}", config={"x": value})
    sheet = tmp_path / f"runs.{fmt}"
    invoke("export", "e/p", "-o", sheet)
    cut = {f"t{i}": cut_at_15(value) for i, value in enumerate(TRUNCATED)}
    assert all(c != v and c != float(f"{v:.15g}") for c, v in zip(cut.values(), TRUNCATED))  # not rounding
    edit_cells(sheet, {(rid, "config.x"): value for rid, value in cut.items()})
    plan = runsync.plan(sheet)
    assert plan.changes == () and not plan.errors
    # One warning for the column, naming each cell (up to 5) and what the program did to it.
    (warned,) = [w for w in plan.warnings if "column 'config.x': " in w]
    assert f"{len(TRUNCATED)} cells changed by a spreadsheet program" in warned and "kept the W&B values" in warned
    for i, value in enumerate(TRUNCATED):
        assert f"run t{i}: number rounded to 15 significant digits by a program: {value!r}" in warned, (i, warned)
