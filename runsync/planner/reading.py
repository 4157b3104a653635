"""A Reading: one value a spreadsheet program may hold for a cell, and how the program read it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Reading:
    """One value a program may hold for a cell: ("number", Decimal), ("date", (y|None, m, d)),
    ("time", seconds), ("datetime", (y, m, d, seconds)) or ("bool", b); `how` says how it was read."""

    kind: str
    value: Any
    how: str = ""
