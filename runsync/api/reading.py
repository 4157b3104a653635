"""Reading a sheet and its base snapshot (`runsync.read`)."""
from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator

from runsync.errors import ConfigError
from runsync.model import SheetData


@contextlib.contextmanager
def cycle_collector_paused(collect_after: bool = False) -> Iterator[None]:
    """Pause Python's cycle collector: a 50,000-run sheet and its runs are millions of objects, none in a
    cycle, and the collector walking them again and again cost a fifth of a plan's time.

    `collect_after`: one full collection at the end, once the sheet and runs are let go (a plan keeps
    neither). It also empties the interpreter's free lists, whose few objects pinned ~100 MiB of a 100,000-run
    plan's freed memory, so the process gives it back instead of holding it through whatever comes next.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        if collect_after:
            gc.collect()


def read(path: str | os.PathLike[str], *, base: str | os.PathLike[str] | None = None) -> SheetData:
    """Read a sheet and its base snapshot (hidden sheet, sidecar, or `base`: a sidecar or the exported file);
    returns its SheetData (raw cells, meta, warnings, errors)."""
    with cycle_collector_paused():
        return read_unpaused(path, base=base)


def read_unpaused(path: str | os.PathLike[str], *, base: str | os.PathLike[str] | None = None) -> SheetData:
    """`read`, for a caller that has paused the cycle collector already."""
    from runsync.sheets import read_sheet

    base_path = str(base) if base else None
    if base_path and not base_path.lower().endswith(".json"):
        sheet = read_sheet(str(path))
        original = read_sheet(base_path)
        if original.meta is None:
            raise ConfigError(f"{base_path}: carries no runsync base snapshot")
        sheet.meta = original.meta
        # The base is given: a reader's "no base snapshot" (a hidden sheet a program dropped) no longer holds.
        sheet.warnings = [w for w in sheet.warnings if "no base snapshot" not in w]
        sheet.exported_as = original.exported_as  # a CSV saved as XLSX: its cells went through text
        return sheet
    return read_sheet(str(path), base_path=base_path)
