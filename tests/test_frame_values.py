"""Values as pandas holds them (issue 17 §4, §6): numpy scalars, narrow floats, nullable dtypes, pd.NA, NaT and
Timestamps plan as the values they are, or as one error naming the column; `frame()` types its number columns.

W&B's state is judged through the plain wandb client (`wandb.Api().run(...)`), not through runsync's readers.
"""
from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import os

import numpy as np
import pandas as pd
import pytest
import wandb

import runsync


@pytest.fixture(autouse=True)
def _state_home(tmp_path, monkeypatch):
    """A DataFrame's journals go to $XDG_STATE_HOME/runsync: keep them in the test's folder."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


@pytest.fixture
def world(sandbox):
    store = sandbox.store
    store.create_run("e", "p", "a1", display_name="alpha", tags=["x"], group="g1",
                     config={"lr": 0.1, "n": 3, "ok": True, "mix": 1, "big": 2**70, "s": "2024-01-02", "w": 1e-8,
                             "third": 1 / 3})
    store.create_run("e", "p", "a2", display_name="beta", tags=[], group=None,
                     config={"lr": 1e-8, "n": -40, "ok": False, "mix": 2.5, "big": 7, "s": "x", "w": 3.4e38,
                             "third": None})
    store.create_run("e", "p", "a3", display_name="gamma", tags=["y", "z"], group="g2",
                     config={"lr": math.nan, "ok": None, "mix": -0.0, "big": -(2**62), "s": "2024-05-06 07:08:09",
                             "w": 65504.0, "third": 2.0})
    return sandbox


def config_of(run_id: str) -> dict:
    return dict(wandb.Api().run(f"e/p/{run_id}").config)


def state() -> dict[str, str]:
    return {r.id: json.dumps([r.name, r.group, list(r.tags), dict(r.config)], sort_keys=True, default=repr)
            for r in wandb.Api().runs("e/p", lazy=False)}


def row(df: pd.DataFrame, run_id: str):
    return df.index[df["id"] == run_id][0]


def changes(plan) -> dict[tuple[str, str], object]:
    return {(c.run_id, c.field): c.sheet for c in plan.changes}


def test_numpy_scalars_are_numbers_and_booleans(world):
    df = runsync.frame("e/p")
    df.at[row(df, "a1"), "config.n"] = np.int64(-12)
    df.at[row(df, "a1"), "config.ok"] = np.bool_(False)
    df.at[row(df, "a2"), "config.ok"] = np.True_
    df.at[row(df, "a2"), "config.lr"] = np.float64(0.375)
    df.at[row(df, "a3"), "config.n"] = np.uint8(255)
    df.at[row(df, "a3"), "config.big"] = np.int64(2**62 + 1)
    df["config.fresh"] = [np.int32(5), np.float64(2.5e-7), np.bool_(True)]
    df["config.layers"] = pd.Series([[np.int64(1), np.float32(0.5), np.bool_(False)], None, np.array([2, 3])],
                                    index=df.index, dtype=object)
    plan = runsync.plan(df)
    assert not plan.errors, [e.one_line() for e in plan.errors]
    assert changes(plan) == {
        ("a1", "config.n"): -12, ("a1", "config.ok"): False, ("a2", "config.ok"): True,
        ("a2", "config.lr"): 0.375, ("a3", "config.n"): 255, ("a3", "config.big"): 2**62 + 1,
        ("a1", "config.fresh"): 5, ("a2", "config.fresh"): 2.5e-7, ("a3", "config.fresh"): True,
        ("a1", "config.layers"): [1, 0.5, False], ("a3", "config.layers"): [2, 3]}
    assert runsync.apply(plan, new_keys=True).ok
    a1, a2, a3 = config_of("a1"), config_of("a2"), config_of("a3")
    assert (a1["n"], a1["ok"], a1["fresh"], a1["layers"]) == (-12, False, 5, [1, 0.5, False])
    assert type(a1["n"]) is int and a1["ok"] is False and type(a1["fresh"]) is int
    assert (a2["ok"], a2["lr"], a2["fresh"]) == (True, 0.375, 2.5e-7) and a2["ok"] is True
    assert (a3["n"], a3["big"], a3["fresh"], a3["layers"]) == (255, 2**62 + 1, True, [2, 3]) and a3["fresh"] is True
    assert "layers" not in a2


@pytest.mark.parametrize("dtype", ["float32", "float16", "Float32"])
def test_a_narrow_float_column_with_unchanged_values_plans_nothing(world, dtype):
    df = runsync.frame("e/p")
    with np.errstate(over="ignore"):  # 3.4e38 is beyond float16: inf, as W&B's value is at that precision
        for column in ("config.lr", "config.w", "config.third", "config.mix"):
            df[column] = df[column].astype(dtype)
    plan = runsync.plan(df)
    assert plan.empty, changes(plan)


def test_a_narrow_float_edit_writes_the_value_held(world):
    before = state()
    df = runsync.frame("e/p")
    df["config.lr"] = df["config.lr"].astype("float32")
    df["config.third"] = df["config.third"].astype("float16")
    df.at[row(df, "a2"), "config.lr"] = 0.3
    df.at[row(df, "a1"), "config.third"] = 0.1
    held_lr, held_third = float(np.float32(0.3)), float(np.float16(0.1))
    plan = runsync.plan(df)
    assert changes(plan) == {("a2", "config.lr"): held_lr, ("a1", "config.third"): held_third}
    assert runsync.apply(plan).ok
    assert config_of("a2")["lr"] == held_lr and config_of("a1")["third"] == held_third
    after = state()
    assert {k for k in after if after[k] != before[k]} == {"a1", "a2"}
    assert config_of("a1")["lr"] == 0.1 and math.isnan(config_of("a3")["lr"])  # untouched, still exact


def test_convert_dtypes_round_trips_and_edits_land(world):
    before = state()
    df = runsync.frame("e/p")
    typed = df.convert_dtypes()
    typed.attrs = df.attrs
    assert runsync.plan(typed).empty
    typed = df.astype({"config.n": "Int64", "config.ok": "boolean", "name": "string", "config.lr": "Float64"})
    assert runsync.plan(typed).empty
    typed.at[row(typed, "a1"), "config.n"] = 9
    typed.at[row(typed, "a3"), "config.n"] = 2**40
    typed.at[row(typed, "a2"), "config.ok"] = pd.NA
    typed.at[row(typed, "a3"), "config.ok"] = True
    typed.at[row(typed, "a2"), "name"] = "béta 2"
    typed.at[row(typed, "a1"), "config.lr"] = pd.NA
    plan = runsync.plan(typed)
    assert changes(plan) == {("a1", "config.n"): 9, ("a3", "config.n"): 2**40, ("a2", "config.ok"): None,
                             ("a3", "config.ok"): True, ("a2", "name"): "béta 2", ("a1", "config.lr"): None}
    assert runsync.apply(plan, new_keys=True).ok
    a1, a2, a3 = config_of("a1"), config_of("a2"), config_of("a3")
    assert type(a1["n"]) is int and a1["n"] == 9 and a3["n"] == 2**40 and a3["ok"] is True
    assert a2["ok"] is None and a1["lr"] is None and wandb.Api().run("e/p/a2").name == "béta 2"
    assert before["a1"] != state()["a1"]


def test_timestamps_nat_and_na(world):
    df = runsync.frame("e/p")
    df["config.s"] = pd.to_datetime(df["config.s"], errors="coerce", format="mixed")  # "x" -> NaT
    plan = runsync.plan(df)  # the dates parsed back are the texts W&B holds: no change; NaT is an emptied cell
    assert changes(plan) == {("a2", "config.s"): None}
    df.at[row(df, "a1"), "config.s"] = pd.Timestamp("2025-12-31 23:59:58.5")
    df["config.when"] = [pd.Timestamp("2024-02-29", tz="UTC"), pd.NaT, dt.datetime(1999, 1, 2, 3, 4)]
    df.at[row(df, "a3"), "config.n"] = pd.NA
    plan = runsync.plan(df)
    assert changes(plan) == {
        ("a1", "config.s"): "2025-12-31T23:59:58.500000", ("a2", "config.s"): None,
        ("a1", "config.when"): "2024-02-29T00:00:00+00:00", ("a3", "config.when"): "1999-01-02T03:04:00"}
    assert runsync.apply(plan, new_keys=True).ok
    assert config_of("a1")["s"] == "2025-12-31T23:59:58.500000" and config_of("a2")["s"] is None
    assert "when" not in config_of("a2") and config_of("a3")["when"] == "1999-01-02T03:04:00"


@pytest.mark.parametrize("value, what", [
    (pd.Timedelta(hours=3), "Timedelta"), (decimal.Decimal("0.1"), "Decimal"), (1 + 2j, "complex"),
    (np.complex128(1j), "complex128"), ({3}, "set"), (b"\x00raw", "bytes"), (object(), "object"),
])
def test_a_value_runsync_cannot_write_is_one_error_naming_the_column(world, value, what):
    before = state()
    df = runsync.frame("e/p")
    df.at[row(df, "a2"), "config.s"] = value
    plan = runsync.plan(df)
    assert [(e.row, e.run_id, e.column) for e in plan.errors] == [(3, "a2", "config.s")]
    line = plan.errors[0].one_line()
    assert what in line and "\n" not in line and "config.s" in line
    with pytest.raises(runsync.RunsyncError):
        runsync.apply(plan)
    assert state() == before


def test_frame_types_number_columns_and_round_trips(world):
    df = runsync.frame("e/p")
    assert df["config.lr"].dtype == "float64" and df["config.w"].dtype == "float64"
    assert df["config.mix"].dtype == "float64" and df["config.third"].dtype == "float64"
    assert str(df["config.n"].dtype) == "Int64"
    assert df["config.big"].dtype == object  # 2**70 is beyond int64, and beside -(2**62) not a float64 value
    assert df["config.ok"].dtype == object and df["config.s"].dtype == object and df["name"].dtype == object
    described = df.describe()
    assert described.loc["count", "config.n"] == 2 and described.loc["max", "config.lr"] == 0.1
    assert runsync.plan(df).empty


def test_frame_number_column_edits_keep_ints_ints(world):
    df = runsync.frame("e/p")
    df.at[row(df, "a1"), "config.mix"] = 4  # a float64 column: pandas holds 4.0; W&B held the int 1
    df.at[row(df, "a2"), "config.third"] = 5  # W&B held null here, floats elsewhere
    df.at[row(df, "a2"), "config.n"] = 41
    plan = runsync.plan(df)
    assert changes(plan) == {("a1", "config.mix"): 4, ("a2", "config.third"): 5.0, ("a2", "config.n"): 41}
    assert runsync.apply(plan).ok
    assert type(config_of("a1")["mix"]) is int and type(config_of("a2")["n"]) is int


def test_set_index_id_works(world):
    df = runsync.frame("e/p").set_index("id")
    df.at["a2", "group"] = "by-index"
    df.at["a1", "config.n"] = 8
    plan = runsync.plan(df)
    assert not plan.errors and changes(plan) == {("a2", "group"): "by-index", ("a1", "config.n"): 8}
    assert runsync.apply(plan).ok
    assert wandb.Api().run("e/p/a2").group == "by-index" and config_of("a1")["n"] == 8


def test_a_frame_without_attrs_says_what_to_keep(world):
    df = runsync.frame("e/p")
    df.attrs = {}
    with pytest.raises(runsync.RunsyncError) as caught:
        runsync.plan(df)
    text = caught.value.message + " " + (caught.value.hint or "")
    assert "df.attrs" in text and "runsync.frame" in text and "sidecar" not in text


def test_frame_journals_go_under_the_state_folder(world, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    df = runsync.frame("e/p")
    df.at[row(df, "a1"), "group"] = "journaled"
    report = runsync.apply(runsync.plan(df))
    assert report.ok and os.path.commonpath([report.journal, str(tmp_path / "state")]) == str(tmp_path / "state")
    assert runsync.plan(df).empty  # its own import counts as the base (found in the state folder)
    bare = df.copy()
    bare.attrs = {}
    bare.at[row(bare, "a2"), "group"] = "two-way"
    report = runsync.apply(runsync.plan(bare, project="e/p"))
    assert report.ok and report.journal.startswith(str(tmp_path / "state"))
    assert not any(name.endswith(".runsync-journals") for name in os.listdir(tmp_path))
    assert wandb.Api().run("e/p/a2").group == "two-way"


def test_a_two_way_frame_from_read_csv_writes_only_the_edit_not_nan(world, tmp_path):
    """read_csv (or a merge) drops df.attrs and gives NaN for every empty cell: planned 2-way (project=), an
    empty cell where W&B holds null is no change, never the text 'nan' (found by an adversarial tryout)."""
    sheet = tmp_path / "runs.csv"
    runsync.export("e/p", sheet)
    before = state()
    df = pd.read_csv(sheet)
    assert df["group"].isna().any() and df["notes"].isna().all()
    df.loc[df["id"] == "a1", "config.n"] = 42
    plan = runsync.plan(df[["id", "name", "tags", "group", "job_type", "notes", "config.n", "config.s"]], project="e/p")
    assert changes(plan) == {("a1", "config.n"): 42}, changes(plan)
    assert runsync.apply(plan).ok
    after = state()
    assert config_of("a1")["n"] == 42
    assert {k: v for k, v in after.items() if k != "a1"} == {k: v for k, v in before.items() if k != "a1"}
    assert wandb.Api().run("e/p/a2").group is None and wandb.Api().run("e/p/a2").notes in (None, "")


def test_convert_dtypes_of_a_big_int_among_floats_plans_nothing(sandbox):
    """Found by an adversarial tryout: convert_dtypes() makes ints and floats Float64, which holds 2**53+1 as
    2**53; the unchanged cell wrote 9007199254740992 over 9007199254740993."""
    for run_id, mix in (("b1", 2**53 + 1), ("b2", 0.5), ("b3", 7), ("b4", -(2**60) - 3)):
        sandbox.store.create_run("e", "p", run_id, config={"mix": mix, "note": "n"})
    df = runsync.frame("e/p").convert_dtypes()
    assert str(df["config.mix"].dtype) == "Float64"
    df.loc[df["id"] == "b2", "config.note"] = "edited"
    plan = runsync.plan(df)
    assert changes(plan) == {("b2", "config.note"): "edited"}
    runsync.apply(plan)
    assert config_of("b1")["mix"] == 2**53 + 1 and config_of("b4")["mix"] == -(2**60) - 3
