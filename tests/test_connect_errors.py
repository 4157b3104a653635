"""Server down: "cannot connect to URL" in well under the client's deadline, never "service process is busy"."""
from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from runsync.backend.login import probe as _probe
from runsync.backend.wandb import WandbBackend
from runsync.errors import BackendError
from runsync.sandbox import Sandbox
from helpers import invoke


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("command", [
    ["export", "e/p", "-o", "{tmp}/x.csv"],
    ["export", "e/p", "--filters", '{"state": "finished"}', "-o", "{tmp}/x.xlsx"],
])
def test_closed_port_is_reported_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("WANDB_BASE_URL", url)
    started = time.monotonic()
    result = invoke(*[a.replace("{tmp}", str(tmp_path)) for a in command], exit_code=1)
    assert time.monotonic() - started < 15
    assert f"cannot connect to {url}" in result.stderr
    assert "refused" in result.stderr.lower()
    assert "busy" not in result.stderr


def test_server_gone_between_export_and_import(seeded_sandbox: Sandbox, tmp_path: Path) -> None:
    sheet = tmp_path / "runs.csv"
    invoke("export", "e/p", "-o", sheet)
    url = seeded_sandbox.url
    seeded_sandbox.stop()
    for args in (["import", sheet, "--dry-run"], ["import", sheet, "--yes"]):
        started = time.monotonic()
        result = invoke(*args, exit_code=1)
        assert time.monotonic() - started < 15
        assert f"cannot connect to {url}" in result.stderr, result.stderr


def test_server_gone_mid_session_is_not_retried_as_busy(seeded_sandbox: Sandbox) -> None:
    backend = WandbBackend(timeout=3)
    assert len(list(backend.iter_runs("e/p"))) == 30
    seeded_sandbox.stop()
    started = time.monotonic()
    with pytest.raises(BackendError) as caught:
        list(backend.iter_runs("e/p"))
    # One client deadline (3 s) and a probe, not runsync's three tries of it.
    assert time.monotonic() - started < 8
    assert f"cannot connect to {seeded_sandbox.url}" in caught.value.message


def test_probe_passes_a_listening_server_and_steps_aside_for_a_proxy(sandbox: Sandbox,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    _probe(sandbox.url)  # listening: no error
    url = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(BackendError, match="cannot connect"):
        _probe(url)
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:3128")
    monkeypatch.setenv("no_proxy", "")
    monkeypatch.delenv("NO_PROXY", raising=False)
    _probe(url)  # the proxy, not us, connects to the host: nothing to say


def test_a_connection_started_in_the_background_hands_its_error_to_the_first_use(monkeypatch: pytest.MonkeyPatch,
                                                                               tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("WANDB_BASE_URL", url)
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    backend = WandbBackend()
    backend.connect_in_background()
    with pytest.raises(BackendError, match=f"cannot connect to {url}"):
        backend.fetch_by_ids("e/p", ["a"])


def test_a_connection_started_in_the_background_is_the_one_used(seeded_sandbox: Sandbox) -> None:
    backend = WandbBackend()
    seeded_sandbox.reset_stats()
    backend.connect_in_background()
    assert len(backend.fetch_by_ids("e/p", [r.name for r in seeded_sandbox.store.snapshot("e", "p")[1]])) == 30
    assert seeded_sandbox.stats()["operations"].get("Viewer") == 1  # connected once
