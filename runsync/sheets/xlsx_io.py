"""XLSX sheets: a "runs" sheet people edit, and a hidden "_runsync" sheet with the metadata and base.

The entry points, in one place: reading (xlsx_read), writing (xlsx_write, xlsx_guides), a cell's stored text (xlsx_text).
"""
from __future__ import annotations

from runsync.sheets.xlsx_guides import LIST_COLUMNS, list_values
from runsync.sheets.xlsx_read import read_fast, read_with_openpyxl, read_xlsx
from runsync.sheets.xlsx_text import (
    DATA_SHEET,
    LISTS_SHEET,
    MAX_CELL_CHARS,
    META_SHEET,
    escape_text,
    unescape_text,
)
from runsync.sheets.xlsx_write import GUIDES_ENV, write_xlsx

__all__ = [
    "DATA_SHEET", "GUIDES_ENV", "LISTS_SHEET", "LIST_COLUMNS", "MAX_CELL_CHARS", "META_SHEET", "escape_text",
    "list_values", "read_fast", "read_with_openpyxl", "read_xlsx", "unescape_text", "write_xlsx",
]
