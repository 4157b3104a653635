"""Test helpers shared by the CLI tests: one `invoke`, and editing a sheet as a person would."""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from runsync.cli import cli


def invoke(*args: str, exit_code: int = 0, input: str | None = None) -> Result:
    """Run the CLI in-process; on an unexpected exit code, show everything needed to see why."""
    result = CliRunner().invoke(cli, [str(a) for a in args], input=input, catch_exceptions=True)
    if result.exit_code != exit_code:
        import traceback

        tb = "".join(traceback.format_exception(*result.exc_info)) if result.exc_info else ""
        raise AssertionError(
            f"runsync {' '.join(map(str, args))}: exit {result.exit_code}, expected {exit_code}\n"
            f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}\n--- exception\n{tb}"
        )
    return result


def edit_cells(path: Path, edits: dict[tuple[str, str], Any]) -> None:
    """Set cells addressed by (run id, column) in an exported XLSX or CSV, keeping everything else."""
    if path.suffix == ".xlsx":
        import openpyxl

        book = openpyxl.load_workbook(path)
        sheet = book["runs"]
        header = [c.value for c in sheet[1]]
        rows = {sheet.cell(r, header.index("id") + 1).value: r for r in range(2, sheet.max_row + 1)}
        for (run_id, column), value in edits.items():
            if column not in header:
                header.append(column)
                sheet.cell(1, len(header)).value = column
            sheet.cell(rows[run_id], header.index(column) + 1).value = value
        book.save(path)
        return
    text = path.read_text(encoding="utf-8-sig")
    table = list(csv.reader(io.StringIO(text)))
    header = table[0]
    for (run_id, column), value in edits.items():
        if column not in header:
            header.append(column)
            for row in table[1:]:
                row.append("")
        row = next(r for r in table[1:] if r[header.index("id")] == run_id)
        row[header.index(column)] = "" if value is None else str(value)
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(table)
    path.write_text(out.getvalue(), encoding="utf-8-sig")


def append_row(path: Path, cells: dict[str, Any]) -> int:
    """Add a row at the end of an exported XLSX or CSV (as a paste would), cells by column; its row number."""
    if path.suffix == ".xlsx":
        import openpyxl

        book = openpyxl.load_workbook(path)
        sheet = book["runs"]
        header = [c.value for c in sheet[1]]
        row = sheet.max_row + 1
        for column, value in cells.items():
            sheet.cell(row, header.index(column) + 1).value = value
        book.save(path)
        return row
    table = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    table.append(["" if cells.get(c) is None else str(cells[c]) for c in table[0]])
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(table)
    path.write_text(out.getvalue(), encoding="utf-8-sig")
    return len(table)


def upsert_inputs(label: str, variables: dict[str, Any]) -> list[dict[str, Any]]:
    """The UpsertBucketInputs a request carries (a sandbox request hook's view): one, or a batch's several."""
    if label == "RunsyncUpsertBucket":
        return [variables["input"]]
    if label == "RunsyncUpsertBuckets":
        return [variables[f"i{n}"] for n in range(len(variables))]
    return []


def write_counts(sandbox: Any) -> tuple[int, int]:
    """(requests that carried writes, runs written) as the sandbox counted them."""
    ops = sandbox.stats()["operations"]
    return ops.get("RunsyncUpsertBucket", 0) + ops.get("RunsyncUpsertBuckets", 0), sandbox.stats()["mutations"]


DAMAGE_WARNING = re.compile(r"column '((?:[^'\\]|\\.)+)': \d+ cells? changed by a spreadsheet program, not by an edit: "
                            r"kept the W&B values, nothing written \((.*)\)$", re.MULTILINE)


def damaged_cells(stderr: str) -> set[tuple[str, str]]:
    """(run id, column) of every cell the plan's warnings say a spreadsheet program changed (not an edit)."""
    out = set()
    for column, cells in DAMAGE_WARNING.findall(stderr):
        out |= {(run_id, column) for run_id in re.findall(r"(?:^|; )row \d+, run (\S+):", cells)}
    return out


def fresh_run(run_id: str, project: str = "e/p") -> Any:
    """The run as W&B holds it now, read with the plain client (the tests' oracle)."""
    import wandb

    return wandb.Api().run(f"{project}/{run_id}")


def set_in_wandb(run_id: str, project: str = "e/p", **fields: object) -> None:
    """A colleague changing a run in the W&B UI (through the real client)."""
    run = fresh_run(run_id, project)
    for key, value in fields.items():
        setattr(run, key, value)
    run.update()


def dry_run(sheet: Path, *extra: str, exit_code: int = 0) -> dict:
    """`runsync import SHEET --dry-run --format json`, parsed."""
    import json

    return json.loads(invoke("import", sheet, "--dry-run", "--format", "json", *extra, exit_code=exit_code).stdout)
