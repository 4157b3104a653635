"""The streamed export (issue 20 §4): rows spilled to a temporary file as pages arrive, the sheet written from it.

The files must hold what the in-memory export wrote (every cell, style, guide, the hidden base, the CSV and
its sidecar, byte for byte), the exporter must hold a bounded number of rows whatever the number of runs,
and the spill must be gone after a success, a refusal and a Ctrl-C.
"""
from __future__ import annotations

import csv
import gc
import json
import os
import re
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import wandb

import runsync
from runsync.api.exports import Selection
from runsync.backend import connect
from runsync.errors import RunsyncError
from runsync.exporter import spill as spill_module
from runsync.exporter.table import ExportShape, base_snapshot, build_table
from runsync.model import SheetMeta
from runsync.sandbox import seed_project
from runsync.sheets import sidecar_path, write_sheet, xlsx_write
from runsync.version import __version__

FULL = ExportShape(summary=("acc", "loss"), tag_columns=True)
NARROW = ExportShape(columns=("name", "tags", "group", "config.a"), config_keys=("lr",), summary=("acc",),
                     edit_summary=True)


@pytest.fixture
def awkward(sandbox):
    """Runs with text a spreadsheet would misread, extreme floats, unicode tags, dotted and nested keys, keys
    only some runs have, and names/groups past the (shrunk) width sample."""
    store = sandbox.store
    runs: list[dict[str, Any]] = [
        dict(run_id="f1", display_name="=1+1", tags=["日本語", " edge ", "🚀 rocket"], group="=SUM(A1)",
             job_type="train", notes="line one\nline two &<> \x01",
             config={"lr": 1e308, "tiny": 5e-324, "neg0": -0.0, "big": 2**63, "a.b": 1, "a": {"b": 2, "c.d": "x"},
                     "list": [1, "two", None], "flag": True, "s": "007"},
             summary={"acc": 0.1 + 0.2, "loss": 1e-300}),
        dict(run_id="f2", display_name="+x", tags=[], group=None, job_type=None, notes="",
             config={"lr": "0.001", "only2": "_x0041_", "a": {"b": "@u"}}, summary={"loss": -1e-7}),
        dict(run_id="f3", display_name="2024-01-02", tags=["b", "日本語"], group="grp", job_type="eval",
             config={"a": {"b": "+x"}, "empty": {}, "ключ": "значение", "back\\slash": 1, "lr": 12345678901234567},
             summary={"acc": 1.5e-12}),
        dict(run_id="f4", display_name="TRUE", tags=["ünï"], group="", job_type="train", notes=" pad ",
             config={"s": "1e5", "lr": 0.1}, summary={}),
    ]
    for i in range(5, 12):  # past the width sample (shrunk to 4 below) and over several spill batches
        runs.append(dict(run_id=f"f{i}", display_name="long-name-" + "w" * (10 * i), tags=[f"late{i % 3}"],
                         group="@late" if i % 2 else "grp", job_type="sweep", config={"lr": i / 7, f"k{i}": [i]},
                         summary={"acc": i * 1e300, "loss": -i}))
    for n, run in enumerate(runs):
        store.create_run("e", "p", state="finished", created_at=f"2024-03-01T00:00:{n:02d}Z", **run)
    return sandbox


def _in_memory_export(path: Path, shape: ExportShape, exported_at: str) -> None:
    """The export as runsync wrote it before streaming: every row and the whole base in memory, one write."""
    backend = connect("e/p")
    table = build_table(backend.iter_runs("e/p", with_summary=bool(shape.summary)), shape)
    meta = SheetMeta(project="e/p", selection=Selection().to_json(), exported_at=exported_at,
                     runsync_version=__version__, config_paths=table.config_paths, base=base_snapshot(table),
                     tag_columns=table.tag_vocabulary, editable_summary=list(shape.summary) if shape.edit_summary else [])
    write_sheet(path, table.columns, table.rows, meta)


def _members(path: Path) -> dict[str, bytes]:
    """Each zip member's content; the workbook's creation time (openpyxl's now) blanked."""
    with zipfile.ZipFile(path) as zf:
        out = {name: zf.read(name) for name in zf.namelist()}
    out["docProps/core.xml"] = re.sub(rb"(<dcterms:(created|modified)[^>]*>)[^<]*", rb"\1", out["docProps/core.xml"])
    return out


