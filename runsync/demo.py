"""`runsync demo`: the whole round trip on an in-process sandbox, no W&B account needed; `--tracker mlflow`: the
same on a real local `mlflow server` (SQLite store in the demo's folder)."""
from __future__ import annotations

import os
import shlex
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console

# The edits the demo makes, as a person would in a spreadsheet program.
DEMO_NEW_TAG = "reviewed"
DEMO_NEW_GROUP = "resnet-final"
TYPO, FIXED = "adma", "adam"
# MLflow's demo edits (runs found by name; the seed is runsync/sandbox/mlflow_server.py's DEMO_RUNS).
MLFLOW_EDITS = [("resnet-50 ✓", "tags.stage", "reviewed ✓"), ("vit-small", "tags.debug", None),
                ("vit-small", "name", "vit-small-final"), ("mobilenet", "tags.debug", None),
                ("resnet-18 (baseline)", "description", 'said "good enough"\nchecked by hand ✓')]


@contextmanager
def demo_environment(workdir: Path) -> Iterator[Any]:
    """A seeded sandbox on loopback, with this process's W&B client pointed at it."""
    from runsync.sandbox import seed_demo, start

    saved = {k: os.environ.get(k) for k in ("WANDB_BASE_URL", "WANDB_API_KEY", "WANDB_DIR", "WANDB_SILENT")}
    sandbox = start(db=str(workdir / "sandbox.db"))
    try:
        entity, project = seed_demo(sandbox.store)
        os.environ.update(sandbox.env())
        os.environ["WANDB_DIR"] = str(workdir)
        os.environ["WANDB_SILENT"] = "true"
        yield sandbox, f"{entity}/{project}"
    finally:
        sandbox.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def mlflow_demo_environment(workdir: Path) -> Iterator[str]:
    """A real mlflow server over a SQLite store in workdir/mlflow/, seeded, with MLFLOW_TRACKING_URI pointed at it;
    the project's `mlflow:NAME` address."""
    from runsync.sandbox.mlflow_server import QUIET_ENV, running_server, seed_mlflow_demo

    names = ("MLFLOW_TRACKING_URI", *QUIET_ENV)
    saved = {k: os.environ.get(k) for k in names}
    try:
        with running_server(workdir / "mlflow") as server:
            os.environ.update(QUIET_ENV)
            os.environ["MLFLOW_TRACKING_URI"] = server.uri
            yield seed_mlflow_demo(server.uri)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def edit_mlflow_demo_sheet(path: Path) -> list[str]:
    """Move a tag on, rename a run, delete two debug tags (an emptied cell), add to a description."""
    _, rows, save = _open_sheet(path)
    done: list[str] = []
    for run_name, column, value in MLFLOW_EDITS:
        number, row = next((n, r) for n, r in enumerate(rows, start=2) if r["name"] == run_name)
        row[column] = value
        done.append(f"row {number}: {column} -> {'(emptied)' if value is None else repr(value)}")
    save()
    return done


def edit_demo_sheet(path: Path) -> list[str]:
    """Retag one run, regroup another, fix a config typo: what the demo's person does in Excel."""
    header, rows, save = _open_sheet(path)
    done: list[str] = []
    first, second = rows[0], rows[1]
    first["tags"] = ", ".join(t for t in [first["tags"], DEMO_NEW_TAG] if t)
    done.append(f"row 2: added tag {DEMO_NEW_TAG!r}")
    second["group"] = DEMO_NEW_GROUP
    done.append(f"row 3: group -> {DEMO_NEW_GROUP!r}")
    for number, row in enumerate(rows, start=2):
        if row.get("config.optimizer") == TYPO:
            row["config.optimizer"] = FIXED
            done.append(f"row {number}: config.optimizer {TYPO!r} -> {FIXED!r}")
    save()
    return done


def _open_sheet(path: Path) -> tuple[list[Any], list[dict[Any, Any]], Any]:
    """The sheet's rows as editable dicts, and a function that saves them back in place."""
    if path.suffix == ".xlsx":
        import openpyxl

        book = openpyxl.load_workbook(path)
        sheet = book["runs"]
        header: list[Any] = [cell.value for cell in sheet[1]]
        rows = [dict(zip(header, (c.value for c in row), strict=True)) for row in sheet.iter_rows(min_row=2)]

        def save_xlsx() -> None:
            for number, row in enumerate(rows, start=2):
                for index, column in enumerate(header, start=1):
                    if sheet.cell(number, index).value != row[column]:
                        sheet.cell(number, index).value = row[column]
            book.save(path)

        return header, rows, save_xlsx
    import csv

    with open(path, newline="", encoding="utf-8-sig") as f:
        table = list(csv.reader(f))
    header = table[0]
    rows = [dict(zip(header, row, strict=True)) for row in table[1:]]

    def save_csv() -> None:
        with open(path, "w", newline="", encoding="utf-8-sig") as f:
            writer = csv.writer(f, lineterminator="\r\n")
            writer.writerow(header)
            writer.writerows([row[c] for c in header] for row in rows)

    return header, rows, save_csv


def write_sample_sheets(directory: Path) -> list[Path]:
    """The demo export as XLSX and CSV, and an edited copy of each (sample_sheets/)."""
    import shutil

    import runsync

    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="runsync-samples-") as tmp, demo_environment(Path(tmp)) as (_, project):
        for fmt in ("xlsx", "csv"):
            exported = directory / f"runs.{fmt}"
            runsync.export(project, exported)
            edited = directory / f"runs-edited.{fmt}"
            shutil.copy(exported, edited)
            if fmt == "csv":
                shutil.copy(f"{exported}.runsync.json", f"{edited}.runsync.json")
            edit_demo_sheet(edited)
            written += [exported, edited]
    return written


