"""Writing W&B runs: one `upsertBucket` per run carrying only the changed inputs, several under aliases in one
request. `Run.update()` would send two mutations, re-send the whole summary from a stale copy and drop config
descriptions (see WANDB_WIRE.md).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from runsync.backend.base import RunPatch, WriteOutcome
from runsync.backend.wandb.connection import Connection
from runsync.backend.wandb.queries import UPSERT_MUTATION, batch_mutation, request_bytes, upsert_input
from runsync.errors import BackendError


class Writes(Connection):
    """The writes of a WandbBackend (backend/wandb/client.py)."""

    def write_runs(self, patches: Sequence[RunPatch]) -> list[WriteOutcome]:
        """Write these runs in one request: one aliased `upsertBucket` per run, executed in turn by the server
        (one run: one plain `upsertBucket`); one outcome per patch, in order.

        A request that fails leaves every run in it unconfirmed, with its error: the client raises on any GraphQL
        error, so which runs landed is not known.
        """
        if not patches:
            return []
        try:
            if len(patches) == 1:
                self.upsert_run(patches[0].storage_id, dict(patches[0].fields))
                return [WriteOutcome(patches[0].storage_id)]
            unconfirmed = self._upsert_batch([(patch.storage_id, dict(patch.fields)) for patch in patches])
        except BackendError as exc:
            return [WriteOutcome(patch.storage_id, exc.message) for patch in patches]
        error = f"W&B did not confirm the write of {len(unconfirmed)} of {len(patches)} runs" if unconfirmed else None
        return [WriteOutcome(patch.storage_id, error if n in unconfirmed else None) for n, patch in enumerate(patches)]

    def write_request_bytes(self, writes: list[tuple[str, dict[str, Any]]]) -> int:
        """The size of the request body `write_runs` sends for these (storage id, fields), as the installed client
        serializes it (the service refuses one over ~10 MB: runsync/fields/limits.py)."""
        if len(writes) == 1:
            query, variables = UPSERT_MUTATION, {"input": upsert_input(*writes[0])}
        else:
            query = batch_mutation(len(writes))
            variables = {f"i{n}": upsert_input(storage_id, fields) for n, (storage_id, fields) in enumerate(writes)}
        return request_bytes(query, variables, ascii_only=getattr(self.api, "name", None) == "classic")

    def upsert_run(self, storage_id: str, fields: dict[str, Any]) -> None:
        """Write the given run fields in one `upsertBucket`.

        Keys: name, tags, group, job_type, notes, raw_config (W&B's wrapped config), summary (the whole summary,
        as the client's run.update() sends it; NaN/Infinity as the client writes them).
        """
        data = self.execute(UPSERT_MUTATION, {"input": upsert_input(storage_id, fields)})
        if not (data.get("upsertBucket") or {}).get("bucket"):
            raise BackendError(f"W&B did not confirm the write of run {storage_id}")

    def _upsert_batch(self, writes: list[tuple[str, dict[str, Any]]]) -> set[int]:
        """Send several runs' upsertBuckets in one request; the positions of the runs W&B did not confirm."""
        variables = {f"i{n}": upsert_input(storage_id, fields) for n, (storage_id, fields) in enumerate(writes)}
        data = self.execute(batch_mutation(len(writes)), variables)
        return {n for n in range(len(writes)) if not (data.get(f"r{n}") or {}).get("bucket")}
