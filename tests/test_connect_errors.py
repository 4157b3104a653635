"""Server down: "cannot connect to URL" in well under the client's deadline, never "service process is busy"."""
from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from helpers import invoke

from runsync.backend.wandb.client import WandbBackend
from runsync.backend.wandb.login import not_an_api
from runsync.backend.wandb.login import probe as _probe
from runsync.errors import BackendError
from runsync.sandbox import Sandbox


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


class _WebPage(http.server.BaseHTTPRequestHandler):
    """A server that is not W&B's API: answers every request with one page (status, type and body set per server)."""

    status, content_type, body = 404, "text/html", b""

    def _answer(self) -> None:
        self.send_response(self.status)
        self.send_header("Content-Type", self.content_type)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:  # keep the test output quiet
        pass


@contextmanager
def web_page(status: int, content_type: str, body: str) -> Iterator[str]:
    """A loopback HTTP server answering `status` with `body` to every path; yields its URL."""
    handler = type("Page", (_WebPage,), {"status": status, "content_type": content_type, "body": body.encode()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


PROXY_404 = ("<!DOCTYPE html><html><head><title>404 · Nothing here – Ωmega proxy</title></head><body>"
             "<h1>Not Found</h1>" + "<p>filler ∆ line</p>" * 60 + "</body></html>")
UI_PAGE = ("<!doctype html><html lang=en><head><meta charset=utf-8><title>Weights &amp; Biases</title>"
           "<script src=/app.js></script></head><body><div id=root></div></body></html>")


@pytest.mark.parametrize("status, content_type, body, said", [
    (404, "text/html; charset=utf-8", PROXY_404, '(HTTP 404, a page titled "404 · Nothing here – Ωmega proxy")'),
    (400, "text/plain", "Bad Request: Method Not Allowed\n", "(HTTP 400)"),
    (200, "text/html", UI_PAGE, "web page"),
    (200, "text/plain", "OK — pong", "not JSON"),
], ids=["proxy-404-html", "400-text", "ui-page-200", "text-200"])
def test_an_address_that_is_not_a_wandb_api_is_said_as_such(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             status: int, content_type: str, body: str,
                                                             said: str) -> None:
    with web_page(status, content_type, body) as url:
        monkeypatch.setenv("WANDB_BASE_URL", url)
        result = invoke("export", "e/p", "-o", tmp_path / "x.csv", exit_code=1)
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith(f"error: {url}: not a W&B API ") and said in lines[0], result.stderr
    assert "WANDB_BASE_URL should be the API address" in lines[0]
    for noise in ("credentials", "<", "filler", "relogin", "Method Not Allowed", "pong"):
        assert noise not in result.stderr, result.stderr
    assert not (tmp_path / "x.csv").exists()


def test_a_path_under_the_api_host_is_not_the_api(seeded_sandbox: Sandbox, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The sandbox itself answers HTTP 404 (JSON) below a path: the URL, not the key, is what is wrong."""
    url = seeded_sandbox.url + "/e/p"
    monkeypatch.setenv("WANDB_BASE_URL", url)
    result = invoke("export", "e/p", "-o", tmp_path / "x.csv", exit_code=1)
    first = result.stderr.strip().splitlines()[0]
    assert first.startswith(f"error: {url}: not a W&B API (HTTP 404)"), result.stderr
    assert "without the path /e/p" in result.stderr
    assert "credentials" not in result.stderr and seeded_sandbox.api_key not in result.stderr


def test_the_cloud_web_address_gets_the_api_address_as_hint() -> None:
    error = not_an_api("https://wandb.ai/my-team/my-proj", "from WANDB_BASE_URL", "<html><title>W&amp;B</title>", 404)
    assert error is not None
    assert error.message == ('https://wandb.ai/my-team/my-proj: not a W&B API (HTTP 404, a page titled "W&B"); '
                             "WANDB_BASE_URL should be the API address")
    assert "without the path /my-team/my-proj" in error.hint and "https://api.wandb.ai" in error.hint
    # The key's own refusal, and a server's trouble, stay what they are.
    assert not_an_api("https://api.wandb.ai", "from WANDB_BASE_URL", "<html>denied</html>", 401) is None
    assert not_an_api("https://api.wandb.ai", "from WANDB_BASE_URL", "<html>bad gateway</html>", 502) is None
    given = not_an_api("http://127.0.0.1:1", "given to runsync", "invalid character 'O' looking for beginning of value",
                       None)
    assert given is not None and given.message.endswith("(its answer is not JSON); base_url should be the API address")
