"""Rendered plans against golden files (tests/cases/plan/*.txt); REGENERATE=1 rewrites them."""
from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from rich.console import Console

from runsync.errors import CellError
from runsync.model import ABSENT, Action, Change, Plan
from runsync.report.text import plan_json, render_plan

CASES = Path(__file__).parent / "cases" / "plan"


def _plan(**kw) -> Plan:
    return Plan(project="e/p", source="runs.xlsx", changes=kw.get("changes", ()), conflicts=kw.get("conflicts", ()),
                infos=kw.get("infos", ()), errors=kw.get("errors", ()))


U, C, I = Action.UPDATE, Action.CONFLICT, Action.INFO
PLANS = {
    "changes": _plan(changes=(
        Change("abc123", "bold-river-1", "tags", ("a", "b"), ("a", "b", "c, d"), ("a", "b"), U),
        Change("abc123", "bold-river-1", "config.lr", 0.1, 0.01, 0.1, U, ("lr",)),
        Change("abc123", "bold-river-1", "config.new_key", ABSENT, "x", ABSENT, U, ("new_key",)),
        Change("def456", None, "group", "exp-a", None, "exp-a", U),
        Change("def456", None, "notes", None, "line 1\nline 2 [not markup]", None, U),
    ), infos=(Change("ghi789", "quiet-sun-3", "job_type", "train", "train", "eval", I),)),
    "conflicts": _plan(
        changes=(Change("abc123", "n", "name", "old", "new", "old", U),),
        conflicts=(Change("def456", "m", "config.model.depth", 18, 50, 34, C, ("model", "depth")),)),
    "empty": _plan(),
    "errors": _plan(errors=(CellError("runs.xlsx", 7, "abc123", "config.lr", "not valid JSON: Expecting value"),
                            CellError("runs.xlsx", 1, None, None, "no 'id' column"))),
}


def _render(plan: Plan, width: int = 100) -> str:
    console = Console(no_color=True, width=width, record=True, file=io.StringIO())
    render_plan(plan, console)
    return console.export_text()


@pytest.mark.parametrize("name", sorted(PLANS))
def test_text_plan_matches_golden(name):
    golden = CASES / f"{name}.txt"
    text = _render(PLANS[name])
    if os.environ.get("REGENERATE"):
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")


def test_json_plan_shape():
    doc = plan_json(PLANS["conflicts"])
    assert list(doc) == ["format", "project", "changes", "conflicts", "errors", "skipped", "new_keys", "summary"]
    assert doc["changes"] == [{"run_id": "abc123", "run_name": "n", "field": "name", "old": "old", "new": "new"}]
    assert doc["conflicts"] == [{"run_id": "def456", "field": "config.model.depth", "base": 18, "sheet": 50, "live": 34}]
    assert doc["summary"] == {"runs": 1, "fields": 1, "conflicts": 1, "errors": 0}
    assert plan_json(PLANS["changes"])["new_keys"] == [{"field": "config.new_key", "key": ["new_key"], "runs": 1}]
    absent = plan_json(PLANS["changes"])["changes"][2]
    assert absent["old"] is None and absent["new"] == "x"
    json.dumps(doc)  # serialisable as is


def test_characters_a_terminal_hides_are_shown_escaped_in_the_plan() -> None:
    from runsync.report.text import show

    plan = _plan(changes=(
        Change("abc123", "run one", "name", "run one", "run\u00a0one", "run one", U),
        Change("abc123", "run one", "tags", ("a",), ("a\u200b",), ("a",), U),
        Change("abc123", "run one", "notes", "x", "x\ufeff\u3000", "x", U),
        Change("abc123", "run one", "group", "日本", "日本 語", "日本", U),
    ))
    out = io.StringIO()
    render_plan(plan, Console(file=out, width=200, color_system=None))
    text = out.getvalue()
    assert 'name: "run one" → "run\\u00a0one"' in text
    assert "tags: [a] → [a\\u200b]" in text
    assert 'notes: "x" → "x\\ufeff\\u3000"' in text
    assert 'group: "日本" → "日本 語"' in text  # visible text, a plain space: as it is
    assert show("tab\tand\nnewline") == '"tab\\tand\\nnewline"'


