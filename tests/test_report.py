"""Plan reports (issue 12 §3): an XLSX copy of the sheet with changes marked, an HTML page, Plan.to_frame.

Oracles are independent of runsync's readers: openpyxl for the workbook, LibreOffice for a re-save,
html.parser for the page, and wandb.Api() for the runs' URLs.
"""
from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import openpyxl
import pytest
import wandb
from helpers import invoke

import runsync

HOSTILE = '<script>alert("x")</script> & <b>'
CHANGE_FILL, CONFLICT_FILL, ERROR_FILL = "FFFFEB9C", "FFFFC7CE", "FFE4DFEC"
# What a person types into the sheet: (run, column) -> new text. Formula-like text must stay text.
EDITS = {
    ("r1", "name"): HOSTILE,
    ("r1", "config.lr"): 0.5,
    ("r2", "group"): "=1+1",
    ("r2", "notes"): "@user -x",
    ("r3", "config.lr"): 9.0,  # running: skipped
    ("r4", "group"): "+sheet",  # conflict: W&B's group moved too
    ("r6", "tags"): "a, new",
}


@pytest.fixture
def world(sandbox, tmp_path):
    store = sandbox.store
    store.create_run("e", "p", "r1", display_name="one", group="g1", job_type="train", config={"lr": 0.1})
    store.create_run("e", "p", "r2", display_name=HOSTILE, group="g2", notes="old note", config={"lr": 0.2})
    store.create_run("e", "p", "r3", display_name="live", state="running", config={"lr": 0.3})
    store.create_run("e", "p", "r4", display_name="four", group="g1", config={"lr": 0.4})
    store.create_run("e", "p", "r5", display_name="untouched", group="=SUM(A1)", config={"lr": 0.5})
    store.create_run("e", "p", "r6", display_name="six", tags=["a"], config={"lr": 0.6})
    sheet = tmp_path / "runs.xlsx"
    invoke("export", "e/p", "-o", sheet)
    type_into(sheet, EDITS)
    store.upsert({"id": store.find_run("e", "p", "r4").storage_id, "groupName": "moved-in-wandb"})
    return sheet


def type_into(path: Path, edits: dict[tuple[str, str], object]) -> None:
    """Set cells as a person typing text would (a string stays a text cell, even "=1+1")."""
    book = openpyxl.load_workbook(path)
    ws = book["runs"]
    header = [c.value for c in ws[1]]
    rows = {ws.cell(r, 1).value: r for r in range(2, ws.max_row + 1)}
    for (run_id, column), value in edits.items():
        cell = ws.cell(rows[run_id], header.index(column) + 1)
        cell.value = value
        if isinstance(value, str):
            cell.data_type = "s"
    book.save(path)


def cells_by_run(ws) -> tuple[list[str], dict[str, dict[str, openpyxl.cell.Cell]]]:
    header = [c.value for c in ws[1]]
    return header, {row[0].value: dict(zip(header, row)) for row in ws.iter_rows(min_row=2) if row[0].value}


def fill(cell) -> str | None:
    return cell.fill.fgColor.rgb if cell.fill is not None and cell.fill.fill_type == "solid" else None


