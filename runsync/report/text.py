"""Plan as text (grouped by run) and as the versioned JSON document."""
from __future__ import annotations

import json
import math
import re
import shlex
import struct
import unicodedata
from itertools import groupby
from typing import Any

from rich.console import Console
from rich.markup import escape

from runsync.backend import capabilities
from runsync.errors import CellError
from runsync.fields import kind_of
from runsync.fields.codec import format_tags
from runsync.model import ABSENT, ApplyReport, Change, Plan
from runsync.report.rollup import rollup_lines
from runsync.sheets.meta import encode_value
from runsync.words import counted

JSON_FORMAT = 1
SKIP_REASONS = {"running": "still running: its process may overwrite an edit; run the same command again once it "
                           "has finished, or pass --include-running"}
ARROW = "→"


# Characters a terminal shows as a space or not at all (no-break and other spaces, zero-width and direction
# marks, soft hyphen, BOM): shown escaped, so an edit that only adds one does not read as "x" -> "x".
_INVISIBLE = re.compile("[\u00a0\u00ad\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u2064\u3000\ufeff]")


def show(value: Any) -> str:
    """One value as the plan shows it: JSON-like, tags as [a, b], a missing key as (absent)."""
    if value is ABSENT:
        return "(absent)"
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        text = "[" + format_tags(value) + "]"  # quoted as in the sheet when a tag holds a comma
    elif isinstance(value, float) and not math.isfinite(value):
        return str(value)
    else:
        text = json.dumps(value, ensure_ascii=False)
        text = text if len(text) <= 200 else text[:197] + "..."
    return _INVISIBLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _json_value(value: Any) -> Any:
    """A value as strict JSON, encoded as in the sidecar: NaN/inf as {"$f": "nan"}, never a bare NaN."""
    if value is ABSENT:
        return None
    return encode_value(value)


def plan_json(plan: Plan) -> dict[str, Any]:
    """The canonical, versioned form of a plan (README "JSON plan")."""
    return {
        "format": JSON_FORMAT,
        "project": plan.project,
        "changes": [
            {"run_id": c.run_id, "run_name": c.run_name, "field": c.field, "old": _json_value(c.live),
             "new": _json_value(c.sheet)}
            for c in plan.changes
        ],
        "conflicts": [
            {"run_id": c.run_id, "field": c.field, "base": _json_value(c.base), "sheet": _json_value(c.sheet),
             "live": _json_value(c.live), **({"reason": c.reason} if c.reason else {})}
            for c in plan.conflicts
        ],
        "errors": [e.to_json() for e in plan.errors],
        "skipped": [{"run_id": k.run_id, "run_name": k.run_name, "reason": k.reason} for k in plan.skipped],
        "new_keys": [{"field": field, "key": list(_key_path(plan, field)), "runs": runs}
                     for field, runs in plan.new_key_counts.items()],
        "summary": {"runs": len(plan.run_ids), "fields": len(plan.changes), "conflicts": len(plan.conflicts),
                    "errors": len(plan.errors)},
    }


def _key_path(plan: Plan, field: str) -> tuple[str, ...]:
    path = next(c.path for c in (*plan.changes, *plan.conflicts) if c.field == field)
    return path or (kind_of(field).key(field),)  # a flat key (MLflow's param) has no path


def _normal_form(text: str) -> str:
    return next((form for form in ("NFC", "NFD") if unicodedata.is_normalized(form, text)), "mixed")


def tracker_name(project: str | None) -> str:
    """The tracker a plan's project is on, as messages name it: "W&B", "MLflow"."""
    return capabilities(project).tracker


def alike_note(old: Any, new: Any, tracker: str = "W&B") -> str:
    """What a change that looks like no change is: only the Unicode normalization, or float32 rounding."""
    if isinstance(old, str) and isinstance(new, str) and old != new and \
            unicodedata.normalize("NFC", old) == unicodedata.normalize("NFC", new):
        return (f" (the same text in another Unicode normalization: {_normal_form(old)} in {tracker}, "
                f"{_normal_form(new)} in the sheet)")
    if type(old) is float and type(new) is float and old != new and 1.1754944e-38 <= abs(old) <= 3.4e38:
        try:
            same32 = struct.pack("<f", old) == struct.pack("<f", new)
        except OverflowError:
            return ""
        if same32:
            return " (equal at float32 precision: only the rounding to float32 differs)"
    return ""


