"""pandas values <-> sheet cells: what `runsync.frame()` puts in a DataFrame, and what a DataFrame's cells say.

A DataFrame holds numpy scalars (`np.int64`, `np.bool_`, `np.float32`), nullable dtypes' `pd.NA`, `NaT` and
`Timestamp`s besides Python values. Each is read as the value it stands for, in the text a CSV cell would hold
(the planner then decodes it as any sheet's); a value W&B can't hold is a problem naming the cell, not a
TypeError. Pure, no I/O; pandas and numpy are imported only when a DataFrame is in hand.
"""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from runsync.fields import codec
from runsync.fields.scalars import is_nan
from runsync.model import ABSENT, ID
from runsync.sheets.common import Rows

if TYPE_CHECKING:
    import pandas as pd

FRAME_SOURCE = "<DataFrame>"  # the "file" a DataFrame's plan, errors and journals name
_MAX_FLOAT_INT = 2**53  # an int beyond this is not one float64 value: its column stays object
_INT64 = (-(2**63), 2**63 - 1)


class Unwritable(ValueError):
    """A cell holding a value W&B can't store as such (a Timedelta, a Decimal, a set ...)."""


# --- frame(): typed columns ----------------------------------------------------------------------------

def typed_frame(columns: Sequence[str], rows: Rows) -> pd.DataFrame:
    """The export as a DataFrame: a column of numbers only (and gaps) gets a number dtype, so `describe()`
    and arithmetic work; every other column is object, holding the values as they are."""
    import numpy as np
    import pandas as pd

    cells = {c: [None if row.get(c, ABSENT) is ABSENT else row[c] for row in rows] for c in columns}
    df = pd.DataFrame(cells, columns=list(columns), dtype=object)
    for column, values in cells.items():
        numbers = [v for v in values if v is not None]
        if not numbers or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers):
            continue
        if all(isinstance(v, int) for v in numbers):
            if all(_INT64[0] <= v <= _INT64[1] for v in numbers):  # nullable: a gap is pd.NA, ints stay ints
                df[column] = pd.array(values, dtype="Int64")
        elif all(isinstance(v, float) or abs(v) <= _MAX_FLOAT_INT for v in numbers):
            df[column] = np.array([math.nan if v is None else float(v) for v in values], dtype="float64")
    return df


# --- plan(df): cells ------------------------------------------------------------------------------------

def frame_rows(df: pd.DataFrame, base: Mapping[str, Mapping[str, Any]], no_base: bool,
               problems: list[tuple[int, str | None, str, str]]) -> tuple[list[str], Iterator[tuple[int, list[Any]]]]:
    """The header and numbered rows (row 2 on, as a sheet's) of CSV cell texts a DataFrame stands for.

    `problems` gets (row, run id, column, message) for each cell that holds no writable value; such a
    cell reads as its exported value, so it plans nothing but the error.
    """
    if ID not in df.columns and df.index.name == ID:
        df = df.reset_index()  # `set_index("id")`: the ids are the index
    header = [str(c) for c in df.columns]
    data = [(str(c), _narrow_float(df.dtypes.iloc[k]), _float_dtype(df.dtypes.iloc[k]), df.iloc[:, k].tolist())
            for k, c in enumerate(df.columns)]
    ids = df.iloc[:, header.index(ID)].tolist() if ID in header else None

    def rows() -> Iterator[tuple[int, list[Any]]]:
        for i in range(len(df)):
            run_id = None if ids is None or _missing(ids[i]) else str(ids[i])
            run_base = base.get(run_id, {}) if run_id is not None else {}
            raw_row = []
            for column, narrow, float_column, values in data:
                old = run_base.get(column, ABSENT)
                try:
                    raw_row.append(cell_text(column, values[i], old, no_base, narrow, float_column))
                except Unwritable as exc:
                    problems.append((i + 2, run_id, column, str(exc)))
                    raw_row.append("" if old is ABSENT else _plain(column, old))
            yield i + 2, raw_row

    return header, rows()


