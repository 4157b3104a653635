"""What every command shares: consoles, the error boundary, progress."""
from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
from rich.console import Console

from runsync.errors import ExitCode, Interrupted, RunsyncError, SheetError
from runsync.words import counted
from runsync.writer.options import DEFAULT_BATCH_SIZE, DEFAULT_CONCURRENCY


def stdout_console() -> Console:
    return Console(no_color=bool(os.environ.get("NO_COLOR")) or None, highlight=False, soft_wrap=True)


def stderr_console() -> Console:
    return Console(stderr=True, no_color=bool(os.environ.get("NO_COLOR")) or None, highlight=False, soft_wrap=True)


def fail(message: str, *, hint: str | None = None, code: int = ExitCode.FAILED) -> None:
    err = stderr_console()
    err.print(f"[red]error:[/red] {_escape(message)}")
    if hint:
        err.print(f"hint: {_escape(hint)}")
    sys.exit(code)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


class RunsyncGroup(click.Group):
    """The one place where errors become output: a short message, a traceback only with --debug."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Each command's whole one-line summary, wrapped in its column (click cuts it at ~45 characters)."""
        rows = [(name, command.get_short_help_str(limit=10_000)) for name in self.list_commands(ctx)
                if (command := self.get_command(ctx, name)) is not None and not command.hidden]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        debug = bool(ctx.params.get("debug")) or bool(os.environ.get("RUNSYNC_DEBUG"))
        try:
            return super().invoke(ctx)
        except SheetError as exc:
            err = stderr_console()
            for error in exc.errors:
                err.print(f"[red]error:[/red] {_escape(error.one_line())}")
            if exc.hint:
                err.print(f"hint: {_escape(exc.hint)}")
            if debug:
                traceback.print_exc()
            sys.exit(exc.exit_code)
        except RunsyncError as exc:
            if debug:
                traceback.print_exc()
            fail(exc.message, hint=exc.hint, code=exc.exit_code)
        except Interrupted as exc:  # Ctrl-C while writing: how far it got, and how to finish or take it back
            print_interrupted(exc)
            sys.exit(ExitCode.INTERRUPTED)
        except KeyboardInterrupt:  # before any write (writes raise Interrupted): planning, reading, a prompt
            stderr_console().print("interrupted: nothing written")
            sys.exit(ExitCode.INTERRUPTED)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit):
            raise
        except Exception as exc:  # a bug: say so briefly
            if debug:
                traceback.print_exc()
            fail(f"internal error: {type(exc).__name__}: {exc}", hint="re-run with --debug for the traceback")


def print_interrupted(exc: Interrupted) -> None:
    """What Ctrl-C during a write leaves: the runs written, the journal, the command that finishes or undoes it."""
    import shlex

    err, journal = stderr_console(), shlex.quote(exc.journal)
    done = "restored" if exc.undo else "written"
    err.print(f"interrupted: {exc.runs_written} of {exc.runs_planned} runs {done}, journaled in {journal}",
              markup=False)
    if exc.undo:
        err.print("Re-run the same command to finish the undo (it adds to that journal).", markup=False)
    elif exc.continues:
        err.print("Re-run the same command to finish this import: it continues that journal, so the undo it "
                  f"prints takes back the whole import. To take back what was written instead: runsync undo {journal}",
                  markup=False)
    else:
        err.print("Re-run the same command to write the rest (fields already written are skipped). To take back "
                  f"what was written: runsync undo {journal}", markup=False)


def ask(question: str) -> bool:
    """click.confirm on stderr; Ctrl-C at the question exits 130 saying nothing was written."""
    try:
        return click.confirm(question, err=True)
    except click.exceptions.Abort as exc:
        # click turns Ctrl-C (and the end of input) into Abort, keeping the KeyboardInterrupt as its context.
        interrupted = isinstance(exc.__context__, KeyboardInterrupt)
        stderr_console().print("\ninterrupted: nothing written" if interrupted else "\nNothing written.")
        sys.exit(ExitCode.INTERRUPTED if interrupted else ExitCode.FAILED)


