"""The field registry, as one table: for awkward column names, what kind each is, whether the import writes it,
whether a key it creates can be deleted again (W&B: never a config key), and how a few awkward values of each
kind read from a run, decode from a cell and compare."""
from __future__ import annotations

import math
from typing import Any

import pytest

from runsync.fields import is_editable, is_readonly, kind_of
from runsync.fields.codec import CellProblem
from runsync.model import ABSENT, Action, Change, Plan, RunRecord

# (column, editable_summary, kind, editable, readonly, deletable)
KINDS = [
    ("id", (), "id", False, True, False),
    ("Name", (), "unknown", False, False, False),  # keys are exact: `Name` is no field of a run
    ("name", (), "text", True, False, True),
    ("job_type", (), "text", True, False, True),
    ("tags", (), "tags", True, False, True),
    ("Tags", (), "unknown", False, False, False),
    ("tag:x y", (), "tag tick", True, False, True),
    ("tag:", (), "tag tick", True, False, True),
    ("config.a.b", (), "config", True, False, False),
    ("config.", (), "config", True, False, False),  # the key "" (runsync set refuses it; a sheet may hold it)
    ("config.a\\.b", (), "config", True, False, False),
    ("config", (), "unknown", False, False, False),
    ("summary.loss", (), "summary", False, True, True),
    ("summary.loss", ("loss",), "summary", True, False, True),
    ("summary.loss", ("acc",), "summary", False, True, True),
    ("summary.a.b", ("a.b",), "summary", True, False, True),
    ("state", (), "run field", False, True, False),
    ("url", ("url",), "run field", False, True, False),
    ("runsync_status", (), "status", False, True, False),
    # MLflow's: its tags deletable, its params write-once (editable only to add one), metrics read-only
    ("tags.team ü", (), "text", True, False, True),
    ("tags.mlflow.user", (), "run field", False, True, False),
    ("params.lr", (), "text", True, False, False),
    ("metrics.acc", (), "summary", False, True, False),
    ("description", (), "text", True, False, True),
    ("start_time", (), "run field", False, True, False),
    ("tags", (), "tags", True, False, True),
    (" config.lr", (), "unknown", False, False, False),
    ("", (), "unknown", False, False, False),
    ("notes ", (), "unknown", False, False, False),
]


@pytest.mark.parametrize("column, editable_summary, name, editable, readonly, deletable", KINDS)
def test_kind_of(column: str, editable_summary: tuple[str, ...], name: str, editable: bool, readonly: bool,
                 deletable: bool) -> None:
    kind = kind_of(column, editable_summary)
    assert (kind.name, kind.editable, kind.readonly, kind.deletable) == (name, editable, readonly, deletable)
    assert is_editable(column, editable_summary) is editable and is_readonly(column, editable_summary) is readonly


def test_only_the_status_column_is_never_planned() -> None:
    assert [c for c, *_ in KINDS if not kind_of(c).planned] == ["runsync_status"]


RECORD = RunRecord(
    id="r1", storage_id="s1", name="ünï run", tags=("x y", "b"), group="", job_type=None, notes="",
    config={"a": {"b": 0.1, "c": {}}, "a.b": "dotted", "": 7, "flag": True},
    raw_config={}, state="finished", created_at="2026-01-01T00:00:00Z", url="http://h/e/p/runs/r1",
    summary={"loss": float("nan"), "a": {"b": 3}, "img": {"_type": "image-file"}},
)

# (column, path, what W&B holds for it in RECORD)
LIVE = [
    ("name", (), "ünï run"),
    ("group", (), None),  # W&B's "" and null are both an empty cell
    ("job_type", (), None),
    ("tags", (), ("x y", "b")),
    ("config.a.b", ("a", "b"), 0.1),
    ("config.a\\.b", ("a.b",), "dotted"),
    ("config.", ("",), 7),
    ("config.a", ("a",), ABSENT),  # a dict with keys of its own: those are the columns
    ("config.a.c", ("a", "c"), {}),  # an empty dict is a leaf
    ("config.zz", ("zz",), ABSENT),
    ("summary.a.b", (), 3),
    ("summary.nope", (), ABSENT),
    ("state", (), "finished"),
]


@pytest.mark.parametrize("column, path, expected", LIVE)
def test_live_value(column: str, path: tuple[str, ...], expected: Any) -> None:
    got = kind_of(column).live(RECORD, column, path)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize("column", ["id", "tag:x y", "runsync_status", "Name"])
def test_no_live_value_for_columns_w_and_b_does_not_hold(column: str) -> None:
    with pytest.raises(KeyError):
        kind_of(column).live(RECORD, column)