def cell_text(column: str, value: Any, base: Any, no_base: bool = False, narrow: Any = None,
              float_column: bool = False) -> str | float:
    """The CSV text for a DataFrame cell (NaN itself where it stands for W&B's NaN); raises Unwritable.

    `narrow`: the numpy float type of a float32/float16 column: its values are compared with the base at
    that precision (a cast loses nothing W&B holds), an edit is the exact value held. `float_column`: a float
    dtype, where pandas holds 4 as 4.0: a whole number there over an int is that int.
    """
    value = native(value)
    if _missing(value):
        # NaN is W&B's value where the base (or, with no base, W&B) holds NaN; anywhere else it is pandas'
        # "missing", an empty cell. pd.NA is NaN in a nullable float column (convert_dtypes() makes it so).
        nan_like = is_nan(value) or type(value).__name__ == "NAType"
        if nan_like and (is_nan(base) or (no_base and is_nan(value))):
            return math.nan
        return ""
    if isinstance(value, _Narrow):
        if _number(base) and _same_at(value.held, base, value.narrow):
            return _plain(column, base)
        value = value.held
    elif narrow is not None and isinstance(value, float) and _number(base) and _same_at(value, base, narrow):
        return _plain(column, base)
    if float_column and isinstance(value, float) and value.is_integer() and _number(base) and isinstance(base, int):
        # A float column can't hold an int past 2**53 (convert_dtypes() of ints and floats): the same float is
        # the int W&B holds, compared at the column's precision.
        return _plain(column, base) if float(base) == value else str(int(value))
    if isinstance(value, dt.date):  # a date, a datetime, a pd.Timestamp
        if isinstance(base, str) and _same_moment(value, base):
            return _plain(column, base)
        value = value.isoformat()  # as wandb's own client stores a datetime in a config
    return _plain(column, value)


def _plain(column: str, value: Any) -> str:
    if column == codec.TAGS_COLUMN and isinstance(value, (list, tuple)):
        if not all(isinstance(t, str) for t in value):
            raise Unwritable(f"tags must be text, got {_short(value)}")
        return codec.to_csv_cell(codec.format_tags(value))
    return codec.to_csv_cell(value)


class _Narrow:
    """A float32/float16 scalar: the exact value held, and the precision to compare at."""

    def __init__(self, held: float, narrow: Any) -> None:
        self.held, self.narrow = held, narrow


def native(value: Any, nested: bool = False) -> Any:
    """`value` as the Python value it stands for (None for pandas' missing markers); raises Unwritable."""
    if value is None or type(value) in (bool, int, float, str):
        return value
    import numpy as np
    import pandas as pd

    if value is pd.NA or value is pd.NaT:
        return None if nested else value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        if value.dtype.itemsize < 8 and not nested:
            return _Narrow(float(value), type(value))
        return float(value)
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
        return pd.NaT if value is pd.NaT and not nested else value
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [native(v, nested=True) for v in value]
    if isinstance(value, dict):
        return {native(k, nested=True): native(v, nested=True) for k, v in value.items()}
    if isinstance(value, dt.date):  # a datetime, a pd.Timestamp
        return value.isoformat() if nested else value
    for kind in (str, float, int):  # np.float64 and np.str_ are subclasses; their repr is not their value
        if isinstance(value, kind):
            return kind(value)
    raise Unwritable(f"a {type(value).__name__} value ({_short(value)}) is not one W&B can hold: make it a "
                     "number, text, boolean, list or dict (e.g. with .astype(str))")


def _missing(value: Any) -> bool:
    if value is None or is_nan(value):
        return True
    name = type(value).__name__
    return name in ("NAType", "NaTType")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _same_at(held: float, base: int | float, narrow: Any) -> bool:
    """Whether `base` at the column's precision is the value held (both NaN counts)."""
    import numpy as np

    try:
        with np.errstate(over="ignore"):  # 1e300 in a float32 column is inf there
            cast = float(narrow(base))
    except (OverflowError, ValueError):
        return False
    return cast == held or (math.isnan(cast) and math.isnan(held))


def _same_moment(value: dt.date, text: str) -> bool:
    """Whether the exported text parses to this very date or time (`pd.to_datetime` of the column)."""
    import pandas as pd

    try:
        return bool(pd.Timestamp(text) == pd.Timestamp(value))
    except (ValueError, TypeError, OverflowError):
        return False


def _narrow_float(dtype: Any) -> Any:
    import numpy as np

    numpy_dtype = getattr(dtype, "numpy_dtype", dtype)  # Float32 (nullable) -> float32
    if isinstance(numpy_dtype, np.dtype) and numpy_dtype.kind == "f" and numpy_dtype.itemsize < 8:
        return numpy_dtype.type
    return None


def _float_dtype(dtype: Any) -> bool:
    return getattr(dtype, "kind", None) == "f"


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
