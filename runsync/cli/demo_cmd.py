"""`runsync demo`."""
from __future__ import annotations

import sys

import click

from runsync.cli.common import stdout_console


@click.command()
@click.option("--keep", type=click.Path(file_okay=False), help="Keep the demo's files (sheet, journal) here.")
def demo(keep: str | None) -> None:
    """Run export -> edit -> dry-run -> import on a built-in sandbox; no W&B account needed.

    \b
    Example:
      runsync demo
    """
    from pathlib import Path

    from runsync.demo import run_demo

    workdir = None
    if keep:
        workdir = Path(keep)
        workdir.mkdir(parents=True, exist_ok=True)
    sys.exit(run_demo(stdout_console(), workdir))
