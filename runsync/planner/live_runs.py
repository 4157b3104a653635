"""A plan's W&B runs read a chunk of ids at a time, and forgotten once planned (issue 20 §4).

At 100,000 runs all of W&B's runs at once were ~530 MiB of a plan (each RunRecord keeps its config twice,
as W&B sends it and unwrapped). The planner compares the sheet and W&B run by run, so `LiveRuns` reads the
sheet's ids in chunks on a thread and holds a bounded number of runs not planned yet; the planner releases
each run after its last row, keeping only the runs its plan names (changes, conflicts, W&B-only changes:
their records are what the size check, the running-run check and the run links ask for).
"""
from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping

from runsync.backend import Backend
from runsync.model import RunRecord

# Ids per fetch_by_ids call, and about as many runs read but not planned yet before the reader waits. Each call
# starts its pages small again (250 ids a query, growing), so a chunk is many pages: few restarts.
CHUNK_IDS = 10_000


class LiveRuns(Mapping[str, RunRecord]):
    """`backend.fetch_by_ids(project, ids)` as a Mapping filled chunk by chunk from a thread.

    `get` waits until the run is read (or the read is over: then a run W&B lacks is None); iterating waits for
    the whole read and is refused once a run was released. The read's warnings are in `warnings` when
    `finish()` returns; its error is raised by the next call that waits, and by `finish()`.
    """

    def __init__(self, backend: Backend, project: str, ids: list[str], with_summary: bool,
                 on_run: Callable[[], None] | None = None, chunk: int | None = None) -> None:
        self.asked = (project, list(ids), with_summary)
        self.warnings: list[str] = []
        self._uses = Counter(ids)  # rows left per id: a run in the sheet twice is released after its last row
        self._wanted = set(ids)
        self._records: dict[str, RunRecord] = {}
        self._unplanned = 0  # runs read that the planner has not asked for yet
        self._asked_for: set[str] = set()
        self._kept: set[str] = set()
        self._released = False
        self._waiting = 0  # a reader of this mapping waits: the thread must not wait too (it would never end)
        self._done = self._stopped = False
        self._error: BaseException | None = None
        self._chunk = max(1, chunk or CHUNK_IDS)
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(backend, on_run), name="runsync-live-runs",
                                        daemon=True)
        self._thread.start()

    def _read(self, backend: Backend, on_run: Callable[[], None] | None) -> None:
        project, ids, with_summary = self.asked
        wanted = list(dict.fromkeys(ids))
        try:
            for start in range(0, len(wanted), self._chunk):
                with self._cond:  # hold at most about one chunk of runs not planned yet
                    self._cond.wait_for(lambda: self._stopped or self._waiting or self._unplanned < self._chunk)
                    if self._stopped:
                        return
                found = backend.fetch_by_ids(project, wanted[start : start + self._chunk],
                                             on_warning=self.warnings.append, with_summary=with_summary,
                                             on_run=on_run)
                with self._cond:
                    self._records.update(found)
                    self._unplanned += sum(1 for run_id in found if run_id not in self._asked_for)
                    self._cond.notify_all()
        except BaseException as exc:  # raised in the plan's thread, where the plan would have
            self._error = exc
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def _wait(self, ready: Callable[[], bool]) -> None:
        with self._cond:
            self._waiting += 1
            self._cond.notify_all()
            try:
                self._cond.wait_for(lambda: ready() or self._done)
            finally:
                self._waiting -= 1
        if self._error is not None:
            raise self._error

    def get(self, run_id: str, default: RunRecord | None = None) -> RunRecord | None:  # type: ignore[override]
        if run_id not in self._wanted:
            return default
        if run_id not in self._records:
            self._wait(lambda: run_id in self._records)
        record = self._records.get(run_id)
        with self._cond:
            if record is not None and run_id not in self._asked_for:
                self._asked_for.add(run_id)
                self._unplanned -= 1
                self._cond.notify_all()
        return default if record is None else record

    def __getitem__(self, run_id: str) -> RunRecord:
        record = self.get(run_id)
        if record is None:
            raise KeyError(run_id)
        return record

    def __iter__(self) -> Iterator[str]:
        self._wait(lambda: False)
        if self._released:
            raise RuntimeError("LiveRuns: iterated after runs were released")  # a planner bug, not the user's
        return iter(self._records)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def planned(self, run_id: str, keep: bool) -> None:
        """The planner is done with one row of `run_id`: forget the run after its last row, unless `keep`."""
        self._uses[run_id] -= 1
        if keep:
            self._kept.add(run_id)  # never released: the plan names it
        elif self._uses[run_id] <= 0 and run_id not in self._kept and run_id in self._records:
            self._released = True
            del self._records[run_id]

    def finish(self) -> None:
        """Wait for the read's end; raise its error."""
        self._thread.join()
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        """End the read after the chunk being read (a read ahead the plan does not use), and wait for it."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._thread.join()
