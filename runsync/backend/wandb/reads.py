"""Reading W&B runs: listings paged with the server's cursor, and runs by id, a chunk of ids per query.

One GraphQL query asks for exactly the fields runsync needs (no per-run follow-up request, no `Run` objects,
which each create a directory under WANDB_DIR).
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from runsync.backend.wandb.address import parse_project_path
from runsync.backend.wandb.connection import Connection
from runsync.backend.wandb.filters import check_filters
from runsync.backend.wandb.paging import MIN_PER_PAGE, Pager, PageSize
from runsync.backend.wandb.queries import RUNS_QUERY
from runsync.errors import BackendError, ConfigError
from runsync.model import RunRecord

log = logging.getLogger("runsync")

# The page size a listing starts with; pages then grow while the server answers them well inside the client's
# deadline (paging.py: PageSize, up to MAX_PER_PAGE). Against the sandbox bigger pages are faster (fewer round
# trips: docs/performance.md, page-size sweep of `python -m benchmarks --full`). Against W&B a page of 1,000 runs
# with big configs can outlast a gateway's or the client's deadline (REAL_WANDB.md), and a page that fails costs
# the client's whole deadline (~19 s) before it is asked again smaller: 250 is a size the service is expected to
# answer, the start, not the sandbox's optimum.
DEFAULT_PER_PAGE = 250
# Ids per `{"name": {"$in": [...]}}` query when reading runs by id (one page per query) to start with; they grow
# as pages do.
IDS_PER_QUERY = DEFAULT_PER_PAGE
# Such queries in flight at once (they are independent): the plan of N runs waits ~N/1000 round trips, not
# N/250; fewer than the writes' 8, as each asks the server for a whole page.
READ_CONCURRENCY = 4

# W&B config keys that are the client's own bookkeeping, never the user's.
INTERNAL_CONFIG_KEYS = frozenset({"_wandb", "wandb_version"})


class Reads(Connection):
    """The reads of a WandbBackend (backend/wandb/client.py)."""

    def iter_runs(
        self,
        project: str,
        *,
        filters: dict[str, Any] | str | None = None,
        order: str | None = None,
        limit: int | None = None,
        per_page: int | None = None,
        with_summary: bool = False,
        on_total: Callable[[int], None] | None = None,
        on_warning: Callable[[str], None] | None = None,
    ) -> Iterator[RunRecord]:
        """Yield the project's runs matching `filters`, each once, paging with the server's cursor.

        The filters are checked (and `$all` rewritten) here, before anything is sent: a filter W&B would
        answer with HTTP 500 raises ConfigError at once (runsync/backend/filters.py).
        Pages start at DEFAULT_PER_PAGE runs and are sized by how the server answers them (paging.py: PageSize);
        a `per_page` given is kept as it is. Pages that fail are asked again smaller (`Pager`). A run repeated by an overlapping page is yielded
        once; when fewer runs came than W&B's `runCount`, the listing is paged again in the reverse order and
        the missing runs follow; if some are still missing, `on_warning` (default: the "runsync" log) gets
        the numbers.
        """
        entity, name = parse_project_path(project)
        if isinstance(filters, str):
            raise ConfigError("W&B filters are a JSON object (a filter string is MLflow's)")
        checked = check_filters(filters)
        return self._iter_runs(entity, name, checked, order, limit, per_page, with_summary, on_total,
                               guard=bool(checked), on_warning=on_warning)

    def _iter_runs(self, entity: str, name: str, filters: dict[str, Any] | None, order: str | None,
                   limit: int | None, per_page: int | None, with_summary: bool,
                   on_total: Callable[[int], None] | None, *, guard: bool,
                   on_warning: Callable[[str], None] | None = None, repage: bool = True,
                   sizes: PageSize | None = None) -> Iterator[RunRecord]:
        order = order or "+created_at"
        start = DEFAULT_PER_PAGE if per_page is None else per_page
        pager = Pager(self, min(start, self._page_cap or start), f"{entity}/{name}", grow=per_page is None,
                      sizes=sizes)
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
            _ = self.api  # connected first: the page's time is the server's, not the login's
            sent = time.monotonic()
            data = self.execute(RUNS_QUERY, variables, timeout=self._filter_timeout)
            pager.answer(asked, time.monotonic() - sent)
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
        self, project: str, ids: Iterable[str], *, with_summary: bool = False, chunk: int | None = None,
        per_page: int | None = None, on_warning: Callable[[str], None] | None = None,
        on_run: Callable[[], None] | None = None,
    ) -> dict[str, RunRecord]:
        """Read the runs with these ids, a chunk of ids per query (paged); missing ids are simply absent.
        `on_run` is called for each run read (from several threads: a progress bar's advance).

        Without `chunk` and `per_page`, a query asks for IDS_PER_QUERY ids at first, READ_CONCURRENCY at once,
        and later queries are sized as a listing's pages are (paging.py: PageSize, shared by the queries); with
        either, chunks of `chunk` ids (IDS_PER_QUERY) in pages of `per_page` runs, as given.
        Ids W&B counts among a chunk's matches but the pages did not return (pages that overlapped or
        skipped) are asked for once more; any still missing then are reported to `on_warning`.
        """
        entity, name = parse_project_path(project)
        wanted = list(dict.fromkeys(ids))
        if chunk is None and per_page is None and wanted:
            return self._read_ids_sized(entity, name, wanted, with_summary, on_warning, on_run)
        chunk = chunk or IDS_PER_QUERY
        per_page = per_page or DEFAULT_PER_PAGE
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

    def _read_ids_sized(self, entity: str, name: str, wanted: list[str], with_summary: bool,
                        on_warning: Callable[[str], None] | None,
                        on_run: Callable[[], None] | None) -> dict[str, RunRecord]:
        """fetch_by_ids with queries sized by how the server answers: each query asks for the ids the last
        answers allow (one page per query), READ_CONCURRENCY in flight; a query that fails is asked again
        smaller, as a listing's page."""
        start = self._ids_per_query or IDS_PER_QUERY
        start = min(start, self._page_cap or start)
        sizes = PageSize(start, self._client_deadline(), grow=True, ceiling=lambda: self._page_cap)
        found: dict[str, RunRecord] = {}
        position = queries = 0
        with ThreadPoolExecutor(max_workers=READ_CONCURRENCY) as pool:
            pending: set[Future[dict[str, RunRecord]]] = set()
            while position < len(wanted) or pending:
                while position < len(wanted) and len(pending) < READ_CONCURRENCY:
                    part = wanted[position : position + sizes.size]
                    position += len(part)
                    queries += 1
                    pending.add(pool.submit(self._read_id_chunk, entity, name, part, with_summary, None,
                                            on_warning, on_run, sizes))
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    found.update(future.result())
        log.debug("%s/%s: %d ids in %d queries; ids per query: %s", entity, name, len(wanted), queries,
                  sizes.describe())
        self._ids_per_query = sizes.size
        return found

    def _read_id_chunk(self, entity: str, name: str, part: list[str], with_summary: bool, per_page: int | None,
                       on_warning: Callable[[str], None] | None,
                       on_run: Callable[[], None] | None = None, sizes: PageSize | None = None) -> dict[str, RunRecord]:
        found: dict[str, RunRecord] = {}
        counted = self._read_ids(entity, name, part, with_summary, per_page, found, on_run, sizes)
        got = sum(1 for run_id in part if run_id in found)
        if got < counted:
            missing = [run_id for run_id in part if run_id not in found]
            log.debug("%s/%s: W&B counts %d of %d ids but %d came; asking for the %d missing again", entity,
                      name, counted, len(part), got, len(missing))
            self._read_ids(entity, name, missing, with_summary, per_page, found, sizes=sizes)
            got = sum(1 for run_id in part if run_id in found)
            if got < counted:
                _warn(on_warning, f"{entity}/{name}: W&B counts {counted} of {len(part)} runs asked for by id, "
                                  f"but reading them gave {got}, also when asked again")
        return found

    def _read_ids(self, entity: str, name: str, ids: list[str], with_summary: bool, per_page: int | None,
                  found: dict[str, RunRecord], on_run: Callable[[], None] | None = None,
                  sizes: PageSize | None = None) -> int:
        """Read the runs with these ids into `found`; return how many of them W&B counts (`runCount`).
        With `sizes` (shared by the queries of one read), pages are as big as it says, at most the ids asked."""
        counted: list[int] = []
        page = None if per_page is None else max(1, min(len(ids), per_page))
        for record in self._iter_runs(entity, name, {"name": {"$in": ids}}, None,
                                      len(ids) if sizes is not None else None, page, with_summary,
                                      counted.append, guard=False, repage=False, sizes=sizes):
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


def _reverse_order(order: str) -> str:
    """"+created_at" -> "-created_at" and back."""
    return "+" + order[1:] if order.startswith("-") else "-" + order.lstrip("+")


def _warn(on_warning: Callable[[str], None] | None, text: str) -> None:
    if on_warning is not None:
        on_warning(text)
    else:
        log.warning(text)
