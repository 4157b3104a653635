"""A text plan taller than the terminal goes through a pager, as git's output does; piped output never does."""
from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any, cast

from rich.cells import cell_len
from rich.console import Console


def pager_command() -> str | None:
    """RUNSYNC_PAGER, else PAGER, else less; empty or `cat` means none (as GIT_PAGER and PAGER do for git)."""
    command = os.environ.get("RUNSYNC_PAGER")
    if command is None:
        command = os.environ.get("PAGER", "less")
    command = command.strip()
    return None if command in ("", "cat") else command


def print_paged(render: Callable[[Console], None], out: Console, *, pager: bool = True) -> None:
    """`render(console)` on `out`; on a terminal, through the pager when it would not fit on one screen."""
    command = pager_command() if pager and out.is_terminal and sys.stdout.isatty() else None
    if command is None:
        render(out)  # piped or --no-pager: exactly what is printed without a pager
        return
    buffer = io.StringIO()
    capture = Console(file=buffer, force_terminal=True, color_system=cast(Any, out.color_system), no_color=out.no_color,
                      width=out.width, highlight=False, soft_wrap=True, record=True)
    render(capture)
    text = buffer.getvalue()
    rows = sum(max(1, -(-cell_len(line) // max(1, out.width))) for line in capture.export_text().splitlines())
    if rows < out.height:  # fits with the prompt below it
        out.file.write(text)
        out.file.flush()
        return
    _page(command, text)


def _page(command: str, text: str) -> None:
    # git's defaults: less quits when it fits (-F), keeps colours (-R), leaves the text on screen (-X).
    env = {**os.environ, "LESS": os.environ.get("LESS", "FRX"), "LV": os.environ.get("LV", "-c")}
    sys.stdout.flush()
    try:
        proc = subprocess.Popen(command, shell=True, stdin=subprocess.PIPE, env=env)  # as git runs $PAGER
    except OSError:
        sys.stdout.write(text)
        return
    assert proc.stdin is not None
    try:
        proc.stdin.write(text.encode(sys.stdout.encoding or "utf-8", errors="replace"))
        proc.stdin.close()
    except BrokenPipeError:  # quit before the end (q in less): the rest is not wanted
        pass
    while True:
        try:
            proc.wait()
            return
        except KeyboardInterrupt:  # Ctrl-C is the pager's to handle (less stops a search); wait for it to quit
            continue
