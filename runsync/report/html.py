"""A plan as one self-contained HTML page (inline CSS and script, no network) and as a notebook table."""
from __future__ import annotations

import html
from datetime import datetime, timezone

from runsync.model import Plan
from runsync.report.common import (
    CONFLICT,
    Cell,
    counts,
    run_table,
    run_url,
    skip_reason,
    summary_line,
)
from runsync.report.rollup import rollup_lines
from runsync.report.table_script import SCRIPT, TABLE_ID
from runsync.report.text import ARROW, show
from runsync.words import counted

# Scoped to .runsync-plan, so a notebook's own styles are left alone.
CSS = """
.runsync-plan { font-family: system-ui, sans-serif; font-size: 14px; }
.runsync-plan table { border-collapse: collapse; margin: 0.5em 0 1.2em; }
.runsync-plan th, .runsync-plan td { border: 1px solid #ccc; padding: 3px 6px; text-align: left;
  vertical-align: top; white-space: pre-wrap; }
.runsync-plan thead th { background: #eee; }
.runsync-plan td.change { background: #ffeb9c; }
.runsync-plan td.conflict { background: #ffc7ce; }
.runsync-plan del { color: #9c0006; }
.runsync-plan ins { color: #006100; text-decoration: none; font-weight: 600; }
.runsync-plan .mark { font-weight: 700; color: #9c0006; }
.runsync-plan .legend span { padding: 1px 6px; margin-right: 1em; }
.runsync-plan th[aria-sort] { cursor: pointer; }
.runsync-plan th[aria-sort="ascending"]::after { content: " \\25B2"; }
.runsync-plan th[aria-sort="descending"]::after { content: " \\25BC"; }
"""


def e(text: object) -> str:
    """Text as HTML, quotes included (safe in element text and attribute values)."""
    return html.escape(str(text), quote=True)


def _run_cell(plan: Plan, run_id: str, name: str | None = None) -> str:
    """The run's id, linked to its W&B page, and its name under it."""
    url = run_url(plan, run_id)
    cell = f'<a href="{e(url)}">{e(run_id)}</a>' if url else e(run_id)
    return cell + (f"<br><small>{e(name)}</small>" if name else "")


def sort_value(value: object) -> str:
    """What a column sorts a cell by: the value to be written, a string as itself, a number as JSON."""
    return value if isinstance(value, str) else show(value)


def _change_cell(cell: Cell | None) -> str:
    if cell is None or cell.change is None:
        return "<td></td>"
    c = cell.change
    attrs = f'title="{e(cell.text)}" data-v="{e(sort_value(c.sheet))}"'
    if cell.kind == CONFLICT:
        return (f'<td class="conflict" {attrs}><span class="mark">! conflict</span>\n'
                f"at export: {e(show(c.base))}\nW&amp;B now: {e(show(c.live))}\n"
                f"sheet: {e(show(c.sheet))}</td>")  # nothing is written: neither value is struck out or new
    return (f'<td class="change" {attrs}><del>{e(show(c.live))}</del> {ARROW} '
            f"<ins>{e(show(c.sheet))}</ins></td>")


def _table(title: str, header: list[str], rows: list[list[str]], *, head_cell: bool = True) -> str:
    """A titled table of HTML-ready cells; the first cell of a row is a row header unless `head_cell` is off."""
    body = "".join("<tr>" + "".join(f"<th>{c}</th>" if i == 0 and head_cell else f"<td>{c}</td>"
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    return (f"<h3>{title}</h3><table><thead><tr>" + "".join(f"<th>{h}</th>" for h in header)
            + f"</tr></thead><tbody>{body}</tbody></table>")


def plan_html(plan: Plan, *, max_runs: int | None = None, style: bool = True) -> str:
    """The plan as an HTML fragment: summary, runs × changed fields (old → new), then the rest."""
    fields, runs = run_table(plan)
    out = ['<div class="runsync-plan">' + (f"<style>{CSS}</style>" if style else ""),
           f"<p><strong>{e(summary_line(plan))}</strong> Project {e(plan.project)}, from {e(plan.source)}"
           f"{'' if plan.three_way else ' (2-way: conflicts cannot be detected)'}.</p>"]
    if rollup := rollup_lines(plan, show):  # what the plan does per field, before the run-by-run table
        out.append(f"<h3>By field ({e(counted(len(plan.run_ids), 'run'))})</h3><ul>"
                   + "".join(f"<li>{e(line)}</li>" for line in rollup) + "</ul>")
    if runs:
        out.append('<p class="legend"><span class="change" style="background:#ffeb9c">old → new: will be '
                   'written</span><span style="background:#ffc7ce">! conflict: changed in W&amp;B too, not '
                   "written</span></p>")
        out.append(f'<table id="{TABLE_ID}"><thead><tr><th>run</th>'
                   + "".join(f"<th>{e(f)}</th>" for f in fields) + "</tr></thead><tbody>")
        shown = runs if max_runs is None else runs[:max_runs]
        for run_id, name, cells in shown:
            out.append(f'<tr><th data-v="{e(run_id)}">{_run_cell(plan, run_id, name)}</th>'
                       + "".join(_change_cell(cells.get(f)) for f in fields) + "</tr>")
        out.append("</tbody></table>")
        if len(shown) < len(runs):
            out.append(f"<p>… and {len(runs) - len(shown)} more runs (plan.to_frame() has them all).</p>")
    if plan.skipped:
        out.append(_table("Skipped runs (left as they are)", ["run", "reason"],
                          [[_run_cell(plan, k.run_id, k.run_name), e(skip_reason(k.reason))] for k in plan.skipped]))
    if plan.infos:
        out.append(_table("Changed only in W&amp;B since the export (kept)", ["run", "field", "at export → W&amp;B now"],
                          [[_run_cell(plan, c.run_id, c.run_name), e(c.field),
                            f"{e(show(c.base))} {ARROW} {e(show(c.live))}"] for c in plan.infos]))
    if plan.errors:
        out.append(_table("Errors (nothing is written until they are fixed)", ["row", "run", "column", "problem"],
                          [[e(x.row if x.row is not None else ""), e(x.run_id or ""), e(x.column or ""),
                            e(x.message)] for x in plan.errors], head_cell=False))
    if plan.warnings:
        out.append("<h3>Warnings</h3><ul>" + "".join(f"<li>{e(w)}</li>" for w in plan.warnings) + "</ul>")
    out.append("</div>")
    return "\n".join(out)


def plan_html_document(plan: Plan) -> str:
    """A whole page: readable offline, in any browser, with scripts off (the script adds filter and sort)."""
    made = datetime.now(timezone.utc).isoformat(timespec="seconds")
    facts = "".join(f"<tr><th>{e(k)}</th><td>{n}</td></tr>" for k, n in counts(plan))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>runsync plan: {e(plan.project)}</title><style>{CSS}</style></head><body>\n"
            f'<div class="runsync-plan"><h1>runsync plan for {e(plan.project)}</h1>'
            f"<p>From {e(plan.source)}, made {e(made)}.</p><table>{facts}</table></div>\n"
            f"{plan_html(plan, style=False)}\n<script>{SCRIPT}</script>\n</body></html>\n")


def write_report_html(plan: Plan, path: str) -> None:
    from runsync.sheets import atomic_output

    with atomic_output(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(plan_html_document(plan))
