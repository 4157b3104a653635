"""Writing MLflow runs through `MlflowClient`: params and tags by `log_batch` (split to MLflow's limits), an
emptied tag by `delete_tag`, the name by `update_run`, the description as the tag `mlflow.note.content`.

A run's patch is checked whole before anything of it is sent: a param that would change (MLflow refuses:
INVALID_PARAMETER_VALUE), a system tag (`mlflow.*`), a value over MLflow's length limits (its client would
truncate it silently) or a field MLflow runs do not have fails that run's outcome, naming the key, and nothing
of that run is written. Params go first, so a refusal the check could not foresee (a param logged meanwhile)
also leaves the rest unwritten.
"""
from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runsync.backend.base import RunPatch, WriteOutcome
from runsync.backend.mlflow.connection import Connection, describe, error_code
from runsync.backend.mlflow.reads import NOTE_TAG, SYSTEM_TAG_PREFIX
from runsync.errors import BackendError

# mlflow/utils/validation.py (checked with 3.17): per log_batch call, and per value.
MAX_PER_BATCH = 100  # params, and tags, in one log_batch
MAX_BATCH_BYTES = 900_000  # under MAX_BATCH_LOG_REQUEST_SIZE (1e6 characters of JSON), room for the request's own
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
MAX_KEY = 250
# A param or tag key MLflow takes: letters, digits, `_ - . / : ` and spaces, and a path that normalises to itself
# (mlflow.utils.validation.validate_param_and_metric_name, path_not_unique).
_KEY_CHARACTERS = re.compile(r"^[/\w.\- :]*$")
_NO_SUCH_FIELD = {"group": "a group", "job_type": "a job type", "tags": "a tag list (its tags have keys)",
                  "summary": "writable metrics (a metric's history only grows: logging a point is not an edit)"}


class PatchRefused(Exception):
    """A run's patch MLflow would refuse or mangle: the outcome's error, nothing of the run written."""


@dataclass
class _RunWrite:
    run_id: str
    params: dict[str, str] = field(default_factory=dict)
    set_tags: dict[str, str] = field(default_factory=dict)
    delete_tags: list[str] = field(default_factory=list)
    name: str | None = None


class Writes(Connection):
    """The writes of an MlflowBackend (backend/mlflow/client.py)."""

    def write_runs(self, patches: Sequence[RunPatch]) -> list[WriteOutcome]:
        """Write each run in turn (MLflow has no request for several runs); one outcome per patch, in order.
        A run whose write failed midway (after the client's and runsync's retries) reports the error: the
        parts already sent stay, and sending the patch again is safe (each part sets values)."""
        outcomes = []
        for patch in patches:
            try:
                self._write_run(_prepare(patch))
            except (PatchRefused, BackendError) as exc:
                outcomes.append(WriteOutcome(patch.storage_id, str(exc) if isinstance(exc, PatchRefused)
                                             else exc.message))
            else:
                outcomes.append(WriteOutcome(patch.storage_id))
        return outcomes

    def write_request_bytes(self, writes: list[tuple[str, dict[str, Any]]]) -> int:
        """An upper bound of any one request these writes make: the JSON of the biggest run's fields (each run is
        its own calls, and its `log_batch` calls are split under ~0.9 MB by `_chunks`)."""
        return max((len(json.dumps(fields, ensure_ascii=False, default=str).encode()) for _, fields in writes),
                   default=0)

    def _write_run(self, write: _RunWrite) -> None:
        client = self.client
        run_id = write.run_id
        if write.params:
            self._check_params(write)
        from mlflow.entities import Param, RunTag

        for chunk in _chunks(write.params):
            params = [Param(k, v) for k, v in chunk.items()]
            self.call(lambda params=params: client.log_batch(run_id, params=params),  # type: ignore[misc]
                      f"log params {_keys(chunk)} of run {run_id}")
        for chunk in _chunks(write.set_tags):
            tags = [RunTag(k, v) for k, v in chunk.items()]
            self.call(lambda tags=tags: client.log_batch(run_id, tags=tags),  # type: ignore[misc]
                      f"set tags {_keys(chunk)} of run {run_id}")
        for key in write.delete_tags:
            self.call(lambda key=key: _delete_tag(client, run_id, key),  # type: ignore[misc]
                      f"delete tag {key!r} of run {run_id}")
        if write.name is not None:
            name = write.name
            self.call(lambda: client.update_run(run_id, name=name), f"rename run {run_id}")

    def _check_params(self, write: _RunWrite) -> None:
        """Drop params the run already holds with this value (a write sent again); refuse one that differs."""
        client = self.client
        run = self.call(lambda: client.get_run(write.run_id), f"read run {write.run_id}")
        if getattr(run.info, "lifecycle_stage", "active") != "active":
            raise PatchRefused(f"run {write.run_id} is deleted in MLflow: nothing written")
        held = dict(run.data.params)
        changed = [k for k, v in write.params.items() if k in held and held[k] != v]
        if changed:
            key = changed[0]
            more = f" (and {len(changed) - 1} more)" if len(changed) > 1 else ""
            raise PatchRefused(f"run {write.run_id}: param {key!r}{more} holds {_short(held[key])}; MLflow cannot "
                               f"change a logged param (to {_short(write.params[key])}): nothing written")
        write.params = {k: v for k, v in write.params.items() if k not in held}


