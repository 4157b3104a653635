"""The HTML report in a real headless Chromium (issue 18 §3): a 5,000-run plan, filtered and sorted by its
inline script (from the URL's #fragment, and by typing and clicking), fast, and whole without JavaScript.

The plan is plain data (runsync.model), so the oracle is the data itself: which runs hold the filtered text,
and their values sorted in Python. Chromium's DOM is read back with html.parser (tests/chromium.py).
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs

import pytest
from chromium import dump_dom, parse_dom

from runsync.model import Action, Change, Plan
from runsync.report.html import write_report_html

pytestmark = pytest.mark.chromium
N = 5000
GROUPS = ("alpha", "Beta", "Délta <b>", "gamma")  # as a person sorts them, not by code point ("B" < "a")
NOTE = "Süd & <co>"


def lr(i: int) -> float | int | None:
    """Run i's new config.lr: negative, fractional, whole, tiny and huge, so text order is not number order."""
    if i % 13 == 12:
        return None  # no change: an empty cell, sorted last either way
    if i % 97 == 0:
        return i * 1e-7
    if i % 89 == 0:
        return 1e20 + i * 1e15
    v = ((i * 7919) % 2001 - 1000) / 4
    return int(v) if i % 3 == 0 else v


def name(i: int) -> str:
    return f"ΣIGMA-{i}" if i % 500 == 0 else f"quiet-{i}"


def big_plan() -> Plan:
    changes, conflicts = [], []
    for i in range(N):
        rid = f"r{i}"
        if i % 5 < 4:
            changes.append(Change(rid, name(i), "group", "old", GROUPS[i % 5], "old", Action.UPDATE))
        if i % 7 == 0:
            changes.append(Change(rid, name(i), "notes", "", NOTE, "", Action.UPDATE))
        if (v := lr(i)) is not None:
            if i % 11 == 0:  # W&B moved too: a conflict, whose cell sorts by the sheet's value
                conflicts.append(Change(rid, name(i), "config.lr", 0.1, v, 0.25, Action.CONFLICT, ("lr",)))
            else:
                changes.append(Change(rid, name(i), "config.lr", 0.1, v, 0.1, Action.UPDATE, ("lr",)))
        if i % 5 == 4 and i % 7 and lr(i) is None:
            changes.append(Change(rid, name(i), "job_type", "a", "b", "a", Action.UPDATE))  # every run changes
    return Plan("e/p", "runs.xlsx", tuple(changes), tuple(conflicts), ())


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("browser") / "plan.html"
    write_report_html(big_plan(), str(path))
    return path


@pytest.fixture(scope="module")
def plain_order(report) -> list[str]:
    """The rows as the page has them with scripts off: every run, none hidden, no filter box."""
    dom = parse_dom(dump_dom(report, scripts=False))
    assert len(dom.rows) == N and not any(hidden for _, hidden in dom.rows)
    assert not [t for t, _ in dom.tags if t == "input"]
    return [rid for rid, _ in dom.rows]


def shown(dom) -> list[str]:
    return [rid for rid, hidden in dom.rows if not hidden]


def by_lr(order: list[str], *, desc: bool) -> list[str]:
    """Runs with a config.lr by value (ties in page order), then the rest in page order."""
    with_lr = [r for r in order if lr(int(r[1:])) is not None]
    ranked = sorted(with_lr, key=lambda r: lr(int(r[1:])) * (-1 if desc else 1))
    return ranked + [r for r in order if lr(int(r[1:])) is None]


def test_the_page_without_javascript_lists_every_run(plain_order):
    assert sorted(plain_order) == sorted(f"r{i}" for i in range(N))


