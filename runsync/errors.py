"""One error tree and one exit-code table for the whole of runsync."""
from __future__ import annotations

import enum
from dataclasses import dataclass


class ExitCode(enum.IntEnum):
    """Process exit codes; documented in README "Exit codes"."""

    OK = 0  # done, or nothing to do
    FAILED = 1  # errors, conflicts, refused input, unapplied changes: nothing (more) written
    CHANGES_PENDING = 2  # --detailed-exitcode: a dry-run found changes
    INTERRUPTED = 130


@dataclass(frozen=True)
class CellError:
    """A problem with one cell (or row, or column) of a sheet: data, not an exception."""

    file: str
    row: int | None  # 1-based row as a spreadsheet program shows it (header is row 1)
    run_id: str | None
    column: str | None
    message: str
    raw: object = None

    def one_line(self) -> str:
        where = [self.file]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.run_id:
            where.append(f"run {self.run_id}")
        if self.column:
            where.append(f"column {self.column!r}")
        return f"{': '.join([', '.join(where), self.message])}"

    def to_json(self) -> dict:
        return {"row": self.row, "run_id": self.run_id, "column": self.column, "message": self.message}


class RunsyncError(Exception):
    """Base of every error runsync reports to the user (never with a traceback unless --debug)."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class SheetError(RunsyncError):
    """The sheet cannot be used; carries every cell problem found, not only the first."""

    def __init__(self, errors: list[CellError], *, hint: str | None = None) -> None:
        self.errors = list(errors)
        first = errors[0].one_line() if errors else "invalid sheet"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(first + more, hint=hint)


class BackendError(RunsyncError):
    """W&B (or the sandbox) could not be reached or refused a request."""


class ConfigError(RunsyncError):
    """Bad options or environment (missing API key, bad project path, ...)."""


class JournalError(RunsyncError):
    """The undo journal is unreadable or does not match."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C while writing: how far the apply got and where that is journaled (a KeyboardInterrupt still)."""

    def __init__(self, journal: str, runs_written: int, runs_planned: int, *, undo: bool = False,
                 continues: bool = False) -> None:
        super().__init__(journal)
        self.journal = journal
        self.runs_written = runs_written
        self.runs_planned = runs_planned
        self.undo = undo  # the apply of an undo (its journal is JOURNAL.undo.jsonl)
        self.continues = continues  # a re-run continues this journal (an import of a sheet's export)
