"""The data rows of an exported XLSX, written as worksheet XML directly (the export's hot loop).

openpyxl builds an object per cell and serializes it through ElementTree: ~12 µs a cell, 80% of an export's
time at 20,000 runs (issue 13 §2). The rows of the `runs` and `_runsync` sheets are plain values in a
handful of styles, so they are written here as text, byte for byte what openpyxl writes for the same cells
(inline strings, `xml:space="preserve"` where openpyxl puts it, numbers as `%.16g`), and spliced into the
workbook openpyxl saves with the header rows only. Everything else in the file (styles, header notes,
drop-downs, hidden sheets, widths, filter) is still openpyxl's.
"""
from __future__ import annotations

import queue
import shutil
import threading
import zipfile
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

from openpyxl.utils import get_column_letter

from runsync.fields.codec import to_xlsx_cell
from runsync.model import ABSENT

SHEET_DATA_END = b"</sheetData>"
BLOCK_ROWS = 500  # rows rendered per write: few large writes, bounded memory


def escape_xml(text: str) -> str:
    """Text as ElementTree (so openpyxl) writes it in an element: &, < and > escaped."""
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    return text


def _text_element(text: str) -> str:
    """`<is><t>…</t></is>` for stored (already `_xHHHH_`-escaped) text, as openpyxl writes an inline string."""
    stripped = text.strip()
    if stripped and stripped != text:  # openpyxl's `whitespace()`: not for whitespace-only text
        return f'<is><t xml:space="preserve">{escape_xml(text)}</t></is>'
    return f"<is><t>{escape_xml(text)}</t></is>"


def number_text(value: bool | int | float) -> str:
    """A number or bool as openpyxl writes it in `<v>` (its `safe_string`)."""
    return "%.16g" % value  # noqa: UP031  (openpyxl's own format, spelled as it spells it)


class RowRenderer:
    """Renders runs as `<row>` elements of the `runs` sheet, with the cell rules of write_xlsx.

    `style_id(readonly, number_format, quote_prefix)` gives the workbook's index for that style (0: none).
    `stored(run_id, column, text)` is the text as the cell stores it (escape_text), raising for text no cell
    can hold; `special(text)` whether it needs Excel's quote prefix.
    """

    def __init__(self, columns: list[str], readonly: list[bool], text_column: list[bool],
                 style_id: Callable[[bool, str | None, bool], int], *, cell_value: Callable[[str, Any], Any],
                 stored: Callable[[Any, str, str], str], special: Callable[[str], bool]) -> None:
        self._columns = [(c, get_column_letter(i + 1), ro, tc)
                         for i, (c, ro, tc) in enumerate(zip(columns, readonly, text_column, strict=True))]
        self._style_id = style_id
        self._styles: dict[tuple[bool, str | None, bool], str] = {}
        self._cell_value = cell_value
        self._stored, self._special = stored, special

    def _s(self, readonly: bool, fmt: str | None, quote: bool) -> str:
        key = (readonly, fmt, quote)
        attr = self._styles.get(key)
        if attr is None:
            sid = self._style_id(*key)
            attr = self._styles[key] = f' s="{sid}"' if sid else ""
        return attr

    def rows(self, records: Iterable[dict[str, Any]], first_row: int) -> Iterator[str]:
        cell_value, stored, special, s = self._cell_value, self._stored, self._special, self._s
        columns = self._columns
        for n, record in enumerate(records, start=first_row):
            out = [f'<row r="{n}">']
            rid = record.get("id")
            for column, letter, ro, text_col in columns:
                value = cell_value(column, record.get(column, ABSENT))
                if value is None or value is ABSENT or value.__class__ is str and value == "":
                    if ro or text_col:  # an empty cell still shows its style (grey; Text format: "" and text columns)
                        fmt = "@" if text_col or value == "" else None
                        out.append(f'<c r="{letter}{n}"{s(ro, fmt, False)} t="n" />')
                    continue
                if value.__class__ is str:
                    text = _text_element(stored(rid, column, value))
                    out.append(f'<c r="{letter}{n}"{s(ro, "@", special(value))} t="inlineStr">{text}</c>')
                    continue
                if value.__class__ is bool:
                    out.append(f'<c r="{letter}{n}"{s(ro, None, False)} t="b"><v>{int(value)}</v></c>')
                    continue
                xc = to_xlsx_cell(value)
                if xc.is_text:
                    text = _text_element(stored(rid, column, xc.value))
                    out.append(f'<c r="{letter}{n}"{s(ro, xc.number_format, special(xc.value))} t="inlineStr">'
                               f'{text}</c>')
                else:
                    out.append(f'<c r="{letter}{n}"{s(ro, xc.number_format, False)} t="n">'
                               f'<v>{number_text(xc.value)}</v></c>')
            out.append("</row>")
            yield "".join(out)


def text_rows(rows: Iterable[list[str]], first_row: int) -> Iterator[str]:
    """Rows of text cells (no style), e.g. the hidden sheet's `id, base JSON…` rows; texts already stored form."""
    for n, texts in enumerate(rows, start=first_row):
        cells = "".join(f'<c r="{get_column_letter(j + 1)}{n}" t="inlineStr">{_text_element(t)}</c>'
                        for j, t in enumerate(texts))
        yield f'<row r="{n}">{cells}</row>'


def splice_rows(skeleton: IO[bytes], out: IO[bytes], rows: dict[str, Iterable[str]], *, large: bool = False) -> None:
    """Copy the workbook `skeleton` to `out`, adding `rows[member]` at the end of that worksheet's sheetData.

    The other members are copied as stored (same names, order and compression). `large`: the rows may pass
    2 GiB, which a zip entry of unknown size can hold only with ZIP64 records (the size isn't known ahead).
    """
    with zipfile.ZipFile(skeleton) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as dst:
        for info in src.infolist():
            if info.filename not in rows:
                with src.open(info) as fin, dst.open(_copy_info(info), "w") as fout:
                    shutil.copyfileobj(fin, fout)
                continue
            xml = src.read(info)
            cut = xml.find(SHEET_DATA_END)
            if cut < 0:
                raise ValueError(f"{info.filename}: no sheetData to add rows to")
            with dst.open(_copy_info(info), "w", force_zip64=large) as fout:
                fout.write(xml[:cut])
                with _InBackground(fout.write) as write:
                    block: list[str] = []
                    for row in rows[info.filename]:
                        block.append(row)
                        if len(block) >= BLOCK_ROWS:
                            write("".join(block).encode("utf-8"))
                            block.clear()
                    write("".join(block).encode("utf-8"))
                fout.write(xml[cut:])


class _InBackground:
    """Calls `write` on another thread: zlib compresses (and checksums) without holding the GIL, so the
    rows of the next block are rendered meanwhile (~20 µs a run of compression hidden on a second core).
    """

    def __init__(self, write: Callable[[bytes], Any]) -> None:
        self._write = write
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=4)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="runsync-xlsx-writer", daemon=True)

    def _run(self) -> None:
        while (block := self._queue.get()) is not None:
            if self._error is None:  # after an error keep taking blocks, so the producer never blocks
                try:
                    self._write(block)
                except BaseException as exc:  # re-raised on the caller's thread
                    self._error = exc

    def __call__(self, block: bytes) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(block)

    def __enter__(self) -> _InBackground:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None and exc_info[0] is None:
            raise self._error


def _copy_info(info: zipfile.ZipInfo) -> zipfile.ZipInfo:
    copy = zipfile.ZipInfo(info.filename, info.date_time)
    copy.compress_type = info.compress_type
    copy.external_attr = info.external_attr
    return copy
