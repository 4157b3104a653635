"""runsync's round trip against a real `mlflow server` (tests/mlflow_server.py): export, dry-run, import, set,
undo, with the promises W&B has (an untouched sheet plans nothing, only changed fields are written, conflicts are
found, undo restores). The oracle is the plain `MlflowClient`, never runsync's readers."""
from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers import edit_cells, invoke

pytestmark = pytest.mark.mlflow

NOTE = "mlflow.note.content"
# Awkward values of my own: unicode keys and values, a number-looking param, quotes, a leading "=".
TAGS = {"team": "vision ü", "k/ä: b": "=1+1", "quote": 'say "hi"'}
PARAMS = {"lr": "0.010", "opt": "adam ✓", "seed": "007"}


@dataclass
class World:
    client: Any
    project: str  # mlflow:NAME
    runs: dict[str, str]  # label -> run id

    def state(self, label: str) -> tuple[str, dict[str, str], dict[str, str]]:
        """(run name, every tag incl. mlflow.*, params) as MLflow holds them now."""
        run = self.client.get_run(self.runs[label])
        return run.info.run_name, dict(run.data.tags), dict(run.data.params)

    def all_state(self) -> dict[str, Any]:
        return {label: self.state(label) for label in self.runs}


@pytest.fixture
def world(experiment: str, mlflow_uri: str) -> World:
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    client = MlflowClient(mlflow_uri)
    exp_id = client.get_experiment_by_name(experiment).experiment_id
    runs = {}
    for n, label in enumerate(["a", "b", "c"]):
        run = client.create_run(exp_id, start_time=1_700_000_000_000 + n * 1000, run_name=f"{label} run ✓")
        runs[label] = run.info.run_id
    client.log_batch(runs["a"], tags=[RunTag(k, v) for k, v in TAGS.items()],
                     params=[Param(k, v) for k, v in PARAMS.items()], metrics=[Metric("acc", 0.75, 0, 0)])
    client.set_tag(runs["a"], NOTE, "first line\nsecond ✓")
    client.log_batch(runs["b"], tags=[RunTag("team", "audio")], params=[Param("lr", "1e-05")],
                     metrics=[Metric("acc", 0.5, 0, 0)])
    client.log_batch(runs["c"], tags=[RunTag("team", "vision ü")], params=[Param("lr", "3")])
    for run_id in runs.values():
        client.set_terminated(run_id)
    return World(client, f"mlflow:{experiment}", runs)


def _export(world: World, path: Path, *extra: str) -> None:
    invoke("export", world.project, "-o", path, *extra)


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_an_untouched_export_plans_nothing_and_writes_nothing(world: World, tmp_path: Path, suffix: str) -> None:
    sheet = tmp_path / f"runs{suffix}"
    _export(world, sheet, "--summary", "acc")
    if suffix == ".xlsx":  # the tracker's client starts before the sheet is read (sheets/xlsx_peek.py)
        from runsync.sheets.xlsx_peek import peek_project

        assert peek_project(str(sheet)) == world.project
    before = world.all_state()
    assert "No changes." in invoke("import", sheet, "--dry-run").stdout
    result = invoke("import", sheet, "--yes")
    assert "No changes." in result.stdout and "Applied" not in result.stderr
    assert world.all_state() == before
    assert not (tmp_path / f"runs{suffix}.runsync-journals").exists()  # nothing written: no journal


