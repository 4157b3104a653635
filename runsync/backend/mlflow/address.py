"""An MLflow project's address: `mlflow:EXPERIMENT` (the experiment's name) or `mlflow:id=N` (its id).

The tracking server is not part of the address: it is MLFLOW_TRACKING_URI (or the backend's `tracking_uri`), as
for every MLflow client.
"""
from __future__ import annotations

from runsync.backend.base import ProjectAddress
from runsync.errors import ConfigError

TRACKER = "mlflow"
SCHEME = "mlflow:"
BY_NAME, BY_ID = "name", "id"  # ProjectAddress.owner: how the experiment is named


def claims(address: str) -> bool:
    """Whether an address is MLflow's: it starts with `mlflow:` (any case, leading spaces allowed)."""
    return address.lstrip().lower().startswith(SCHEME)


def project_address(address: str) -> ProjectAddress:
    """`mlflow:NAME` or `mlflow:id=N` as a ProjectAddress (owner: "name" or "id"); ConfigError if it names none."""
    text = address.strip()
    if not claims(text):
        raise ConfigError(f"not an MLflow experiment: {address!r}", hint="give mlflow:EXPERIMENT or mlflow:id=N")
    rest = text[len(SCHEME):].strip()
    if rest.lower().startswith("id="):
        number = rest[3:].strip()
        if not number.isdigit():
            raise ConfigError(f"{address!r}: an MLflow experiment id is a number, got {number!r}",
                              hint="give mlflow:id=N, or mlflow:NAME for an experiment's name")
        return ProjectAddress(TRACKER, BY_ID, number, f"{SCHEME}id={number}")
    if not rest:
        raise ConfigError(f"{address!r} names no MLflow experiment", hint="give mlflow:EXPERIMENT or mlflow:id=N")
    return ProjectAddress(TRACKER, BY_NAME, rest, f"{SCHEME}{rest}")
