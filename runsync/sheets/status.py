"""--write-status: each run's outcome written back into the user's sheet, in a `runsync_status` column.

The column is read-only and skipped by the planner (fields.kinds.STATUS_COLUMN); nothing else in the file changes:
an XLSX is loaded whole with openpyxl and saved with one column added or overwritten (styles, comments, the
hidden `_runsync` sheet, drop-downs kept); a CSV is rewritten with its delimiter, encoding/BOM and line ends.
The base is not touched: the import's journal advances it as always, so the annotated sheet plans "No changes.".
"""
from __future__ import annotations

import copy
import csv
import io
import os
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from runsync.errors import ConfigError
from runsync.fields import STATUS_COLUMN
from runsync.fields.codec import GUARD_CHARS
from runsync.model import Plan
from runsync.sheets.common import atomic_output, header_name, id_text

__all__ = ["STATUS_COLUMN", "annotate_sheet", "run_statuses", "write_import_status", "write_undo_status"]

UNCHANGED = "unchanged"
STOPPED = "not written: the import stopped on conflicts"


def _fields(changes: Any) -> str:
    return ", ".join(dict.fromkeys(c.field for c in changes))


def run_statuses(plan: Plan, report: Any = None, *, undo: bool = False) -> dict[str, str]:
    """run id -> its status text, for the runs `plan` names; `report` is the ApplyReport (None: nothing was
    applied, e.g. the import stopped on conflicts). The worst outcome of a run's fields wins."""
    out: dict[str, str] = {k.run_id: f"skipped: {k.reason}" for k in plan.skipped}
    if report is None:
        for run_id in dict.fromkeys(c.run_id for c in plan.changes):
            out[run_id] = STOPPED
        for run_id in dict.fromkeys(c.run_id for c in plan.conflicts):
            out[run_id] = f"conflict: {_fields(c for c in plan.conflicts if c.run_id == run_id)} changed in W&B " \
                          "since the export"
        return out
    written = {c.run_id for c in (*report.applied, *report.already)}
    for run_id in dict.fromkeys(c.run_id for c in plan.changes):
        out[run_id] = ("undone" if undo else "written") if run_id in written else "not written"
    for skip in report.skipped:  # started running between plan and write
        out[skip.run_id] = f"skipped: {skip.reason}"
    for run_id in dict.fromkeys(c.run_id for c in report.conflicts):
        rest = "; the rest written" if run_id in written else ""
        out[run_id] = (f"conflict: {_fields(c for c in report.conflicts if c.run_id == run_id)} changed in W&B "
                       f"since the plan{rest}")
    for run_id in dict.fromkeys(c.run_id for c in report.did_not_stick):
        out[run_id] = f"did not stick: {_fields(c for c in report.did_not_stick if c.run_id == run_id)}"
    for run_id in report.missing:
        out[run_id] = "error: deleted in W&B since the plan"
    for run_id, why in report.failed.items():
        out[run_id] = f"error: {' '.join(str(why).split())}"
    return out


def _note(what: str, journal: str | None) -> str:
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    where = f"; journal: {journal}" if journal else ""
    return (f"read-only, ignored by the import: what runsync {what} did to each run, {when}{where}. "
            "runsync overwrites this column with --write-status.")


def annotate_sheet(path: str, statuses: Mapping[str, str], *, journal: str | None, what: str = "import",
                   default: str = UNCHANGED) -> None:
    """Write `statuses` (run id -> text; other rows get `default`) into the sheet's status column, atomically."""
    if path.lower().endswith(".xlsx"):
        _annotate_xlsx(path, statuses, default, _note(what, journal))
    else:
        _annotate_csv(path, statuses, default)


def write_import_status(sheet: str, plan: Plan, report: Any = None) -> str:
    """Annotate the imported sheet; the one line to tell the user (what was written, or why not)."""
    return _write(sheet, run_statuses(plan, report), getattr(report, "journal", None), "import")


def write_undo_status(journal: str, plan: Plan, report: Any) -> str:
    """Annotate the sheet the undone import came from (its journal's begin line names it), if it is still there."""
    from runsync.journal.events import read_journal

    sheet = read_journal(journal).begin.get("sheet")
    if not sheet:
        return f"warning: {journal} names no sheet (not an import of one): status not written"
    if not os.path.exists(sheet):
        return f"warning: {sheet} (the sheet the journal names) is gone: status not written"
    return _write(sheet, run_statuses(plan, report, undo=True), getattr(report, "journal", None), "undo")


def _write(sheet: str, statuses: dict[str, str], journal: str | None, what: str) -> str:
    try:
        annotate_sheet(sheet, statuses, journal=journal, what=what)
    except (OSError, ValueError, ConfigError) as exc:
        why = getattr(exc, "message", None) or getattr(exc, "strerror", None) or str(exc)
        return f"warning: cannot write the status into {sheet} ({why}): status not written"
    return f"Status of each run written to {sheet} (column {STATUS_COLUMN})."