@pytest.mark.parametrize(("old", "new", "note"), [
    ("caf\u00e9", "cafe\u0301", "NFC in W&B, NFD in the sheet"),
    ("\u00c5ngstr\u00f6m", "A\u030angstro\u0308m", "NFC in W&B, NFD in the sheet"),
    ("\uac00", "\u1100\u1161", "NFC in W&B, NFD in the sheet"),  # Hangul syllable vs its jamo
    ("cafe\u0301", "caf\u00e9", "NFD in W&B, NFC in the sheet"),
    (0.1, 0.10000000149011612, "float32 precision"),
    (3.3, 3.299999952316284, "float32 precision"),
])
def test_a_change_that_looks_like_none_says_what_differs(old, new, note):
    from runsync.model import Action, Change, Plan

    plan = Plan("e/p", "s.csv", (Change("r1", "n", "config.x", old, new, old, Action.UPDATE),), (), ())
    console = Console(no_color=True, width=200, record=True)
    render_plan(plan, console)
    assert note in console.export_text()


@pytest.mark.parametrize(("old", "new"), [("café", "cafe"), ("x", "y"), (0.1, 0.2), (1e-50, 2e-50), (1.0, 2.0)])
def test_ordinary_changes_carry_no_such_note(old, new):
    from runsync.report.text import alike_note

    assert alike_note(old, new) == ""


def _at_scale() -> Plan:
    """5,000-ish runs: group to one value from two, lr from 40 values to mostly one, tags added and removed."""
    changes: list[Change] = []
    for i in range(1906):
        rid = f"r{i:05d}"
        old_group = "exp-a" if i % 3 else "exp-ä b"
        changes.append(Change(rid, None, "group", old_group, "sweep-b", old_group, U))
        if i < 1504:
            changes.append(Change(rid, None, "config.lr", 0.001 * (i % 40), 0.02, 0.001 * (i % 40), U, ("lr",)))
        elif i < 1511:
            changes.append(Change(rid, None, "config.lr", 0.5, 1e-5 * (i - 1503), 0.5, U, ("lr",)))
        if i < 800:
            old = ("debug", "x") if i < 12 else ("x",)
            changes.append(Change(rid, None, "tags", old, ("x", "reviewed"), old, U))
        elif i < 803:
            changes.append(Change(rid, None, "tags", ("debug", "keep, me"), ("keep, me",), ("debug", "keep, me"), U))
    return _plan(changes=tuple(changes))


def test_a_big_plan_rolls_up_by_field_before_the_per_run_detail():
    text = _render(_at_scale())
    lines = text.splitlines()
    assert lines[:5] == [
        "By field (1,906 runs):",
        '  group: 2 distinct values → "sweep-b" in 1,906 runs',
        "  config.lr: 41 distinct values → 0.02 in 1,504 runs, 7 other values in 7 runs",
        "  tags: +reviewed in 800 runs, -debug in 15 runs",
        "",
    ]
    assert lines[5] == "~ r00000"  # then the per-run detail, every run of it
    assert sum(line.startswith("~ r") for line in lines) == 1906
    assert lines[-1] == "Plan: 1,906 runs, 4,220 fields to change, 0 conflicts."


@pytest.mark.parametrize(("changes", "line"), [
    ((Change("a", None, "notes", None, "n1", None, U), Change("b", None, "notes", "x", "n2", "x", U),
      Change("c", None, "notes", "x", "n3", "x", U), Change("d", None, "notes", "x", "n4", "x", U)),
     "  notes: 2 distinct values → 4 distinct values in 4 runs"),
    ((Change("a", None, "job_type", "eval", None, "eval", U), Change("b", None, "job_type", "eval", "🚀", "eval", U)),
     '  job_type: "eval" → null in 1 run, "🚀" in 1 run'),
    ((Change("a", None, "config.k", ABSENT, [1, 2], ABSENT, U, ("k",)),
      Change("b", None, "config.k", ABSENT, [1, 2], ABSENT, U, ("k",))),
     "  config.k: (absent) → [1, 2] in 2 runs"),
    ((Change("a", None, "tags", ("b", "a"), ("a", "b"), ("b", "a"), U),
      Change("b", None, "tags", (), ("new tag",), (), U)),
     "  tags: +new tag in 1 run, reordered in 1 run"),
])
def test_roll_up_lines_say_how_many_runs_change_to_what(changes, line):
    text = _render(_plan(changes=changes))
    assert line in text.splitlines(), text