@pytest.mark.parametrize(("fragment", "expected"), [
    ("filter=S%C3%9CD%20%26%20%3CCO", lambda i: i % 7 == 0),  # "SÜD & <CO": case-insensitive, the text as shown
    ("filter=%CF%83igma", lambda i: i % 500 == 0),  # "σigma" finds the run names "ΣIGMA-…"
    ("filter=no%20such%20run", lambda i: False),
    ("filter=", lambda i: True),
])
def test_a_filter_in_the_url_shows_only_the_runs_holding_that_text(report, plain_order, fragment, expected):
    dom = parse_dom(dump_dom(report, fragment))
    assert shown(dom) == [r for r in plain_order if expected(int(r[1:]))]
    assert len(dom.rows) == N  # hidden, not removed
    count = sum(expected(i) for i in range(N))
    assert dom.by_id["runsync-count"].strip() == f"{count:,} of {N:,} runs shown"


@pytest.mark.parametrize("desc", [False, True])
def test_a_sort_in_the_url_orders_numbers_as_numbers(report, plain_order, desc):
    dom = parse_dom(dump_dom(report, "sort=config.lr" + ("&order=desc" if desc else "")))
    assert shown(dom) == by_lr(plain_order, desc=desc)


def test_text_sorts_as_a_person_reads_it(report, plain_order):
    dom = parse_dom(dump_dom(report, "sort=group"))
    groups = [GROUPS[int(r[1:]) % 5] if int(r[1:]) % 5 < 4 else None for r in shown(dom)]
    firsts = [g for k, g in enumerate(groups) if k == 0 or g != groups[k - 1]]
    assert firsts == ["alpha", "Beta", "Délta <b>", "gamma", None]  # each value once, in order, empties last


# Types into the filter box and clicks a header as a person would, timing each step to the next layout, and
# records the outcome (and the URL the page now shows) in an element the test reads back.
DRIVER = """<script>
(function () {
  var out = {}, box = document.querySelector("input[type=search]");
  function timed(key, act) { var t = performance.now(); act(); document.body.offsetHeight; out[key] = performance.now() - t; }
  var th = Array.prototype.find.call(document.querySelectorAll("#runsync-runs thead th"),
                                     function (h) { return h.textContent.trim() === "config.lr"; });
  timed("sort_ms", function () { th.click(); });
  timed("resort_ms", function () { th.click(); });
  timed("filter_ms", function () { box.value = "ΣIGMA"; box.dispatchEvent(new Event("input", {bubbles: true})); });
  timed("clear_ms", function () { box.value = ""; box.dispatchEvent(new Event("input", {bubbles: true})); });
  box.value = "ΣIGMA"; box.dispatchEvent(new Event("input", {bubbles: true}));
  out.hash = location.hash; out.aria = th.getAttribute("aria-sort");
  var p = document.createElement("pre"); p.id = "driver"; p.textContent = JSON.stringify(out); document.body.append(p);
})();
</script></body>"""


def test_typing_and_clicking_filter_and_sort_quickly_and_the_url_shares_the_view(report, plain_order, tmp_path):
    import json

    driven = tmp_path / "driven.html"
    driven.write_text(report.read_text(encoding="utf-8").replace("</body>", DRIVER), encoding="utf-8")
    dom = parse_dom(dump_dom(driven))
    out = json.loads(dom.by_id["driver"])
    sigma = [r for r in by_lr(plain_order, desc=True) if int(r[1:]) % 500 == 0]
    assert shown(dom) == sigma and out["aria"] == "descending"
    for step in ("sort_ms", "resort_ms", "filter_ms", "clear_ms"):
        # Each step lays the whole table out again (about what opening the page costs): well under a second
        # on a laptop, a few on a 2-core machine under load; a row-by-row DOM sort would take minutes.
        assert out[step] < 5000, out
    assert parse_qs(out["hash"][1:]) == {"filter": ["ΣIGMA"], "sort": ["config.lr"], "order": ["desc"]}
    shared = parse_dom(dump_dom(report, out["hash"][1:]))  # the URL, opened elsewhere, shows the same view
    assert shown(shared) == sigma
