"""What a benchmark row holds, the sizes each mode runs at, and the request budgets rows are held to."""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Any

REQUEST_SLACK = 5
# The request budgets are written here, not computed from runsync's own constants, so that a change to
# those (a smaller page, smaller batches) shows up as a budget overrun: the import's (issue 13) counts one request
# per 250 runs read and one per 25 runs written; exports and plans count pages that grow (GROWING_PAGES below).
RUNS_PER_REQUEST = 250
RUNS_PER_WRITE = 25
# An import under rate limiting: W&B answers 429 past its limit (RateLimit-* headers, Retry-After maybe not).
RATE_LIMIT = 20.0  # requests per second
# The bare paging an export is measured against (issue 20 §1): the client's listing at 1,000 runs a page.
BARE_PER_PAGE = 1000
# Pages that grow (issue 20 §1): a listing asks for 250, 500, then 1,000 runs a page while the server answers fast;
# reads by id send 4 queries of 250 ids at once, then 500 (the 4 sent before one of 500 answered), then 1,000.
GROWING_PAGES = (250, 500)
GROWING_IDS = (250, 250, 250, 250, 500, 500, 500, 500)
GROWN_PAGE = 1000
# The slow-page mode: server time per run a page returns, and a gateway deadline twice a grown page's time.
SLOW_READ_MS_PER_RUN = 2.0
SLOW_GATEWAY_S = 4.0
# A per-project quota of writes the import of every run would exceed at full speed: it needs this many 1 s windows.
QUOTA_WINDOWS = 8
QUOTA_BATCH = 5  # small batches: many requests, so the pacer has windows to learn from


def import_budget(n: int, k: int) -> int:
    """Issue 13: the writes in batches, the plan's listing, and 5 more (Viewer, the re-read before writing, the
    config-merge probe's read-back, the read-back of the written runs, the probe's own write)."""
    return math.ceil(k / RUNS_PER_WRITE) + math.ceil(n / RUNS_PER_REQUEST) + 5


def one_per_request_budget(n: int, k: int) -> int:
    return k + math.ceil(n / RUNS_PER_REQUEST) + math.ceil(k / RUNS_PER_REQUEST) * 2 + 2 + 1 + REQUEST_SLACK


def _pages(n: int, first: tuple[int, ...]) -> int:
    """Requests for n runs asked in pages of `first`, then of GROWN_PAGE."""
    for count, size in enumerate(first, start=1):
        n -= size
        if n <= 0:
            return count
    return len(first) + math.ceil(n / GROWN_PAGE)


def growing_listing_budget(n: int) -> int:
    return _pages(n, GROWING_PAGES) + 1 + REQUEST_SLACK


def growing_ids_budget(n: int) -> int:
    return _pages(n, GROWING_IDS) + 1 + REQUEST_SLACK


@dataclass
class Sizes:
    import_runs: int
    import_edits: int
    export_runs: int
    plan_runs: int
    scaling: tuple[int, ...]
    latency_ms: float
    sweeps: bool
    mlflow_runs: int = 2000  # the MLflow import row (a local mlflow server, no added latency)
    mlflow_edits: int = 200


FULL = Sizes(2000, 200, 20000, 50000, (1000, 5000, 20000, 50000), 100.0, False)
SMOKE = Sizes(200, 20, 300, 300, (100, 300), 0.0, False, mlflow_runs=30, mlflow_edits=6)


@dataclass
class Row:
    name: str
    runsync_s: float
    baseline_s: float | None = None
    baseline: str = ""
    requests: int | None = None
    budget: int | None = None
    rss_mb: float | None = None
    goal: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        return None if not self.baseline_s else self.runsync_s / self.baseline_s


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
