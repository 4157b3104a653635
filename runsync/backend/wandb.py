"""Read and write W&B runs through the official client's own transport.

Reads use one GraphQL query that asks for exactly the fields runsync needs (no per-run follow-up
request, no `Run` objects, which each create a directory under WANDB_DIR). Writes send one
`upsertBucket` per run carrying only the changed inputs: `Run.update()` would send two mutations,
re-send the whole summary from a stale copy and drop config descriptions (see WANDB_WIRE.md).
"""
from __future__ import annotations

import functools
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from runsync.backend.filters import check_filters
from runsync.backend.transport import Transport, TransportError, classic_base_url, classic_key_source, connect
from runsync.errors import BackendError, ConfigError
from runsync.model import RunRecord

log = logging.getLogger("runsync")

# The page size a listing starts with. Against the sandbox bigger pages are faster (fewer round trips: README
# "Performance", page-size sweep of `python -m benchmarks --full`). Against W&B that is not the whole story: a
# page of 1,000 runs with big configs can outlast a gateway's or the client's deadline (REAL_WANDB.md), and a
# page that fails costs the client's whole deadline (~19 s) before it is asked again smaller. 250 is a size
# the service is expected to answer, not the sandbox's optimum.
DEFAULT_PER_PAGE = 250
# A page that fails is asked again at half the size, down to this; the size that answered is kept.
MIN_PER_PAGE = 25
# Ids per `{"name": {"$in": [...]}}` query when reading runs by id: one page per query.
IDS_PER_QUERY = DEFAULT_PER_PAGE
# Such queries in flight at once (they are independent): the plan of N runs waits ~N/1000 round trips, not
# N/250; fewer than the writes' 8, as each asks the server for a whole page.
READ_CONCURRENCY = 4
# A listing whose pages keep failing gives up once this long has passed without a page answered (at most
# four of the client's deadlines), and says which page sizes it tried.
LISTING_STALL_SECONDS = 60.0
CLIENT_DEADLINE_SECONDS = 19.0  # wandb.Api's default timeout (or WANDB_HTTP_TIMEOUT)
# Tries per page read, on top of the client's own retries (which end at its deadline).
READ_ATTEMPTS = 3
READ_RETRY_SECONDS = 1.0
# A TCP connect to the server before the client's first request: "connection refused" is then said at once,
# not after the client's ~19 s deadline as "the service process is busy".
PROBE_SECONDS = 5.0
# The first page of a listing with the user's filters: W&B answers some filters with HTTP 500, which the
# client retries until its deadline; give up sooner than that, once, and say whether the filter or the server
# failed (REAL_WANDB.md "Filters").
FILTERED_FIRST_PAGE_SECONDS = 12.0

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
    return {key: value["value"] if isinstance(value, dict) and "value" in value else value
            for key, value in raw.items() if not (key in INTERNAL_CONFIG_KEYS or key.startswith("_"))}


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
    """A W&B server reached through `wandb.Api`; thread-safe for concurrent writes.

    Credentials and host are found as `wandb.Api()` finds them: `api_key`, else WANDB_API_KEY, else what
    `wandb login` stored (netrc `machine HOST`); host: `base_url`, else WANDB_BASE_URL, else the host
    `wandb login --host` recorded in wandb's settings file.
    """

    def __init__(self, *, base_url: str | None = None, api_key: str | None = None, timeout: float | None = None,
                 read_attempts: int = READ_ATTEMPTS, filter_timeout: float = FILTERED_FIRST_PAGE_SECONDS,
                 page_deadline: float = LISTING_STALL_SECONDS) -> None:
        self._base_url = base_url
        self._read_attempts = max(1, read_attempts)
        self._page_deadline = page_deadline  # a listing gives up after this long without an answered page
        self._page_cap: int | None = None  # the page size that answered after a failure: later listings keep it
        self._api_key = api_key
        self._timeout = timeout
        self._filter_timeout = filter_timeout if timeout is None else min(filter_timeout, timeout)
        self._api: Any = None
        self._host: str | None = None  # the host as resolved before connecting
        self._host_origin = "the wandb default"
        self._secrets: list[str] = [k for k in (api_key,) if k]
        self._lock = threading.Lock()
        self._early_error: BaseException | None = None  # what connect_in_background met

    # -- connection -------------------------------------------------------------------------
    @property
    def api(self) -> Transport:
        """The transport of a connected `wandb.Api` (backend/transport.py: one adapter per client generation)."""
        with self._lock:
            if self._api is None:
                early, self._early_error = self._early_error, None
                if early is not None:
                    raise early
                try:
                    self._api = self._connect()
                except BackendError as exc:
                    exc.no_retry = True  # type: ignore[attr-defined]  # the client already retried, or nothing listens
                    raise
            return self._api

    def connect_in_background(self) -> None:
        """Start connecting (import wandb, start its sidecar, check the key: ~0.7 s) while the caller does other
        work, e.g. reads a sheet; the first use of the connection waits for it, and raises what it raised."""
        def connect() -> None:
            try:
                self.api
            except BaseException as exc:  # noqa: BLE001  # handed to whoever uses the connection first
                self._early_error = exc

        threading.Thread(target=connect, name="runsync-connect", daemon=True).start()

    def _connect(self) -> Transport:
        host = self._resolve_host()
        self._host = host
        source = self._find_credentials(host)
        if host:
            _probe(host)
        kwargs: dict[str, Any] = {}
        if self._api_key:  # else wandb.Api() finds the key itself, as for any wandb user
            kwargs["api_key"] = self._api_key
        if self._base_url:
            kwargs["overrides"] = {"base_url": self._base_url}
        if self._timeout is not None:
            kwargs["timeout"] = self._timeout
        try:
            transport = connect(**kwargs)
        except TransportError as exc:  # no adapter fits this client, or (wandb < 0.27) its key check got no answer
            if exc.timed_out:
                raise BackendError(f"W&B at {host or 'the wandb default host'} did not answer in time while checking "
                                   "the credentials (server errors, rate limiting or slowness outlasted the "
                                   "client's retries)") from None
            raise BackendError(self._scrub(exc)) from None
        except Exception as exc:  # the client raises several unrelated types for "cannot log in"
            where = host or "the wandb default host"
            text = self._scrub(exc)
            if "service process is busy" in text:
                raise BackendError(f"W&B at {where} did not answer in time while checking the credentials "
                                   "(server errors, rate limiting or slowness outlasted the client's retries)") from None
            if type(exc).__name__ in ("AuthenticationError", "UsageError"):
                raise BackendError(
                    f"W&B at {where} did not accept the credentials from {source or 'wandb'}: {text}",
                    hint=f"run `wandb login --relogin --host {where}`, or set WANDB_API_KEY",
                ) from None
            raise BackendError(f"cannot connect to W&B at {where}: {text}") from None
        key = getattr(transport.api, "api_key", None)
        if isinstance(key, str) and key and key not in self._secrets:
            self._secrets.append(key)
        return transport

    def _resolve_host(self) -> str | None:
        """The host `wandb.Api()` will use: base_url, WANDB_BASE_URL, else the settings file's (`wandb login --host`)."""
        if self._base_url:
            self._host_origin = "given to runsync"
            return self._base_url.rstrip("/")
        if os.environ.get("WANDB_BASE_URL"):
            self._host_origin = "from WANDB_BASE_URL"
            return os.environ["WANDB_BASE_URL"].rstrip("/")
        try:
            from wandb.sdk import wandb_setup

            url = wandb_setup.singleton().settings.base_url
        except Exception:  # a private path of the newer clients; an older one is asked its own way (transport.py)
            url = classic_base_url()
            if not url:
                return None
        self._host_origin = "from wandb's settings (`wandb login --host`) or its default"
        return str(url).rstrip("/") if url else None

    def _find_credentials(self, host: str | None) -> str | None:
        """Say where the key will come from, or raise ConfigError naming every place looked at.

        Looks where `wandb.Api()` looks, without its interactive prompt (a command must not stop to ask).
        Returns None when the client's own lookup cannot be reproduced: `wandb.Api()` then decides.
        """
        if self._api_key:
            return "the api_key given to runsync"
        if os.environ.get("WANDB_API_KEY"):
            self._secrets.append(os.environ["WANDB_API_KEY"])
            return "WANDB_API_KEY"
        if os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
            return "WANDB_IDENTITY_TOKEN_FILE"
        if not host:
            return None
        try:
            from wandb.sdk import wandb_setup
            from wandb.sdk.lib.wbauth import authenticate, wbnetrc
        except Exception:  # an older client (transport.py): ask it where its key is, so it never prompts
            found = classic_key_source(host)
            if found is None:
                return None
            if found[1]:
                self._secrets.append(found[1])
                return found[0]
            raise ConfigError(f"no W&B credentials for {host} (host {self._host_origin}): WANDB_API_KEY is not "
                              f"set and {found[0]} has no entry for machine {urlsplit(host).hostname}",
                              hint=f"run `wandb login --host {host}` (or set WANDB_API_KEY)") from None
        netrc_path = str(wbnetrc._get_netrc_file_path())
        netloc = urlsplit(host).netloc
        try:
            key = wbnetrc.read_netrc_auth(host=host)
        except ValueError as exc:  # not a URL the client accepts
            raise ConfigError(f"W&B host {host!r} is not usable: {exc}") from None
        except Exception as exc:  # AuthenticationError: an entry whose key has the wrong form
            raise ConfigError(f"the key for machine {netloc} in {netrc_path} is not a W&B API key: "
                              f"{self._scrub(exc)}", hint=f"run `wandb login --relogin --host {host}`") from None
        if key:
            self._secrets.append(key)
            return f"{netrc_path} (machine {netloc})"
        try:
            settings = wandb_setup.singleton().settings
            if settings.api_key and str(settings.base_url).rstrip("/") == host:
                self._secrets.append(settings.api_key)
                return "wandb settings"
            if authenticate.session_credentials(host=host):
                return "this process's wandb login"
        except Exception:
            return None
        raise ConfigError(
            f"no W&B credentials for {host} (host {self._host_origin}): WANDB_API_KEY is not set and "
            f"{netrc_path} has no entry for machine {netloc} (where `wandb login` writes it)",
            hint=f"run `wandb login --host {host}` (or set WANDB_API_KEY); "
                 "for a local try-out, `runsync demo` needs no account",
        )

    @property
    def base_url(self) -> str:
        """The W&B host this backend talks to (as the client resolved it, once connected)."""
        if self._api is not None:
            try:
                return self._api.base_url
            except Exception:
                pass
        host = self._host or self._resolve_host()
        return host or "(wandb default host)"

    def _scrub(self, exc: BaseException) -> str:
        text = _scrub(exc, None)
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def execute(self, query: str, variables: dict[str, Any], *, timeout: float | None = None) -> dict[str, Any]:
        """Send one GraphQL operation through the client's authenticated transport (backend/transport.py)."""
        transport = self.api
        try:
            return transport.execute(query, variables, timeout=timeout)
        except Exception as exc:
            message = self._scrub(exc)
            timed_out = getattr(exc, "timed_out", False)
            if timed_out:
                try:
                    _probe(self.base_url)
                except BackendError as down:
                    raise down from None
                # The client's wording when its deadline passed; the cause is the server, not the local process.
                message = (f"W&B at {self.base_url} did not answer in time (server errors, rate limiting or "
                           "slowness outlasted the client's retries)")
            error = BackendError(message)
            error.timed_out = timed_out  # type: ignore[attr-defined]
            raise error from None

    # -- reads ------------------------------------------------------------------------------
    def _read(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        """A query, tried again when the client gave up: reads change nothing, so repeating one is safe."""
        for attempt in range(self._read_attempts):
            try:
                return self.execute(query, variables)
            except BackendError as exc:
                if attempt == self._read_attempts - 1 or getattr(exc, "no_retry", False):
                    raise
                time.sleep(READ_RETRY_SECONDS * 2**attempt)
        raise AssertionError("unreachable")

    def _client_deadline(self) -> float:
        """How long one request may take with the client's retries (`Api(timeout=)`, WANDB_HTTP_TIMEOUT, 19 s)."""
        if self._timeout is not None:
            return float(self._timeout)
        try:
            return float(os.environ.get("WANDB_HTTP_TIMEOUT") or CLIENT_DEADLINE_SECONDS)
        except ValueError:
            return CLIENT_DEADLINE_SECONDS

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
        on_warning: Callable[[str], None] | None = None,
    ) -> Iterator[RunRecord]:
        """Yield the project's runs matching `filters`, each once, paging with the server's cursor.

        The filters are checked (and `$all` rewritten) here, before anything is sent: a filter W&B would
        answer with HTTP 500 raises ConfigError at once (runsync/backend/filters.py).
        Pages that fail are asked again smaller (`_Pager`). A run repeated by an overlapping page is yielded
        once; when fewer runs came than W&B's `runCount`, the listing is paged again in the reverse order and
        the missing runs follow; if some are still missing, `on_warning` (default: the "runsync" log) gets
        the numbers.
        """
        entity, name = parse_project_path(project)
        checked = check_filters(filters)
        return self._iter_runs(entity, name, checked, order, limit, per_page, with_summary, on_total,
                               guard=bool(checked), on_warning=on_warning)

    def _iter_runs(self, entity: str, name: str, filters: dict[str, Any] | None, order: str | None,
                   limit: int | None, per_page: int, with_summary: bool,
                   on_total: Callable[[int], None] | None, *, guard: bool,
                   on_warning: Callable[[str], None] | None = None, repage: bool = True) -> Iterator[RunRecord]:
        order = order or "+created_at"
        pager = _Pager(self, min(per_page, self._page_cap or per_page), f"{entity}/{name}")
        seen: set[str] = set()
        repeated = 0
        total: int | None = None

        def left() -> int:
            return limit - len(seen)  # type: ignore[operator]

        def full() -> bool:
            return limit is not None and len(seen) >= limit

        for proj in self._pages(entity, name, filters, order, with_summary, pager, None if limit is None else left,
                                guard=guard):
            if total is None:
                total = int(proj.get("runCount") or 0)
                if on_total is not None:
                    on_total(total if limit is None else min(total, limit))
            for edge in proj["runs"]["edges"]:
                node = edge["node"]
                if node["name"] in seen:
                    repeated += 1
                    continue
                seen.add(node["name"])
                yield self._record(entity, name, node)
                if full():
                    break
            if full():
                break
        expected = (total or 0) if limit is None else min(total or 0, limit)
        listed = len(seen)
        if repage and listed < expected:
            # Pages over a live table can skip runs (wandb/wandb#6614): list again, in the reverse order (the
            # same order under a limit, which picks the first runs), and add the runs not seen yet.
            again = order if limit is not None else _reverse_order(order)
            log.debug("%s: W&B counts %d runs but %d came; listing again in %s order", pager.what, expected,
                      listed, again)
            recount: int | None = None
            for proj in self._pages(entity, name, filters, again, with_summary, pager, None, guard=False):
                if recount is None:
                    recount = int(proj.get("runCount") or 0)
                    expected = recount if limit is None else min(recount, limit)
                for edge in proj["runs"]["edges"]:
                    node = edge["node"]
                    if node["name"] in seen:
                        continue
                    seen.add(node["name"])
                    yield self._record(entity, name, node)
                    if len(seen) >= expected:
                        break
                if len(seen) >= expected:
                    break
            log.debug("%s: the second listing added %d runs", pager.what, len(seen) - listed)
            if len(seen) < expected:
                _warn(on_warning, f"{entity}/{name}: W&B counts {expected} matching runs but listing them gave "
                                  f"{len(seen)} ({listed} in {order} order, {len(seen) - listed} more in {again} "
                                  f"order): runs created, deleted or re-sorted while paging? Export again to be sure")
        log.debug("%s: %d runs in %d requests%s; page sizes: %s", pager.what, len(seen), pager.requests,
                  f", {repeated} repeated by overlapping pages dropped" if repeated else "", pager.describe())

    def _pages(self, entity: str, name: str, filters: dict[str, Any] | None, order: str, with_summary: bool,
               pager: _Pager, want: Callable[[], int] | None, *, guard: bool) -> Iterator[dict[str, Any]]:
        """The `project` of each page of one listing, from the first (which carries `runCount`) to the last."""
        cursor: str | None = None
        first_page = True
        while True:
            size = pager.size if want is None else max(1, min(pager.size, want()))
            variables = {
                "project": name,
                "entity": entity,
                "cursor": cursor,
                "perPage": size,
                "order": order,
                "filters": json.dumps(filters or {}),
                "withCount": first_page,
                "withSummary": with_summary,
            }
            if first_page and guard:
                data = self._first_filtered_page(variables, filters, pager)
            else:
                data = pager.read(variables)
            proj = data.get("project")
            if proj is None:
                raise BackendError(f"project {entity}/{name} not found at {self.base_url}")
            first_page = False
            yield proj
            runs = proj["runs"]
            if not runs["pageInfo"]["hasNextPage"] or not runs["edges"]:
                return
            previous, cursor = cursor, runs["edges"][-1]["cursor"]
            if cursor == previous:  # a page that made no progress: never loop
                return

    def _first_filtered_page(self, variables: dict[str, Any], filters: dict[str, Any] | None,
                             pager: _Pager) -> dict[str, Any]:
        """The first page with the user's filters: bounded, tried once, and a failure says filter or server.

        When the server answers without the filter, the filtered page is asked once more at the smallest
        size: an answer means the page was too big, not the filter wrong (the listing goes on at half size).
        """
        shown = json.dumps(filters, ensure_ascii=False)
        asked = variables["perPage"]
        pager.requests += 1
        try:
            data = self.execute(_RUNS_QUERY, variables, timeout=self._filter_timeout)
            pager.answer(asked)
            return data
        except BackendError as exc:
            if getattr(exc, "no_retry", False):
                raise
            if not getattr(exc, "timed_out", False):  # an answer: the server said what it did not like
                raise BackendError(f"W&B at {self.base_url} refused the filter {shown}: {exc.message}") from None
            pager.fail(asked, exc)
        # No answer in time: W&B answers a filter it cannot run with HTTP 500, which the client retries until
        # its deadline. Ask for one run without the filter to tell the two apart.
        try:
            pager.requests += 1
            self.execute(_RUNS_QUERY, {**variables, "filters": "{}", "perPage": 1, "cursor": None,
                                       "withCount": False, "withSummary": False}, timeout=self._filter_timeout)
        except BackendError as exc:
            raise BackendError(
                f"W&B at {self.base_url} is failing: listing runs got no answer in {self._filter_timeout:g} s, "
                f"with the filter {shown} or without it ({exc.message})") from None
        if asked > MIN_PER_PAGE:
            try:
                pager.requests += 1
                data = self.execute(_RUNS_QUERY, {**variables, "perPage": MIN_PER_PAGE},
                                    timeout=self._filter_timeout)
            except BackendError as exc:
                if getattr(exc, "no_retry", False):
                    raise
                pager.fail(MIN_PER_PAGE, exc)
            else:
                pager.answer(MIN_PER_PAGE)
                pager.shrink(max(MIN_PER_PAGE, asked // 2))
                return data
        raise BackendError(
            f"W&B at {self.base_url} failed on the filter {shown}: no answer in {self._filter_timeout:g} s "
            "while the same listing without it answers (W&B answers filters it cannot run with HTTP 500)",
            hint="check the fields and operators against README \"runsync export\"; "
                 "or retry, if the server was only slow")

    def fetch_by_ids(
        self, project: str, ids: Iterable[str], *, with_summary: bool = False, chunk: int = IDS_PER_QUERY,
        per_page: int = DEFAULT_PER_PAGE, on_warning: Callable[[str], None] | None = None,
    ) -> dict[str, RunRecord]:
        """Read the runs with these ids, a chunk of ids per query (paged); missing ids are simply absent.

        Ids W&B counts among a chunk's matches but the pages did not return (pages that overlapped or
        skipped) are asked for once more; any still missing then are reported to `on_warning`.
        """
        entity, name = parse_project_path(project)
        wanted = list(dict.fromkeys(ids))
        parts = [wanted[start : start + chunk] for start in range(0, len(wanted), chunk)]
        if len(parts) <= 1:
            return self._read_id_chunk(entity, name, parts[0], with_summary, per_page, on_warning) if parts else {}
        # The chunks do not depend on each other (unlike a cursor's pages): a few in flight at once.
        found: dict[str, RunRecord] = {}
        with ThreadPoolExecutor(max_workers=min(READ_CONCURRENCY, len(parts))) as pool:
            for part_found in pool.map(
                    lambda part: self._read_id_chunk(entity, name, part, with_summary, per_page, on_warning), parts):
                found.update(part_found)
        return found

    def _read_id_chunk(self, entity: str, name: str, part: list[str], with_summary: bool, per_page: int,
                       on_warning: Callable[[str], None] | None) -> dict[str, RunRecord]:
        found: dict[str, RunRecord] = {}
        counted = self._read_ids(entity, name, part, with_summary, per_page, found)
        got = sum(1 for run_id in part if run_id in found)
        if got < counted:
            missing = [run_id for run_id in part if run_id not in found]
            log.debug("%s/%s: W&B counts %d of %d ids but %d came; asking for the %d missing again", entity,
                      name, counted, len(part), got, len(missing))
            self._read_ids(entity, name, missing, with_summary, per_page, found)
            got = sum(1 for run_id in part if run_id in found)
            if got < counted:
                _warn(on_warning, f"{entity}/{name}: W&B counts {counted} of {len(part)} runs asked for by id, "
                                  f"but reading them gave {got}, also when asked again")
        return found

    def _read_ids(self, entity: str, name: str, ids: list[str], with_summary: bool, per_page: int,
                  found: dict[str, RunRecord]) -> int:
        """Read the runs with these ids into `found`; return how many of them W&B counts (`runCount`)."""
        counted: list[int] = []
        for record in self._iter_runs(entity, name, {"name": {"$in": ids}}, None, None,
                                      max(1, min(len(ids), per_page)), with_summary, counted.append, guard=False,
                                      repage=False):
            found[record.id] = record
        return counted[0] if counted else 0

    def _record(self, entity: str, project: str, node: dict[str, Any]) -> RunRecord:
        raw_config = _load_json(node.get("config"))
        summary = _load_json(node.get("summaryMetrics")) if "summaryMetrics" in node else {}
        app_url = getattr(self, "_record_app_url", None)  # the client's settings: asked once, not per run
        if app_url is None:
            try:
                app_url = self._record_app_url = self.api.app_url
            except Exception:  # as _app_url: only used for a convenience column
                app_url = self.base_url
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
            raw_summary=summary,
        )

    def _app_url(self) -> str:
        try:
            return self.api.app_url
        except Exception:  # only used for a convenience column
            return self.base_url

    # -- writes -----------------------------------------------------------------------------
    def upsert_run(self, storage_id: str, fields: dict[str, Any]) -> None:
        """Write the given run fields in one `upsertBucket`.

        Keys: name, tags, group, job_type, notes, raw_config (W&B's wrapped config), summary (the whole summary,
        as the client's run.update() sends it; NaN/Infinity as the client writes them).
        """
        data = self.execute(_UPSERT_MUTATION, {"input": upsert_input(storage_id, fields)})
        if not (data.get("upsertBucket") or {}).get("bucket"):
            raise BackendError(f"W&B did not confirm the write of run {storage_id}")

    def upsert_runs(self, writes: list[tuple[str, dict[str, Any]]]) -> None:
        """Write several runs in one request: one aliased `upsertBucket` per run, executed in turn by the server.

        Raises BackendError when the request fails or any run in it does (the client raises on any GraphQL
        error, so which runs landed is not known: the caller sends them again one by one; writes set values,
        so sending a landed one again changes nothing).
        """
        if len(writes) == 1:
            self.upsert_run(*writes[0])
            return
        variables = {f"i{n}": upsert_input(storage_id, fields) for n, (storage_id, fields) in enumerate(writes)}
        data = self.execute(_batch_mutation(len(writes)), variables)
        unconfirmed = [storage_id for n, (storage_id, _) in enumerate(writes)
                       if not (data.get(f"r{n}") or {}).get("bucket")]
        if unconfirmed:
            raise BackendError(f"W&B did not confirm the write of {len(unconfirmed)} of {len(writes)} runs")


def upsert_input(storage_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    """The UpsertBucketInput for these run fields (see upsert_run)."""
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
        elif key == "summary":
            mutation_input["summaryMetrics"] = json.dumps(value, ensure_ascii=False)  # NaN as the client sends it
        else:
            raise ValueError(f"unknown run field {key!r}")
    return mutation_input


@functools.lru_cache(maxsize=64)
def _batch_mutation(size: int) -> str:
    """`size` upsertBuckets under aliases r0..r{size-1}, with inputs $i0..$i{size-1}."""
    params = ", ".join(f"$i{n}: UpsertBucketInput!" for n in range(size))
    fields = "\n  ".join(f"r{n}: upsertBucket(input: $i{n}) {{ bucket {{ id name }} }}" for n in range(size))
    return f"mutation RunsyncUpsertBuckets({params}) {{\n  {fields}\n}}\n"


class _Pager:
    """The page reads of one listing: a page the service does not answer is asked again at half the size.

    "No answer" is the client giving up (its retries of 502/504/5xx, 429s and per-attempt timeouts ran out:
    `timed_out`). The page is asked again at half the size, down to MIN_PER_PAGE, from the same cursor, and
    the size that answered is kept for the rest of the listing (and the backend's later listings). Other
    failures are tried again at the same size (reads change nothing), `read_attempts` times in all. Once
    `deadline` seconds pass without an answered page, it gives up with one line saying what failed.
    """

    def __init__(self, backend: WandbBackend, size: int, what: str) -> None:
        self.backend = backend
        self.size = max(1, size)
        self.what = what  # "entity/project", for messages
        self.requests = 0
        self.client_deadline = backend._client_deadline()
        self.deadline = min(backend._page_deadline, 4 * self.client_deadline)
        self._sizes: list[tuple[int, bool]] = []  # (size, answered) of each change of outcome, in order

    def answer(self, size: int) -> None:
        if not self._sizes or self._sizes[-1] != (size, True):
            self._sizes.append((size, True))

    def fail(self, size: int, exc: BackendError) -> None:
        log.debug("%s: a page of %d runs failed: %s", self.what, size, exc.message)
        if not self._sizes or self._sizes[-1] != (size, False):
            self._sizes.append((size, False))

    def shrink(self, size: int) -> None:
        self.size = size
        with self.backend._lock:
            cap = self.backend._page_cap
            self.backend._page_cap = size if cap is None else min(cap, size)

    def describe(self) -> str:
        """E.g. "250 failed, 125 failed, 62": every page size asked, in order."""
        return ", ".join(f"{size}{'' if ok else ' failed'}" for size, ok in self._sizes) or "none"

    def read(self, variables: dict[str, Any]) -> dict[str, Any]:
        """One page (`variables["perPage"]` runs, or fewer after failures); BackendError when it can't be had."""
        asked = variables["perPage"]
        started = time.monotonic()
        failures = 0
        while True:
            remaining = self.deadline - (time.monotonic() - started)
            # Always explicit: the sidecar, shared by the process, may have started with another deadline.
            timeout = max(1.0, min(self.client_deadline, remaining))
            self.requests += 1
            try:
                data = self.backend.execute(_RUNS_QUERY, {**variables, "perPage": asked}, timeout=timeout)
            except BackendError as exc:
                if getattr(exc, "no_retry", False):
                    raise
                self.fail(asked, exc)
                elapsed = time.monotonic() - started
                if getattr(exc, "timed_out", False) and asked > MIN_PER_PAGE and elapsed < self.deadline:
                    asked = max(MIN_PER_PAGE, asked // 2)
                    self.shrink(min(self.size, asked))
                    log.debug("%s: asking for %d runs per page from the same cursor", self.what, asked)
                    continue
                failures += 1
                if failures >= self.backend._read_attempts or elapsed >= self.deadline:
                    raise self._give_up(exc, elapsed) from None
                time.sleep(min(READ_RETRY_SECONDS * 2 ** (failures - 1), max(0.0, self.deadline - elapsed)))
                continue
            self.answer(asked)
            return data

    def _give_up(self, exc: BackendError, elapsed: float) -> BackendError:
        error = BackendError(f"{exc.message}; listing runs of {self.what}: no page answered in {elapsed:.0f} s "
                             f"(runs per page: {self.describe()})", hint=exc.hint)
        error.timed_out = getattr(exc, "timed_out", False)  # type: ignore[attr-defined]
        return error


def _reverse_order(order: str) -> str:
    """"+created_at" -> "-created_at" and back."""
    return "+" + order[1:] if order.startswith("-") else "-" + order.lstrip("+")


def _warn(on_warning: Callable[[str], None] | None, text: str) -> None:
    if on_warning is not None:
        on_warning(text)
    else:
        log.warning(text)


def _scrub(exc: BaseException, api_key: str | None) -> str:
    """An exception's message, one line, with the API key removed wherever it appears."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if api_key:
        text = text.replace(api_key, "***")
    return text


def _probe(base_url: str) -> None:
    """Raise BackendError("cannot connect to URL: ...") unless a TCP connection to the host opens in time.

    Skipped when a proxy carries the traffic (the sidecar then never connects to the host itself).
    """
    parts = urlsplit(base_url)
    host = parts.hostname
    if not host or parts.scheme not in ("http", "https"):
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return
    import urllib.request

    if os.environ.get("WANDB__PROXIES") or (
        urllib.request.getproxies().get(parts.scheme) and not urllib.request.proxy_bypass(host)
    ):
        return
    try:
        socket.create_connection((host, port), timeout=PROBE_SECONDS).close()
        return
    except socket.gaierror as exc:
        error = BackendError(f"cannot connect to {base_url}: the host name {host} does not resolve "
                             f"({exc.strerror or exc})")
    except (socket.timeout, TimeoutError):
        error = BackendError(f"cannot connect to {base_url}: no answer from {host}:{port} within {PROBE_SECONDS:g} s")
    except OSError as exc:
        error = BackendError(f"cannot connect to {base_url}: {exc.strerror or exc}",
                             hint="is the server running, and WANDB_BASE_URL right?")
    error.no_retry = True  # type: ignore[attr-defined]
    raise error
