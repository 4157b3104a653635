"""Read and write W&B runs through the official client's own transport.

Reads use one GraphQL query that asks for exactly the fields runsync needs (no per-run follow-up
request, no `Run` objects, which each create a directory under WANDB_DIR). Writes send one
`upsertBucket` per run carrying only the changed inputs: `Run.update()` would send two mutations,
re-send the whole summary from a stale copy and drop config descriptions (see WANDB_WIRE.md).
"""
from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from runsync.errors import BackendError, ConfigError
from runsync.model import RunRecord

# The page size for listing, measured (`python -m benchmarks --full`, 20k runs, 100 ms latency): 250 -> 11.1 s,
# 500 -> 6.0 s, 1000 -> 3.7 s, 2000 -> 2.8 s. Past 1000 the gain shrinks while each answer (and the risk of
# a slow server hitting the client's per-request timeout on runs with big configs) keeps growing.
DEFAULT_PER_PAGE = 1000
# Ids per `{"name": {"$in": [...]}}` query when reading runs by id: the same trade-off as a page.
IDS_PER_QUERY = 1000
# Tries per page read, on top of the client's own retries (which end at its deadline).
READ_ATTEMPTS = 3
READ_RETRY_SECONDS = 1.0

_RUNS_QUERY = """
query RunsyncRuns($project: String!, $entity: String!, $cursor: String, $perPage: Int, $order: String,
                  $filters: JSONString, $withCount: Boolean!, $withSummary: Boolean!) {
  project(name: $project, entityName: $entity) {
    runCount(filters: $filters) @include(if: $withCount)
    runs(filters: $filters, after: $cursor, first: $perPage, order: $order) {
      edges {
        node {
          id name displayName tags group jobType notes state createdAt config
          summaryMetrics @include(if: $withSummary)
        }
        cursor
      }
      pageInfo { endCursor hasNextPage }
    }
  }
}
"""

_UPSERT_MUTATION = """
mutation RunsyncUpsertBucket($input: UpsertBucketInput!) {
  upsertBucket(input: $input) { bucket { id name } }
}
"""

# W&B config keys that are the client's own bookkeeping, never the user's.
INTERNAL_CONFIG_KEYS = frozenset({"_wandb", "wandb_version"})


def parse_project_path(path: str) -> tuple[str, str]:
    """Split "entity/project" (the only form runsync accepts: an implicit entity is a trap)."""
    parts = path.strip().strip("/").split("/")
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"project must be ENTITY/PROJECT, got {path!r}")
    return parts[0], parts[1]


def _unwrap_config(raw: dict[str, Any]) -> dict[str, Any]:
    """The user's config as the client shows it: `{"k": {"value": v}}` -> `{"k": v}`, no `_` keys."""
    config: dict[str, Any] = {}
    for key, value in raw.items():
        if key in INTERNAL_CONFIG_KEYS or key.startswith("_"):
            continue
        config[key] = value["value"] if isinstance(value, dict) and "value" in value else value
    return config


def _load_json(text: Any) -> dict[str, Any]:
    if text is None or text == "":
        return {}
    if isinstance(text, dict):
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return json.loads(text, strict=False)


