"""`runsync export`."""
from __future__ import annotations

import json
import os
import sys

import click

from runsync.backend import capabilities
from runsync.cli.common import progress, split_list, stderr_console, tracking_uri_option
from runsync.errors import ConfigError, ExitCode


def parse_filters(pairs: tuple[str, ...], filters_json: str | None, project: str | None = None
                  ) -> dict | str | None:
    """`--filter K=V` pairs (V as JSON when it parses, else text; always text on a text field such as tags: the
    project's tracker says which), AND-ed with `--filters JSON` (MLflow: its own filter string)."""
    caps = capabilities(project)
    filter_value = caps.filter_value
    parts: list[dict | str] = []
    if filters_json and caps.filter_text:  # MLflow's own filter string, passed as is
        parts.append(filters_json)
    elif filters_json:
        try:
            loaded = json.loads(filters_json)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--filters is not valid JSON: {exc}") from None
        if not isinstance(loaded, dict):
            raise ConfigError("--filters must be a JSON object, e.g. '{\"state\": \"finished\"}'")
        parts.append(loaded)
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--filter takes KEY=VALUE, got {pair!r}")
        parts.append({key.strip(): filter_value(key.strip(), raw)})
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return {"$and": parts}  # MLflow's filter string among them is and-ed as it is


def _stamp(path: str) -> tuple[int, int] | None:
    """(size, mtime) of a file, None when there is none: tells whether an interrupted export replaced it."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


@click.command()
@click.argument("project", metavar="PROJECT")
@click.option("-o", "--output", "output", required=True, type=click.Path(),
              help="Where to write: FILE.xlsx or FILE.csv (CSV gets a FILE.csv.runsync.json sidecar).")
@click.option("--filter", "filter_pairs", multiple=True, metavar="KEY=VALUE",
              help="Keep runs where KEY equals VALUE (JSON if it parses). Repeatable; AND-ed.")
@click.option("--filters", "filters_json", metavar="FILTER",
              help="Any W&B filter as JSON, e.g. '{\"$or\": [...]}'; MLflow: its filter string, e.g. "
                   "\"metrics.acc > 0.9\".")
@click.option("--order", help="Sort order, e.g. -created_at or +config.lr.value.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many runs.")
@click.option("--columns", help="Only these columns (comma-separated; id is always kept).")
@click.option("--config-keys", help="Only these config keys and what is under them (comma-separated).")
@click.option("--summary", help="Summary metrics to add as read-only columns, e.g. acc,loss.")
@click.option("--edit-summary", is_flag=True, help="Make the --summary columns editable (written back by import).")
@click.option("--tag-columns", is_flag=True, help="Add one TRUE/FALSE column per tag (tag:NAME) to tick.")
@click.option("--overwrite", is_flag=True,
              help="Replace FILE even if it has edits not imported yet (or can't be read as a runsync sheet).")
@tracking_uri_option
def export(project: str, output: str, filter_pairs: tuple[str, ...], filters_json: str | None, order: str | None,
           limit: int | None, columns: str | None, config_keys: str | None, summary: str | None, edit_summary: bool,
           tag_columns: bool, overwrite: bool, tracking_uri: str | None) -> None:
    """Write a project's runs to a spreadsheet (PROJECT: ENTITY/PROJECT for W&B; mlflow:EXPERIMENT or
    mlflow:id=N for MLflow).

    \b
    Examples:
      runsync export my-team/cifar -o runs.xlsx
      runsync export my-team/cifar --filter config.dataset=cifar10 --filter state=finished -o runs.csv
      runsync export my-team/cifar --filters '{"tags": {"$in": ["baseline"]}}' --summary acc,loss -o runs.xlsx
      runsync export my-team/cifar -o runs.xlsx --overwrite   # start over, dropping edits not imported
      runsync export mlflow:cifar --filters "metrics.acc > 0.9" --summary acc -o runs.xlsx
    """
    import shlex

    from rich.markup import escape

    import runsync
    from runsync.backend import parse_project_address
    from runsync.exporter.table import ExportShape

    selection = runsync.Selection(parse_filters(filter_pairs, filters_json, project), order, limit)
    shape = ExportShape(columns=split_list(columns), config_keys=split_list(config_keys),
                        summary=split_list(summary) or (), tag_columns=tag_columns, edit_summary=edit_summary)
    before = _stamp(output)
    try:
        with progress("Fetching runs", enabled=True) as (set_total, advance):
            result = runsync.export(project, output, selection=selection, shape=shape,
                                    on_total=set_total, on_run=advance, overwrite=overwrite,
                                    tracking_uri=tracking_uri)
    except KeyboardInterrupt:
        # An export only reads W&B; the sheet is written whole (a temp file renamed) or not at all.
        kept = "was not written" if before is None else "was left as it was"
        sheet = f"{output} {kept}" if _stamp(output) == before else f"{output} was written"
        stderr_console().print(f"interrupted: the export stopped; nothing was written to W&B ({sheet})",
                               markup=False)
        sys.exit(ExitCode.INTERRUPTED)
    project = parse_project_address(project).path  # as the file records it: `team/proj/` -> `team/proj`
    err = stderr_console()
    for warning in result.warnings:
        err.print(f"[yellow]warning:[/yellow] {escape(warning)}")
    err.print(f"Exported {result.runs} runs of {project} to {result.path} ({len(result.columns)} columns).")
    err.print(f"Edit it, then see what would change: runsync import {escape(shlex.quote(result.path))} --dry-run")
