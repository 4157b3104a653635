"""The committed sample sheets import against the demo project as the README says."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import wandb
from helpers import invoke

from runsync.demo import DEMO_NEW_GROUP, DEMO_NEW_TAG, FIXED, TYPO

SAMPLES = Path(__file__).resolve().parent.parent / "sample_sheets"


@pytest.fixture
def demo_sandbox(sandbox):
    from runsync.sandbox import seed_demo

    entity, project = seed_demo(sandbox.store)
    return f"{entity}/{project}"


def _copy(name: str, tmp_path: Path) -> Path:
    for path in SAMPLES.glob(name + "*"):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path / name


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_sample_export_plans_nothing(demo_sandbox, tmp_path, fmt):
    doc = json.loads(invoke("import", _copy(f"runs.{fmt}", tmp_path), "--dry-run", "--format", "json").stdout)
    assert doc["project"] == demo_sandbox
    assert doc["summary"] == {"runs": 0, "fields": 0, "conflicts": 0, "errors": 0}


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_sample_edits_import(demo_sandbox, sandbox, tmp_path, fmt):
    api = wandb.Api()
    before = {r.id: r for r in api.runs(demo_sandbox, lazy=False)}
    typos = {rid for rid, r in before.items() if r.config.get("optimizer") == TYPO}
    sheet = _copy(f"runs-edited.{fmt}", tmp_path)
    doc = json.loads(invoke("import", sheet, "--dry-run", "--format", "json").stdout)
    changes = {(c["run_id"], c["field"]): (c["old"], c["new"]) for c in doc["changes"]}
    assert {k for k, (_, new) in changes.items() if new == FIXED} == {(rid, "config.optimizer") for rid in typos}
    assert sum(1 for (_, field), (_, new) in changes.items() if field == "group" and new == DEMO_NEW_GROUP) == 1
    assert sum(1 for (_, field), (_, new) in changes.items() if field == "tags" and DEMO_NEW_TAG in new) == 1
    assert len(changes) == len(typos) + 2
    sandbox.reset_stats()
    invoke("import", sheet, "--yes")
    assert sandbox.stats()["mutations"] == len({run_id for run_id, _ in changes})
    after = {r.id: r for r in wandb.Api().runs(demo_sandbox, lazy=False)}
    for (run_id, field), (_, new) in changes.items():
        got = after[run_id].config[field.split(".", 1)[1]] if field.startswith("config.") else getattr(after[run_id], field)
        assert got == new
    for run_id, run in before.items():
        if not any(rid == run_id for rid, _ in changes):
            assert (after[run_id].name, after[run_id].tags, after[run_id].group, dict(after[run_id].config)) == (
                run.name, run.tags, run.group, dict(run.config))


def test_sample_plan_report_matches_the_plan(demo_sandbox, tmp_path):
    """sample_sheets/plan-report.* is the report of runs-edited.xlsx: every planned change marked, nothing else."""
    from html.parser import HTMLParser

    import openpyxl

    doc = json.loads(invoke("import", _copy("runs-edited.xlsx", tmp_path), "--dry-run", "--format", "json").stdout)
    planned = {(c["run_id"], c["field"]) for c in doc["changes"]}
    book = openpyxl.load_workbook(SAMPLES / "plan-report.xlsx")
    assert book.sheetnames == ["Plan", "runs"]
    ws = book["runs"]
    header = [c.value for c in ws[1]]
    marked = {(row[0].value, header[c.column - 1]) for row in ws.iter_rows(min_row=2) for c in row if c.comment}
    assert marked == planned
    class Page(HTMLParser):
        links: list[tuple[str, str]] = []
        changes = scripts = 0

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            assert tag not in ("img", "link", "iframe") and "src" not in a  # nothing fetched
            self.scripts += tag == "script"
            self.changes += tag == "td" and a.get("class") == "change"
            if tag == "a":
                self.links.append(a["href"])

    page = Page()
    page.feed((SAMPLES / "plan-report.html").read_text(encoding="utf-8"))
    assert {href.rsplit("/", 1)[1] for href in page.links} == {run_id for run_id, _ in planned}
    assert page.changes == len(planned) and page.scripts == 1  # the inline filter/sort script, nothing else
