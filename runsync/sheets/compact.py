"""A read sheet's rows and base as CompactRows (issue 20 §4): what a plan of 100,000 runs holds the longest.

Rows with the same columns share one column index, and a text that repeats down a column (a group, a state,
a dataset, `FALSE` in a CSV's tag column) is held once: a reader makes a new copy of it for every cell.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from runsync.model import ID, CompactRow

# Every this many rows, a column whose texts mostly differ (ids, names, URLs, times) stops being looked up:
# its table would hold a copy of the column for nothing.
_SAMPLE = 1_000


class Compactor:
    """Makes the CompactRows of one sheet (its rows, or its base), sharing indexes and repeated texts.

    `sheet_rows`: for a base, the sheet's rows read already: a run's id and the values its row holds equal
    (every cell of an untouched row) are kept once, the row's.
    """

    def __init__(self, sheet_rows: Iterable[tuple[int, Mapping[str, Any]]] = ()) -> None:
        self._by_id = {cells.get(ID): cells for _, cells in sheet_rows}
        self._layouts: dict[tuple[str, ...], dict[str, int]] = {}
        self._texts: dict[str, dict[str, str] | None] = {}  # column -> {text: its one copy}; None: not worth it
        self._rows = 0

    def layout(self, columns: Iterable[str]) -> dict[str, int]:
        """The shared column -> position index of rows holding `columns`, in this order."""
        key = tuple(columns)
        index = self._layouts.get(key)
        if index is None:
            index = self._layouts[key] = {column: at for at, column in enumerate(key)}
        return index

    def texts(self, column: str) -> dict[str, str] | None:
        """The table holding one copy of each text of `column` (setdefault(text, text)), or None."""
        table = self._texts.get(column, _UNSEEN)
        if table is _UNSEEN:
            table = self._texts[column] = {}
        return table

    def counted(self) -> bool:
        """One more row made; every _SAMPLE rows, drop the tables of columns whose texts mostly differ.
        Whether it dropped any (a caller holding tables asks for them again)."""
        self._rows += 1
        if self._rows % _SAMPLE:
            return False
        dropped = [column for column, table in self._texts.items() if table is not None and len(table) * 2 > self._rows]
        for column in dropped:
            self._texts[column] = None
        return bool(dropped)

    def base(self, run_id: str, values: Any) -> tuple[str, Any]:
        """A run's base as it is kept: (its id, its values as a CompactRow); a base that is no dict, as it is."""
        cells = self._by_id.get(run_id)
        if cells is not None:
            run_id = cells[ID]
        return run_id, self.row(values, cells) if isinstance(values, dict) else values

    def row(self, values: Mapping[str, Any], like: Mapping[str, Any] | None = None) -> CompactRow:
        """`values` (e.g. a base as JSON gave it) as a CompactRow with the same items, in the same order.

        `like`: the run's row in the sheet: a text or float it holds equal to a value (an untouched cell holds
        its base) is kept once, the row's.
        """
        index = self.layout(values)
        texts = self._texts
        held = []
        for column, value in values.items():  # texts(), inlined: a 100,000-run base has 2.7 million values
            kind = type(value)
            if kind is str or kind is float:
                if like is not None:
                    other = like.get(column)
                    # (not -0.0 for 0.0: equal, yet each is what it is)
                    if type(other) is kind and other == value and (value or repr(other) == repr(value)):
                        held.append(other)
                        continue
                if kind is str:
                    table = texts.get(column, _UNSEEN)
                    if table is _UNSEEN:
                        table = texts[column] = {}
                    if table is not None:
                        value = table.setdefault(value, value)
            held.append(value)
        self.counted()
        return CompactRow(index, tuple(held))


_UNSEEN: Any = object()


def compact_base(base: Mapping[str, Any], sheet_rows: Iterable[tuple[int, Mapping[str, Any]]]
                 ) -> dict[str, Mapping[str, Any]]:
    """A base read whole (a CSV's sidecar) as Compactor.base keeps each run's."""
    compactor = Compactor(sheet_rows)
    return dict(compactor.base(run_id, values) for run_id, values in base.items())