def run_demo(console: Console, workdir: Path | None = None, tracker: str = "wandb") -> int:
    """The round trip, printed as it goes; `workdir`: keep the files there (--keep); `tracker`: wandb or mlflow."""
    if tracker == "mlflow":
        return run_mlflow_demo(console, workdir)
    import runsync
    from runsync.report.text import render_apply_report, render_plan

    with tempfile.TemporaryDirectory(prefix="runsync-demo-") as tmp:
        work = Path(workdir or tmp)
        with demo_environment(work) as (sandbox, project):
            sheet = work / "runs.xlsx"
            console.rule("1. export")
            console.print(f"$ runsync export {project} -o {sheet.name}")
            result = runsync.export(project, sheet)
            console.print(f"Exported {result.runs} runs ({len(result.columns)} columns) to {sheet}")
            console.rule("2. edit the sheet (as you would in Excel)")
            for line in edit_demo_sheet(sheet):
                console.print(f"  {line}")
            console.rule("3. dry run")
            console.print(f"$ runsync import {sheet.name} --dry-run")
            plan = runsync.plan(sheet)
            render_plan(plan, console)
            console.rule("4. import")
            console.print(f"$ runsync import {sheet.name} --yes")
            before = sandbox.stats()["mutations"]
            report = runsync.apply(plan)  # journaled in runs.xlsx.runsync-journals/, as the CLI does
            # The journal and its undo command only where they outlive the demo (--keep).
            render_apply_report(report, console, show_journal=workdir is not None)
            if workdir is None:
                console.print("(journaled, so it could be undone; the demo's folder is deleted at the end: "
                              "`runsync demo --keep DIR` keeps it, and prints the undo command)")
            elif report.journal:
                db = shlex.quote(str(work / "sandbox.db"))
                console.print(f"(the demo's W&B is {db}: to undo later, run `runsync sandbox serve --db {db}`, "
                              "export the two variables it prints, then the undo command above)")
            console.print(f"({sandbox.stats()['mutations'] - before} write requests for {len(plan.run_ids)} runs)")
            console.rule("5. read back through wandb.Api()")
            _show_runs(console, project, plan.run_ids)
            console.rule("6. import again: nothing left to do")
            render_plan(runsync.plan(sheet), console)
    return 0 if report.ok else 1


def _show_runs(console: Console, project: str, run_ids: list[str]) -> None:
    import wandb

    api = wandb.Api()
    for run_id in run_ids:
        run = api.run(f"{project}/{run_id}")
        console.print(f"  {run.id}: name={run.name!r} tags={list(run.tags)} group={run.group!r} "
                      f"optimizer={run.config.get('optimizer')!r}")


def run_mlflow_demo(console: Console, workdir: Path | None = None) -> int:
    """The round trip on a real local mlflow server, read back with MlflowClient."""
    import runsync
    from runsync.report.text import render_apply_report, render_plan

    with tempfile.TemporaryDirectory(prefix="runsync-demo-") as tmp:
        work = Path(workdir or tmp)
        console.print("(starting a local mlflow server with a SQLite store: this takes a few seconds)")
        with mlflow_demo_environment(work) as project:
            sheet = work / "runs.xlsx"
            console.rule("1. export")
            console.print(f"$ runsync export {shlex.quote(project)} --summary accuracy -o {sheet.name}")
            result = runsync.export(project, sheet, shape=runsync.ExportShape(summary=("accuracy",)))
            console.print(f"Exported {result.runs} runs ({len(result.columns)} columns) to {sheet}")
            console.rule("2. edit the sheet (as you would in Excel)")
            for line in edit_mlflow_demo_sheet(sheet):
                console.print(f"  {line}", highlight=False)
            console.rule("3. dry run")
            console.print(f"$ runsync import {sheet.name} --dry-run")
            plan = runsync.plan(sheet)
            render_plan(plan, console)
            console.rule("4. import")
            console.print(f"$ runsync import {sheet.name} --yes")
            report = runsync.apply(plan)
            render_apply_report(report, console, show_journal=workdir is not None)
            if workdir is None:
                console.print("(journaled, so it could be undone; the demo's folder is deleted at the end: "
                              "`runsync demo --tracker mlflow --keep DIR` keeps it, and prints the undo command)")
            elif report.journal:
                store = shlex.quote(f"sqlite:///{work / 'mlflow' / 'mlflow.db'}")
                console.print(f"(the demo's MLflow store is {store}: to undo later, put MLFLOW_TRACKING_URI={store} "
                              "before the undo command above; MLflow reads the store without a server)", highlight=False)
            console.rule("5. read back through MlflowClient")
            _show_mlflow_runs(console, plan.run_ids)
            console.rule("6. import again: nothing left to do")
            render_plan(runsync.plan(sheet), console)
    return 0 if report.ok else 1


def _show_mlflow_runs(console: Console, run_ids: list[str]) -> None:
    from mlflow import MlflowClient

    client = MlflowClient()  # MLFLOW_TRACKING_URI: the demo's server
    for run_id in run_ids:
        run = client.get_run(run_id)
        tags = {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")}
        console.print(f"  {run_id}: name={run.info.run_name!r} tags={tags} "
                      f"description={run.data.tags.get('mlflow.note.content')!r}", highlight=False)
