"""The one backend protocol (runsync/backend/base.py): W&B implements it, the factory picks a tracker by the
project's address, and writes come back as one outcome per run."""
from __future__ import annotations

import inspect
from typing import Any

import pytest
import wandb

import runsync.backend as backend_pkg
from runsync.backend import (
    Backend,
    Capabilities,
    ProjectAddress,
    RunPatch,
    Tracker,
    WriteOutcome,
    capabilities,
    connect,
    parse_project_address,
)
from runsync.backend.wandb.client import WandbBackend
from runsync.errors import ConfigError
from runsync.sandbox import Sandbox

PROTOCOL_METHODS = ("login", "connect_in_background", "iter_runs", "fetch_by_ids", "write_runs")


def _signature_gaps(implementation: type, protocol: type = Backend) -> list[str]:
    """Where `implementation`'s methods do not take what the protocol's take: a parameter missing, of another
    kind, without a default the protocol promises, or an extra one the protocol's callers would not pass."""
    gaps = []
    for name in PROTOCOL_METHODS:
        method = getattr(implementation, name, None)
        if not callable(method):
            gaps.append(f"{name}: missing")
            continue
        wanted = inspect.signature(getattr(protocol, name)).parameters
        given = inspect.signature(method).parameters
        for param in wanted.values():
            have = given.get(param.name)
            if have is None:
                gaps.append(f"{name}: no parameter {param.name}")
            elif have.kind != param.kind:
                gaps.append(f"{name}: {param.name} is {have.kind.description}, not {param.kind.description}")
            elif param.default is not inspect.Parameter.empty and have.default is inspect.Parameter.empty:
                gaps.append(f"{name}: {param.name} has no default")
        for extra in given.values():
            if extra.name not in wanted and extra.default is inspect.Parameter.empty and extra.kind not in (
                    inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                gaps.append(f"{name}: requires {extra.name}, which the protocol does not pass")
    for name in ("capabilities", "base_url"):
        if not hasattr(implementation, name):
            gaps.append(f"{name}: missing")
    return gaps


def test_the_wandb_backend_implements_the_protocol() -> None:
    backend = WandbBackend(base_url="http://127.0.0.1:9")  # nothing is connected until first use
    assert isinstance(backend, Backend)
    assert _signature_gaps(WandbBackend) == []
    caps = backend.capabilities
    assert isinstance(caps, Capabilities) and caps.tracker == "W&B"
    assert caps.min_per_page <= caps.default_per_page and caps.ids_per_query >= 1
    assert "config" in caps.editable and not caps.deletable  # W&B merges config: a key once written stays
    assert caps.parse_project("team/proj") == ProjectAddress("wandb", "team", "proj")
    assert caps.filter_value("tags", "2024") == "2024" and caps.filter_value("config.lr", "2024") == 2024


def test_the_signature_check_finds_what_a_backend_lacks() -> None:
    """The checker itself: a class missing a method, with a positional-only id list, or needing an extra
    argument is caught."""

    class Partial:
        capabilities = None
        base_url = "x"
        requests_sent = 0

        def login(self) -> None: ...

        def connect_in_background(self) -> None: ...

        def iter_runs(self, project: str, *, filters: Any = None, order: Any = None, limit: Any = None,
                      per_page: int = 1, with_summary: bool = False, on_total: Any = None,
                      on_warning: Any = None) -> Any: ...

        def fetch_by_ids(self, project: str, ids: Any, /, *, with_summary: bool, on_warning: Any = None,
                         on_run: Any = None, token: str) -> Any: ...

    gaps = _signature_gaps(Partial)
    assert "write_runs: missing" in gaps
    assert "fetch_by_ids: ids is positional-only, not positional or keyword" in gaps
    assert "fetch_by_ids: with_summary has no default" in gaps
    assert "fetch_by_ids: requires token, which the protocol does not pass" in gaps
    assert not isinstance(Partial(), Backend)


class ProbeBackend:
    """A second tracker, as small as the protocol allows: it serves no runs and confirms every write."""

    capabilities = Capabilities(
        tracker="Probe", editable=frozenset({"tags"}), deletable=frozenset({"tags"}), add_only=frozenset({"config"}),
        ids_per_query=7, default_per_page=13, min_per_page=3, max_runs_per_request=1,
        parse_project=lambda address: _probe_address(address), filter_value=lambda key, raw: raw)

    base_url = "probe://here"
    requests_sent = 0

    def __init__(self, **options: Any) -> None:
        self.options = options

    def login(self) -> None: ...

    def connect_in_background(self) -> None: ...

    def iter_runs(self, project: str, *, filters: Any = None, order: Any = None, limit: Any = None,
                  per_page: int = 13, with_summary: bool = False, on_total: Any = None, on_warning: Any = None) -> Any:
        return iter(())

    def fetch_by_ids(self, project: str, ids: Any, *, with_summary: bool = False, on_warning: Any = None,
                     on_run: Any = None) -> dict:
        return {}

    def write_runs(self, patches: Any) -> list[WriteOutcome]:
        return [WriteOutcome(p.storage_id) for p in patches]

    def write_request_bytes(self, writes: Any) -> int:
        return 0


def _probe_address(address: str) -> ProjectAddress:
    owner, _, name = address.removeprefix("probe://").partition("/")
    if not owner or not name:
        raise ConfigError(f"not a probe project: {address!r}")
    return ProjectAddress("probe", owner, name)


@pytest.fixture
def with_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    probe = Tracker(name="probe", claims=lambda address: address.startswith("probe://"),
                    parse_project=_probe_address, capabilities=lambda: ProbeBackend.capabilities,
                    open=ProbeBackend)
    monkeypatch.setattr(backend_pkg, "TRACKERS", [probe, *backend_pkg.TRACKERS])


def test_the_factory_picks_the_backend_from_the_address(with_probe: None) -> None:
    assert _signature_gaps(ProbeBackend) == [] and isinstance(ProbeBackend(), Backend)
    probe = connect("probe://lab-ü/exp 7", token="t0k")
    assert isinstance(probe, ProbeBackend) and probe.options == {"token": "t0k"}
    assert parse_project_address("probe://lab-ü/exp 7") == ProjectAddress("probe", "lab-ü", "exp 7")
    assert capabilities("probe://lab/x").ids_per_query == 7
    for address in ("team/proj", " team-ü/proj.v2/ ", "https://wandb.ai/team/proj/runs/abc?workspace=me",
                    "http://localhost:8080/probe/x"):  # "probe" as an entity is still W&B's
        backend = connect(address, base_url="http://127.0.0.1:9")
        assert isinstance(backend, WandbBackend), address
        assert capabilities(address).tracker == "W&B"
    assert isinstance(connect(), WandbBackend)  # no address: the default tracker
    with pytest.raises(ConfigError, match="not a probe project"):
        parse_project_address("probe://only-owner")


@pytest.mark.parametrize("address, owner, name", [
    ("team/proj", "team", "proj"),
    (" team-ü/proj.v2/ ", "team-ü", "proj.v2"),
    ("https://wandb.ai/my%20team/p-1/runs/abc?workspace=user", "my team", "p-1"),
    ("https://wandb.example.org/ent/proj/table", "ent", "proj"),
])
def test_a_wandb_address_parses_to_its_entity_and_project(address: str, owner: str, name: str) -> None:
    parsed = parse_project_address(address)
    assert parsed == ProjectAddress("wandb", owner, name) and parsed.path == f"{owner}/{name}"


@pytest.mark.parametrize("address", ["proj", "a/b/c", "https://wandb.ai/settings/x", "https://wandb.ai/team"])
def test_a_bad_wandb_address_is_refused(address: str) -> None:
    with pytest.raises(ConfigError):
        parse_project_address(address)


def _runs(sandbox: Sandbox, ids: list[str]) -> list[str]:
    """The runs' storage ids, in order."""
    for run_id in ids:
        sandbox.store.create_run("e", "p", run_id, state="finished", config={"lr": 0.5})
    return [sandbox.store.find_run("e", "p", run_id).storage_id for run_id in ids]


def test_write_runs_gives_one_outcome_per_run_in_order(sandbox: Sandbox) -> None:
    ids = ["w-ä", "w 2", "w.3"]
    storage = _runs(sandbox, ids)
    groups = ["g/ü", "  spaced  ", "='formula"]
    backend = connect("e/p")
    sandbox.reset_stats()
    outcomes = backend.write_runs([RunPatch(s, {"group": g}) for s, g in zip(storage, groups)])
    assert [o.storage_id for o in outcomes] == storage and all(o.landed for o in outcomes)
    operations = sandbox.stats()["operations"]
    assert operations.get("RunsyncUpsertBuckets") == 1 and "RunsyncUpsertBucket" not in operations  # one request
    assert [wandb.Api().run(f"e/p/{run_id}").group for run_id in ids] == groups
    assert backend.write_runs([]) == []


def test_a_failed_write_request_leaves_every_run_in_it_unconfirmed(sandbox: Sandbox) -> None:
    ids = ["f-1", "f-gone", "f-3"]
    storage = _runs(sandbox, ids)
    sandbox.store.delete_run("e", "p", "f-gone")
    backend = connect("e/p")
    outcomes = backend.write_runs([RunPatch(s, {"notes": "n-ß"}) for s in storage])
    assert [o.storage_id for o in outcomes] == storage
    assert not any(o.landed for o in outcomes)  # which ran is not known: the client raised for the request
    assert len({o.error for o in outcomes}) == 1 and "not found" in (outcomes[0].error or "")
    [alone] = backend.write_runs([RunPatch(storage[1], {"notes": "n-ß"})])
    assert not alone.landed and "not found" in (alone.error or "")
    [fine] = backend.write_runs([RunPatch(storage[2], {"notes": "n-ß"})])
    assert fine.landed and wandb.Api().run("e/p/f-3").notes == "n-ß"
