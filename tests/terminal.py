"""Run the real CLI on a pseudo-terminal (a pty of a given size), as a person at a terminal would."""
from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Sequence
from dataclasses import dataclass

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]|\x1b[()][0-9A-Za-z]|\r|\x08")


@dataclass
class TerminalRun:
    exit_code: int
    raw: str  # everything the terminal received, escape sequences included

    @property
    def text(self) -> str:
        return ANSI.sub("", self.raw)


def _own_terminal() -> None:  # in the child: a session of its own with the pty as its controlling terminal
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def on_terminal(args: Sequence[str], env: dict[str, str], *, rows: int = 12, cols: int = 100,
                keys: Sequence[tuple[str, bytes]] = (), timeout: float = 120) -> TerminalRun:
    """`python -m runsync ARGS` with stdin, stdout and stderr on one pty; `keys`: (text to wait for, bytes to type)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "runsync", *args], stdin=slave, stdout=slave, stderr=slave,
                            env={**env, "TERM": "xterm", "COLUMNS": str(cols), "LINES": str(rows)},
                            preexec_fn=_own_terminal, close_fds=True)
    os.close(slave)
    out, pending, deadline = b"", list(keys), time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if pending and pending[0][0].encode() in ANSI.sub("", out.decode(errors="replace")).encode():
                os.write(master, pending.pop(0)[1])
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every end of the pty's slave side is closed
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
        else:
            raise AssertionError(f"runsync {' '.join(args)} still running after {timeout} s:\n{out.decode(errors='replace')}")
        return TerminalRun(proc.wait(timeout=10), out.decode("utf-8", errors="replace"))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
