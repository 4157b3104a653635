"""`runsync undo`."""
from __future__ import annotations

import shlex
import sys

import click

from runsync.backend import capabilities
from runsync.cli.common import (
    ask,
    batch_size_option,
    concurrency_option,
    confirm_large_write,
    pager_option,
    print_status_line,
    report_option,
    stderr_console,
    stdout_console,
    tracking_uri_option,
    write_plan_report,
    write_status_option,
)
from runsync.errors import ConfigError, ExitCode
from runsync.words import counted


@click.command()
@click.argument("journal", metavar="JOURNAL|SHEET", type=click.Path(exists=True))
@click.option("--last", is_flag=True, help="With a SHEET (or its journals folder): undo its newest import.")
@click.option("--dry-run", is_flag=True, help="Show what would be restored; write nothing.")
@click.option("--force", is_flag=True, help="Restore fields even where W&B changed them since the import.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--no-verify", is_flag=True, help="Do not read the restored runs back to check them.")
@concurrency_option
@batch_size_option
@report_option
@write_status_option
@pager_option
@tracking_uri_option
def undo(journal: str, last: bool, dry_run: bool, force: bool, yes: bool, no_verify: bool, concurrency: int,
         batch_size: int, report_path: str | None, write_status: bool, no_pager: bool, tracking_uri: str | None) -> None:
    """Restore the values an import replaced, from its journal; or list a sheet's imports.

    \b
    Examples:
      runsync undo runs.xlsx                   # list its imports, newest first
      runsync undo runs.xlsx --last --dry-run  # what undoing the newest would restore
      runsync undo runs.xlsx.runsync-journals/20250102T030405Z-001.jsonl --yes
      runsync undo runs.xlsx.runsync-journals/20250102T030405Z-001.jsonl --dry-run --report undo.html
      runsync undo runs.xlsx --last --yes --write-status  # mark the undone runs in the sheet

    Each import has its own journal (the import prints its undo command); this
    takes back that import only.
    """
    import runsync
    from runsync.api import plan_undo_journal
    from runsync.cli.pager import print_paged
    from runsync.journal.imports import list_imports, sheet_folder
    from runsync.report.text import render_apply_report, render_plan

    err, out = stderr_console(), stdout_console()
    folder = sheet_folder(journal)
    if folder is None and last:
        raise ConfigError(f"{journal}: --last takes a sheet or its journals folder, not a journal")
    if folder is not None:
        entries = list_imports(folder)
        if not last:
            _list(journal, folder, entries)
            sys.exit(ExitCode.OK)
        if not entries:
            raise ConfigError(f"{journal}: no imports to undo (no journals in {folder})")
        newest = entries[0]
        err.print(f"The newest import of {_quote(journal)}: {_when(newest.at)}, journal {_quote(newest.journal)}",
                  markup=False)
        journal = newest.journal
    plan = plan_undo_journal(journal, force=force, tracking_uri=tracking_uri)  # the journal's project's tracker
    for warning in plan.warnings:
        err.print(f"[yellow]warning:[/yellow] {warning}")
    print_paged(lambda console: render_plan(plan, console), out, pager=not no_pager)
    if report_path:
        write_plan_report(plan, report_path)
    if plan.conflicts:
        err.print(f"Fields changed in {capabilities(plan.project).tracker} since the import: nothing restored "
                  "(--force restores them anyway).")
        sys.exit(ExitCode.FAILED)
    if dry_run or not plan.changes:
        if dry_run and plan.changes:
            # The journal itself, not --last: the command undoes this import even after another one.
            words = ["runsync", "undo", journal, *(["--force"] if force else [])]
            err.print(f"Dry run: nothing written. To apply: {shlex.join(words)}", markup=False)
        sys.exit(ExitCode.OK)
    if not yes:
        if not sys.stdin.isatty():
            err.print("[red]error:[/red] not a terminal: nothing written; pass --yes to undo without asking")
            sys.exit(ExitCode.FAILED)
        if not ask(f"Restore {counted(len(plan.changes), 'field')} of {counted(len(plan.run_ids), 'run')}?") \
                or not confirm_large_write(plan):
            err.print("Nothing written.")
            sys.exit(ExitCode.FAILED)
    _, report = runsync.undo(journal, plan=plan, force=force, verify=not no_verify,
                             concurrency=concurrency, batch_size=batch_size)  # what was shown and confirmed
    if report is not None:
        render_apply_report(report, err)
        if write_status:  # into the sheet the import came from (its journal names it)
            from runsync.sheets.status import write_undo_status

            print_status_line(write_undo_status(journal, plan, report))
        sys.exit(ExitCode.OK if report.ok else ExitCode.FAILED)


def _quote(path: str) -> str:
    return shlex.quote(str(path))


def _when(at: str) -> str:
    from runsync.journal.history import when_text

    return when_text(at)


def _list(target: str, folder: object, entries: list) -> None:
    """The sheet's imports, newest first, one a line (stdout), then the command that undoes the newest."""
    err, out = stderr_console(), stdout_console()
    if not entries:
        err.print(f"No imports of {target} to undo (no journals in {folder}).", markup=False)
        return
    err.print(f"Imports of {target}, newest first:", markup=False)
    for e in entries:
        status = "done" if e.status == "done" else (
            f"{e.status}: {e.runs_written} of {e.runs_planned} runs written")
        undone = {"no": "not undone", "yes": "undone", "partly": "partly undone"}[e.undone]
        out.print(f"{_when(e.at)}  {counted(e.runs_written, 'run')}, {counted(e.fields_written, 'field')}  {status}  "
                  f"{undone}  "
                  f"{_quote(e.journal)}", markup=False)
    err.print(f"Undo the newest: runsync undo {_quote(target)} --last  (or name a journal above)", markup=False)