def check_xlsx_report(path: Path, urls: dict[str, str]) -> None:
    book = openpyxl.load_workbook(path)
    assert book.sheetnames[0] == "Plan" and "runs" in book.sheetnames
    summary = {row[0]: row[1] for row in book["Plan"].iter_rows(values_only=True) if row and row[0]}
    assert summary["project"] == "e/p"
    assert summary["result"] == "Plan: 3 runs, 5 fields to change, 1 conflict."
    assert (summary["fields to change"], summary["conflicts"], summary["skipped runs"]) == (5, 1, 1)
    plan_rows = list(book["Plan"].iter_rows(values_only=True))
    skipped = [r for r in plan_rows if r[0] == "r3"]
    assert skipped and "still running" in skipped[-1][2]
    links = {c.value: c.hyperlink.target for row in book["Plan"].iter_rows() for c in row if c.hyperlink}
    assert links == {rid: urls[rid] for rid in ("r1", "r2", "r3", "r4", "r6")}

    header, runs = cells_by_run(book["runs"])
    assert header[:6] == ["id", "name", "tags", "group", "job_type", "notes"]
    assert set(runs) == {"r1", "r2", "r3", "r4", "r5", "r6"}
    marked = {(rid, col): (fill(c), c.comment.text if c.comment else None)
              for rid, row in runs.items() for col, c in row.items() if fill(c) or c.comment}
    assert marked[("r1", "name")] == (CHANGE_FILL, 'was "one" in W&B')
    assert marked[("r1", "config.lr")] == (CHANGE_FILL, "was 0.1 in W&B")
    assert marked[("r2", "group")] == (CHANGE_FILL, 'was "g2" in W&B')
    assert marked[("r2", "notes")] == (CHANGE_FILL, 'was "old note" in W&B')
    assert marked[("r6", "tags")] == (CHANGE_FILL, "was [a] in W&B")
    conflict_fill, conflict_note = marked[("r4", "group")]
    assert conflict_fill == CONFLICT_FILL and '"moved-in-wandb"' in conflict_note and '"g1"' in conflict_note
    assert marked[("r3", "id")][0] is None and "still running" in marked[("r3", "id")][1]
    assert len(marked) == 7  # nothing else: untouched cells keep no fill and no comment
    # The cells hold what the sheet holds, as text where it was text: never a formula.
    assert runs["r1"]["name"].value == HOSTILE
    for rid, column, text in (("r2", "group", "=1+1"), ("r2", "notes", "@user -x"), ("r5", "group", "=SUM(A1)"),
                              ("r4", "group", "+sheet")):
        assert (runs[rid][column].value, runs[rid][column].data_type) == (text, "s")
    for ws in book.worksheets:
        formulas = [c.coordinate for row in ws.iter_rows() for c in row if c.data_type == "f"]
        assert formulas == [], ws.title


def run_urls() -> dict[str, str]:
    return {r.id: r.url for r in wandb.Api().runs("e/p")}


def test_xlsx_report_marks_changes_and_conflicts(world, tmp_path):
    report = tmp_path / "plan.xlsx"
    result = invoke("import", world, "--dry-run", "--report", report, exit_code=1)  # a conflict: exit 1
    assert f"Report: {report}" in result.stderr
    check_xlsx_report(report, run_urls())


@pytest.mark.libreoffice
def test_xlsx_report_survives_libreoffice(world, tmp_path):
    import libreoffice as lo

    report = tmp_path / "plan.xlsx"
    invoke("import", world, "--dry-run", "--report", report, exit_code=1)
    resaved = lo.convert([report], tmp_path / "lo", "xlsx")[0]
    check_xlsx_report(resaved, run_urls())


