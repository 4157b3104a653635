"""The W&B implementation of runsync's `Backend` (backend/base.py): read and write W&B runs through the official
client's own transport.

The connection (login, the authenticated GraphQL call) is backend/wandb/connection.py, the reads (listings and
runs by id, paged) reads.py, the writes (upsertBucket, batched under aliases) writes.py.
"""
from __future__ import annotations

from runsync.backend.base import Capabilities
from runsync.backend.wandb.address import parse_project_path, project_address
from runsync.backend.wandb.connection import (
    CLIENT_DEADLINE_SECONDS,
    FILTERED_FIRST_PAGE_SECONDS,
    LISTING_STALL_SECONDS,
    READ_ATTEMPTS,
)
from runsync.backend.wandb.filters import pair_value
from runsync.backend.wandb.paging import MIN_PER_PAGE
from runsync.backend.wandb.reads import DEFAULT_PER_PAGE, IDS_PER_QUERY, INTERNAL_CONFIG_KEYS, READ_CONCURRENCY, Reads
from runsync.backend.wandb.writes import Writes

CAPABILITIES = Capabilities(
    tracker="W&B",
    editable=frozenset({"name", "group", "job_type", "notes", "tags", "config", "summary"}),
    # The server deep-merges config, so a key once written stays (wandb/wandb#11055); undo sets it to null.
    deletable=frozenset(),
    add_only=frozenset(),
    ids_per_query=IDS_PER_QUERY,
    default_per_page=DEFAULT_PER_PAGE,
    min_per_page=MIN_PER_PAGE,
    max_runs_per_request=None,  # aliased upsertBuckets: the apply's batch size decides (docs/performance.md)
    parse_project=project_address,
    filter_value=pair_value,
)


class WandbBackend(Reads, Writes):
    """A W&B server reached through `wandb.Api`; thread-safe for concurrent writes (see Connection for how the
    credentials and host are found)."""

    capabilities = CAPABILITIES


__all__ = ["CAPABILITIES", "CLIENT_DEADLINE_SECONDS", "DEFAULT_PER_PAGE", "FILTERED_FIRST_PAGE_SECONDS",
           "IDS_PER_QUERY", "INTERNAL_CONFIG_KEYS", "LISTING_STALL_SECONDS", "READ_ATTEMPTS", "READ_CONCURRENCY",
           "WandbBackend", "parse_project_path"]
