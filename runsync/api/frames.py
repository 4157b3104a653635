"""The export as a pandas DataFrame (`runsync.frame`), and an edited DataFrame read as a sheet."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runsync.api.exports import Selection, fetch_table
from runsync.backend import Backend, connect
from runsync.errors import CellError
from runsync.exporter.table import ExportShape
from runsync.model import SheetData, SheetMeta
from runsync.sheets.frame_cells import FRAME_SOURCE

if TYPE_CHECKING:
    import pandas as pd


def frame(
    project: str,
    *,
    filters: dict[str, Any] | None = None,
    order: str | None = None,
    limit: int | None = None,
    shape: ExportShape = ExportShape(),
    backend: Backend | None = None,
) -> pd.DataFrame:
    """The export as a pandas DataFrame (number columns typed, others object); the base rides in `df.attrs`."""
    from runsync.sheets.frame_cells import typed_frame

    table, meta = fetch_table(project, Selection(filters, order, limit), shape, backend or connect(project), None, None)
    df = typed_frame(table.columns, table.rows)
    df.attrs["runsync"] = meta
    return df


def sheet_from_frame(df: pd.DataFrame, meta: SheetMeta | None) -> SheetData:
    """An edited DataFrame as if it were a sheet: each cell as the text a CSV would hold."""
    from runsync.sheets import assemble
    from runsync.sheets.frame_cells import frame_rows

    problems: list[tuple[int, str | None, str, str]] = []
    header, raw_rows = frame_rows(df, meta.base if meta is not None else {}, meta is None, problems)
    errors: list[CellError] = []
    warnings: list[str] = []
    columns, rows = assemble(FRAME_SOURCE, header, raw_rows, errors, warnings)
    errors.extend(CellError(FRAME_SOURCE, row, run_id, column, message) for row, run_id, column, message in problems)
    return SheetData(FRAME_SOURCE, columns, rows, meta, warnings, errors)
