"""`runsync demo`."""
from __future__ import annotations

import sys

import click

from runsync.cli.common import stdout_console


@click.command()
@click.option("--keep", type=click.Path(file_okay=False), help="Keep the demo's files (sheet, journal) here.")
@click.option("--tracker", type=click.Choice(["wandb", "mlflow"]), default="wandb", show_default=True,
              help="wandb: a built-in W&B sandbox; mlflow: a real local mlflow server (needs runsync[mlflow]).")
def demo(keep: str | None, tracker: str) -> None:
    """Run export -> edit -> dry-run -> import on a built-in sandbox; no W&B account needed.

    \b
    Examples:
      runsync demo
      runsync demo --tracker mlflow --keep demo-files
    """
    from pathlib import Path

    from runsync.demo import run_demo

    workdir = None
    if keep:
        workdir = Path(keep)
        workdir.mkdir(parents=True, exist_ok=True)
    sys.exit(run_demo(stdout_console(), workdir, tracker))
