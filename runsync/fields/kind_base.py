"""The base of the field registry (runsync.fields.kinds): `Kind`, what every kind of column says about itself,
and where an edit is written. Its own module so that each tracker's kinds (kinds.py: W&B's and the shared ones,
mlflow_kinds.py: MLflow's) build on it without importing each other in a circle. Pure.
"""
from __future__ import annotations

from typing import Any

from runsync.fields import codec
from runsync.model import ABSENT, RunRecord

# The trackers a kind of column belongs to, as `Capabilities.tracker` names them.
WANDB = "W&B"
MLFLOW = "MLflow"
BOTH = frozenset({WANDB, MLFLOW})

# Where an edit is written (runsync.writer.patches turns these into the tracker's inputs).
WRITE_FIELD = "field"  # the run's own attribute of the column's name
WRITE_TAGS = "tags"
WRITE_CONFIG = "config"  # merged into the stored config, key by key
WRITE_SUMMARY = "summary"  # the whole summary, with the metric changed
WRITE_TAG_VALUES = "tag_values"  # keyed tags (MLflow's), set or deleted key by key
WRITE_PARAMS = "params"  # flat keys that take a value once (MLflow's params), added key by key


class Kind:
    """One kind of column. The defaults are a read-only column compared by value; subclasses say otherwise."""

    name = "unknown"
    editable = False  # the import writes it
    readonly = False  # runsync's or W&B's own: an edit is refused (a column neither editable nor read-only is ignored)
    deletable = False  # a key an edit creates can be taken away again (W&B: a config key cannot; nothing to delete
    # in a column no edit writes)
    planned = True  # the import reads it at all (the status column is runsync's own report: never)
    exportable = False  # `export --columns` may name it without another option
    exact_name = False  # spaces at a header's edges are part of the name (keys and tags are exact)
    write_to: str | None = None  # which write input an edit goes to (WRITE_*), for editable kinds
    has_path = False  # the column names a key path inside a nested dict (config, summary)
    trackers: frozenset[str] = frozenset({WANDB})  # whose sheets have it (another tracker's sheet refuses a keyed one)
    keyed = False  # the column names a key of its own (`config.x`, `params.x`): in another tracker's sheet, an error
    write_once = False  # a key takes one value, never changed nor deleted (MLflow's params)
    undo_removes = False  # undo of a key an edit created takes the key away again (MLflow's tags), not null
    removal: str | None = None  # what the plan calls an edit that takes the key away (MLflow's tags: "delete tag")
    attribute: str | None = None  # WRITE_FIELD: the run's attribute written, when not the column's name

    def edit_refusal(self, column: str, base: Any, live: Any, value: Any) -> str | None:
        """Why an edit to `value` (from `base`; the tracker now holds `live`) can never be written, or None."""
        return None

    def key(self, column: str) -> str:
        """The tracker's key a keyed column names (`tags.team` -> "team"); the column itself for others."""
        return column

    def path(self, column: str) -> tuple[str, ...]:
        """The key path the column names, () for a kind without one."""
        return ()

    def live(self, record: RunRecord, column: str, path: tuple[str, ...] = ()) -> Any:
        """The value W&B holds for the column of this run."""
        raise KeyError(column)

    def held(self, record: RunRecord, column: str, path: tuple[str, ...] = ()) -> Any:
        """What a write of this column left in the run, as read back (a dict written into a config key is its value)."""
        return self.live(record, column, path)

    def same(self, a: Any, b: Any) -> bool:
        """Whether two values of the column mean the same (numbers as numbers, 10 == 10.0, True != 1)."""
        return codec.values_equal(a, b)

    def decode(self, raw: Any, *, column: str, base: Any = ABSENT, column_type: str | None = None,
               source: str = "csv") -> Any | codec.CellProblem:
        """The typed value a cell holds, the exported value `base` as the type hint (codec.decode_cell)."""
        return codec.decode_cell(raw, column=column, base=base, column_type=column_type, source=source)

    def sheet_value(self, decoded: Any, base: Any) -> Any:
        """A decoded cell as the value the plan compares: an empty cell where the run had no such key is ABSENT."""
        return ABSENT if decoded is None and base is ABSENT else decoded

    def from_base(self, value: Any) -> Any:
        """A value as the base snapshot stores it (JSON) as the value live_value gives."""
        return value

    def sent(self, value: Any) -> Any:
        """The value a write of `value` leaves (ABSENT: the field emptied)."""
        return None if value is ABSENT else value

    def cell(self, value: Any) -> Any:
        """The value that goes into the cell."""
        return value

    def note(self, column: str) -> str:
        """The header note that tells a person what the column is and how to edit it."""
        return f"The run's {column}. Empty = null."



def _text(value: Any) -> Any:
    # W&B answers "" or null for an unset group/notes alike; both are an empty cell in a sheet.
    return None if value == "" else value
