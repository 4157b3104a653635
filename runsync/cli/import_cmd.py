"""`runsync import`."""
from __future__ import annotations

import shlex
import sys

import click

from runsync.backend import capabilities
from runsync.cli.common import (
    allow_text_option,
    batch_size_option,
    concurrency_option,
    confirm_and_apply,
    new_keys_option,
    pager_option,
    plan_progress,
    print_status_line,
    report_option,
    show_plan,
    stderr_console,
    tracking_uri_option,
    write_plan_report,
    write_status_option,
)
from runsync.errors import ExitCode
from runsync.words import counted


@click.command("import")
@click.argument("sheet", type=click.Path(exists=True, dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Show the plan; write nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--force", is_flag=True, help="Let the sheet win conflicts.")
@click.option("--strict", is_flag=True,
              help="Refuse text typed into a column of numbers, booleans or JSON, even with --allow-text.")
@allow_text_option
@click.option("--include-running", is_flag=True,
              help="Also write runs still running (their process may overwrite the edit); skipped by default.")
@new_keys_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="How to print the plan.")
@click.option("--detailed-exitcode", is_flag=True, help="With --dry-run, exit 2 when there are changes.")
@click.option("--base", "base", type=click.Path(exists=True, dir_okay=False),
              help="The base snapshot when the sheet lost it: the exported file or its .runsync.json sidecar.")
@click.option("--project", help="ENTITY/PROJECT (or mlflow:EXPERIMENT), for a sheet with no base at all (2-way "
                                 "diff, no conflict checks).")
@click.option("--journal", type=click.Path(dir_okay=False),
              help="Undo journal [default: a new SHEET.runsync-journals/<UTC time>-<n>.jsonl per import]. "
                   "An existing one is added to only by imports of the same sheet and export.")
@concurrency_option
@batch_size_option
@click.option("--no-verify", is_flag=True,
              help="Do not read the written runs back to check every field holds its new value (saves one "
                   "request per 250 runs).")
@report_option
@write_status_option
@pager_option
@tracking_uri_option
def import_(sheet: str, dry_run: bool, yes: bool, force: bool, strict: bool, allow_text: bool, include_running: bool,
            new_keys: bool, fmt: str, detailed_exitcode: bool, base: str | None, project: str | None,
            journal: str | None, concurrency: int, batch_size: int, no_verify: bool, report_path: str | None,
            write_status: bool, no_pager: bool, tracking_uri: str | None) -> None:
    """Apply an edited sheet to W&B (or MLflow: the sheet's own tracker): only the fields that changed.

    \b
    Examples:
      runsync import runs.xlsx --dry-run
      runsync import runs.xlsx --yes
      runsync import "runs - Sheet1.csv" --base runs.csv.runsync.json --dry-run
      runsync import runs.xlsx --dry-run --format json --detailed-exitcode
      runsync import runs.xlsx --dry-run --report plan.xlsx
      runsync import runs.xlsx --yes --new-keys
      runsync import runs.xlsx --yes --write-status
    """
    import runsync
    from runsync.backend import backend_for
    from runsync.sheets.status import write_import_status

    err = stderr_console()
    # One client for the plan and the writes: one login, one sidecar session. Without --project the sheet's
    # header names the tracker: the plan connects to it once the header is read (and apply reuses that client).
    backend = None
    if project is not None:
        backend = backend_for(project, tracking_uri=tracking_uri)
        backend.connect_in_background()  # while the sheet is read
    with plan_progress() as (on_total, on_run):
        plan = runsync.plan(sheet, base=base, project=project, force=force, strict=strict,
                            include_running=include_running, new_keys=new_keys, backend=backend, on_total=on_total,
                            on_run=on_run, allow_text=allow_text, tracking_uri=tracking_uri)
    show_plan(plan, fmt, f"Read {sheet}: plan for {plan.project}" + ("" if plan.three_way else " (2-way)"),
              pager=not no_pager)
    if report_path:
        write_plan_report(plan, report_path, runsync.read(sheet, base=base))
    if plan.errors:
        err.print(f"{counted(len(plan.errors), 'error')} in {sheet}: nothing written.")
        sys.exit(ExitCode.FAILED)
    if plan.conflicts and write_status:  # nothing is written, but the sheet says which runs conflict
        print_status_line(write_import_status(sheet, plan))
    if any(not c.overridable for c in plan.conflicts):
        err.print("Conflicts: nothing written. The sheet predates an import of its export (named above): put that "
                  "import's value back in the cell, or re-export; --force does not override this.")
        sys.exit(ExitCode.FAILED)
    if plan.conflicts:
        err.print(f"Conflicts: nothing written. Re-export to start from {capabilities(plan.project).tracker}'s "
                  "values, or --force to let the sheet win.")
        sys.exit(ExitCode.FAILED)
    if dry_run or not plan.changes:
        if dry_run and plan.changes:
            # The options that shape the plan, and --new-keys when it creates keys: the line runs as printed.
            words = ["runsync", "import", sheet, *(["--base", base] if base else []),
                     *(["--project", project] if project else []), *(["--force"] if force else []),
                     *(["--strict"] if strict else []), *(["--allow-text"] if allow_text else []),
                     *(["--include-running"] if include_running else []),
                     *(["--new-keys"] if plan.new_key_counts else []), *(["--journal", journal] if journal else []),
                     *(["--tracking-uri", tracking_uri] if tracking_uri else [])]
            err.print(f"Dry run: nothing written. To apply: {shlex.join(words)}", markup=False)
        if write_status and not dry_run:
            print_status_line(write_import_status(sheet, plan))
        sys.exit(ExitCode.CHANGES_PENDING if detailed_exitcode and plan.changes and dry_run else ExitCode.OK)
    confirm_and_apply(plan, yes=yes, interactive=sys.stdin.isatty(), journal=journal, force=force, backend=backend,
                      concurrency=concurrency, batch_size=batch_size, verify=not no_verify, tracking_uri=tracking_uri,
                      after=(lambda report: print_status_line(write_import_status(sheet, plan, report)))
                      if write_status else None)