def test_the_export_has_mlflows_columns(world: World, tmp_path: Path) -> None:
    sheet = tmp_path / "runs.csv"
    _export(world, sheet, "--summary", "acc")
    header = sheet.read_text(encoding="utf-8-sig").splitlines()[0].split(",")
    assert header[:3] == ["id", "name", "description"]
    assert {"tags.team", "tags.quote", "params.lr", "params.seed", "status", "start_time", "experiment",
            "metrics.acc"} <= set(header)
    assert not [c for c in header if c.startswith(("tags.mlflow.", "config.", "summary."))]  # mlflow.* not asked for


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_edits_are_written_and_undo_restores_a_deleted_tag(world: World, tmp_path: Path, suffix: str) -> None:
    sheet = tmp_path / f"runs{suffix}"
    _export(world, sheet)
    a, b = world.runs["a"], world.runs["b"]
    before_a, before_c = world.state("a"), world.state("c")
    edit_cells(sheet, {(a, "name"): "renamed ü", (a, "description"): "new note ✓", (a, "tags.team"): "robots",
                       (a, "tags.k/ä: b"): None, (b, "tags.quote"): "it's new", (b, "description"): "b's note"})
    plan = invoke("import", sheet, "--dry-run").stdout
    assert 'tags.k/ä: b: "=1+1" → (delete tag)' in plan
    assert "Plan: 2 runs, 6 fields to change, 0 conflicts." in plan
    invoke("import", sheet, "--yes")
    name, tags, params = world.state("a")
    assert name == "renamed ü" and tags[NOTE] == "new note ✓" and tags["team"] == "robots"
    assert "k/ä: b" not in tags and tags["quote"] == 'say "hi"' and params == PARAMS
    _, tags_b, _ = world.state("b")
    assert tags_b["quote"] == "it's new" and tags_b[NOTE] == "b's note" and tags_b["team"] == "audio"
    assert world.state("c") == before_c  # a row not edited is not written
    assert "No changes." in invoke("import", sheet, "--dry-run").stdout  # its base moved to what was written
    invoke("undo", sheet, "--last", "--yes")
    assert world.state("a") == before_a  # the deleted tag is back with its value
    _, tags_b, _ = world.state("b")
    assert "quote" not in tags_b and NOTE not in tags_b  # a tag the import added is taken away again


def test_a_changed_param_is_a_cell_error_and_nothing_is_written(world: World, tmp_path: Path) -> None:
    sheet = tmp_path / "runs.csv"
    _export(world, sheet)
    a, c = world.runs["a"], world.runs["c"]
    before = world.all_state()
    edit_cells(sheet, {(a, "params.lr"): "0.02", (c, "name"): "fine edit"})
    result = invoke("import", sheet, "--yes", exit_code=1)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert f"runs.csv, row 2, run {a}, column 'params.lr'" in errors[0]
    assert "write-once" in errors[0] and "'0.010'" in errors[0]
    assert world.all_state() == before


def test_a_new_param_needs_new_keys(world: World, tmp_path: Path) -> None:
    sheet = tmp_path / "runs.xlsx"
    _export(world, sheet)
    b = world.runs["b"]
    before = world.all_state()
    edit_cells(sheet, {(b, "params.seed"): 42})  # a number typed into a cell: the param's text "42"
    refused = invoke("import", sheet, "--yes", exit_code=1)
    assert "--new-keys" in refused.stderr and "params.seed" in refused.stderr
    assert world.all_state() == before
    assert "New params" in invoke("import", sheet, "--dry-run").stdout
    invoke("import", sheet, "--yes", "--new-keys")
    assert world.state("b")[2] == {"lr": "1e-05", "seed": "42"}
    undone = invoke("undo", sheet, "--last", "--yes")
    assert "write-once" in undone.stderr  # said, not hidden: a param cannot be taken back
    assert world.state("b")[2] == {"lr": "1e-05", "seed": "42"}


def test_a_tag_changed_in_mlflow_after_the_export_is_a_conflict(world: World, tmp_path: Path) -> None:
    sheet = tmp_path / "runs.xlsx"
    _export(world, sheet)
    a = world.runs["a"]
    edit_cells(sheet, {(a, "tags.team"): "mine"})
    world.client.set_tag(a, "team", "theirs")
    result = invoke("import", sheet, "--yes", exit_code=1)
    assert "Conflicts" in result.stdout and "tags.team" in result.stdout and '"theirs"' in result.stdout
    assert world.state("a")[1]["team"] == "theirs"


