"""An export's rows kept on disk while the runs arrive: an unnamed temporary file of pickled batches.

The header of a sheet needs every run's config keys and tags before the first row is written, so the rows wait
somewhere; in memory they cost ~4 KB a run (issue 20 §4: 100,000 runs took 500 MiB). Here they wait in a file
that has no name (gone when closed, or when the process dies), read back batch by batch as often as the writer
needs: for the drop-downs, the rows, the base snapshot.
"""
from __future__ import annotations

import os
import pickle
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

BATCH_ROWS = 500  # rows pickled together: few writes, and what is held per pass over the rows


class RowSpill:
    """Rows appended one by one, read back in order by any number of passes, each on its own (a pass may begin
    inside another: the writer's refusal of an over-long cell looks for every other such cell).

    `finish`, once set, is applied to each row as it is read back (e.g. the tag ticks, known only at the end).
    Use it as a context manager: the file is closed, so removed, however the block ends.
    """

    def __init__(self, folder: str | None = None) -> None:
        self._file = tempfile.TemporaryFile(prefix=".runsync-rows-", dir=folder)
        self._batch = BATCH_ROWS
        self._pending: list[dict[str, Any]] = []
        self._count = 0
        self.finish: Callable[[dict[str, Any]], dict[str, Any]] | None = None

    def append(self, row: dict[str, Any]) -> None:
        self._pending.append(row)
        self._count += 1
        if len(self._pending) >= self._batch:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._file.seek(0, os.SEEK_END)
            pickle.dump(self._pending, self._file, protocol=pickle.HIGHEST_PROTOCOL)
            self._pending = []

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[dict[str, Any]]:
        self._flush()
        end, at = self._file.seek(0, os.SEEK_END), 0
        while at < end:
            self._file.seek(at)  # another pass may have moved the file's position since this one's last read
            batch = pickle.load(self._file)
            at = self._file.tell()
            finish = self.finish
            yield from batch if finish is None else map(finish, batch)

    def close(self) -> None:
        self._pending = []
        self._file.close()

    def __enter__(self) -> RowSpill:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()