@contextmanager
def progress(label: str, *, enabled: bool) -> Iterator[tuple[Callable[[int], None], Callable[..., None]]]:
    """(set_total, advance) callbacks for a progress bar on stderr; no-ops when not on a terminal."""
    if not enabled or not sys.stderr.isatty():
        def ignore(*_: int) -> None:
            return None

        yield ignore, ignore
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=stderr_console(), transient=True) as bar:
        task = bar.add_task(label, total=None)
        def set_total(total: int) -> None:
            bar.update(task, total=total)

        def advance(n: int = 1) -> None:
            bar.advance(task, n)

        yield set_total, advance


@contextmanager
def plan_progress() -> Iterator[tuple[Callable[[int], None], Callable[[], None]]]:
    """(on_total, on_run) for planning: "Reading the sheet" until the tracker is read, then "Reading runs" and runs
    done / total, on stderr; no-ops when not on a terminal."""
    if not sys.stderr.isatty():
        yield (lambda total: None), (lambda: None)
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=stderr_console(), transient=True) as bar:
        task = bar.add_task("Reading the sheet", total=None)
        yield ((lambda total: bar.update(task, description="Reading runs", total=total, completed=0)),
               (lambda: bar.advance(task, 1)))


def split_list(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    return tuple(item.strip() for item in value.split(",") if item.strip())


def _check_report(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not value.lower().endswith((".xlsx", ".html", ".htm")):
        raise click.BadParameter(f"{value}: name a .xlsx or .html file", ctx=ctx, param=param)
    return value


report_option = click.option(
    "--report", "report_path", type=click.Path(dir_okay=False), callback=_check_report,
    help="Also write the plan for review: a .xlsx (the sheet with changed cells filled and commented, "
         "after a summary sheet) or a self-contained .html page.")

pager_option = click.option(
    "--no-pager", "no_pager", is_flag=True,
    help="Print the plan as is on a terminal too; otherwise a plan taller than the screen goes through "
         "RUNSYNC_PAGER, PAGER or less.")

concurrency_option = click.option("--concurrency", type=click.IntRange(1, 64), default=DEFAULT_CONCURRENCY,
                                  show_default=True, help="Write requests in flight at once.")
new_keys_option = click.option(
    "--new-keys", is_flag=True,
    help="Create config keys the runs lack in W&B (W&B cannot delete a key: undo only sets it to null). "
         "A plan that creates any is not applied without it; --yes is not enough.")
tracking_uri_option = click.option(
    "--tracking-uri", "tracking_uri", metavar="URI",
    help="MLflow's tracking server for an mlflow: project [default: MLFLOW_TRACKING_URI].")
allow_text_option = click.option(
    "--allow-text", is_flag=True,
    help="Write text typed where every value is a number, boolean or JSON (refused by default: a typo or a "
         "locale's 0,01?). A cell or VALUE typed in double quotes (\"0,01\") is text anyway.")
batch_size_option = click.option(
    "--batch-size", type=click.IntRange(1, 100), default=DEFAULT_BATCH_SIZE, show_default=True,
    help="Runs written per request (several upsertBuckets in one request). 1 sends one run per request, for a "
         "server that refuses batches (runsync also sends a batch it does not take again in halves).")


def write_plan_report(plan: Any, path: str, sheet: Any = None) -> None:
    """Write the --report file and say where (stderr)."""
    from runsync.report import write_report

    try:
        write_report(plan, path, sheet=sheet)
    except (OSError, ValueError) as exc:
        fail(f"cannot write the report {path}: {exc}")
    stderr_console().print(f"Report: {_escape(path)}", highlight=False)


# A write touching more runs than this asks a second time on a terminal, with the counts (not with --yes, and
# without a terminal nothing is asked at all: --yes is needed anyway). A slip in a filter or a sheet of a whole
# project is then seen before hundreds of runs change; an everyday edit of a few dozen runs asks once.
LARGE_WRITE_RUNS = 100


def large_write_question(plan: Any, limit: int = LARGE_WRITE_RUNS) -> str | None:
    """The second question for a plan touching more than `limit` runs (its counts per field), or None."""
    from collections import Counter

    runs = len(plan.run_ids)
    if runs <= limit:
        return None
    fields = Counter(change.field for change in plan.changes)
    shown = [f"{field} in {counted(n, 'run')}" for field, n in sorted(fields.items(), key=lambda kv: (-kv[1], kv[0]))[:5]]
    more = f" and {len(fields) - 5} more fields" if len(fields) > 5 else ""
    return (f"This write touches {runs:,} runs (more than {limit}): {', '.join(shown)}{more}. "
            f"Write to all {runs:,} runs?")


def confirm_large_write(plan: Any) -> bool:
    """Ask the second question when the plan is large (only ever called on a terminal, after the first)."""
    question = large_write_question(plan)
    return question is None or ask(question)


def confirm_and_apply(plan: Any, *, yes: bool, interactive: bool, after: Callable[[Any], None] | None = None,
                      **apply_kwargs: Any) -> None:
    """Ask (unless --yes; never without a terminal), apply the plan with a progress bar, report, and exit.

    A plan that creates config keys without --new-keys is refused first: --yes is not that opt-in.
    `after(report)` runs once the report is shown (--write-status), before the exit."""
    import runsync
    from runsync.api import new_keys_refusal
    from runsync.report.text import render_apply_report

    err = stderr_console()
    if refusal := new_keys_refusal(plan, force=bool(apply_kwargs.get("force"))):
        fail(refusal)
    if apply_kwargs.get("journal") is None:
        print_continuation(plan)
    if not yes:
        if not interactive:
            err.print("[red]error:[/red] not a terminal: nothing written; pass --yes to apply without asking")
            sys.exit(ExitCode.FAILED)
        if not ask(f"Write {counted(len(plan.changes), 'field change')} to {counted(len(plan.run_ids), 'run')}?") \
                or not confirm_large_write(plan):
            err.print("Nothing written.")
            sys.exit(ExitCode.FAILED)
    with progress("Writing", enabled=True) as (set_total, advance):
        set_total(len(plan.run_ids))
        report = runsync.apply(plan, on_run_done=lambda _: advance(1), **apply_kwargs)
    render_apply_report(report, err)
    if after is not None:
        after(report)
    sys.exit(ExitCode.OK if report.ok else ExitCode.FAILED)


write_status_option = click.option(
    "--write-status", is_flag=True,
    help="Write each run's outcome into the sheet's runsync_status column (written, conflict, skipped: running, "
         "error: ..., did not stick); the import ignores that column.")


def print_status_line(line: str) -> None:
    """The --write-status outcome on stderr: where it went, or a warning why not."""
    stderr_console().print(line, markup=False, highlight=False)


def print_continuation(plan: Any) -> None:
    """Say whether applying `plan` continues an interrupted import of its sheet (one journal) or starts apart."""
    import shlex

    from runsync.api import continued_import
    from runsync.journal.history import when_text

    found = continued_import(plan)
    if found is None:
        return
    entry, err = found.entry, stderr_console()
    what = (f"the interrupted import of {when_text(entry.at)} ({entry.runs_written} of {entry.runs_planned} runs "
            f"written, journal {shlex.quote(entry.journal)})")
    if found.continues:
        err.print(f"Continuing {what}: the rest goes into that journal, so one undo takes back the whole import.",
                  markup=False)
    else:
        err.print(f"warning: not continuing {what}: {found.unplanned} change(s) of this plan are not in it (the sheet "
                  "changed since), so this is a new import with a journal of its own. Undo the interrupted one "
                  f"on its own: runsync undo {shlex.quote(entry.journal)}", markup=False)


def show_plan(plan: Any, fmt: str, heading: str, *, pager: bool = True) -> None:
    """Warnings to stderr; the plan as JSON, or `heading` and the text plan (errors go to stderr); on a terminal
    a text plan taller than the screen goes through the pager unless `pager` is False (--no-pager)."""
    import json

    from runsync.report.text import plan_json, render_plan

    err = stderr_console()
    for warning in plan.warnings:
        err.print(f"[yellow]warning:[/yellow] {warning}", markup=True, highlight=False)
    if fmt == "json":
        click.echo(json.dumps(plan_json(plan), ensure_ascii=False, indent=2, allow_nan=False))
        return
    if plan.errors:
        render_plan(plan, err)
        return
    from runsync.cli.pager import print_paged

    err.print(heading, highlight=False)
    print_paged(lambda console: render_plan(plan, console), stdout_console(), pager=pager)
