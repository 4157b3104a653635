"""What every plan report shares: the rows of a plan, its runs' links, the summary line. Pure: no I/O."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runsync.fields import ordered_fields
from runsync.model import ABSENT, Change, Plan
from runsync.report.text import SKIP_REASONS, show, tracker_name
from runsync.report.text import summary_line as text_summary_line
from runsync.words import counted

# Kinds of row in Plan.to_frame() and the reports (README "Reviewing a plan").
CHANGE, CONFLICT, INFO, SKIPPED, ERROR = "change", "conflict", "info", "skipped", "error"
FRAME_COLUMNS = ("run_id", "run_name", "field", "old", "new", "kind", "reason")
SAFE_SCHEMES = ("http://", "https://")


def value(v: Any) -> Any:
    """A plan value for pandas: a missing key (ABSENT) is None, tags a list."""
    if v is ABSENT:
        return None
    return list(v) if isinstance(v, tuple) else v


def plan_rows(plan: Plan) -> list[dict[str, Any]]:
    """One dict per change, conflict, W&B-only change (info), skipped run and cell error (FRAME_COLUMNS).

    old/new: change: W&B now -> the sheet; conflict: W&B now -> the sheet; info: at export -> W&B now.
    """
    rows: list[dict[str, Any]] = []
    tracker = tracker_name(plan.project)

    def add(kind: str, c: Change, old: Any, new: Any, reason: str | None = None) -> None:
        rows.append({"run_id": c.run_id, "run_name": c.run_name, "field": c.field, "old": value(old),
                     "new": value(new), "kind": kind, "reason": reason})

    for c in plan.changes:
        add(CHANGE, c, c.live, c.sheet)
    for c in plan.conflicts:
        add(CONFLICT, c, c.live, c.sheet, c.reason or f"changed in {tracker} since the export (was {show(c.base)})")
    for c in plan.infos:
        add(INFO, c, c.base, c.live, f"changed only in {tracker} since the export: kept")
    for k in plan.skipped:
        rows.append({"run_id": k.run_id, "run_name": k.run_name, "field": None, "old": None, "new": None,
                     "kind": SKIPPED, "reason": skip_reason(k.reason)})
    for e in plan.errors:
        rows.append({"run_id": e.run_id, "run_name": None, "field": e.column, "old": None, "new": e.raw,
                     "kind": ERROR, "reason": e.message if e.row is None else f"row {e.row}: {e.message}"})
    return rows


def skip_reason(reason: str) -> str:
    return SKIP_REASONS.get(reason, reason)


def run_url(plan: Plan, run_id: str) -> str | None:
    """The run's W&B page, as W&B gave it when planning; only http(s) links are ever shown."""
    url = plan.run_urls.get(run_id)
    return url if isinstance(url, str) and url.startswith(SAFE_SCHEMES) else None


def summary_line(plan: Plan) -> str:
    """The text plan's last line (render.plan), or what stops the plan."""
    if plan.errors:
        return f"{counted(len(plan.errors), 'error')} in the sheet: nothing would be written."
    if plan.changes or plan.conflicts:
        return text_summary_line(plan)
    return "No changes."


def counts(plan: Plan) -> list[tuple[str, int]]:
    return [("runs to change", len(plan.run_ids)), ("fields to change", len(plan.changes)),
            ("conflicts", len(plan.conflicts)), (f"changed only in {tracker_name(plan.project)} (kept)", len(plan.infos)),
            ("skipped runs", len(plan.skipped)), ("errors", len(plan.errors)), ("warnings", len(plan.warnings))]


@dataclass(frozen=True)
class Cell:
    """One marked cell of a report table: a change or conflict (with its Change), or an error."""

    kind: str
    text: str  # what a comment or tooltip says
    change: Change | None = None


def cell_note(kind: str, c: Change, tracker: str = "W&B") -> str:
    if kind == CONFLICT:
        return (f"conflict: {show(c.base)} at export, {show(c.live)} in {tracker} now; the sheet says "
                f"{show(c.sheet)}. Not written (--force lets the sheet win).")
    note = f"was {show(c.live)} in {tracker}"
    if show(c.base) != show(c.live):  # a --force plan: the sheet wins over a change made in the tracker
        note += f" (changed there since the export, from {show(c.base)}; the sheet wins)"
    return note


def run_table(plan: Plan) -> tuple[list[str], list[tuple[str, str | None, dict[str, Cell]]]]:
    """Runs as rows, changed fields as columns: (fields, [(run_id, run_name, {field: Cell})])."""
    fields: dict[str, None] = {}
    runs: dict[str, tuple[str | None, dict[str, Cell]]] = {}
    tracker = tracker_name(plan.project)
    for kind, items in ((CHANGE, plan.changes), (CONFLICT, plan.conflicts)):
        for c in items:
            fields.setdefault(c.field, None)
            runs.setdefault(c.run_id, (c.run_name, {}))[1][c.field] = Cell(kind, cell_note(kind, c, tracker), c)
    return _ordered(fields), [(rid, name, cells) for rid, (name, cells) in runs.items()]


def _ordered(fields: dict[str, None]) -> list[str]:
    return ordered_fields(fields)
