"""The service's size limits, kept before anything is sent (issue 20 §5): a run config over the limit (W&B: "run
config cannot exceed 15 MB", HTTP 400) is a plan error naming the run, the column and the size; a batch of writes
is split so no request body is over the limit (W&B: ~10 MB; the sandbox answers 413); one run whose write alone is
over it is refused with its reason, not sent.

The sandbox enforces the same limits (small ones here, so the tests stay fast; runsync's are set to match through
RUNSYNC_MAX_CONFIG_BYTES / RUNSYNC_MAX_REQUEST_BYTES). Oracles: the sandbox's counters (no 400/413 answered, the
requests it counted), its store, and the runs read back with the plain wandb client.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import wandb
from helpers import edit_cells, fresh_run, invoke, upsert_inputs

import runsync
from runsync.backend import RunPatch
from runsync.backend.wandb.client import WandbBackend
from runsync.sandbox import Sandbox
from runsync.sandbox.limits import ConfigTooLarge
from runsync.sandbox.records import dumps


def awkward_config(tag: str, keys: int) -> dict[str, Any]:
    """Many keys whose JSON is longer than their characters: multi-byte text, emoji, characters escaped as
    \\uXXXX in the stored JSON (control characters), quotes and backslashes, numbers, nested values."""
    values = [f"ñ{tag}ß" * 7, "🚀" * 3 + "<&>", {"ctl": "\x01\x1f", "sep": "\u2028", "q": '"\\'},
              [0.1, -3, True, None, "€"]]
    config: dict[str, Any] = {f"k{i:03d}": values[i % 4] for i in range(keys)}
    config["note"] = "ß start"
    return config


def stored_bytes(sandbox: Sandbox, run_id: str) -> int:
    """The run's config as the sandbox stores (and measures) it."""
    return len(dumps(sandbox.store.find_run("e", "p", run_id).raw_config).encode())


def json_bytes(text: str) -> int:
    return len(json.dumps(text, ensure_ascii=False).encode())


def note_for(sandbox: Sandbox, run_id: str, size: int, head: str = "é✓🚀<") -> str:
    """A new value for the run's `note` that makes its stored config exactly `size` bytes."""
    rest = size - stored_bytes(sandbox, run_id) + json_bytes(fresh_run(run_id).config["note"])
    text = head + "x" * (rest - json_bytes(head))
    assert json_bytes(text) == rest
    return text


def over_at_the_service(sandbox: Sandbox, run_id: str, note: str) -> bool:
    """Whether the sandbox itself refuses this note (written straight to its store, not through runsync)."""
    sid = sandbox.store.find_run("e", "p", run_id).storage_id
    before = sandbox.store.find_run("e", "p", run_id).raw_config
    try:
        sandbox.store.upsert({"id": sid, "config": {"note": {"value": note, "desc": None}}})
    except ConfigTooLarge:
        return True
    sandbox.store.upsert({"id": sid, "config": before})  # put it back (the note was the only key sent)
    return False