# --- XLSX ---------------------------------------------------------------------------------------------

def _annotate_xlsx(path: str, statuses: Mapping[str, str], default: str, note: str) -> None:
    from openpyxl import load_workbook
    from openpyxl.comments import Comment

    from runsync.sheets.xlsx_io import (
        DATA_SHEET,
        LISTS_SHEET,
        META_SHEET,
        escape_text,
        unescape_text,
    )

    # rich_text: a person's formatted cell stays formatted; and openpyxl's plain reading drops "x005F_" from
    # shared strings (xlsx_read._use_raw_shared_strings), which saving would make permanent.
    book = load_workbook(path, rich_text=True)
    if DATA_SHEET in book.sheetnames:
        ws: Any = book[DATA_SHEET]
    else:  # as the reader: the first visible sheet
        visible = [s for s in book.worksheets if s.sheet_state == "visible" and s.title not in (META_SHEET, LISTS_SHEET)]
        if not visible:
            raise ConfigError(f"{path}: no {DATA_SHEET!r} sheet: status not written")
        ws = visible[0]
    names = [header_name(unescape_text(str(c.value)) if c.value is not None else None) for c in ws[1]]
    if "id" not in names:
        raise ConfigError(f"{path}: no 'id' column: status not written")
    id_col = names.index("id") + 1
    if STATUS_COLUMN in names:
        col = names.index(STATUS_COLUMN) + 1
    else:
        col = max((i + 1 for i, n in enumerate(names) if n), default=0) + 1
    head = ws.cell(1, col)
    head.value = STATUS_COLUMN
    head._style = copy.copy(ws.cell(1, id_col)._style)  # the look of a read-only header
    head.comment = Comment(note, "runsync", width=300, height=120)
    for row in range(2, ws.max_row + 1):
        rid = ws.cell(row, id_col).value
        cell = ws.cell(row, col)
        if rid is None or not str(rid).strip():
            if cell.value is not None:
                cell.value = None
            continue
        text = statuses.get(id_text(unescape_text(str(rid)) if isinstance(rid, str) else rid), default)
        cell.value = escape_text(text)
        cell.data_type = "s"  # text, never a formula: a status may start with = + - @ (an error message)
    with atomic_output(path, "wb") as fh:
        book.save(fh)


# --- CSV ----------------------------------------------------------------------------------------------

def _encoding(data: bytes, path: str) -> tuple[str, str]:
    """(codec to write with, the file's text): what the file was saved in, BOM included."""
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig", data[3:].decode("utf-8")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16", data.decode("utf-16")  # writes the BOM back, in this machine's byte order
    try:
        return "utf-8", data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    from runsync.sheets.csv_io import _read_sidecar, _texts
    from runsync.sheets.encodings import choose_encoding

    meta = _read_sidecar(path, None)
    decision = choose_encoding(data, meta.base if meta else None, _texts, header_name)
    if decision.encoding is None:
        raise ConfigError(f"{path}: not UTF-8, and its encoding can't be told ({decision.reason}): "
                          "status not written")
    return decision.encoding, data.decode(decision.encoding)


def _annotate_csv(path: str, statuses: Mapping[str, str], default: str) -> None:
    from runsync.sheets.csv_io import sniff_delimiter

    with open(path, "rb") as fh:
        data = fh.read()
    encoding, text = _encoding(data, path)
    newline = "\r\n" if "\r\n" in text else ("\r" if "\r" in text and "\n" not in text else "\n")
    delimiter = sniff_delimiter(text)
    table = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False))
    if not table:
        raise ConfigError(f"{path}: the file is empty: status not written")
    names = [header_name(h) for h in table[0]]
    if "id" not in names:
        raise ConfigError(f"{path}: no 'id' column: status not written")
    id_at = names.index("id")
    at = names.index(STATUS_COLUMN) if STATUS_COLUMN in names else \
        max((i + 1 for i, n in enumerate(names) if n), default=0)
    for number, row in enumerate(table):
        if number and not any(cell.strip() for cell in row) and len(row) <= at:
            continue  # a blank line stays blank
        row.extend([""] * (at + 1 - len(row)))
        if number == 0:
            row[at] = STATUS_COLUMN
            continue
        rid = row[id_at].strip() if id_at < len(row) else ""
        status = statuses.get(rid, default) if rid else ""
        # The CSV formula guard (codec.to_csv_cell): a status starting with = + - @ gets one leading '.
        row[at] = "'" + status if status.startswith(GUARD_CHARS) else status
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator=newline, quoting=csv.QUOTE_MINIMAL).writerows(table)
    body = out.getvalue()
    if not text.endswith(("\n", "\r")):
        body = body[: -len(newline)]  # the file had no line end after its last row
    with atomic_output(path, "wb") as fh:
        fh.write(body.encode(encoding))