def _prepare(patch: RunPatch) -> _RunWrite:
    """The run's write, checked whole; PatchRefused naming the first field MLflow would refuse or mangle."""
    run_id = patch.storage_id
    write = _RunWrite(run_id)
    fields: Mapping[str, Any] = patch.fields
    for name in fields:
        if name in _NO_SUCH_FIELD:
            raise PatchRefused(f"run {run_id}: MLflow runs have no {_NO_SUCH_FIELD[name]}: nothing written")
        if name not in ("name", "notes", "tag_values", "raw_config"):
            raise PatchRefused(f"run {run_id}: runsync cannot write {name!r} to MLflow: nothing written")
    if "name" in fields:
        name = fields["name"]
        if not isinstance(name, str) or not name.strip():
            raise PatchRefused(f"run {run_id}: MLflow keeps a run's name, it cannot be emptied: nothing written")
        write.name = name
    if "notes" in fields:
        notes = fields["notes"]
        if notes is None or notes == "":
            write.delete_tags.append(NOTE_TAG)
        else:
            write.set_tags[NOTE_TAG] = _text(run_id, "description", notes, MAX_TAG_VALUE)
    for key, value in dict(fields.get("tag_values") or {}).items():
        _check_key(run_id, "tag", key)
        if key.startswith(SYSTEM_TAG_PREFIX):
            raise PatchRefused(f"run {run_id}: tag {key!r} is MLflow's own (mlflow.*), never written by runsync: "
                               "nothing written")
        if value is None:
            write.delete_tags.append(key)
        else:
            write.set_tags[key] = _text(run_id, f"tag {key!r}", value, MAX_TAG_VALUE)
    for key, value in dict(fields.get("raw_config") or {}).items():
        _check_key(run_id, "param", key)
        if value is None:
            raise PatchRefused(f"run {run_id}: param {key!r}: MLflow cannot delete or empty a param: nothing written")
        write.params[key] = _text(run_id, f"param {key!r}", value, MAX_PARAM_VALUE)
    return write


def _text(run_id: str, what: str, value: Any, limit: int) -> str:
    """A value as MLflow stores it (text, as `log_param` turns a number into one), within MLflow's limit."""
    if isinstance(value, (dict, list, tuple)):
        raise PatchRefused(f"run {run_id}: {what}: MLflow holds text, not {type(value).__name__}: nothing written")
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        raise PatchRefused(f"run {run_id}: {what} is {len(text):,} characters; MLflow takes at most {limit:,} "
                           "(its client would cut it): nothing written")
    return text


def _check_key(run_id: str, what: str, key: Any) -> None:
    if not isinstance(key, str) or not key:
        raise PatchRefused(f"run {run_id}: a {what} needs a non-empty key, got {key!r}: nothing written")
    if len(key) > MAX_KEY:
        raise PatchRefused(f"run {run_id}: {what} key {key[:40]!r}... is {len(key)} characters; MLflow takes at "
                           f"most {MAX_KEY}: nothing written")
    if not _KEY_CHARACTERS.match(key):
        raise PatchRefused(f"run {run_id}: {what} key {key!r}: MLflow keys hold only letters, digits, spaces and "
                           "_ - . / : (nothing written)")
    normal = posixpath.normpath(key)
    if normal != key or normal == "." or normal.startswith(("..", "/")):
        raise PatchRefused(f"run {run_id}: {what} key {key!r}: MLflow refuses a key that reads as another path "
                           f"({normal!r}): nothing written")


def _chunks(values: dict[str, str]) -> list[dict[str, str]]:
    """`values` in pieces one log_batch takes: at most 100 keys and ~0.9 MB of JSON."""
    chunks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    size = 0
    for key, value in values.items():
        # The server measures the request's JSON text (quotes, backslashes and control characters escaped).
        cost = len(json.dumps(key, ensure_ascii=False)) + len(json.dumps(value, ensure_ascii=False)) + 32
        if current and (len(current) >= MAX_PER_BATCH or size + cost > MAX_BATCH_BYTES):
            chunks.append(current)
            current, size = {}, 0
        current[key] = value
        size += cost
    if current:
        chunks.append(current)
    return chunks


def _delete_tag(client: Any, run_id: str, key: str) -> None:
    """Delete a tag; one already gone is fine (a write sent again), a missing run is not."""
    try:
        client.delete_tag(run_id, key)
    except Exception as exc:
        if error_code(exc) == "RESOURCE_DOES_NOT_EXIST" and "No tag with name" in describe(exc):
            return
        raise


def _keys(chunk: dict[str, str]) -> str:
    keys = list(chunk)
    shown = ", ".join(repr(k) for k in keys[:3])
    return shown + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")


def _short(value: str) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + '..."'