def _run_header(symbol: str, change: Change) -> str:
    name = f" ({escape(change.run_name)})" if change.run_name else ""
    return f"{symbol} [bold]{escape(change.run_id)}[/bold]{name}"


class _Lines:
    """The plan's lines, printed in one `console.print` at the end: rich's cost is mostly per call (~0.7 ms),
    so a plan of 200 runs (600 lines) took 0.4 s printed line by line, 0.14 s joined; the text is the same
    (each line is wrapped at the console's width either way)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def print(self, text: str = "", *, highlight: bool = False) -> None:
        self.lines.append(text)


def render_plan(plan: Plan, console: Console, *, show_infos: bool = True) -> None:
    """The plan grouped by run, then conflicts, then the summary line."""
    if plan.errors:
        render_errors(list(plan.errors), console)
        return
    lines = _Lines()
    _plan_lines(plan, lines, show_infos)
    console.print("\n".join(lines.lines), highlight=False)


def _plan_lines(plan: Plan, console: _Lines, show_infos: bool) -> None:
    tracker = tracker_name(plan.project)
    if rollup := rollup_lines(plan, show):
        console.print(f"By field ({counted(len(plan.run_ids), 'run')}):", highlight=False)
        for line in rollup:
            console.print(f"  {escape(line)}", highlight=False)
        console.print()
    for _, group in groupby(plan.changes, key=lambda c: c.run_id):
        items = list(group)
        console.print(_run_header("[yellow]~[/yellow]", items[0]), highlight=False)
        for c in items:
            removal = kind_of(c.field).removal if c.sheet is ABSENT else None  # MLflow: "(delete tag)"
            console.print(f"    {escape(c.field)}: {escape(show(c.live))} {ARROW} "
                          f"{escape(f'({removal})' if removal else show(c.sheet))}"
                          f"{escape(alike_note(c.live, c.sheet, tracker))}", highlight=False)
    if plan.conflicts:
        console.print()
        console.print(f"[red]Conflicts[/red] (changed in {tracker} since the import):" if plan.undo else
                      f"[red]Conflicts[/red] (changed in the sheet, and in {tracker} since the export):",
                      highlight=False)
        base, sheet = ("the import wrote", "undo would restore") if plan.undo else ("base", "sheet")
        for _, group in groupby(plan.conflicts, key=lambda c: c.run_id):
            items = list(group)
            console.print(_run_header("[red]![/red]", items[0]), highlight=False)
            for c in items:
                console.print(
                    f"    {escape(c.field)}: {base} {escape(show(c.base))}, {sheet} {escape(show(c.sheet))}, "
                    f"{tracker} now {escape(show(c.live))}", highlight=False)
                if c.reason:  # e.g. the import the sheet predates, or that changed the field since
                    console.print(f"      {escape(c.reason)}", highlight=False)
    if show_infos and plan.infos:
        console.print()
        console.print(f"Changed only in {tracker} since the export (kept):", highlight=False)
        for c in plan.infos:
            console.print(f"  i {escape(c.run_id)} {escape(c.field)}: {escape(show(c.base))} {ARROW} "
                          f"{escape(show(c.live))}", highlight=False)
    if new_keys := plan.new_key_counts:
        console.print()
        if capabilities(plan.project).add_only:  # MLflow: params
            console.print("New params (a param is write-once: MLflow cannot change or delete it, undo cannot take "
                          "it back):", highlight=False)
        else:
            console.print("New config keys (W&B cannot delete a key; undo only sets it to null):", highlight=False)
        for field, runs in new_keys.items():
            key = ".".join(_key_path(plan, field))
            console.print(f"  + {escape(field)}: creates key {escape(show(key))} in {counted(runs, 'run')}",
                          highlight=False)
    if plan.skipped:
        console.print()
        console.print("Skipped (left as they are):", highlight=False)
        for reason, skips in _by_reason(plan).items():
            console.print(f"  {escape(_skip_heading(reason, len(skips)))}:", highlight=False)
            for k in skips:
                console.print(f"    - {escape(k.run_id)}{f' ({escape(k.run_name)})' if k.run_name else ''}",
                              highlight=False)
    if plan.changes or plan.conflicts:
        console.print()
        console.print(summary_line(plan), highlight=False)
    else:
        console.print("No changes.", highlight=False)


def summary_line(plan: Plan) -> str:
    """`Plan: 2 runs, 5 fields to change, 1 conflict.`"""
    return (f"Plan: {counted(len(plan.run_ids), 'run')}, {counted(len(plan.changes), 'field')} to change, "
            f"{counted(len(plan.conflicts), 'conflict')}.")


def _skip_heading(reason: str, runs: int) -> str:
    """A reason said once for all the runs it skips: `3 runs still running (their process ...)`."""
    if reason == "running":
        one = runs == 1
        return (f"{counted(runs, 'run')} still running ({'its' if one else 'their'} process may overwrite an edit; "
                f"run the same command again once {'it has' if one else 'they have'} finished, or pass "
                "--include-running)")
    return f"{counted(runs, 'run')} {reason}"


def _by_reason(plan: Plan) -> dict[str, list[Any]]:
    groups: dict[str, list[Any]] = {}
    for k in plan.skipped:
        groups.setdefault(k.reason, []).append(k)
    return groups


def plan_text(plan: Plan) -> str:
    """The text plan as `render_plan` prints it, without colour (what `str(plan)` returns)."""
    import io

    console = Console(file=io.StringIO(), no_color=True, color_system=None, width=100, soft_wrap=True, record=True)
    render_plan(plan, console)
    return console.export_text()


def render_errors(errors: list[CellError], console: Console) -> None:
    for error in errors:
        console.print(f"error: {escape(error.one_line())}", highlight=False, soft_wrap=True)


def _sent(change: Change) -> Any:
    # a key that cannot be deleted (W&B: a config key) is set to null instead
    return None if change.sheet is ABSENT and not kind_of(change.field).deletable else change.sheet


def render_apply_report(report: ApplyReport, console: Console, *, show_journal: bool = True) -> None:
    """What was written; then the journal and the undo command for it (`show_journal`: when it will exist)."""
    applied_runs = len({c.run_id for c in report.applied})
    tracker = report.tracker
    console.print(f"Applied {counted(len(report.applied), 'field change')} to {counted(applied_runs, 'run')}.",
                  highlight=False)
    if report.already:
        console.print(f"{counted(len(report.already), 'field')} already had the new value in {tracker}.",
                      highlight=False)
    for c in report.conflicts:
        console.print(f"[red]not applied[/red]: {escape(c.run_id)} {escape(c.field)} changed in {tracker} since the plan "
                      f"(now {escape(show(c.live))})", highlight=False)
    for k in report.skipped:
        console.print(f"[yellow]skipped[/yellow]: run {escape(k.run_id)} "
                      f"{escape(SKIP_REASONS.get(k.reason, k.reason))} (started since the plan)", highlight=False)
    for run_id in report.missing:
        console.print(f"[red]not applied[/red]: run {escape(run_id)} no longer exists in {tracker}", highlight=False)
    for c in report.did_not_stick:
        name = f" ({escape(c.run_name)})" if c.run_name else ""
        console.print(f"[red]did not stick[/red]: run {escape(c.run_id)}{name} {escape(c.field)}: written as "
                      f"{escape(show(_sent(c)))}, {tracker} holds {escape(show(c.live))} when read back", highlight=False)
    if report.did_not_stick:
        console.print("Something changed them back after the write (a running run's process re-sends its config; "
                      "another writer): check the run, then import again.", highlight=False)
    if report.unverified is not None:
        console.print(f"[red]not verified[/red]: reading the written runs back failed ({escape(report.unverified)}); "
                      f"`runsync import SHEET --dry-run` shows what {tracker} holds now", highlight=False)
    elif report.verified_runs:
        console.print(f"Verified: read {counted(report.verified_runs, 'written run')} back in "
                      f"{counted(report.verify_requests, 'request')}.", highlight=False)
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False)
    for run_id, why in report.failed.items():
        fields = ", ".join(c.field for c in report.failed_changes if c.run_id == run_id)
        console.print(f"[red]not applied[/red]: run {escape(run_id)} ({escape(fields)}): {escape(why)}",
                      highlight=False)
    if report.failed:
        console.print("Re-run the same import to finish: fields already written are skipped.", highlight=False)
    if report.journal and show_journal:
        console.print(f"Journal: {escape(report.journal)}", highlight=False)
        # Quoted for a POSIX shell, so it can be copied and run as printed (spaces, quotes in the path).
        console.print(f"Undo with: runsync undo {escape(shlex.quote(report.journal))}", highlight=False)


def print_plan(plan: Plan) -> None:
    """The text plan on stdout, coloured on a terminal unless NO_COLOR is set (what `plan.show()` does)."""
    import os

    render_plan(plan, Console(no_color=bool(os.environ.get("NO_COLOR")) or None, highlight=False, soft_wrap=True))