def _workbook(path: Path) -> dict[str, Any]:
    """Everything a person (or Excel) sees in the file, read with openpyxl: cells with their styles and notes,
    widths, frozen panes, the filter, drop-downs and input messages, which sheets are hidden."""
    wb = openpyxl.load_workbook(path)
    out: dict[str, Any] = {}
    for ws in wb.worksheets:
        out[ws.title] = {
            "state": ws.sheet_state,
            "cells": [(c.coordinate, c.value, c.data_type, c.number_format, c.quotePrefix, c.font.b, c.font.color and
                       c.font.color.rgb, c.fill.fgColor.rgb, c.comment and c.comment.text)
                      for row in ws.iter_rows() for c in row],
            "widths": {k: d.width for k, d in ws.column_dimensions.items()},
            "freeze": ws.freeze_panes, "filter": ws.auto_filter.ref,
            "validations": [(str(dv.sqref), dv.formula1, dv.prompt) for dv in ws.data_validations.dataValidation],
        }
    return out


def _exported_at(path: Path) -> str:
    if path.suffix == ".csv":
        return json.loads(Path(sidecar_path(str(path))).read_text(encoding="utf-8"))["exported_at"]
    with zipfile.ZipFile(path) as zf:
        hidden = zf.read("xl/worksheets/sheet2.xml").decode()
    found = re.search(r'"exported_at":"([^"]+)"', hidden)
    assert found, "no exported_at in the hidden sheet"
    return found.group(1)


@pytest.mark.parametrize("shape", [FULL, NARROW], ids=["tag-columns", "narrow"])
@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_the_streamed_export_writes_what_the_in_memory_export_wrote(awkward, tmp_path, monkeypatch, fmt, shape):
    monkeypatch.setattr(xlsx_write, "WIDTH_SAMPLE", 4)  # so that runs past the sample exist (f5: a wide name)
    monkeypatch.setattr(spill_module, "BATCH_ROWS", 3)  # so that the spill holds several batches
    streamed, reference = tmp_path / f"streamed.{fmt}", tmp_path / f"reference.{fmt}"
    result = runsync.export("e/p", streamed, shape=shape)
    _in_memory_export(reference, shape, _exported_at(streamed))
    assert result.runs == 11
    if fmt == "csv":
        assert streamed.read_bytes() == reference.read_bytes()
        assert Path(sidecar_path(str(streamed))).read_bytes() == Path(sidecar_path(str(reference))).read_bytes()
        with open(streamed, encoding="utf-8-sig", newline="") as fh:
            rows = {r["id"]: r for r in csv.DictReader(fh)}
        base = json.loads(Path(sidecar_path(str(streamed))).read_text(encoding="utf-8"))["base"]
        assert rows["f1"]["name"] == "'=1+1"  # guarded: a CSV opened in Excel runs no formula
    else:
        assert _members(streamed) == _members(reference)
        seen = _workbook(streamed)
        assert seen == _workbook(reference)
        ws = openpyxl.load_workbook(streamed)["runs"]
        header = [c.value for c in ws[1]]
        rows = {r[0]: dict(zip(header, r, strict=True)) for r in ws.iter_rows(min_row=2, values_only=True)}
        name = ws.cell(2, header.index("name") + 1)
        assert (name.value, name.data_type, name.quotePrefix) == ("=1+1", "s", True)  # text, never a formula
        assert seen["runs"]["widths"]["B"] < 60  # the wide names past the sample don't widen the column
        base = {}
    assert list(rows) == [f"f{i}" for i in range(1, 12)]
    if shape is FULL:
        assert header_of(rows) >= {"tag:日本語", "tag: edge ", "tag:late2", "config.a\\.b", "config.a.c\\.d",
                                   "config.ключ", "config.back\\\\slash", "summary.acc"}
        ticks = {rid: [t for t in ("tag:日本語", "tag:late0", "tag:ünï") if str(r[t]).upper() == "TRUE"]
                 for rid, r in rows.items()}
        assert ticks["f1"] == ["tag:日本語"] and ticks["f4"] == ["tag:ünï"] and ticks["f6"] == ["tag:late0"]
        assert rows["f2"]["config.tiny"] in (None, "")  # a key f2 lacks is an empty cell
        if fmt == "csv":
            assert rows["f2"]["config.only2"] == "_x0041_" and rows["f1"]["config.lr"] == "1e+308"
        else:
            assert rows["f1"]["config.lr"] == 1e308 and rows["f1"]["config.tiny"] == 5e-324
        if base:
            assert "config.tiny" not in base["f2"] and base["f3"]["config.lr"] == 12345678901234567
    else:
        assert header_of(rows) == {"id", "name", "tags", "group", "config.a.b", "config.a.c\\.d", "config.lr",
                                   "summary.acc"}  # --columns config.a: the keys under a, not the key "a.b"


