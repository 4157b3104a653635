"""`runsync set`."""
from __future__ import annotations

import sys

import click

from runsync.cli.common import (
    allow_text_option,
    batch_size_option,
    concurrency_option,
    confirm_and_apply,
    new_keys_option,
    pager_option,
    progress,
    report_option,
    show_plan,
    stderr_console,
    tracking_uri_option,
    write_plan_report,
)
from runsync.cli.export_cmd import parse_filters
from runsync.errors import ConfigError, ExitCode
from runsync.words import counted


def _interactive() -> bool:
    """Whether a person can answer the confirmation (a terminal on stdin)."""
    return sys.stdin.isatty()


def _pairs(values: tuple[str, ...]) -> list[tuple[str, object]]:
    from runsync.planner.set_edits import Cell

    pairs: list[tuple[str, object]] = []
    for item in values:
        field, sep, raw = item.partition("=")
        if not sep or not field.strip():
            raise ConfigError(f"--set takes FIELD=VALUE, got {item!r}")
        pairs.append((field.strip(), Cell(raw)))
    return pairs


@click.command("set")
@click.argument("project", metavar="PROJECT")
@click.option("--filter", "filter_pairs", multiple=True, metavar="KEY=VALUE",
              help="Edit runs where KEY equals VALUE (JSON if it parses). Repeatable; AND-ed.")
@click.option("--filters", "filters_json", metavar="FILTER",
              help="Any W&B filter as JSON, e.g. '{\"$or\": [...]}'; MLflow: its filter string.")
@click.option("--order", help="Sort order, e.g. -created_at (with --limit: which runs).")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many runs.")
@click.option("--set", "set_pairs", multiple=True, metavar="FIELD=VALUE",
              help="FIELD: name, group, job_type, notes, tags or config.KEY (MLflow: name, description, tags.KEY, "
                   "params.KEY). VALUE is read like a sheet cell "
                   "(0.01 a number, '\"0.01\"' text, true, JSON). Repeatable.")
@click.option("--add-tag", "add_tags", multiple=True, metavar="TAG", help="Add a tag. Repeatable.")
@click.option("--remove-tag", "remove_tags", multiple=True, metavar="TAG", help="Remove a tag. Repeatable.")
@click.option("--clear", "clear", multiple=True, metavar="FIELD",
              help="Empty group, job_type, notes or tags; set config.KEY to null. Repeatable.")
@click.option("--dry-run", is_flag=True, help="Show the plan; write nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--include-running", is_flag=True,
              help="Also write runs still running (their process may overwrite the edit); skipped by default.")
@new_keys_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="How to print the plan.")
@click.option("--detailed-exitcode", is_flag=True, help="With --dry-run, exit 2 when there are changes.")
@click.option("--journal", type=click.Path(dir_okay=False),
              help="Undo journal [default: a new one in $XDG_STATE_HOME/runsync (~/.local/state/runsync)/"
                   "ENTITY/PROJECT/set.runsync-journals/]. It is printed, with the undo command.")
@concurrency_option
@batch_size_option
@click.option("--no-verify", is_flag=True,
              help="Do not read the written runs back to check every field holds its new value.")
@click.option("--strict", is_flag=True,
              help="Refuse text for a key whose selected values are all numbers, booleans or JSON, even with "
                   "--allow-text.")
@allow_text_option
@report_option
@pager_option
@tracking_uri_option
def set_(project: str, filter_pairs: tuple[str, ...], filters_json: str | None, order: str | None,
         limit: int | None, set_pairs: tuple[str, ...], add_tags: tuple[str, ...], remove_tags: tuple[str, ...],
         clear: tuple[str, ...], dry_run: bool, yes: bool, include_running: bool, new_keys: bool, fmt: str,
         detailed_exitcode: bool, journal: str | None, concurrency: int, batch_size: int, no_verify: bool,
         strict: bool, allow_text: bool, report_path: str | None, no_pager: bool, tracking_uri: str | None) -> None:
    """Edit the selected runs without a spreadsheet: the same plan, journal and undo as an import (PROJECT:
    ENTITY/PROJECT, or mlflow:EXPERIMENT).

    \b
    Examples:
      runsync set my-team/cifar --filter group=exp-a --set group=exp-a-final --dry-run
      runsync set my-team/cifar --filters '{"tags": {"$in": ["debug"]}}' --add-tag reviewed --remove-tag debug --yes
      runsync set my-team/cifar --filter config.dataset=cifar10 --set config.lr=0.01 --set notes="rerun needed"
      runsync set my-team/cifar --filter state=crashed --clear group --set 'config.code="007"'
      runsync set mlflow:cifar --filter params.model=resnet --set tags.team=vision --dry-run
    """
    import runsync
    from runsync.backend import backend_for
    from runsync.planner.set_edits import parse_edits

    filters = parse_filters(filter_pairs, filters_json, project)
    pairs = _pairs(set_pairs)
    parse_edits(pairs, add_tags=add_tags, remove_tags=remove_tags, clear=clear)  # a bad FIELD: before any request
    err = stderr_console()
    backend = backend_for(project, tracking_uri=tracking_uri)  # one client for the read and the writes
    selected: list[int] = []  # one entry per run read: how many the selection holds
    with progress("Reading runs", enabled=True) as (_, advance):
        def on_run() -> None:
            selected.append(1)
            advance(1)

        plan = runsync.set(project, filters=filters, order=order, limit=limit, set=pairs, add_tags=add_tags,
                           remove_tags=remove_tags, clear=clear, include_running=include_running, strict=strict,
                           new_keys=new_keys, backend=backend, on_run=on_run,
                           allow_text=allow_text)
    show_plan(plan, fmt, f"Selected {counted(len(selected), 'run')} of {plan.project}.", pager=not no_pager)
    if report_path:
        write_plan_report(plan, report_path)
    if plan.errors:
        err.print(f"{counted(len(plan.errors), 'error')}: nothing written.")
        sys.exit(ExitCode.FAILED)
    if dry_run or not plan.changes:
        if dry_run and plan.changes:
            needs = " and with --new-keys" if plan.new_key_counts and not new_keys else ""
            err.print(f"Dry run: nothing written. Run the same command without --dry-run{needs} to apply.")
        sys.exit(ExitCode.CHANGES_PENDING if detailed_exitcode and plan.changes and dry_run else ExitCode.OK)
    confirm_and_apply(plan, yes=yes, interactive=_interactive(), journal=journal, backend=backend,
                      concurrency=concurrency, batch_size=batch_size, verify=not no_verify)
