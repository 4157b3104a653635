"""Sheet files on disk: write_sheet / read_sheet for .xlsx and .csv (format chosen by extension)."""
from __future__ import annotations

import os
from pathlib import Path

from runsync.errors import CellError, SheetError
from runsync.model import ID, SheetData, SheetMeta
from runsync.sheets.common import BaseRows, Rows, assemble, atomic_output, column_note, sidecar_path

__all__ = ["assemble", "atomic_output", "column_note", "read_sheet", "sidecar_path", "write_sheet"]

UNSUPPORTED = {".ods", ".xls", ".xlsm", ".xlsb", ".numbers", ".tsv", ".txt"}
# Read like a CSV (not written): Excel's "Unicode Text" is a UTF-16, tab-separated `.txt`; `.tsv` is the same idea.
READ_AS_CSV = {".txt", ".tsv"}


def _kind(path: str | os.PathLike) -> str:
    ext = Path(path).suffix.lower()
    if ext in (".xlsx", ".csv"):
        return ext
    if ext in UNSUPPORTED:
        raise ValueError(f"unsupported format {ext}: save as .xlsx or .csv")
    raise ValueError(f"cannot tell the sheet format from {os.fspath(path)!r}: use a .xlsx or .csv file name")


def write_sheet(path: str | os.PathLike, columns: list[str], records: Rows, meta: SheetMeta,
                *, notes: dict[str, str] | None = None, base: BaseRows | None = None) -> None:
    """Write runs to `path` (.xlsx or .csv) with `meta`, atomically; a missing key in a record is ABSENT.

    `base`: the base snapshot's (run id, values), when not `meta.base` (a streamed export's, read once).
    """
    kind = _kind(path)
    if ID not in columns:
        raise ValueError("the columns must include 'id'")
    if kind == ".xlsx":
        from runsync.sheets.xlsx_io import write_xlsx

        write_xlsx(os.fspath(path), columns, records, meta, notes=notes, base=base)
    else:
        from runsync.sheets.csv_io import write_csv

        write_csv(os.fspath(path), columns, records, meta, base=base)


def read_sheet(path: str | os.PathLike, *, base_path: str | None = None) -> SheetData:
    """Read raw cells, structural errors and metadata; raises SheetError if the file can't be read at all."""
    path = os.fspath(path)
    try:
        kind = ".csv" if Path(path).suffix.lower() in READ_AS_CSV else _kind(path)
    except ValueError as exc:
        raise SheetError([CellError(path, None, None, None, str(exc))]) from None
    if not os.path.exists(path):
        raise SheetError([CellError(path, None, None, None, "file not found")])
    if kind == ".xlsx":
        from runsync.sheets.xlsx_io import read_xlsx

        return read_xlsx(path)
    from runsync.sheets.csv_io import read_csv

    return read_csv(path, base_path=base_path)