class WandbBackend:
    """A W&B server reached through `wandb.Api`; thread-safe for concurrent writes."""

    def __init__(self, *, base_url: str | None = None, api_key: str | None = None, timeout: float | None = None,
                 read_attempts: int = READ_ATTEMPTS) -> None:
        self._base_url = base_url
        self._read_attempts = max(1, read_attempts)
        self._api_key = api_key
        self._timeout = timeout
        self._api: Any = None
        self._lock = threading.Lock()

    # -- connection -------------------------------------------------------------------------
    @property
    def api(self) -> Any:
        with self._lock:
            if self._api is None:
                self._api = self._connect()
            return self._api

    def _connect(self) -> Any:
        import wandb  # lazily: importing wandb costs ~1 s, `runsync --help` must not pay it

        api_key = self._api_key or os.environ.get("WANDB_API_KEY")
        if not api_key:
            raise ConfigError(
                "no W&B API key: set WANDB_API_KEY (or run `wandb login`)",
                hint="for a local try-out, `runsync demo` needs no account",
            )
        overrides = {"base_url": self._base_url} if self._base_url else None
        try:
            kwargs: dict[str, Any] = {"overrides": overrides, "api_key": api_key}
            if self._timeout is not None:
                kwargs["timeout"] = self._timeout
            return wandb.Api(**kwargs)
        except Exception as exc:  # the client raises several unrelated types for "cannot log in"
            raise BackendError(f"cannot connect to W&B at {self.base_url}: {_scrub(exc, api_key)}") from None

    @property
    def base_url(self) -> str:
        return (self._base_url or os.environ.get("WANDB_BASE_URL") or "(wandb default host)").rstrip("/")

    def execute(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        """Send one GraphQL operation through the client's authenticated transport.

        `_service_api.execute_graphql` is private in wandb 0.31 (`api.client` is gone); it is used
        only here, the version is pinned, and tests/test_backend.py fails if it disappears.
        """
        api = self.api
        try:
            return api._service_api.execute_graphql(query, variables)
        except Exception as exc:
            message = _scrub(exc, self._api_key or os.environ.get("WANDB_API_KEY"))
            if "service process is busy" in message:
                # The client's wording when its deadline passed; the cause is the server, not the local process.
                message = (f"W&B at {self.base_url} did not answer in time (server errors, rate limiting or "
                           "slowness outlasted the client's retries)")
            raise BackendError(message) from None

    # -- reads ------------------------------------------------------------------------------
    def _read(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        """A query, tried again when the client gave up: reads change nothing, so repeating one is safe."""
        for attempt in range(self._read_attempts):
            try:
                return self.execute(query, variables)
            except BackendError:
                if attempt == self._read_attempts - 1:
                    raise
                time.sleep(READ_RETRY_SECONDS * 2**attempt)
        raise AssertionError("unreachable")

    def iter_runs(
        self,
        project: str,
        *,
        filters: dict[str, Any] | None = None,
        order: str | None = None,
        limit: int | None = None,
        per_page: int = DEFAULT_PER_PAGE,
        with_summary: bool = False,
        on_total: Callable[[int], None] | None = None,
    ) -> Iterator[RunRecord]:
        """Yield the project's runs matching `filters`, paging with the server's cursor."""
        entity, name = parse_project_path(project)
        cursor: str | None = None
        seen = 0
        first_page = True
        while True:
            page_size = per_page if limit is None else max(1, min(per_page, limit - seen))
            data = self._read(
                _RUNS_QUERY,
                {
                    "project": name,
                    "entity": entity,
                    "cursor": cursor,
                    "perPage": page_size,
                    "order": order or "+created_at",
                    "filters": json.dumps(filters or {}),
                    "withCount": first_page and on_total is not None,
                    "withSummary": with_summary,
                },
            )
            proj = data.get("project")
            if proj is None:
                raise BackendError(f"project {project} not found at {self.base_url}")
            if first_page and on_total is not None:
                total = proj.get("runCount") or 0
                on_total(total if limit is None else min(total, limit))
            first_page = False
            runs = proj["runs"]
            for edge in runs["edges"]:
                yield self._record(entity, name, edge["node"])
                seen += 1
                if limit is not None and seen >= limit:
                    return
            if not runs["pageInfo"]["hasNextPage"] or not runs["edges"]:
                return
            cursor = runs["edges"][-1]["cursor"]

    def fetch_by_ids(
        self, project: str, ids: Iterable[str], *, with_summary: bool = False, chunk: int = IDS_PER_QUERY
    ) -> dict[str, RunRecord]:
        """Read the runs with these ids, a chunk of ids per query; missing ids are simply absent."""
        wanted = list(dict.fromkeys(ids))
        found: dict[str, RunRecord] = {}
        for start in range(0, len(wanted), chunk):
            part = wanted[start : start + chunk]
            for record in self.iter_runs(
                project, filters={"name": {"$in": part}}, per_page=len(part), with_summary=with_summary
            ):
                found[record.id] = record
        return found

    def _record(self, entity: str, project: str, node: dict[str, Any]) -> RunRecord:
        raw_config = _load_json(node.get("config"))
        summary = _load_json(node.get("summaryMetrics")) if "summaryMetrics" in node else {}
        app_url = self._app_url()
        return RunRecord(
            id=node["name"],
            storage_id=node["id"],
            name=node.get("displayName"),
            tags=tuple(node.get("tags") or ()),
            group=node.get("group"),
            job_type=node.get("jobType"),
            notes=node.get("notes"),
            config=_unwrap_config(raw_config),
            raw_config=raw_config,
            state=node.get("state"),
            created_at=node.get("createdAt"),
            url=f"{app_url}/{entity}/{project}/runs/{node['name']}",
            summary={k: v for k, v in summary.items() if not k.startswith("_")},
        )

    def _app_url(self) -> str:
        try:
            return self.api._service_api.app_url.rstrip("/")
        except Exception:  # only used for a convenience column
            return self.base_url

    # -- writes -----------------------------------------------------------------------------
    def upsert_run(self, storage_id: str, fields: dict[str, Any]) -> None:
        """Write the given run fields in one `upsertBucket`; keys: name, tags, group, job_type, notes, raw_config."""
        mutation_input: dict[str, Any] = {"id": storage_id}
        for key, value in fields.items():
            if key == "name":
                mutation_input["displayName"] = value
            elif key == "tags":
                mutation_input["tags"] = list(value)
            elif key == "group":
                mutation_input["groupName"] = value
            elif key == "job_type":
                mutation_input["jobType"] = value
            elif key == "notes":
                mutation_input["notes"] = value
            elif key == "raw_config":
                mutation_input["config"] = json.dumps(value, ensure_ascii=False)
            else:
                raise ValueError(f"unknown run field {key!r}")
        data = self.execute(_UPSERT_MUTATION, {"input": mutation_input})
        if not (data.get("upsertBucket") or {}).get("bucket"):
            raise BackendError(f"W&B did not confirm the write of run {storage_id}")


def _scrub(exc: BaseException, api_key: str | None) -> str:
    """An exception's message, one line, with the API key removed wherever it appears."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if api_key:
        text = text.replace(api_key, "***")
    return text
