"""The `runsync` command: parse options, call the library, print. Nothing else."""
from __future__ import annotations

import os
import sys

import click

from runsync.cli.common import RunsyncGroup
from runsync.errors import ExitCode
from runsync.version import __version__


@click.group(cls=RunsyncGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="runsync")
@click.option("--debug", is_flag=True, help="Show tracebacks for unexpected errors, and debug messages.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Curate Weights & Biases runs in a spreadsheet.

    \b
      runsync export ENTITY/PROJECT -o runs.xlsx     # write runs to a sheet
      (edit runs.xlsx in Excel, LibreOffice or Google Sheets)
      runsync import runs.xlsx --dry-run             # see what would change
      runsync import runs.xlsx                       # write it (journaled)
      runsync undo JOURNAL                           # put it back (the import prints the command)
      runsync set ENTITY/PROJECT --filter group=a --set group=b   # a bulk edit, no sheet

    Try it without an account: runsync demo
    """
    if debug or os.environ.get("RUNSYNC_DEBUG"):
        _debug_log(ctx)


def _debug_log(ctx: click.Context) -> None:
    """Show runsync's debug log (e.g. which XLSX reader ran) on stderr until the command ends."""
    import logging

    handler = logging.StreamHandler()  # the stderr of this invocation (CliRunner's in tests)
    handler.setFormatter(logging.Formatter("debug: %(message)s"))
    logger = logging.getLogger("runsync")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)

    def restore() -> None:
        logger.removeHandler(handler)
        logger.setLevel(level)

    ctx.call_on_close(restore)


def _register() -> None:
    from runsync.cli.demo_cmd import demo
    from runsync.cli.export_cmd import export
    from runsync.cli.import_cmd import import_
    from runsync.cli.sandbox import sandbox
    from runsync.cli.set_cmd import set_
    from runsync.cli.undo_cmd import undo

    for command in (export, import_, set_, undo, demo, sandbox):
        cli.add_command(command)


_register()


def main() -> None:
    """Entry point: click usage errors exit 1, like every other error (2 means "changes pending")."""
    try:
        rv = cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(ExitCode.FAILED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(ExitCode.FAILED)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    sys.exit(rv if isinstance(rv, int) else 0)
