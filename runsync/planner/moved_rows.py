"""Sorting only the id column (the classic spreadsheet slip): cells stay, ids move. Detected from the
exported values, whatever columns were exported. Pure."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from runsync.fields import codec
from runsync.model import ABSENT

Row = tuple[int, str, Mapping[str, Any]]  # (row number, run id, raw cells)


def ids_moved_alone(rows: Sequence[Row], known: Sequence[str], base_print: Callable[[str], tuple],
                    row_print: Callable[[str, Mapping[str, Any]], tuple]) -> list[tuple[int, str, str]]:
    """(row, run id, other run) for rows whose cells are all another run's exported values while that run's
    row differs from its export too; empty unless at least two rows do.

    `rows` are the rows where some cell is not its exported value, `known` the run ids among them that the
    export holds. An edit that copies one run's values to another leaves the other run's row as it was, so
    it is not mistaken for a sort.
    """
    owners: dict[tuple, list[str]] = {}
    for run_id in set(known):
        owners.setdefault(base_print(run_id), []).append(run_id)
    differing = {r for _, r, _ in rows}
    ours = set(known)
    moved = []
    for row_number, run_id, cells in rows:
        if run_id not in ours:
            continue
        holds = row_print(run_id, cells)
        others = [o for o in owners.get(holds, ()) if o != run_id and o in differing]
        if others and holds != base_print(run_id):
            moved.append((row_number, run_id, others[0]))
    return moved if len(moved) >= 2 else []


def fingerprint(column: str, value: Any) -> Any:
    """A hashable stand-in for a cell's value that is equal where `same` would be (close enough to match rows)."""
    if value is ABSENT or value is None or value == "":
        return None
    if column == "tags" and isinstance(value, (list, tuple)):
        return tuple(sorted(value))
    if isinstance(value, float):
        return ("f", f"{value:.15g}")
    if isinstance(value, str):
        return codec._normalize_newlines(value)
    if isinstance(value, (list, tuple, dict)):
        return codec.to_json_text(value)
    return (type(value).__name__, value)


def moved_message(moved: list[tuple[int, str, str]]) -> str:
    examples = "; ".join(f"row {row} (run {rid}) holds run {other}'s values" for row, rid, other in moved[:3])
    return (f"the id column looks sorted on its own: {len(moved)} rows hold the values another run had at "
            f"export ({examples}). Undo the sort (sort whole rows, never one column) and import again")


def ids_moved_over(rows: Sequence[Row], known: Sequence[str], columns: list[str], base_of: Callable[[str, str], Any],
                   column_types: dict[str, str | None], source: str) -> list[tuple[int, str, str]]:
    """ids_moved_alone over `columns`: each run's exported values (`base_of(run id, column)`) against the rows'
    cells, decoded as the planner decodes them."""
    def base_print(run_id: str) -> tuple:
        return tuple(fingerprint(c, base_of(run_id, c)) for c in columns)

    def row_print(run_id: str, cells: Mapping[str, Any]) -> tuple:
        out = []
        for column in columns:
            value = codec.decode_cell(cells.get(column), column=column, base=base_of(run_id, column),
                                      column_type=column_types.get(column), source=source)
            out.append(fingerprint(column, ABSENT if value is None else value))
        return tuple(out)

    return ids_moved_alone(rows, known, base_print, row_print)
