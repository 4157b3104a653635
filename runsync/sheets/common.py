"""What the sheet formats share: cell text, header names, column notes, the atomic write and how rows become
a SheetData."""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import IO, Any, Protocol

from runsync.errors import CellError
from runsync.fields import kind_of
from runsync.model import ID, CompactRow
from runsync.sheets.compact import Compactor


class Rows(Protocol):
    """The runs a sheet is written from, each a {column: typed value} dict: a list, or rows read back from a
    spill file (runsync.exporter.spill), so every pass over them is a fresh iteration from the first run."""

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[dict[str, Any]]: ...


BaseRows = Iterable[tuple[str, Mapping[str, Any]]]  # (run id, base values) as SheetMeta.base.items() gives them


def sidecar_path(path: str | os.PathLike) -> str:
    """Where a CSV keeps its metadata: `FILE.csv.runsync.json`."""
    return os.fspath(path) + ".runsync.json"


def cell_value(column: str, value: Any) -> Any:
    """The value that goes into the cell: tags are one comma-separated text cell."""
    return kind_of(column).cell(value)


def column_note(column: str, notes: dict[str, str] | None = None, editable_summary: Collection[str] = ()) -> str:
    """The header note that tells a person what a column is and how to edit it."""
    if notes and column in notes:
        return notes[column]
    return kind_of(column, editable_summary).note(column)


def header_name(raw: Any) -> str:
    """A header cell as a column name: stray spaces trimmed, except in config keys and tags, where they are real."""
    text = "" if raw is None else str(raw)
    return text if kind_of(text).exact_name else text.strip()


def id_text(raw: Any) -> str:
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    return str(raw).strip()


@contextlib.contextmanager
def atomic_output(path: str, mode: str = "wb", **kwargs: Any) -> Iterator[IO[Any]]:
    """A temp file beside `path` that replaces it only when the block finishes without error."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):  # else mkstemp's FileNotFoundError names only the temp file
        raise ValueError(f"folder {directory} does not exist")
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a sheet is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


_TWIN, _NO_HEADER = -1, -2  # assemble's slots of a cell under a repeated header, under none


def assemble(path: str, header: list[Any], rows: Iterator[tuple[int, list[Any]]],
             errors: list[CellError], warnings: list[str]) -> tuple[list[str], list[tuple[int, Mapping[str, Any]]]]:
    """Turn a header and numbered raw rows into SheetData columns/rows, checking ids and headers."""
    names = [header_name(h) for h in header]
    while names and names[-1] == "":
        names.pop()
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name and name in seen:
            errors.append(CellError(path, 1, None, name, f"duplicate column {name!r} (also column {seen[name] + 1})"))
        seen.setdefault(name, i)
    if ID not in seen:
        errors.append(CellError(path, 1, None, None, "no 'id' column: runsync needs it to match rows to runs"))
    columns = [n for n in names if n]
    # Every row holds every column once (a twin column's first cell counts), in the header's order: one
    # index for all rows (runsync.sheets.compact). slots[i]: where cell i goes, or _TWIN / _NO_HEADER.
    compactor = Compactor()
    index = compactor.layout(dict.fromkeys(columns))
    slots = [index[name] if name and seen[name] == i else _TWIN if name else _NO_HEADER for i, name in enumerate(names)]
    texts = [compactor.texts(name) for name in index]
    id_at = index.get(ID)
    out: list[tuple[int, Mapping[str, Any]]] = []
    ids: dict[str, int] = {}
    blank: list[int] = []  # rows with no id: an error among the runs, a comment or total row below them
    for row_no, cells in rows:
        if all(c is None or c == "" for c in cells):
            continue  # blank rows are layout, not runs
        values: list[Any] = [None] * len(index)
        stray = len(cells) > len(slots)
        for at, raw in zip(slots, cells, strict=False):  # cells past the header: `stray`
            if at >= 0:
                if type(raw) is str and (table := texts[at]) is not None:
                    raw = table.setdefault(raw, raw)  # one copy of a text that repeats down the column
                values[at] = raw
            elif at == _NO_HEADER and raw is not None and raw != "":
                stray = True
        if stray:
            errors.extend(CellError(path, row_no, None, None, f"a value in column {i + 1}, which has no header", raw)
                          for i, raw in enumerate(cells)
                          if (i >= len(names) or names[i] == "") and raw is not None and raw != "")
        if id_at is not None:
            rid = values[id_at]
            if rid is None or (isinstance(rid, str) and not rid.strip()):
                blank.append(row_no)
                continue
            else:
                key = id_text(rid)
                values[id_at] = key  # a program may have turned a digit-only id into a number
                if key in ids:
                    errors.append(CellError(path, row_no, key, ID, f"duplicate id {key!r} (also row {ids[key]})"))
                ids.setdefault(key, row_no)
        out.append((row_no, CompactRow(index, tuple(values))))
        if compactor.counted():
            texts = [compactor.texts(name) for name in index]
    last_run = out[-1][0] if out else 0
    for row_no in blank:
        if row_no > last_run:  # below the data: a comment or a total row a person added, not a run
            warnings.append(f"{path}: row {row_no} has no id and comes after the runs (a comment or total row?): "
                            "skipped")
        else:
            errors.append(CellError(path, row_no, None, ID, "blank id: every row needs its run id"))
    return columns, out
