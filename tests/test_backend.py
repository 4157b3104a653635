"""The W&B backend against the sandbox through the real wandb client."""
from __future__ import annotations

import pytest
import wandb

from runsync.backend.wandb.client import WandbBackend
from runsync.errors import BackendError, ConfigError


def test_the_private_transport_runsync_relies_on_still_exists(sandbox):
    # runsync sends GraphQL through wandb's own authenticated transport (runsync/backend/transport.py): on the
    # newest wandb, the one the full suite runs on, that is the private `_service_api.execute_graphql`.
    # If a wandb release moves it, fail here (older releases' `api.client` path: tests/test_e2e_versions.py).
    api = wandb.Api()
    assert callable(api._service_api.execute_graphql)
    assert api._service_api.execute_graphql("query { viewer { id } }", {})["viewer"]["id"]


def test_iter_runs_pages_limits_and_orders(seeded_sandbox):
    backend = WandbBackend()
    expected = [r.id for r in wandb.Api().runs("e/p", order="-created_at")]
    got = [r.id for r in backend.iter_runs("e/p", order="-created_at", per_page=7)]
    assert got == expected
    assert [r.id for r in backend.iter_runs("e/p", order="-created_at", limit=5, per_page=2)] == expected[:5]
    totals = []
    list(backend.iter_runs("e/p", on_total=totals.append))
    assert totals == [len(expected)]


def test_fetch_by_ids_batches_and_skips_missing(seeded_sandbox):
    backend = WandbBackend()
    ids = [r.id for r in wandb.Api().runs("e/p")]
    seeded_sandbox.reset_stats()
    found = backend.fetch_by_ids("e/p", ids + ["no-such-run"], chunk=10)
    assert set(found) == set(ids)
    pages = -(-(len(ids) + 1) // 10)
    assert seeded_sandbox.stats()["operations"].get("RunsyncRuns") == pages
    record = found[ids[0]]
    live = wandb.Api().run(f"e/p/{ids[0]}")
    assert record.config == dict(live.config) and list(record.tags) == list(live.tags)
    assert "_wandb" in record.raw_config and "_wandb" not in record.config


def test_upsert_sends_only_the_given_fields(seeded_sandbox):
    backend = WandbBackend()
    run = next(iter(wandb.Api().runs("e/p", lazy=False)))
    record = backend.fetch_by_ids("e/p", [run.id])[run.id]
    seeded_sandbox.reset_stats()
    backend.upsert_run(record.storage_id, {"group": "only-group"})
    assert seeded_sandbox.stats()["mutations"] == 1
    after = wandb.Api().run(f"e/p/{run.id}")
    assert after.group == "only-group"
    assert (after.name, list(after.tags), after.notes, after.job_type, dict(after.config)) == (
        run.name, list(run.tags), run.notes, run.job_type, dict(run.config))


def test_unknown_project_is_a_clear_error(sandbox):
    with pytest.raises(BackendError, match="nobody/nothing"):
        list(WandbBackend().iter_runs("nobody/nothing"))


def test_bad_project_path_and_missing_key(monkeypatch, sandbox):
    with pytest.raises(ConfigError, match="ENTITY/PROJECT"):
        list(WandbBackend().iter_runs("just-a-project"))
    monkeypatch.delenv("WANDB_API_KEY")
    with pytest.raises(ConfigError, match="WANDB_API_KEY"):
        list(WandbBackend().iter_runs("e/p"))


def test_wrong_key_is_refused_and_never_echoed(sandbox):
    wrong = "w" * 40
    with pytest.raises(BackendError) as caught:
        list(WandbBackend(api_key=wrong, timeout=5).iter_runs("e/p"))
    assert wrong not in caught.value.message and sandbox.api_key not in caught.value.message
