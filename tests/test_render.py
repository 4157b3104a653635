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
from runsync.render import plan_json, render_plan

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


def _render(plan: Plan) -> str:
    console = Console(no_color=True, width=100, record=True, file=io.StringIO())
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
    from runsync.render.plan import show

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
    from runsync.render.plan import alike_note

    assert alike_note(old, new) == ""
