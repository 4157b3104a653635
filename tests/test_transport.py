"""Choosing the wandb client's transport by what it offers (runsync/backend/transport.py).

The real client is the installed (newest) wandb; older generations are checked by the e2e set in their own
venvs (.ci/run). The stand-ins below only shape what `select` looks at, to pin the choice for each generation.
"""
from __future__ import annotations

import sys
import types

import pytest
import requests
import wandb

from runsync.backend.wandb import transport
from runsync.backend.wandb.client import WandbBackend
from runsync.backend.wandb.transport import (
    ClassicTransport,
    ServiceTransport,
    TransportError,
)
from runsync.errors import BackendError


class _Service:
    app_url = "http://app.example/"

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.calls: list[tuple] = []

    def execute_graphql(self, query, variables, **kw):
        self.calls.append((query, variables, kw))
        if self.error:
            raise self.error
        return {"viewer": {"id": "1"}}


class _Service026:
    """wandb 0.26: `_service_api` exists, without `execute_graphql`."""

    app_url = "http://app.example/"


class _Client:
    app_url = "http://app.example/"

    def execute(self, doc, variable_values=None, **kw):
        return {"viewer": {"id": "1"}}


def _api(**attrs):
    return types.SimpleNamespace(settings={"base_url": "http://w.example/"}, **attrs)


@pytest.fixture
def classic_gql(monkeypatch):
    """What the classic generation ships: the vendored `wandb_gql` (absent from the newest wandb)."""
    module = types.ModuleType("wandb_gql")
    module.gql = lambda text: ("doc", text)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "wandb_gql", module)


def test_the_installed_wandb_gets_the_newest_transport_it_offers(sandbox):
    api = wandb.Api()
    chosen = transport.select(api)
    expected = ServiceTransport if ServiceTransport.fits(api) else ClassicTransport
    assert type(chosen) is expected
    assert chosen.execute("query { viewer { id } }", {})["viewer"]["id"]
    assert chosen.base_url == sandbox.url
    backend = WandbBackend()
    assert type(backend.api) is expected and backend.base_url == sandbox.url


def test_the_newest_wandb_has_only_the_service_transport(sandbox):
    # wandb 0.31 dropped `Api.client` and `wandb_gql`: if a release brings a classic path back, or the main
    # environment is not the newest wandb (CI runs the full suite on the newest), this says so.
    api = wandb.Api()
    assert ServiceTransport.fits(api) and not ClassicTransport.fits(api)


def test_service_wins_when_both_are_offered(classic_gql):
    assert type(transport.select(_api(_service_api=_Service(), client=_Client()))) is ServiceTransport


def test_wandb_0_26_without_execute_graphql_falls_back_to_classic(classic_gql, monkeypatch):
    chosen = transport.select(_api(_service_api=_Service026(), client=_Client()))
    assert type(chosen) is ClassicTransport
    monkeypatch.setattr(ClassicTransport, "_send", lambda self, doc, variables, timeout: {"sent": doc})
    assert chosen.execute("query { viewer { id } }", {"a": 1})["sent"] == ("doc", "query { viewer { id } }")
    assert chosen.app_url == "http://app.example" and chosen.base_url == "http://w.example"


def test_a_client_with_neither_is_refused_naming_the_supported_range():
    with pytest.raises(TransportError, match="0.17 to 0.31"):
        transport.select(_api(client=object()))


def test_the_service_deadline_is_a_timeout_other_errors_pass_through():
    busy = _api(_service_api=_Service(RuntimeError("the service process is busy\nand did not respond")))
    with pytest.raises(TransportError) as caught:
        transport.select(busy).execute("q", {}, timeout=3)
    assert caught.value.timed_out
    assert busy._service_api.calls[0][2] == {"timeout": 3}
    refused = _api(_service_api=_Service(ValueError("Cannot query field")))
    with pytest.raises(ValueError):
        transport.select(refused).execute("q", {})


@pytest.mark.parametrize(("error", "timed_out"), [
    (500, True), (429, True), (503, True), (400, False),
    (requests.ConnectionError("Connection refused"), True), (requests.ReadTimeout("read timed out"), True),
])
def test_classic_errors_after_its_retries(classic_gql, monkeypatch, error, timed_out):
    # The retrying itself is wandb's own (`wandb.sdk.lib.retry`), run by the e2e set on the classic releases.
    if isinstance(error, int):
        response = requests.Response()
        response.status_code = error
        error = requests.HTTPError(f"{error} error", response=response)

    def send(self, doc, variables, timeout):
        raise error

    monkeypatch.setattr(ClassicTransport, "_send", send)
    with pytest.raises(TransportError) as caught:
        transport.select(_api(client=_Client())).execute("q", {})
    assert caught.value.timed_out is timed_out


def test_classic_deadline_is_the_api_timeout_else_wandb_http_timeout(classic_gql, monkeypatch):
    monkeypatch.delenv("WANDB_HTTP_TIMEOUT", raising=False)
    assert transport.select(_api(client=_Client()))._deadline == transport.CLASSIC_DEADLINE_SECONDS
    assert transport.select(_api(client=_Client()), 3)._deadline == 3
    monkeypatch.setenv("WANDB_HTTP_TIMEOUT", "5")
    assert transport.select(_api(client=_Client()))._deadline == 5


def test_a_timeout_becomes_the_backends_did_not_answer(sandbox, monkeypatch):
    backend = WandbBackend()
    chosen = backend.api

    def busy(query, variables, *, timeout=None):
        raise TransportError("deadline", timed_out=True)

    monkeypatch.setattr(chosen, "execute", busy)
    with pytest.raises(BackendError, match="did not answer in time"):
        backend.execute("query { viewer { id } }", {})
