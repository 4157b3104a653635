"""Reading MLflow runs: `search_runs` pages (its page token), and runs by id (`attributes.run_id IN (...)`).

An MLflow run as a RunRecord: run id as both ids, run name as `name`, params as `config` (text, as MLflow holds
them), the latest metric values as `summary`, the `mlflow.note.content` tag as `notes`, the other tags as
`tag_values` (the user's) and `system_tags` (`mlflow.*`). MLflow has no tag list, group or job type.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from runsync.backend.mlflow.connection import Connection
from runsync.backend.mlflow.filters import filter_string, order_by
from runsync.model import RunRecord

DEFAULT_PER_PAGE = 1000  # MLflow's own default page (search_runs max_results)
MIN_PER_PAGE = 50  # Capabilities.min_per_page: a failed page is tried again as it was (connection.call)
IDS_PER_QUERY = 200  # run ids in one `attributes.run_id IN (...)`
SYSTEM_TAG_PREFIX = "mlflow."  # MLflow's own tags (mlflow/utils/mlflow_tags.py): never the user's
NOTE_TAG = "mlflow.note.content"  # a run's description (MLFLOW_RUN_NOTE)
RUN_NAME_TAG = "mlflow.runName"


class Reads(Connection):
    """The reads of an MlflowBackend (backend/mlflow/client.py)."""

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
        """The experiment's active runs matching `filters` (runsync's filter dict, or MLflow's filter string),
        in `order` (oldest first by default), at most `limit`, each once. MLflow counts no matches:
        `on_total` gets the number once the listing is done (at once when one page holds them all)."""
        where = filter_string(filters)  # a filter MLflow cannot take is refused before anything is sent
        ordering = order_by(order)
        experiment = self.experiment_id(project)
        return self._listing(experiment, where, ordering, limit, per_page or DEFAULT_PER_PAGE, with_summary, on_total)

    def _listing(self, experiment: str, where: str, ordering: list[str], limit: int | None, per_page: int,
                 with_summary: bool, on_total: Callable[[int], None] | None) -> Iterator[RunRecord]:
        seen: set[str] = set()
        token: str | None = None
        size = max(1, per_page)
        while True:
            want = size if limit is None else max(1, min(size, limit - len(seen)))
            page = self._page(experiment, where, ordering, want, token)
            for run in page:
                if run.info.run_id in seen:  # pages over a changing table may overlap
                    continue
                seen.add(run.info.run_id)
                yield self._record(run, with_summary)
                if limit is not None and len(seen) >= limit:
                    break
            token = page.token
            done = not token or not page or (limit is not None and len(seen) >= limit)
            if done:
                if on_total is not None:
                    on_total(len(seen))
                return

    def _page(self, experiment: str, where: str, ordering: list[str], size: int, token: str | None) -> Any:
        client = self.client

        def search() -> Any:
            return client.search_runs([experiment], filter_string=where, max_results=size, order_by=ordering,
                                      page_token=token)

        shown = f" with the filter {where!r}" if where else ""
        return self.call(search, f"list the runs of experiment {experiment}{shown}")

    def fetch_by_ids(
        self,
        project: str,
        ids: Iterable[str],
        *,
        with_summary: bool = False,
        on_warning: Callable[[str], None] | None = None,
        on_run: Callable[[], None] | None = None,
    ) -> dict[str, RunRecord]:
        """The experiment's active runs with these ids (a deleted run, or one in another experiment, is absent),
        `IDS_PER_QUERY` ids per search."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        experiment = self.experiment_id(project)
        found: dict[str, RunRecord] = {}
        for start in range(0, len(wanted), IDS_PER_QUERY):
            part = wanted[start : start + IDS_PER_QUERY]
            where = filter_string({"id": {"$in": part}})
            for record in self._listing(experiment, where, order_by(None), None, len(part), with_summary, None):
                if on_run is not None and record.id not in found:
                    on_run()
                found[record.id] = record
        return found

    def _record(self, run: Any, with_summary: bool) -> RunRecord:
        info, data = run.info, run.data
        tags: dict[str, str] = dict(data.tags)
        metrics = dict(data.metrics) if with_summary else {}
        params = dict(data.params)
        return RunRecord(
            id=info.run_id,
            storage_id=info.run_id,
            name=info.run_name or tags.get(RUN_NAME_TAG),
            tags=(),
            group=None,
            job_type=None,
            notes=tags.get(NOTE_TAG),
            config=params,
            raw_config=dict(params),
            state=(info.status or "").lower() or None,  # runsync's states are W&B's lower-case ones
            created_at=_iso(info.start_time),
            url=self._run_url(info.experiment_id, info.run_id),
            summary=metrics,
            raw_summary=dict(metrics),
            tag_values={k: v for k, v in tags.items() if not k.startswith(SYSTEM_TAG_PREFIX)},
            system_tags={k: v for k, v in tags.items() if k.startswith(SYSTEM_TAG_PREFIX)},
            experiment=self.experiment_names.get(info.experiment_id, info.experiment_id),
        )

    def _run_url(self, experiment: str, run_id: str) -> str | None:
        uri = self.base_url
        if not uri.lower().startswith(("http://", "https://")):
            return None
        return f"{uri}/#/experiments/{experiment}/runs/{run_id}"


def _iso(millis: int | None) -> str | None:
    """MLflow's start time (ms since the epoch) as W&B writes createdAt: ISO 8601, UTC, seconds."""
    if millis is None:
        return None
    return dt.datetime.fromtimestamp(millis / 1000, tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
