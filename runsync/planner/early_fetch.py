"""A plan's W&B read, started while the sheet is still being read (issue 13 §3), a chunk of ids at a time.

Reading a 50,000-run sheet and reading its runs from W&B each take seconds, and the second mostly waits
on the server. The XLSX reader says which ids the sheet seems to hold as soon as calamine has read the file
(`read_xlsx(on_ids=...)`); the runs are read on a thread from then on. The plan uses that read only when it
was asked exactly as the plan would ask it (same project, same ids in the same order, same summary
choice); otherwise the plan reads W&B itself, as it would have. The read is a LiveRuns (planner/live_runs.py):
it holds about one chunk of runs the planner has not reached, so it waits while the sheet is still being read.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runsync.backend import Backend, parse_project_address
from runsync.planner.live_runs import LiveRuns


class EarlyFetch:
    """`backend.fetch_by_ids` for the ids a sheet seems to hold, in chunks on a thread; `take` gives its outcome."""

    def __init__(self, backend: Backend | None, project: str | None = None,
                 on_total: Callable[[int], None] | None = None, on_run: Callable[[], None] | None = None) -> None:
        self.backend = backend
        self.on_total, self.on_run = on_total, on_run  # progress: runs to read, and each one read
        self.project = project  # the plan's --project: a sheet from another project is not read ahead
        self._live: LiveRuns | None = None

    def start(self, header: dict[str, Any], ids: list[str]) -> None:
        """Begin reading (the reader's `on_ids`): `header` is the sheet's metadata header."""
        project = header.get("project")
        if self._live is not None or not ids or not isinstance(project, str) or self.backend is None:
            return
        if self.project is not None and self.project != project:
            return
        try:
            parse_project_address(project)
        except Exception:  # the plan says what is wrong with it
            return
        with_summary = bool(header.get("editable_summary"))
        if self.on_total is not None:
            self.on_total(len(set(ids)))
        self._live = LiveRuns(self.backend, project, list(ids), with_summary, self.on_run)

    def take(self, project: str, ids: list[str], with_summary: bool) -> LiveRuns | None:
        """The runs read ahead if they were asked exactly so (else None: read them now). The read goes on; its
        warnings and error come when the planner is done with it (LiveRuns.finish).

        A read ahead that is not used is ended (rare: ids calamine reads otherwise than openpyxl), so that
        nothing of it outlives the plan.
        """
        if self._live is None:
            return None
        if self._live.asked != (project, ids, with_summary):
            self._live.stop()
            return None
        return self._live