class Page(HTMLParser):
    """What a browser would show and load: text, tags, link targets, anything that fetches or runs."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []
        self.links: dict[str, str] = {}
        self.fetches: list[tuple[str, str]] = []
        self.scripts: list[str] = []  # the text of each inline <script> (one with src= is a fetch)
        self.cells: list[tuple[str, str]] = []  # (class, text) of each marked <td>
        self._href: str | None = None
        self._td: list[object] | None = None
        self._script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        a = dict(attrs)
        for key in ("src", "srcset", "data", "action"):
            if key in a:
                self.fetches.append((tag, key))
        if any(k.startswith("on") for k in a) or tag in ("link", "iframe", "img", "object", "embed"):
            self.fetches.append((tag, "active"))
        if tag == "script":
            self.scripts.append("")
            self._script = True
        if tag == "a":
            self._href = a.get("href")
        if tag == "td" and a.get("class"):
            self._td = [a["class"], ""]

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script = False
        if tag == "td" and self._td is not None:
            self.cells.append((self._td[0], self._td[1]))
            self._td = None

    def handle_data(self, data: str) -> None:
        if self._script:
            self.scripts[-1] += data
            return
        self.text.append(data)
        if self._href is not None:
            self.links[data] = self._href
            self._href = None
        if self._td is not None:
            self._td[1] += data


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


def test_html_report_is_self_contained_and_escaped(world, tmp_path):
    report = tmp_path / "plan.html"
    invoke("import", world, "--dry-run", "--report", report, exit_code=1)
    html = report.read_text(encoding="utf-8")
    page = parse(html)
    assert page.fetches == []  # no images, stylesheets, frames or script files: nothing is fetched
    assert len(page.scripts) == 1 and "b" not in page.tags  # the filter/sort script only: the hostile name is text
    assert not re.search(r"fetch|XMLHttpRequest|WebSocket|import|src|http|//\w|\.(com|net|org)\b", page.scripts[0])
    text = "".join(page.text)
    assert HOSTILE in text  # the run name and the new name, shown as text
    urls = run_urls()
    assert page.links == {rid: urls[rid] for rid in ("r1", "r2", "r3", "r4", "r6")}
    assert [c for c, _ in page.cells].count("change") == 5 and [c for c, _ in page.cells].count("conflict") == 1
    conflict = next(t for c, t in page.cells if c == "conflict")
    assert "! conflict" in conflict and '"moved-in-wandb"' in conflict and '"+sheet"' in conflict
    changes = {t for c, t in page.cells if c == "change"}
    assert f'"one" → {json.dumps(HOSTILE)}' in changes and '"g2" → "=1+1"' in changes, changes
    assert "still running" in text and "Plan: 3 runs, 5 fields to change, 1 conflict." in text


@pytest.mark.chromium
def test_html_report_of_a_sandbox_plan_filters_and_sorts_in_chromium(world, tmp_path):
    from chromium import dump_dom, parse_dom

    report = tmp_path / "plan.html"
    invoke("import", world, "--dry-run", "--report", report, exit_code=1)
    dom = parse_dom(dump_dom(report))
    assert sorted(dom.rows) == [("r1", False), ("r2", False), ("r4", False), ("r6", False)]
    assert [t for t, _ in dom.tags].count("script") == 1 and HOSTILE in dom.by_id["runsync-runs"]
    assert {a["href"] for t, a in dom.tags if t == "a"} == set(run_urls().values()) - {run_urls()["r5"]}
    for fragment, shown in (("filter=moved-in-WANDB", ["r4"]),  # W&B's value in the conflict cell
                            ("filter=%3CSCRIPT%3Ealert", ["r1", "r2"]),  # r1's new name, r2's run name
                            ("sort=run&order=desc", ["r6", "r4", "r2", "r1"]),
                            ("sort=config.lr&order=desc", ["r1"])):  # only r1 changes lr; the rest sort after it
        rows = parse_dom(dump_dom(report, fragment)).rows
        visible = [r for r, hidden in rows if not hidden]
        assert (visible if fragment.startswith("filter") else visible[:len(shown)]) == shown, fragment


def test_plan_to_frame_and_notebook_view(world):
    plan = runsync.plan(world)
    df = plan.to_frame()
    assert list(df.columns) == ["run_id", "run_name", "field", "old", "new", "kind", "reason"]
    rows = {(r.run_id, r.field): (r.old, r.new, r.kind) for r in df.itertuples()}
    assert rows == {
        ("r1", "name"): ("one", HOSTILE, "change"),
        ("r1", "config.lr"): (0.1, 0.5, "change"),
        ("r2", "group"): ("g2", "=1+1", "change"),
        ("r2", "notes"): ("old note", "@user -x", "change"),
        ("r6", "tags"): (["a"], ["a", "new"], "change"),
        ("r4", "group"): ("moved-in-wandb", "+sheet", "conflict"),
        ("r3", None): (None, None, "skipped"),
    }
    assert "still running" in df.loc[df.kind == "skipped", "reason"].item()
    page = parse(plan._repr_html_())
    assert page.fetches == [] and page.scripts == [] and HOSTILE in "".join(page.text)  # a notebook runs no script
    assert [c for c, _ in page.cells].count("change") == 5


def test_notebook_view_is_capped_and_errors_are_shown(world, tmp_path):
    from runsync.report import write_report
    from runsync.report.html import plan_html

    plan = runsync.plan(world)
    page = parse(plan_html(plan, max_runs=1))
    assert "… and 3 more runs" in "".join(page.text)
    book = openpyxl.load_workbook(world)
    ws = book["runs"]
    header = [c.value for c in ws[1]]
    ws.cell(6, header.index("config.lr") + 1).value = "=1/0"  # r5: a real formula, which the import refuses
    book.save(world)
    plan = runsync.plan(world)
    frame = plan.to_frame()
    assert sorted(frame.kind) == ["error", "skipped"]  # an invalid sheet plans no changes
    error = frame[frame.kind == "error"].iloc[0]
    assert (error.run_id, error.field, error.new) == ("r5", "config.lr", "=1/0") and "row 6: formula" in error.reason
    report = tmp_path / "errors.xlsx"
    write_report(plan, str(report), sheet=runsync.read(world))
    cell = openpyxl.load_workbook(report)["runs"].cell(6, header.index("config.lr") + 1)
    assert (cell.value, cell.data_type, fill(cell)) == ("=1/0", "s", ERROR_FILL) and "formula" in cell.comment.text


def test_undo_report(world, tmp_path):
    invoke("import", world, "--yes", "--force")
    journal = next((tmp_path / "runs.xlsx.runsync-journals").glob("*.jsonl"))
    xlsx, html = tmp_path / "undo.xlsx", tmp_path / "undo.html"
    invoke("undo", journal, "--dry-run", "--report", xlsx)
    invoke("undo", journal, "--dry-run", "--report", html)
    book = openpyxl.load_workbook(xlsx)
    assert book.sheetnames == ["Plan", "runs"]
    header, runs = cells_by_run(book["runs"])
    assert header[:2] == ["id", "run name"]
    assert set(runs) == {"r1", "r2", "r4", "r6"}
    name = runs["r1"]["name"]
    assert (name.value, fill(name), name.comment.text) == ('"one"', CHANGE_FILL, f"was {json.dumps(HOSTILE)} in W&B")
    group = runs["r2"]["group"]
    assert (group.value, group.data_type, group.comment.text) == ('"g2"', "s", 'was "=1+1" in W&B')
    page = parse(html.read_text(encoding="utf-8"))
    assert page.fetches == [] and set(page.links) == {"r1", "r2", "r4", "r6"}
    assert HOSTILE in "".join(page.text)


@pytest.mark.parametrize("name", ["plan.pdf", "plan", "plan.csv"])
def test_report_needs_a_known_extension(world, tmp_path, name):
    result = invoke("import", world, "--dry-run", "--report", tmp_path / name, exit_code=2)  # `runsync` exits 1
    assert ".xlsx or .html" in result.stderr
    assert not (tmp_path / name).exists()


def test_html_report_opens_with_the_roll_up_and_does_not_strike_a_conflicts_wandb_value():
    from runsync.model import Action, Change, Plan
    from runsync.report.html import plan_html

    changes = tuple(Change(f"r{i}", None, "group", "a", "süd <b>", "a", Action.UPDATE) for i in range(3))
    conflict = Change("rx", None, "config.lr", 0.1, 0.5, 0.25, Action.CONFLICT, ("lr",))
    html = plan_html(Plan("e/p", "s.xlsx", changes, (conflict,), ()))
    assert "By field (3 runs)" in html and html.index("By field") < html.index("<th>run</th>")
    assert "group: &quot;a&quot; → &quot;süd &lt;b&gt;&quot; in 3 runs" in html
    cell = re.search(r'<td class="conflict".*?</td>', html, re.S).group()
    assert "<del>" not in cell and "<ins>" not in cell  # a conflict writes nothing: neither side is struck or new
    assert "W&amp;B now: 0.25" in cell and "sheet: 0.5" in cell