def test_a_one_run_plan_has_no_roll_up_and_says_one_run_one_conflict():
    text = _render(PLANS["conflicts"])
    assert "By field" not in text
    assert text.splitlines()[-1] == "Plan: 1 run, 1 field to change, 1 conflict."


def test_identical_skip_reasons_are_said_once_with_the_count():
    from runsync.model import Skip

    plan = Plan("e/p", "s.xlsx", (Change("a", None, "group", "x", "y", "x", U),), (), (), skipped=(
        Skip("live1", "n-1", "running"), Skip("live2", None, "running"), Skip("live3", "[b]", "running"),
        Skip("gone", None, "deleted in W&B since the plan")))
    text = _render(plan, width=300)
    assert text.count("still running") == 1 and text.count("deleted in W&B") == 1
    skipped = text[text.index("Skipped"):].splitlines()
    assert skipped[1] == ("  3 runs still running (their process may overwrite an edit; run the same command again "
                          "once they have finished, or pass --include-running):")
    assert skipped[2:5] == ["    - live1 (n-1)", "    - live2", "    - live3 ([b])"]
    assert skipped[5] == "  1 run deleted in W&B since the plan:"
    assert skipped[6] == "    - gone"


def test_str_of_a_plan_is_the_text_plan_and_repr_is_one_line(capsys):
    plan = PLANS["conflicts"]
    assert str(plan) == _render(plan)
    assert repr(plan) == "<Plan e/p: 1 run, 1 field, 1 conflict>"
    assert repr(PLANS["changes"]) == "<Plan e/p: 2 runs, 5 fields, 0 conflicts>"
    assert repr(PLANS["errors"]) == "<Plan e/p: 0 runs, 0 fields, 0 conflicts, 2 errors>"
    plan.show()
    assert capsys.readouterr().out == _render(plan)


@pytest.mark.parametrize(("n", "lines"), [
    (1, ["Applied 1 field change to 1 run.", "1 field already had the new value in W&B.",
         "Verified: read 1 written run back in 1 request."]),
    (2, ["Applied 2 field changes to 2 runs.", "2 fields already had the new value in W&B.",
         "Verified: read 2 written runs back in 2 requests."]),
    (1234, ["Applied 1,234 field changes to 1,234 runs.", "1,234 fields already had the new value in W&B.",
            "Verified: read 1,234 written runs back in 1,234 requests."]),
])
def test_the_apply_report_counts_in_singular_and_plural(n, lines):
    from runsync.model import ApplyReport
    from runsync.report.text import render_apply_report

    changes = [Change(f"r{i}", None, "notes", "a", "b", "a", U) for i in range(n)]
    report = ApplyReport(applied=changes, already=changes, verified_runs=n, verify_requests=n)
    console = Console(no_color=True, width=200, record=True, file=io.StringIO())
    render_apply_report(report, console)
    assert console.export_text().splitlines()[:3] == lines


def test_every_public_function_names_what_it_returns():
    import inspect
    import re

    import runsync
    from runsync import api

    functions = [getattr(runsync, name) for name in runsync.__all__ if inspect.isfunction(getattr(runsync, name))]
    functions += [api.plan_sheet, api.plan_undo_journal]
    assert len(functions) >= 9
    for function in functions:
        returned = str(inspect.signature(function).return_annotation)
        names = set(re.findall(r"[A-Za-z_.]+", returned)) - {"tuple", "None", "pd", "list", "dict"}
        doc = inspect.getdoc(function) or ""
        for name in names:
            assert name.split(".")[-1] in doc, f"{function.__name__}: docstring does not name {name}"