def test_summary_nan_reads_as_nan() -> None:
    assert math.isnan(kind_of("summary.loss").live(RECORD, "summary.loss"))


# (column, a, b, the same?)
SAME = [
    ("tags", ("a", "b"), ("b", "a"), True),
    ("tags", ("a",), ("a", "a"), True),
    ("tags", (), ABSENT, False),
    ("group", "", None, True),
    ("notes", "", ABSENT, False),
    ("name", "Run", "run", False),
    ("config.a.b", 10, 10.0, True),
    ("config.a.b", True, 1, False),
    ("config.a.b", [True], [1], False),
    ("config.a.b", float("nan"), float("nan"), True),
    ("config.a.b", None, ABSENT, False),
    ("summary.loss", {"x": 1}, {"x": 1.0}, True),
    ("state", "finished", "finished", True),
]


@pytest.mark.parametrize("column, a, b, same", SAME)
def test_same(column: str, a: Any, b: Any, same: bool) -> None:
    kind = kind_of(column)
    assert kind.same(a, b) is same and kind.same(b, a) is same


# (column, raw cell, base, source, decoded value as the plan compares it)
DECODE = [
    ("tags", 'a, "x, y" ,b', ("a",), "csv", ("a", "x, y", "b")),
    ("tags", "", ("a",), "csv", ()),
    ("tags", "'=sum", (), "csv", ("=sum",)),  # the CSV formula guard
    ("tags", 7, (), "xlsx", ("7",)),
    ("name", "007", "x", "xlsx", "007"),
    ("group", 5, None, "csv", "5"),  # a text field stays text, whatever the cell looks like
    ("notes", "", "was", "csv", None),
    ("tag:x y", "TRUE", False, "csv", True),
    ("tag:x y", "1", ABSENT, "csv", True),  # a tick column reads its cells as booleans (not the int 1)
    ("config.a.b", "10", 0.5, "csv", 10.0),
    ("config.a.b", "007", "x", "csv", "007"),
    ("config.a.b", "", ABSENT, "csv", ABSENT),  # an empty cell where the run has no such key
    ("config.a.b", "", 1, "csv", None),
    ("config.", "[1, 2]", [0], "csv", [1, 2]),
    ("summary.loss", "1e-3", 0.5, "csv", 0.001),
]


@pytest.mark.parametrize("column, raw, base, source, expected", DECODE)
def test_decode(column: str, raw: Any, base: Any, source: str, expected: Any) -> None:
    kind = kind_of(column)
    decoded = kind.sheet_value(kind.decode(raw, column=column, base=base, source=source), base)
    assert decoded == expected and type(decoded) is type(expected)


@pytest.mark.parametrize("column, raw", [("tags", 'a, "b'), ("tags", 'x "y" z'), ("config.a", "[1,"),
                                         ("tag:t", "maybe")])
def test_decode_refuses(column: str, raw: str) -> None:
    base = [0] if column == "config.a" else True
    decoded = kind_of(column).decode(raw, column=column, base=base, source="csv")
    assert isinstance(decoded, CellProblem) or (column == "tag:t" and not isinstance(decoded, bool))


@pytest.mark.parametrize("column, target", [("name", "field"), ("notes", "field"), ("tags", "tags"),
                                            ("tag:x", "tags"), ("config.a.b", "config"), ("summary.m", "summary"),
                                            ("state", None), ("id", None), ("runsync_status", None)])
def test_write_target(column: str, target: str | None) -> None:
    assert kind_of(column).write_to == target


def test_only_config_keys_count_as_new_keys() -> None:
    """A plan counts the keys it creates that no write can take back: config keys, not summary metrics."""
    def change(field: str, live: Any, sheet: Any) -> Change:
        return Change("r1", None, field, ABSENT, sheet, live, Action.UPDATE)

    plan = Plan("e/p", "s.csv", changes=(change("config.a.b", ABSENT, 1), change("summary.m", ABSENT, 2),
                                         change("config.c", 0, 1), change("config.d", ABSENT, ABSENT)),
                conflicts=(change("config.a.b", ABSENT, 3),), infos=())
    assert plan.new_key_counts == {"config.a.b": 2}


@pytest.mark.parametrize("column, note", [
    ("runsync_status", "read-only: what the last runsync import"),
    ("summary.loss", "read-only: a summary metric"),
    ("url", "read-only: W&B's own field"),
    ("tag:x y", "Tick: TRUE"),
    ("config.", "Config value"),
    ("Name", "The run's Name."),
])
def test_note(column: str, note: str) -> None:
    assert kind_of(column).note(column).startswith(note)
    assert kind_of("summary.loss", ("loss",)).note("summary.loss").startswith("Summary metric, editable")
