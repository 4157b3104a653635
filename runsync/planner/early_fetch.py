"""A plan's W&B read, started while the sheet is still being read (issue 13 §3).

Reading a 50,000-run sheet and reading its runs from W&B each take seconds, and the second mostly waits
on the server. The XLSX reader says which ids the sheet seems to hold as soon as calamine has read the file
(`read_xlsx(on_ids=...)`); the runs are read on a thread from then on. The plan uses that read only when it
was asked exactly as the plan would ask it (same project, same ids in the same order, same summary
choice); otherwise the plan reads W&B itself, as it would have.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from runsync.backend import Backend, parse_project_address
from runsync.model import RunRecord


class EarlyFetch:
    """`backend.fetch_by_ids` for the ids a sheet seems to hold, on a thread; `take` gives its outcome."""

    def __init__(self, backend: Backend | None, project: str | None = None,
                 on_total: Callable[[int], None] | None = None, on_run: Callable[[], None] | None = None) -> None:
        self.backend = backend
        self.on_total, self.on_run = on_total, on_run  # progress: runs to read, and each one read
        self.project = project  # the plan's --project: a sheet from another project is not read ahead
        self._asked: tuple[str, list[str], bool] | None = None
        self._thread: threading.Thread | None = None
        self._live: dict[str, RunRecord] | None = None
        self._error: BaseException | None = None
        self._warnings: list[str] = []

    def start(self, header: dict[str, Any], ids: list[str]) -> None:
        """Begin reading (the reader's `on_ids`): `header` is the sheet's metadata header."""
        project = header.get("project")
        if self._thread is not None or not ids or not isinstance(project, str) or self.backend is None:
            return
        if self.project is not None and self.project != project:
            return
        try:
            parse_project_address(project)
        except Exception:  # the plan says what is wrong with it
            return
        with_summary = bool(header.get("editable_summary"))
        self._asked = (project, list(ids), with_summary)
        if self.on_total is not None:
            self.on_total(len(set(ids)))
        self._thread = threading.Thread(target=self._fetch, name="runsync-early-fetch", daemon=True)
        self._thread.start()

    def _fetch(self) -> None:
        assert self._asked is not None
        project, ids, with_summary = self._asked
        assert self.backend is not None  # start() reads only with one
        try:
            self._live = self.backend.fetch_by_ids(project, ids, on_warning=self._warnings.append,
                                                   with_summary=with_summary, on_run=self.on_run)
        except BaseException as exc:  # raised by `take`, in the plan's thread, where the plan would have
            self._error = exc

    def take(self, project: str, ids: list[str], with_summary: bool,
             on_warning: Callable[[str], None]) -> dict[str, RunRecord] | None:
        """The runs read ahead if they were asked exactly so (else None: read them now); raises what the read did.

        A read ahead that is not used is waited for all the same (rare: ids calamine reads otherwise than
        openpyxl), so that nothing of it outlives the plan.
        """
        if self._thread is None:
            return None
        self._thread.join()
        if self._asked != (project, ids, with_summary):
            return None
        for warning in self._warnings:
            on_warning(warning)
        if self._error is not None:
            raise self._error
        return self._live
