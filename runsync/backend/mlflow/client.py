"""The MLflow implementation of runsync's `Backend` (backend/base.py): an experiment's runs read and written
through `mlflow.MlflowClient` (the connection: connection.py, reads: reads.py, writes: writes.py).

What MLflow allows (/work/shared/MLFLOW.md, checked against mlflow 3.17): tags set, changed and deleted; the run
name and description (the `mlflow.note.content` tag) changed; a param added but never changed or deleted;
metrics only read (their history only grows); `mlflow.*` tags never written.
"""
from __future__ import annotations

from runsync.backend.base import Capabilities
from runsync.backend.mlflow.address import project_address
from runsync.backend.mlflow.filters import pair_value
from runsync.backend.mlflow.reads import DEFAULT_PER_PAGE, IDS_PER_QUERY, MIN_PER_PAGE, Reads
from runsync.backend.mlflow.writes import Writes

CAPABILITIES = Capabilities(
    tracker="MLflow",
    editable=frozenset({"name", "notes", "tag_values", "config"}),
    deletable=frozenset({"tag_values", "notes"}),
    add_only=frozenset({"config"}),  # params: INVALID_PARAMETER_VALUE "Changing param values is not allowed"
    ids_per_query=IDS_PER_QUERY,
    default_per_page=DEFAULT_PER_PAGE,
    min_per_page=MIN_PER_PAGE,
    max_runs_per_request=1,  # each MLflow request writes one run
    parse_project=project_address,
    filter_value=pair_value,
    filter_text=True,
    takes_tracking_uri=True,
)


class MlflowBackend(Reads, Writes):
    """An MLflow tracking server (MLFLOW_TRACKING_URI, or `tracking_uri`); thread-safe."""

    capabilities = CAPABILITIES


__all__ = ["CAPABILITIES", "MlflowBackend"]
