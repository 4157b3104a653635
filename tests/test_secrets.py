"""Secrets and safety: the API key never leaves the client's own requests, and no cell runsync writes
becomes a formula when a spreadsheet program opens and re-saves it."""
from __future__ import annotations

import base64
import zipfile
from pathlib import Path

import pytest
from fault_support import cli_env, run_cli
from helpers import edit_cells, invoke

WRONG_KEY = "wrongKey0123456789wrongKey0123456789abcd"


def _leaks(text: str | bytes, secrets: list[str]) -> list[str]:
    data = text if isinstance(text, bytes) else text.encode("utf-8", "replace")
    return [s for s in secrets if s.encode() in data]


def _forms(key: str) -> list[str]:
    """The key as it could leak: plain, or inside the Basic auth header the client sends."""
    return [key, base64.b64encode(f"api:{key}".encode()).decode()]


def _files_leak(root: Path, secrets: list[str]) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        contents = [path.read_bytes()]
        if zipfile.is_zipfile(path):  # an xlsx: look inside every part, not at the compressed bytes
            with zipfile.ZipFile(path) as zf:
                contents = [zf.read(name) for name in zf.namelist()]
        found += [f"{path}: {s[:4]}..." for data in contents for s in _leaks(data, secrets)]
    return found


def test_the_key_appears_in_no_output_file_journal_or_traceback(seeded_sandbox, tmp_path):
    secrets = _forms(seeded_sandbox.api_key) + _forms(WRONG_KEY)
    outputs: list[str] = []
    sheet, csv_sheet = tmp_path / "runs.xlsx", tmp_path / "runs.csv"
    env = cli_env(seeded_sandbox.url, seeded_sandbox.api_key, tmp_path, http_timeout=5)
    # The happy path, in a real process (its sidecar, its logs under WANDB_DIR in tmp_path).
    for args in (["export", "e/p", "-o", sheet], ["export", "e/p", "-o", csv_sheet, "--summary", "acc"]):
        done = run_cli(env, *args)
        assert done.returncode == 0, done.stderr
        outputs += [done.stdout, done.stderr]
    first = next(iter(_ids(seeded_sandbox)))
    edit_cells(sheet, {(first, "notes"): "edited"})
    edit_cells(csv_sheet, {(first, "group"): "edited"})
    journal = tmp_path / "j.jsonl"
    for args in (["import", sheet, "--dry-run", "--format", "json"], ["import", sheet, "--yes", "--journal", journal],
                 ["import", csv_sheet, "--yes"], ["undo", journal, "--yes"]):
        done = run_cli(env, *args)
        assert done.returncode == 0, done.stderr
        outputs += [done.stdout, done.stderr]
    # Error paths, with --debug tracebacks: a missing project, a server that is gone, a wrong key.
    errors = [
        (env, ["--debug", "export", "e/nosuch", "-o", tmp_path / "x.xlsx"]),
        ({**env, "WANDB_BASE_URL": "http://127.0.0.1:9"}, ["--debug", "import", sheet, "--dry-run"]),
        ({**env, "WANDB_API_KEY": WRONG_KEY}, ["--debug", "export", "e/p", "-o", tmp_path / "y.xlsx"]),
        ({**env, "WANDB_API_KEY": WRONG_KEY}, ["import", sheet, "--yes"]),
        ({**env, "WANDB_API_KEY": WRONG_KEY}, ["--debug", "undo", journal, "--yes"]),
    ]
    for error_env, args in errors:
        failed = run_cli(error_env, *args)
        assert failed.returncode == 1, failed.stderr
        assert "error:" in failed.stderr
        outputs += [failed.stdout, failed.stderr]
    assert any("Traceback" in o for o in outputs)  # the --debug paths really printed tracebacks
    assert [s[:4] for o in outputs for s in _leaks(o, secrets)] == []
    assert _files_leak(tmp_path, secrets) == []  # sheets, sidecars, journals, the client's own logs


def _ids(sandbox) -> list[str]:
    _, records, _ = sandbox.store.snapshot("e", "p")
    return sorted(r.name for r in records)


def test_in_process_errors_and_the_sandbox_repr_hide_the_key(seeded_sandbox, tmp_path, monkeypatch):
    assert seeded_sandbox.api_key not in repr(seeded_sandbox)
    monkeypatch.setenv("WANDB_API_KEY", WRONG_KEY)
    from runsync.backend.wandb.client import WandbBackend

    result = invoke("--debug", "export", "e/p", "-o", tmp_path / "z.csv", exit_code=1)
    assert "error:" in result.stderr
    assert WRONG_KEY not in result.stderr + result.stdout
    assert seeded_sandbox.api_key not in result.stderr + result.stdout
    with pytest.raises(Exception) as info:
        WandbBackend(timeout=5).fetch_by_ids("e/p", ["x"])
    assert WRONG_KEY not in str(info.value)


