"""The HTML report's one inline script: a filter box and column sort for the runs table (README "Reviewing a plan").

Static text, no data in it (so nothing from a sheet can end up as code), nothing fetched. The page is whole
without it: the script only adds the box and makes headers clickable. The view lives in the URL's #fragment
(`#filter=TEXT&sort=FIELD&order=desc`), read on load and kept up to date, so a URL shares a view.
Fast at 5,000 runs: row texts and sort keys are read once, rows are hidden (not removed) or re-appended in one go.
"""
from __future__ import annotations

TABLE_ID = "runsync-runs"
COUNT_ID = "runsync-count"

SCRIPT = """
(function () {
  "use strict";
  var table = document.getElementById("%(table)s");
  if (!table || !table.tBodies.length || !table.tHead) return;
  var body = table.tBodies[0], heads = Array.prototype.slice.call(table.tHead.rows[0].cells);
  var rows = Array.prototype.slice.call(body.rows), texts = null, keys = {};
  var view = {filter: "", sort: null, desc: false};
  var NUMBER = /^[-+]?(\\d+\\.?\\d*|\\.\\d+)(e[-+]?\\d+)?$/i;
  var collator = new Intl.Collator(undefined, {numeric: true});

  function grouped(n) { return String(n).replace(/\\B(?=(\\d{3})+(?!\\d))/g, ","); }
  var box = document.createElement("input");
  box.type = "search"; box.placeholder = "Filter runs: any text"; box.setAttribute("aria-label", "Filter runs");
  box.size = 40;
  var count = document.createElement("span");
  count.id = "%(count)s";
  var bar = document.createElement("p");
  bar.className = "filter";
  bar.appendChild(box); bar.appendChild(document.createTextNode(" ")); bar.appendChild(count);
  table.parentNode.insertBefore(bar, table);

  function filter(text) {
    view.filter = text;
    var q = text.toLowerCase(), n = 0;
    if (!texts) texts = rows.map(function (r) { return r.textContent.toLowerCase(); });
    for (var i = 0; i < rows.length; i++) {
      var show = texts[i].indexOf(q) >= 0;
      if (rows[i].hidden === show) rows[i].hidden = !show;
      if (show) n++;
    }
    count.textContent = grouped(n) + " of " + grouped(rows.length) + " runs shown";
  }

  // A cell's key: its data-v (the value to be written, as plain text) or its text; numbers compare as numbers,
  // before text; an empty cell (the run does not change that field) sorts last either way.
  function keyOf(cell) {
    var v = cell ? cell.getAttribute("data-v") : null;
    if (v === null) v = cell ? cell.textContent.trim() : "";
    if (v === "") return [2, 0];
    return NUMBER.test(v) && isFinite(Number(v)) ? [0, Number(v)] : [1, v];
  }
  function sort(col, desc) {
    view.sort = col; view.desc = desc;
    var k = keys[col] || (keys[col] = rows.map(function (r) { return keyOf(r.cells[col]); }));
    var order = rows.map(function (_, i) { return i; });
    order.sort(function (a, b) {
      var x = k[a], y = k[b], c = x[0] - y[0];
      if (c === 0 && x[0] !== 2) {
        c = x[0] === 0 ? (x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0) : collator.compare(x[1], y[1]);
        if (desc) c = -c;
      }
      return c || a - b;  // ties keep the page's order
    });
    var frag = document.createDocumentFragment();
    for (var i = 0; i < order.length; i++) frag.appendChild(rows[order[i]]);
    body.appendChild(frag);
    heads.forEach(function (h, i) {
      h.setAttribute("aria-sort", i === col ? (desc ? "descending" : "ascending") : "none");
    });
  }

  function save() {
    var p = new URLSearchParams();
    if (view.filter) p.set("filter", view.filter);
    if (view.sort !== null) {
      p.set("sort", heads[view.sort].textContent.trim());
      if (view.desc) p.set("order", "desc");
    }
    var hash = p.toString();
    try { history.replaceState(null, "", hash ? "#" + hash : location.pathname + location.search); } catch (e) {}
  }
  function load() {
    var p = new URLSearchParams(location.hash.slice(1));
    var text = p.get("filter") || "";
    box.value = text;
    filter(text);
    var name = p.get("sort");
    var col = heads.map(function (h) { return h.textContent.trim(); }).indexOf(name);
    if (col >= 0) sort(col, p.get("order") === "desc");
  }

  heads.forEach(function (h, i) {
    h.tabIndex = 0;
    h.title = "Sort by " + h.textContent.trim();
    h.setAttribute("aria-sort", "none");
    function click() { sort(i, view.sort === i && !view.desc); save(); }
    h.addEventListener("click", click);
    h.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); click(); }
    });
  });
  box.addEventListener("input", function () { filter(box.value); save(); });
  window.addEventListener("hashchange", load);
  load();
})();
""" % {"table": TABLE_ID, "count": COUNT_ID}  # noqa: UP031  (the script's own braces stay as they are)