def test_set_edits_tags_by_filter_and_undo_takes_it_back(world: World, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    before = world.all_state()
    result = invoke("set", world.project, "--filter", "tags.team=vision ü", "--set", "tags.reviewed=yes ✓",
                    "--clear", "tags.quote", "--yes")
    assert world.state("a")[1]["reviewed"] == "yes ✓" and "quote" not in world.state("a")[1]
    assert world.state("c")[1]["reviewed"] == "yes ✓"
    assert "reviewed" not in world.state("b")[1]
    journal = next(line.split("runsync undo ", 1)[1] for line in result.stderr.splitlines() if "runsync undo " in line)
    invoke("undo", *shlex.split(journal), "--yes")
    assert world.all_state() == before


@pytest.mark.parametrize("name", ["/Users/me ü/exp", "..", "a/../../b:c"])
def test_set_journals_of_an_experiment_named_like_a_path_stay_in_the_state_folder(
        world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Databricks-style names (`/Users/...`) and `..` are one folder each, never a path out of the state folder."""
    state = tmp_path / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    exp_id = world.client.create_experiment(name)
    run_id = world.client.create_run(exp_id, run_name="pathy").info.run_id
    world.client.set_terminated(run_id)
    result = invoke("set", f"mlflow:{name}", "--set", "tags.k=v ✓", "--yes")
    assert world.client.get_run(run_id).data.tags["k"] == "v ✓"
    printed = next(line.split("runsync undo ", 1)[1] for line in result.stderr.splitlines() if "runsync undo " in line)
    journal = Path(shlex.split(printed)[0]).resolve()
    assert journal.is_file() and journal.is_relative_to((state / "runsync").resolve()), journal
    assert sorted(p for p in tmp_path.rglob("*.jsonl")) == [journal]  # nothing written outside it either
    invoke("undo", *shlex.split(printed), "--yes")
    assert "k" not in world.client.get_run(run_id).data.tags


def test_set_refuses_a_set_param_and_wandb_fields(world: World) -> None:
    before = world.all_state()
    result = invoke("set", world.project, "--filter", "params.lr=3", "--set", "params.lr=4", "--yes", exit_code=1)
    assert "write-once" in result.stderr and world.runs["c"] in result.stderr
    result = invoke("set", world.project, "--set", "config.lr=4", "--yes", exit_code=1)
    assert "no field 'config.lr'" in result.stderr
    assert world.all_state() == before


def test_a_wandb_column_in_an_mlflow_sheet_is_refused(world: World, tmp_path: Path) -> None:
    sheet = tmp_path / "runs.csv"
    _export(world, sheet)
    edit_cells(sheet, {(world.runs["a"], "config.lr"): "0.5"})
    result = invoke("import", sheet, "--dry-run", exit_code=1)
    assert "column 'config.lr'" in result.stderr and "W&B column" in result.stderr


def test_the_tracking_uri_option_and_raw_filters(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 mlflow_uri: str) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    sheet = tmp_path / "runs.csv"
    invoke("export", world.project, "--tracking-uri", mlflow_uri, "--filters", "params.lr = '1e-05'", "-o", sheet)
    rows = sheet.read_text(encoding="utf-8-sig").splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == [world.runs["b"]]
    meta = json.loads((tmp_path / "runs.csv.runsync.json").read_text())
    assert meta["selection"]["filters"] == "params.lr = '1e-05'"
    edit_cells(sheet, {(world.runs["b"], "tags.team"): "audio 2"})
    invoke("import", sheet, "--yes", "--tracking-uri", mlflow_uri)
    assert world.state("b")[1]["team"] == "audio 2"
    invoke("undo", sheet, "--last", "--yes", "--tracking-uri", mlflow_uri)
    assert world.state("b")[1]["team"] == "audio"


@pytest.mark.libreoffice
def test_a_libreoffice_resave_of_an_untouched_export_plans_nothing(world: World, tmp_path: Path) -> None:
    import libreoffice as lo

    sheet = tmp_path / "export" / "runs.xlsx"
    sheet.parent.mkdir()
    _export(world, sheet, "--summary", "acc")
    (resaved,) = lo.convert([sheet], tmp_path / "resaved", "xlsx:Calc MS Excel 2007 XML")
    assert resaved.read_bytes() != sheet.read_bytes()
    assert "No changes." in invoke("import", resaved, "--dry-run").stdout


def test_the_dataframe_api_plans_and_applies_an_mlflow_edit(world: World) -> None:
    import runsync

    df = runsync.frame(world.project)
    assert runsync.plan(df).empty
    row = df.index[df["id"] == world.runs["c"]][0]
    df.loc[row, "tags.team"] = "frames ✓"
    plan = runsync.plan(df)
    assert [(c.field, c.sheet) for c in plan.changes] == [("tags.team", "frames ✓")]
    runsync.apply(plan)
    assert world.state("c")[1]["team"] == "frames ✓"


def _xlsx_text(path: Path) -> str:
    import openpyxl

    book = openpyxl.load_workbook(path)
    cells = [str(c.value) for ws in book for row in ws.iter_rows() for c in row if c.value is not None]
    notes = [c.comment.text for ws in book for row in ws.iter_rows() for c in row if c.comment]
    return "\n".join(cells + notes)


def test_an_mlflow_plan_and_its_reports_name_mlflow(world: World, tmp_path: Path) -> None:
    """Conflict, a change made only in MLflow, a run deleted since the export: every line says MLflow."""
    sheet = tmp_path / "runs.xlsx"
    _export(world, sheet)
    a, b, c = world.runs["a"], world.runs["b"], world.runs["c"]
    edit_cells(sheet, {(a, "tags.team"): "mine ✓", (b, "name"): "b renamed", (c, "tags.team"): "gone?"})
    world.client.set_tag(a, "team", "theirs")  # a conflict
    world.client.set_tag(b, "quote", "added in MLflow")  # changed only in MLflow: kept
    world.client.delete_run(c)  # deleted since the export: skipped with a warning
    html, xlsx = tmp_path / "plan.html", tmp_path / "plan.xlsx"
    result = invoke("import", sheet, "--dry-run", "--report", html, exit_code=1)
    invoke("import", sheet, "--dry-run", "--report", xlsx, exit_code=1)
    text = result.stdout + result.stderr
    assert "MLflow now" in text and "Changed only in MLflow since the export (kept):" in text
    assert "changed in the sheet, and in MLflow since the export" in text
    assert f"run {c} (row 4) was deleted in MLflow since the export: skipped" in text
    page = html.read_text(encoding="utf-8")
    assert "in MLflow" in page
    book = _xlsx_text(xlsx)
    assert "MLflow now" in book and "changed only in MLflow (kept)" in book
    for shown in (text, page, book):
        assert "W&B" not in shown


@pytest.mark.libreoffice
@pytest.mark.parametrize(("locale", "langid", "sep"), [("en_US", 1033, 44), ("de_DE", 1031, 59)])
def test_a_csv_resaved_by_libreoffice_with_number_detection_plans_nothing(world: World, tmp_path: Path,
                                                                         locale: str, langid: int,
                                                                         sep: int) -> None:
    """Calc reads `0.010`, `007`, `1e-05` (params and tags, text in MLflow) as numbers and saves them as `0.01`,
    `7`, `1E-05` (in de_DE `0,01`): a cell nobody edited, never a param edit (refused) nor a tag write."""
    import libreoffice as lo

    world.client.set_tag(world.runs["c"], "ratio", "0.50")
    world.client.set_tag(world.runs["c"], "big", "12345678901234567890")
    sheet = tmp_path / "export" / "runs.csv"
    sheet.parent.mkdir()
    _export(world, sheet)
    before = world.all_state()
    infilter = f"{lo.CSV_FILTER}:44,34,76,1,,{langid},false,true"
    (resaved,) = lo.convert([sheet], tmp_path / "resaved", f"csv:{lo.CSV_FILTER}:{sep},34,76,1", infilter=infilter,
                            locale=locale)
    text = resaved.read_text(encoding="utf-8-sig")
    assert "0.010" not in text and "007" not in text  # Calc did read them as numbers
    result = invoke("import", resaved, "--base", str(sheet), "--yes")
    assert "No changes." in result.stdout, result.stdout + result.stderr
    assert world.all_state() == before