def header_of(rows: dict[str, dict[str, Any]]) -> set[str]:
    return set(next(iter(rows.values())))


# --- bounded memory ----------------------------------------------------------------------------------------

def _export_peak(project: str, path: Path) -> int:
    """Peak bytes Python allocated during one export, above what was held before it."""
    gc.collect()
    tracemalloc.start()
    try:
        runsync.export(project, path, shape=FULL)
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


def test_the_export_holds_a_bounded_number_of_rows(sandbox, tmp_path, monkeypatch):
    # The writer remembers up to 100,000 texts' quote-prefix answers (~12 MB at most): bounded, but growing
    # over these few thousand runs; kept small here so that what is measured is what the export holds.
    monkeypatch.setattr(xlsx_write, "SPECIAL_MEMO", 100)
    # Pages grow 250, 500, then 1,000 runs, and a page is held while the next arrives: both listings end in
    # 1,000-run pages, so what grows between them is what the export keeps per run.
    small, large = 2_750, 3_750
    seed_project(sandbox.store, "e", "small", runs=small, seed=3)
    seed_project(sandbox.store, "e", "large", runs=large, seed=3)  # the same runs, and 1,000 more
    for name in ("small", "large"):  # imports, and the sandbox's cache of each project: not the export's
        runsync.export(f"e/{name}", tmp_path / f"warm-up-{name}.xlsx", shape=FULL)
    peaks = {n: _export_peak(f"e/{name}", tmp_path / f"{name}.xlsx") for n, name in ((small, "small"), (large, "large"))}
    per_run = (peaks[large] - peaks[small]) / (large - small)
    # Holding every row and its base costs ~4 KB a run with these 29 columns (runsync before streaming: 3.8 KB);
    # streamed, a few batches of rows and the listing's pages are held, whatever the number of runs.
    assert per_run < 250, f"{per_run:.0f} bytes a run more at {large} runs than at {small}: {peaks}"
    assert len(wandb.Api().runs("e/large", per_page=1000)) == large  # the large export was of every run
    sheet = openpyxl.load_workbook(tmp_path / "large.xlsx", read_only=True)["runs"]
    assert sum(1 for _ in sheet.iter_rows(min_row=2, max_col=1, values_only=True)) == large


# --- the spill leaves nothing behind --------------------------------------------------------------------

def _open_under(folder: Path) -> list[str]:
    """Files this process has open under `folder`, deleted ones included (an unnamed spill shows as such)."""
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(folder) + os.sep):
            out.append(target)
    return out


def test_a_refused_export_names_every_cell_and_leaves_no_spill(sandbox, tmp_path):
    store = sandbox.store
    store.create_run("e", "p", "ok1", notes="fine", created_at="2024-01-01T00:00:00Z")
    store.create_run("e", "p", "long1", notes="n" * 40_000, created_at="2024-01-01T00:00:01Z")
    store.create_run("e", "p", "ok2", created_at="2024-01-01T00:00:02Z")
    store.create_run("e", "p", "long2", config={"t": "é" * 33_000}, created_at="2024-01-01T00:00:03Z")
    out = tmp_path / "out"
    out.mkdir()
    during: list[list[str]] = []
    with pytest.raises(RunsyncError) as refused:
        runsync.export("e/p", out / "runs.xlsx", on_run=lambda: during.append(_open_under(out)))
    message = refused.value.message
    assert "2 cells too long for XLSX" in message
    assert "run long1: column 'notes': 40,000 characters" in message
    assert "run long2: column 'config.t': 33,000 characters" in message
    assert all(len(files) == 1 for files in during), during  # the spill, beside the output, while runs arrive
    assert _open_under(out) == [] and list(out.iterdir()) == []
    runsync.export("e/p", out / "runs.csv")  # CSV holds them; the spill goes after a success too
    assert _open_under(out) == [] and sorted(p.name for p in out.iterdir()) == ["runs.csv", "runs.csv.runsync.json"]


def test_ctrl_c_during_an_export_leaves_no_spill(seeded_sandbox, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    arrived: list[list[str]] = []

    def interrupt() -> None:
        arrived.append(_open_under(out))
        if len(arrived) == 20:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        runsync.export("e/p", out / "runs.xlsx", shape=FULL, on_run=interrupt)
    assert len(arrived) == 20 and len(arrived[-1]) == 1
    assert _open_under(out) == [] and list(out.iterdir()) == []
