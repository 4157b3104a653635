"""`runsync undo`."""
from __future__ import annotations

import sys

import click

from runsync.cli.common import (batch_size_option, concurrency_option, confirm_large_write, report_option,
                                stderr_console, stdout_console, write_plan_report)
from runsync.errors import ExitCode


@click.command()
@click.argument("journal", type=click.Path(exists=True, dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Show what would be restored; write nothing.")
@click.option("--force", is_flag=True, help="Restore fields even where W&B changed them since the import.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--no-verify", is_flag=True, help="Do not read the restored runs back to check them.")
@concurrency_option
@batch_size_option
@report_option
def undo(journal: str, dry_run: bool, force: bool, yes: bool, no_verify: bool, concurrency: int,
         batch_size: int, report_path: str | None) -> None:
    """Restore the values an import replaced, from its journal.

    \b
    Examples:
      runsync undo runs.xlsx.runsync-journals/20250102T030405Z-001.jsonl --dry-run
      runsync undo runs.xlsx.runsync-journals/20250102T030405Z-001.jsonl --yes
      runsync undo runs.xlsx.runsync-journals/20250102T030405Z-001.jsonl --dry-run --report undo.html

    Each import has its own journal (the import prints its undo command); this
    takes back that import only.
    """
    import runsync
    from runsync.api import plan_undo_journal
    from runsync.render import render_apply_report, render_plan

    from runsync.backend import WandbBackend

    err, out = stderr_console(), stdout_console()
    backend = WandbBackend()
    plan = plan_undo_journal(journal, force=force, backend=backend)
    for warning in plan.warnings:
        err.print(f"[yellow]warning:[/yellow] {warning}")
    render_plan(plan, out)
    if report_path:
        write_plan_report(plan, report_path)
    if plan.conflicts:
        err.print("Fields changed in W&B since the import: nothing restored (--force restores them anyway).")
        sys.exit(ExitCode.FAILED)
    if dry_run or not plan.changes:
        sys.exit(ExitCode.OK)
    if not yes:
        if not sys.stdin.isatty():
            err.print("[red]error:[/red] not a terminal: nothing written; pass --yes to undo without asking")
            sys.exit(ExitCode.FAILED)
        if not click.confirm(f"Restore {len(plan.changes)} fields of {len(plan.run_ids)} runs?", err=True) \
                or not confirm_large_write(plan):
            err.print("Nothing written.")
            sys.exit(ExitCode.FAILED)
    _, report = runsync.undo(journal, plan=plan, force=force, backend=backend, verify=not no_verify,
                             concurrency=concurrency, batch_size=batch_size)  # what was shown and confirmed
    if report is not None:
        render_apply_report(report, err)
        sys.exit(ExitCode.OK if report.ok else ExitCode.FAILED)
