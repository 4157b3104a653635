"""Read and write W&B runs through the official client's own transport.

Reads use one GraphQL query that asks for exactly the fields runsync needs (no per-run follow-up
request, no `Run` objects, which each create a directory under WANDB_DIR). Writes send one
`upsertBucket` per run carrying only the changed inputs: `Run.update()` would send two mutations,
re-send the whole summary from a stale copy and drop config descriptions (see WANDB_WIRE.md).
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from runsync.backend.wandb.filters import check_filters
from runsync.backend.wandb.login import (
    find_credentials,
    not_an_api,
    probe,
    resolve_host,
)
from runsync.backend.wandb.paging import MIN_PER_PAGE, READ_RETRY_SECONDS, Pager
from runsync.backend.wandb.queries import (
    RUNS_QUERY,
    UPSERT_MUTATION,
    batch_mutation,
    request_bytes,
    upsert_input,
)
from runsync.backend.wandb.transport import (
    Transport,
    TransportError,
    connect,
    http_status,
)
from runsync.errors import BackendError, ConfigError
from runsync.model import RunRecord

log = logging.getLogger("runsync")

# The page size a listing starts with. Against the sandbox bigger pages are faster (fewer round trips:
# docs/performance.md, page-size sweep of `python -m benchmarks --full`). Against W&B that is not the whole story: a
# page of 1,000 runs with big configs can outlast a gateway's or the client's deadline (REAL_WANDB.md), and a
# page that fails costs the client's whole deadline (~19 s) before it is asked again smaller. 250 is a size
# the service is expected to answer, not the sandbox's optimum.
DEFAULT_PER_PAGE = 250
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
# The first page of a listing with the user's filters: W&B answers some filters with HTTP 500, which the
# client retries until its deadline; give up sooner than that, once, and say whether the filter or the server
# failed (REAL_WANDB.md "Filters").
FILTERED_FIRST_PAGE_SECONDS = 12.0

# W&B config keys that are the client's own bookkeeping, never the user's.
INTERNAL_CONFIG_KEYS = frozenset({"_wandb", "wandb_version"})


# First path parts of W&B app pages that are not an entity's (an entity can't take these names).
_APP_ROUTES = frozenset({"site", "home", "settings", "login", "signup", "logout", "authorize", "registry", "orgs",
                         "org", "admin", "subscriptions", "pricing", "support", "create-team", "graphql", "api"})


def parse_project_path(path: str) -> tuple[str, str]:
    """Split "entity/project", or a W&B page's URL pasted from a browser (`https://wandb.ai/team/proj/runs/abc`),
    into (entity, project). An implicit entity is a trap: a bare project name is refused."""
    text = path.strip()
    if text.lower().startswith(("http://", "https://")):
        return _project_of_url(text)
    parts = text.strip("/").split("/")
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"project must be ENTITY/PROJECT, got {path!r}",
                          hint="or a W&B page's address, https://HOST/ENTITY/PROJECT/..." if len(parts) > 2 else None)
    return parts[0], parts[1]


def _project_of_url(url: str) -> tuple[str, str]:
    """The project a W&B app URL is in: its first two path parts (the app's pages all sit under them)."""
    from urllib.parse import unquote, urlsplit

    parts = [unquote(part) for part in urlsplit(url).path.split("/") if part]
    if len(parts) < 2:
        raise ConfigError(f"{url} names no project: a W&B page's address has ENTITY/PROJECT after the host "
                          "(https://wandb.ai/ENTITY/PROJECT/...)")
    if parts[0].lower() in _APP_ROUTES:
        raise ConfigError(f"{url} is not a project's page: give ENTITY/PROJECT, or the address of a page of "
                          "the project (https://wandb.ai/ENTITY/PROJECT/...)")
    if parts[1] == "projects" and len(parts) == 2:
        raise ConfigError(f"{url} lists the projects of {parts[0]}: give one, {parts[0]}/PROJECT")
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
        host, self._host_origin = resolve_host(self._base_url)
        self._host = host
        source = find_credentials(host, self._host_origin, self._api_key, self._secrets, self._scrub)
        if host:
            probe(host)
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
            if host and (wrong := not_an_api(host, self._host_origin, self._scrub(exc), http_status(exc))):
                raise wrong from None
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
            if host and (wrong := not_an_api(host, self._host_origin, text, http_status(exc))):
                raise wrong from None  # a UI address or a proxy's page: not "refused credentials" with its HTML
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

    @property
    def base_url(self) -> str:
        """The W&B host this backend talks to (as the client resolved it, once connected)."""
        if self._api is not None:
            try:
                return self._api.base_url
            except Exception:
                pass
        host = self._host or resolve_host(self._base_url)[0]
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
                    probe(self.base_url)
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
        Pages that fail are asked again smaller (`Pager`). A run repeated by an overlapping page is yielded
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
        pager = Pager(self, min(per_page, self._page_cap or per_page), f"{entity}/{name}")
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
               pager: Pager, want: Callable[[], int] | None, *, guard: bool) -> Iterator[dict[str, Any]]:
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
                             pager: Pager) -> dict[str, Any]:
        """The first page with the user's filters: bounded, tried once, and a failure says filter or server.

        When the server answers without the filter, the filtered page is asked once more at the smallest
        size: an answer means the page was too big, not the filter wrong (the listing goes on at half size).
        """
        shown = json.dumps(filters, ensure_ascii=False)
        asked = variables["perPage"]
        pager.requests += 1
        try:
            data = self.execute(RUNS_QUERY, variables, timeout=self._filter_timeout)
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
            self.execute(RUNS_QUERY, {**variables, "filters": "{}", "perPage": 1, "cursor": None,
                                       "withCount": False, "withSummary": False}, timeout=self._filter_timeout)
        except BackendError as exc:
            raise BackendError(
                f"W&B at {self.base_url} is failing: listing runs got no answer in {self._filter_timeout:g} s, "
                f"with the filter {shown} or without it ({exc.message})") from None
        if asked > MIN_PER_PAGE:
            try:
                pager.requests += 1
                data = self.execute(RUNS_QUERY, {**variables, "perPage": MIN_PER_PAGE},
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
        on_run: Callable[[], None] | None = None,
    ) -> dict[str, RunRecord]:
        """Read the runs with these ids, a chunk of ids per query (paged); missing ids are simply absent.
        `on_run` is called for each run read (from several threads: a progress bar's advance).

        Ids W&B counts among a chunk's matches but the pages did not return (pages that overlapped or
        skipped) are asked for once more; any still missing then are reported to `on_warning`.
        """
        entity, name = parse_project_path(project)
        wanted = list(dict.fromkeys(ids))
        parts = [wanted[start : start + chunk] for start in range(0, len(wanted), chunk)]
        if len(parts) <= 1:
            return self._read_id_chunk(entity, name, parts[0], with_summary, per_page, on_warning,
                                       on_run) if parts else {}
        # The chunks do not depend on each other (unlike a cursor's pages): a few in flight at once.
        found: dict[str, RunRecord] = {}
        with ThreadPoolExecutor(max_workers=min(READ_CONCURRENCY, len(parts))) as pool:
            for part_found in pool.map(
                    lambda part: self._read_id_chunk(entity, name, part, with_summary, per_page, on_warning, on_run),
                    parts):
                found.update(part_found)
        return found

    def _read_id_chunk(self, entity: str, name: str, part: list[str], with_summary: bool, per_page: int,
                       on_warning: Callable[[str], None] | None,
                       on_run: Callable[[], None] | None = None) -> dict[str, RunRecord]:
        found: dict[str, RunRecord] = {}
        counted = self._read_ids(entity, name, part, with_summary, per_page, found, on_run)
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
                  found: dict[str, RunRecord], on_run: Callable[[], None] | None = None) -> int:
        """Read the runs with these ids into `found`; return how many of them W&B counts (`runCount`)."""
        counted: list[int] = []
        for record in self._iter_runs(entity, name, {"name": {"$in": ids}}, None, None,
                                      max(1, min(len(ids), per_page)), with_summary, counted.append, guard=False,
                                      repage=False):
            if on_run is not None and record.id not in found:
                on_run()
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
        data = self.execute(UPSERT_MUTATION, {"input": upsert_input(storage_id, fields)})
        if not (data.get("upsertBucket") or {}).get("bucket"):
            raise BackendError(f"W&B did not confirm the write of run {storage_id}")

    def write_request_bytes(self, writes: list[tuple[str, dict[str, Any]]]) -> int:
        """The size of the request body `upsert_runs(writes)` sends, as the installed client serializes it."""
        if len(writes) == 1:
            query, variables = UPSERT_MUTATION, {"input": upsert_input(*writes[0])}
        else:
            query = batch_mutation(len(writes))
            variables = {f"i{n}": upsert_input(storage_id, fields) for n, (storage_id, fields) in enumerate(writes)}
        return request_bytes(query, variables, ascii_only=getattr(self.api, "name", None) == "classic")

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
        data = self.execute(batch_mutation(len(writes)), variables)
        unconfirmed = [storage_id for n, (storage_id, _) in enumerate(writes)
                       if not (data.get(f"r{n}") or {}).get("bucket")]
        if unconfirmed:
            raise BackendError(f"W&B did not confirm the write of {len(unconfirmed)} of {len(writes)} runs")


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