TRICKY = ["=1+1", "+1", "-1", "@SUM(A1:A2)", "=HYPERLINK(\"http://x\")", "-", "'=quoted", "=", "+81 3 1234"]


@pytest.mark.libreoffice
def test_no_written_cell_becomes_a_formula_after_a_libreoffice_resave(seeded_sandbox, tmp_path):
    import libreoffice as lo
    import openpyxl

    ids = _ids(seeded_sandbox)
    raw = seeded_sandbox.store
    for i, text in enumerate(TRICKY):  # put formula-like text into W&B itself, as a run might carry it
        rec = raw.find_run("e", "p", ids[i])
        raw.upsert({"id": rec.storage_id, "notes": text, "groupName": text, "displayName": f"{text} run",
                    "config": {"optimizer": {"value": text, "desc": None}}})
    sheet, csv_sheet = tmp_path / "runs.xlsx", tmp_path / "runs.csv"
    invoke("export", "e/p", "-o", sheet)
    invoke("export", "e/p", "-o", csv_sheet)
    resaved = lo.convert([sheet], tmp_path / "lo-xlsx", "xlsx")[0]
    from_csv = lo.convert([csv_sheet], tmp_path / "lo-csv", "xlsx", infilter=f"{lo.CSV_FILTER}:{lo.UTF8}")[0]
    for path in (resaved, from_csv):
        book = openpyxl.load_workbook(path)
        ws = book["runs"] if "runs" in book.sheetnames else book.worksheets[0]
        header = [c.value for c in ws[1]]
        formulas = [(c.coordinate, c.value) for row in ws.iter_rows() for c in row
                    if c.data_type == "f" and str(c.value).replace(" ", "").upper() not in ("=TRUE()", "=FALSE()")]
        assert formulas == [], path
        by_id = {row[header.index("id")].value: row for row in ws.iter_rows(min_row=2)}
        for i, text in enumerate(TRICKY):
            row = by_id[ids[i]]
            got = {c: row[header.index(c)].value for c in ("notes", "group", "config.optimizer")}
            # The CSV guard is an apostrophe that Calc keeps as text; runsync strips it on import.
            if path is from_csv:
                got = {c: v[1:] if isinstance(v, str) and v.startswith("'") else v for c, v in got.items()}
            assert got == {"notes": text, "group": text, "config.optimizer": text}, path
    # And the re-saved workbook imports as no change at all.
    assert "No changes." in invoke("import", resaved, "--dry-run").stdout


def test_a_server_error_quoting_the_key_is_shown_with_the_key_scrubbed(seeded_sandbox, tmp_path):
    """A server (or a proxy before it) whose error message quotes the credentials it was sent."""
    import json

    import runsync
    from runsync.backend.wandb.client import WandbBackend
    from runsync.writer.apply import apply_plan
    from runsync.writer.options import ApplyOptions

    key = seeded_sandbox.api_key
    sheet = tmp_path / "runs.csv"
    invoke("export", "e/p", "-o", sheet)
    first = _ids(seeded_sandbox)[0]
    edit_cells(sheet, {(first, "notes"): "edited"})
    echo = {"RunsyncRuns": True, "writes": False}

    def quote_the_key(label: str, variables: dict, is_mutation: bool) -> None:
        # The variables the server executes: its answer is an error naming the operator, or the run id, sent.
        if label == "RunsyncRuns" and echo["RunsyncRuns"]:
            variables["filters"] = json.dumps({f"$auth {key}": 1})
        if is_mutation and echo["writes"]:
            for name in variables:
                variables[name]["id"] = f"Bearer {key}"

    seeded_sandbox.request_hooks.append(quote_the_key)
    try:
        failed = invoke("--debug", "import", sheet, "--yes", exit_code=1)  # the message, and the traceback
        shown = (key in failed.stdout + failed.stderr, "***" in failed.stderr, "Traceback" in failed.stderr)
        assert shown == (False, True, True)  # (key shown, scrubbed, traced): a failure can't print the key
        echo.update(RunsyncRuns=False, writes=True)
        plan = runsync.plan(sheet)
        report = apply_plan(plan, WandbBackend(), ApplyOptions(journal=str(tmp_path / "j.jsonl"), attempts=2,
                                                               backoff_seconds=0.01))
    finally:
        seeded_sandbox.request_hooks.remove(quote_the_key)
    why = report.failed.get(first, "")
    assert list(report.failed) == [first] and (key in why, "***" in why) == (False, True)
