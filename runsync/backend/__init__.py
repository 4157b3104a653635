"""The trackers runsync talks to, behind one protocol (base.py); everything that knows W&B is in backend/wandb/,
everything that knows MLflow in backend/mlflow/ (addresses `mlflow:EXPERIMENT`, `mlflow:id=N`).

Stages above this package hold a `Backend` and use only what is exported here: the protocol and its data,
`connect` (the backend for a project's address), `parse_project_address` and `capabilities`.
"""
from __future__ import annotations

from typing import Any

from runsync.backend.base import (
    FIELD_KINDS,
    PATCH_FIELDS,
    Backend,
    Capabilities,
    ProjectAddress,
    RunPatch,
    Tracker,
    WriteOutcome,
)
from runsync.backend.mlflow.address import TRACKER as _MLFLOW
from runsync.backend.mlflow.address import claims as _mlflow_claims
from runsync.backend.mlflow.address import project_address as _mlflow_address
from runsync.backend.wandb.address import TRACKER as _WANDB
from runsync.backend.wandb.address import project_address as _wandb_address
from runsync.errors import ConfigError


def _wandb_capabilities() -> Capabilities:
    from runsync.backend.wandb.client import CAPABILITIES

    return CAPABILITIES


def _open_wandb(**options: Any) -> Backend:
    from runsync.backend.wandb.client import WandbBackend

    return WandbBackend(**options)


def _mlflow_capabilities() -> Capabilities:
    from runsync.backend.mlflow.client import CAPABILITIES

    return CAPABILITIES


def _open_mlflow(**options: Any) -> Backend:
    from runsync.backend.mlflow.client import MlflowBackend  # imports mlflow only on first use of the client

    return MlflowBackend(**options)


# Asked in order; the first that claims an address is its tracker. W&B, the last, claims every address (a bare
# "ENTITY/PROJECT" is W&B's, as before there was a choice): a tracker added later goes before it and claims only
# its own addresses (e.g. its URL scheme).
TRACKERS: list[Tracker] = [
    Tracker(name=_MLFLOW, claims=_mlflow_claims, parse_project=_mlflow_address,
            capabilities=_mlflow_capabilities, open=_open_mlflow),
    Tracker(name=_WANDB, claims=lambda address: True, parse_project=_wandb_address,
            capabilities=_wandb_capabilities, open=_open_wandb),
]


def tracker_for(project_address: str | None = None) -> Tracker:
    """The tracker a project address names (no address: the default, W&B); never raises for a bad address."""
    if project_address is not None:
        for tracker in TRACKERS:
            if tracker.claims(project_address):
                return tracker
    return TRACKERS[-1]


def parse_project_address(project_address: str) -> ProjectAddress:
    """The project an address names, by its tracker's rules; ConfigError naming what is wrong."""
    return tracker_for(project_address).parse_project(project_address)


def capabilities(project_address: str | None = None) -> Capabilities:
    """What the tracker of this address can do, without connecting to it."""
    return tracker_for(project_address).capabilities()


def backend_for(project_address: str, backend: Backend | None = None, *, tracking_uri: str | None = None) -> Backend:
    """`backend` when it is the tracker of this address, else a new backend for it (a W&B client handed to the
    import of an MLflow sheet is set aside). `tracking_uri`: MLflow's server (else MLFLOW_TRACKING_URI);
    ConfigError for another tracker's address."""
    tracker = tracker_for(project_address)
    caps = tracker.capabilities()
    if tracking_uri is not None and not caps.takes_tracking_uri:
        raise ConfigError(f"--tracking-uri is for MLflow experiments; {project_address} is a {caps.tracker} project")
    if backend is not None and backend.capabilities.tracker == caps.tracker:
        return backend
    return tracker.open(**({"tracking_uri": tracking_uri} if tracking_uri is not None else {}))


def connect(project_address: str | None = None, **options: Any) -> Backend:
    """The backend for a project's address (None: the default tracker's), with the tracker's own options
    (W&B: base_url, api_key, timeout, ...; MLflow: tracking_uri). It connects on first use; `login()` connects now."""
    return tracker_for(project_address).open(**options)


__all__ = ["FIELD_KINDS", "PATCH_FIELDS", "TRACKERS", "Backend", "Capabilities", "ProjectAddress", "RunPatch",
           "Tracker", "WriteOutcome", "backend_for", "capabilities", "connect", "parse_project_address", "tracker_for"]
