"""A read sheet holds its cells and base compactly (issue 20 §4), and they still behave as the dicts they were."""
from __future__ import annotations

import copy
import gc
import json
import math
import pickle
import tracemalloc
from pathlib import Path

import pytest

from runsync.model import SheetMeta
from runsync.sheets import read_sheet, write_sheet
from runsync.sheets.meta import dumps

_TAGS = ["ablation", "baseline", "résumé", "v2 ", "日本"]
_COLUMNS = ["id", "name", "tags", "group", "job_type", "notes", *(f"tag:{t}" for t in _TAGS),
            "config.augment", "config.batch_size", "config.dataset", "config.dropout", "config.epochs",
            "config.layers", "config.lr", "config.model.depth", "config.model.width", "config.optimizer",
            "config.seed_note", "config.nested.with.dots", "state", "created_at", "url", "summary.acc",
            "summary.loss"]


def _record(i: int) -> dict:
    """One run as an export writes it: repeated texts (group, dataset, state), unique ones (id, name, url)."""
    tags = [t for k, t in enumerate(_TAGS) if (i >> k) & 1]
    record = {"id": f"r{i:05d}x", "name": f"solar-river-{i}", "tags": tags, "group": f"exp-{'abc'[i % 3]}",
              "job_type": None if i % 4 else "train", "notes": "" if i % 5 else "née\nline two",
              **{f"tag:{t}": t in tags for t in _TAGS},
              "config.augment": bool(i % 2), "config.batch_size": 2 ** (5 + i % 4), "config.dataset": "cifar10",
              "config.epochs": i % 90, "config.layers": [128, i % 7], "config.lr": 0.001 + i / 1e6,
              "config.model.depth": 18, "config.model.width": 0.5, "config.optimizer": ("sgd", "adam")[i % 2],
              "config.seed_note": None, "config.nested.with.dots": {"$weird": i} if i % 50 == 0 else "x",
              "state": "finished", "created_at": f"2024-05-01T11:{i % 60:02d}:00Z",
              "url": f"http://127.0.0.1:8080/e/p/runs/r{i:05d}x", "summary.acc": i / 7, "summary.loss": math.nan
              if i % 97 == 0 else 2.5 - i / 1e5}
    if i % 3 == 0:
        del record["config.dropout" if "config.dropout" in record else "config.seed_note"]  # a key the run lacks
    else:
        record["config.dropout"] = 0.1
    return record


def _write(path: Path, n: int) -> None:
    records = [_record(i) for i in range(n)]
    base = {r["id"]: {k: v for k, v in r.items() if k != "id"} for r in records}
    meta = SheetMeta(project="e/p", selection={}, exported_at="2024-01-01T00:00:00+00:00", runsync_version="t",
                     config_paths={c: c.split(".", 1)[1].split(".") for c in _COLUMNS if c.startswith("config.")},
                     base=base)
    write_sheet(path, _COLUMNS, records, meta)


@pytest.fixture(scope="module")
def sheets(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("compact")
    out = {}
    for ext in ("xlsx", "csv"):
        out[ext] = folder / f"runs.{ext}"
        _write(out[ext], 60)
    return out


@pytest.mark.parametrize("ext", ["xlsx", "csv"])
def test_a_read_row_and_base_behave_as_dicts(sheets, ext):
    sheet = read_sheet(str(sheets[ext]))
    assert sheet.meta is not None and len(sheet.rows) == 60
    for _, cells in sheet.rows[:12]:
        plain = dict(cells)
        assert list(plain) == _COLUMNS  # every column, in the sheet's order
        assert cells == plain and plain == cells and not (cells != plain)
        assert cells == dict(reversed(list(plain.items())))  # order does not count, as for dicts
        assert cells != {**plain, "extra": 1} and cells != {k: v for k, v in plain.items() if k != "name"}
        assert cells != {**plain, "name": "something else"} and cells != [*plain.items()]
        assert len(cells) == len(plain) and list(cells) == list(plain) and list(cells.items()) == list(plain.items())
        assert list(cells.values()) == list(plain.values()) and cells.keys() == plain.keys()
        assert "config.lr" in cells and "config.missing" not in cells and 3 not in cells
        assert cells.get("config.missing") is None and cells.get("config.missing", "dflt") == "dflt"
        assert cells.get("name") == cells["name"] == plain["name"]
        with pytest.raises(KeyError):
            cells["config.missing"]
        with pytest.raises(TypeError):
            cells["name"] = "renamed"  # type: ignore[index]
        with pytest.raises((TypeError, AttributeError)):
            del cells["name"]  # type: ignore[attr-defined]
        with pytest.raises(AttributeError):
            cells.update({"name": "x"})  # type: ignore[attr-defined]
        assert cells == plain  # the attempts changed nothing
        assert repr(cells) == repr(plain)  # what an assertion or a debugger shows
        with pytest.raises(TypeError):
            hash(cells)  # as a dict: unhashable
    for run_id, base in list(sheet.meta.base.items())[:12]:
        plain = dict(base)
        i = int(run_id[1:6])
        assert ("config.dropout" in base) == (i % 3 != 0) and ("config.seed_note" in base) == (i % 3 != 0)
        assert base == plain and plain == base and len(base) == len(plain) and list(base) == list(plain)
        assert base.get("config.dropout", "ABSENT?") == (0.1 if i % 3 else "ABSENT?")
        # copies a caller makes to change a base (advance_base merges an import's writes) are plain dicts
        merged = {**base, "notes": "after an import"}
        assert type(merged) is dict and merged["notes"] == "after an import" and base["notes"] == plain["notes"]
        # a base is written again as JSON (meta.dumps), pickled and deep-copied (a DataFrame's attrs)
        assert json.loads(dumps(base)) == json.loads(dumps(plain))
        for again in (pickle.loads(pickle.dumps(base)), copy.deepcopy(base)):
            assert repr(again) == repr(plain)


def _traced(make):
    """(bytes `make()`'s result holds once made, the result), by tracemalloc."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        made = make()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before, made
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("ext", ["xlsx", "csv"])
def test_a_read_sheet_holds_less_than_its_cells_as_dicts_alone(tmp_path, ext):
    # Regression guard for issue 20 §4: at 100,000 runs one dict per row and per base was ~630 MiB of a plan.
    n = 2000
    path = tmp_path / f"runs.{ext}"
    _write(path, n)
    held, sheet = _traced(lambda: read_sheet(str(path)))
    assert sheet.meta is not None and len(sheet.rows) == len(sheet.meta.base) == n
    # The same cells as one plain dict per row and per base (the values themselves shared, not copied):
    # the containers alone that the reader used to keep.
    as_dicts, _ = _traced(lambda: ([(r, dict(c)) for r, c in sheet.rows],
                                   {rid: dict(b) for rid, b in sheet.meta.base.items()}))
    per_run, dicts_per_run = held / n, as_dicts / n
    # Measured (Python 3.11, 29 columns), bytes a run: one dict per row and per base, 3,600 (XLSX) and 4,200
    # (CSV: every cell a text), of which the dicts alone were 1,750; compact rows sharing their texts (with
    # each other, and a base's with its row's), 1,500 and 1,600 with every value included.
    message = f"{per_run:.0f} bytes a run read (its cells as dicts alone: {dicts_per_run:.0f})"
    assert per_run < 1_900, message
    assert per_run < dicts_per_run, message