@pytest.fixture
def limited(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Set the config and body limits, the sandbox's and runsync's alike."""

    def set_limits(config: int | None = None, body: int | None = None) -> None:
        if config is not None:
            sandbox.set_faults(max_config_bytes=config)
            monkeypatch.setenv("RUNSYNC_MAX_CONFIG_BYTES", str(config))
        if body is not None:
            sandbox.set_faults(max_body_bytes=body)
            monkeypatch.setenv("RUNSYNC_MAX_REQUEST_BYTES", str(body))

    return set_limits


def no_size_faults(sandbox: Sandbox) -> bool:
    faults = sandbox.stats()["faults"]
    return not faults.get("config_too_large") and not faults.get("413")


# -- 1. a config over the limit is a plan error ----------------------------------------------------------
def test_an_import_that_grows_a_config_past_the_limit_is_a_plan_error(sandbox, limited, tmp_path: Path) -> None:
    sandbox.store.create_run("e", "p", "fits", config=awkward_config("a", 150))
    sandbox.store.create_run("e", "p", "over", config=awkward_config("bé", 170))
    limit = max(stored_bytes(sandbox, "fits"), stored_bytes(sandbox, "over")) + 400
    limited(config=limit)
    sheet = tmp_path / "runs.xlsx"
    invoke("export", "e/p", "-o", sheet)
    at_limit, one_over = note_for(sandbox, "fits", limit), note_for(sandbox, "over", limit + 1)
    assert not over_at_the_service(sandbox, "fits", at_limit) and over_at_the_service(sandbox, "over", one_over)
    edit_cells(sheet, {("fits", "config.note"): at_limit, ("over", "config.note"): one_over})
    sandbox.reset_stats()

    result = invoke("import", sheet, "--dry-run", exit_code=1)
    errors = [line for line in result.stderr.splitlines() if "cannot exceed" in line or "limit" in line]
    assert len(errors) == 1, result.stderr
    assert "run over" in errors[0] and "column 'config.note'" in errors[0] and f"{limit + 1:,} bytes" in errors[0]
    assert "run fits" not in result.stderr
    plan = runsync.plan(sheet)
    assert [(e.run_id, e.column) for e in plan.errors] == [("over", "config.note")] and not plan.changes
    assert invoke("import", sheet, "--yes", exit_code=1) and sandbox.stats()["mutations"] == 0
    assert fresh_run("over").config["note"] == "ß start" and fresh_run("fits").config["note"] == "ß start"

    # One byte less, and both land: exactly at the limit is within it, for runsync and for the service.
    fixed = note_for(sandbox, "over", limit, head="ü→🚀&")
    edit_cells(sheet, {("over", "config.note"): fixed})
    invoke("import", sheet, "--yes")
    assert fresh_run("fits").config["note"] == at_limit and fresh_run("over").config["note"] == fixed
    assert stored_bytes(sandbox, "fits") == stored_bytes(sandbox, "over") == limit
    assert wandb.Api().run("e/p/over").config["k002"] == {"ctl": "\x01\x1f", "sep": "\u2028", "q": '"\\'}
    assert no_size_faults(sandbox) and sandbox.stats()["mutations"] == 2


def test_set_refuses_a_config_past_the_limit_naming_the_run_and_columns(sandbox, limited) -> None:
    for run_id, keys in (("small", 40), ("mid", 90), ("big", 120)):
        sandbox.store.create_run("e", "p", run_id, config=awkward_config(run_id, keys))
    limit = stored_bytes(sandbox, "big") + 700
    limited(config=limit)
    one_over = note_for(sandbox, "big", limit + 1, head="Ω\u2028")
    sandbox.reset_stats()
    result = invoke("set", "e/p", "--set", f"config.note={json.dumps(one_over, ensure_ascii=False)}", "--yes",
                    exit_code=1)
    assert "run big" in result.stderr and "config.note" in result.stderr and f"{limit + 1:,} bytes" in result.stderr
    assert "run mid" not in result.stderr and "run small" not in result.stderr
    # Two columns that together grow it past the limit: the error names both.
    part = json.dumps(one_over[: len(one_over) * 2 // 3], ensure_ascii=False)
    result = invoke("set", "e/p", "--set", f"config.note={part}", "--set", f"config.k000={part}", "--yes",
                    exit_code=1)
    line = next(line for line in result.stderr.splitlines() if "run big" in line)
    assert "config.note" in line and "config.k000" in line and "run mid" not in result.stderr
    assert sandbox.stats()["mutations"] == 0 and fresh_run("big").config["note"] == "ß start"

    at_limit = note_for(sandbox, "big", limit, head="Ω\u2028")
    invoke("set", "e/p", "--set", f"config.note={json.dumps(at_limit, ensure_ascii=False)}", "--yes")
    assert [fresh_run(r).config["note"] for r in ("small", "mid", "big")] == [at_limit] * 3
    assert stored_bytes(sandbox, "big") == limit
    assert no_size_faults(sandbox) and sandbox.stats()["mutations"] == 3


def test_a_config_that_grew_in_wandb_after_the_plan_is_refused_at_apply(sandbox, limited, tmp_path: Path) -> None:
    sandbox.store.create_run("e", "p", "grows", config=awkward_config("g", 60))
    sandbox.store.create_run("e", "p", "other", config=awkward_config("o", 60))
    limit = stored_bytes(sandbox, "grows") + 2_000
    limited(config=limit)
    sheet = tmp_path / "runs.xlsx"
    invoke("export", "e/p", "-o", sheet)
    edit_cells(sheet, {("grows", "config.note"): "ñ" * 500, ("other", "config.note"): "fine ✓"})
    plan = runsync.plan(sheet)
    assert not plan.errors and len(plan.changes) == 2
    # A colleague adds a big key meanwhile: the edit would now take the config past the limit.
    sid = sandbox.store.find_run("e", "p", "grows").storage_id
    sandbox.store.upsert({"id": sid, "config": {"added": {"value": "ü" * 600, "desc": None}}})
    sandbox.reset_stats()
    report = runsync.apply(plan, journal=tmp_path / "j.jsonl", verify=False)
    assert list(report.failed) == ["grows"] and "config" in report.failed["grows"]
    assert f"{limit:,} bytes" in report.failed["grows"] and "not sent" in report.failed["grows"]
    assert fresh_run("grows").config["note"] == "ß start" and fresh_run("other").config["note"] == "fine ✓"
    assert no_size_faults(sandbox) and sandbox.stats()["mutations"] == 1


# -- 2. request bodies under the limit -------------------------------------------------------------------
AWKWARD_TEXT = ["plain ascii", "é" * 300, "🚀" * 200, "<&>" * 300, "\x01\x08\x0c\n\t" * 100, "\u2028\u2029" * 150,
                '"\\' * 200, "mixed <ü> & 🚀 \u2028 \x7f"]


def test_the_request_size_runsync_measures_is_the_body_the_client_sends(sandbox) -> None:
    """At exactly the measured size the sandbox takes the request; one byte less of limit and it is 413."""
    for run_id in ("w0", "w1", "w2"):
        sandbox.store.create_run("e", "p", run_id, config={"keep": 1})
    sids = [sandbox.store.find_run("e", "p", r).storage_id for r in ("w0", "w1", "w2")]
    backend = WandbBackend()
    for n, text in enumerate(AWKWARD_TEXT):
        writes = [(sids[0], {"notes": text + str(n)}),
                  (sids[1], {"raw_config": {"keep": {"value": text, "desc": None}}, "group": text[:50]}),
                  (sids[2], {"tags": [text[:20], "ok"], "name": text})]
        for batch in (writes[:1], writes):
            size = backend.write_request_bytes(batch)
            sandbox.set_faults(max_body_bytes=size - 1)
            patches = [RunPatch(storage_id, fields) for storage_id, fields in batch]
            assert not any(o.landed for o in backend.write_runs(patches))  # refused whole: the 413s counted below
            sandbox.set_faults(max_body_bytes=size)
            assert all(o.landed for o in backend.write_runs(patches))
    assert sandbox.stats()["faults"]["413"] == 2 * len(AWKWARD_TEXT)
    sandbox.set_faults(max_body_bytes=None)  # the reads below are bigger than the last limit
    assert fresh_run("w0").notes == AWKWARD_TEXT[-1] + str(len(AWKWARD_TEXT) - 1)
    assert fresh_run("w2").name == AWKWARD_TEXT[-1]


def requests_seen(sandbox: Sandbox) -> list[list[str]]:
    """The storage ids each write request carries, in order (a sandbox request hook)."""
    seen: list[list[str]] = []

    def hook(label: str, variables: dict, is_mutation: bool) -> None:
        if is_mutation:
            seen.append([i["id"] for i in upsert_inputs(label, variables)])

    sandbox.request_hooks.append(hook)
    return seen


def test_a_batch_is_split_so_no_request_is_over_the_body_limit(sandbox, limited, tmp_path: Path) -> None:
    ids = [f"n{i}" for i in range(7)]
    for run_id in ids:
        sandbox.store.create_run("e", "p", run_id, config={"lr": 0.5})
    sheet = tmp_path / "runs.xlsx"
    invoke("export", "e/p", "-o", sheet)
    # 2,000 characters, but 9,500 bytes as the client sends them (<, & and > are \u003c...: 6 bytes each): a
    # measure of characters or UTF-8 would put all seven in one request, and the server would answer 413.
    notes = {run_id: "<&>" * 500 + "ü" * 249 + str(i) for i, run_id in enumerate(ids)}
    edit_cells(sheet, {(run_id, "notes"): text for run_id, text in notes.items()})
    limited(body=int(3.5 * 9_500))  # three runs fit in a request, four do not
    seen = requests_seen(sandbox)
    sandbox.reset_stats()
    invoke("import", sheet, "--yes")
    assert [len(request) for request in seen] == [3, 3, 1]
    assert {r.id: r.notes for r in wandb.Api().runs("e/p")} == notes
    assert no_size_faults(sandbox) and sandbox.stats()["mutations"] == 7


def test_a_run_whose_write_alone_is_over_the_body_limit_is_refused_not_sent(sandbox, limited, tmp_path) -> None:
    ids = ["r1", "r2", "r3", "r4"]
    for run_id in ids:
        sandbox.store.create_run("e", "p", run_id, config={"lr": 0.5})
    sheet = tmp_path / "runs.xlsx"
    invoke("export", "e/p", "-o", sheet)
    huge = "日本" * 10_000  # 60,000 UTF-8 bytes
    edit_cells(sheet, {("r1", "notes"): "a ✓", ("r2", "notes"): huge, ("r3", "notes"): "c ✓",
                       ("r4", "group"): "g <&>"})
    limited(body=40_000)
    seen = requests_seen(sandbox)
    sandbox.reset_stats()
    result = invoke("import", sheet, "--yes", "--journal", tmp_path / "j.jsonl", exit_code=1)
    line = next(line for line in result.stderr.splitlines() if "r2" in line)
    assert "not sent" in line and "request" in line and "notes" in line, result.stderr
    r2 = sandbox.store.find_run("e", "p", "r2").storage_id
    assert len(seen) == 1 and r2 not in seen[0] and len(seen[0]) == 3  # one request, the other three, no retry
    assert [fresh_run(r).notes for r in ("r1", "r3")] == ["a ✓", "c ✓"] and fresh_run("r4").group == "g <&>"
    assert fresh_run("r2").notes != huge
    journal = [json.loads(line) for line in (tmp_path / "j.jsonl").read_text().splitlines()]
    assert "r2" not in {e.get("run") for e in journal if e["op"] == "write"}
    assert no_size_faults(sandbox) and sandbox.stats()["mutations"] == 3
