"""What runsync asks of a tracker: the `Backend` protocol and the plain data it speaks in.

Every stage above backend/ holds a `Backend` and asks it for runs, writes and its `Capabilities`; none knows
which tracker it is. W&B (backend/wandb/) is one implementation; a second one (MLflow: /work/shared/MLFLOW.md)
implements the same methods and registers a `Tracker` in backend/__init__.py, which picks one by the project's
address.

Runs come back as `runsync.model.RunRecord`; `raw_config` and `raw_summary` there hold the tracker's own form
(what a write sends back, changed), `config` and `summary` the user's values.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from runsync.model import RunRecord

# The field kinds a run has, as `Capabilities` names them: the run's own text fields, its tag list, its keyed
# tags (MLflow's key -> text tags: `RunRecord.tag_values`), config keys (W&B config, MLflow params) and summary
# metrics.
FIELD_KINDS = frozenset({"name", "group", "job_type", "notes", "tags", "tag_values", "config", "summary"})

# The keys a `RunPatch` may carry: each run field as written, `raw_config` (the config keys to write, in the
# tracker's form as `RunRecord.raw_config` holds it), `summary` (the whole summary, as read just before) and
# `tag_values` (keyed tags to set, {key: text}, or to delete, {key: None}; only the keys that change).
PATCH_FIELDS = frozenset({"name", "group", "job_type", "notes", "tags", "tag_values", "raw_config", "summary"})


@dataclass(frozen=True)
class ProjectAddress:
    """A project as a user names it, parsed: which tracker holds it and where (W&B: entity and project)."""

    tracker: str  # the `Tracker.name` that parsed it, e.g. "wandb"
    owner: str  # W&B: the entity; MLflow: "name" or "id" (how the experiment is named)
    name: str  # W&B: the project; MLflow: the experiment's name or id
    # The address as files and journals record it, when not "owner/name" (MLflow: "mlflow:NAME"); the factory
    # must claim it for the same tracker again.
    canonical: str | None = None

    @property
    def path(self) -> str:
        """The project as files and journals record it: "owner/name" (W&B), or the tracker's `canonical`."""
        return self.canonical or f"{self.owner}/{self.name}"


@dataclass(frozen=True)
class Capabilities:
    """What a tracker can do and the sizes its reads and writes work in."""

    tracker: str  # for messages: "W&B"
    editable: frozenset[str]  # FIELD_KINDS whose values a write may change
    deletable: frozenset[str]  # FIELD_KINDS whose keys a write may remove (W&B: none; undo sets a new key to null)
    add_only: frozenset[str]  # FIELD_KINDS that take new keys but never a changed value (MLflow params)
    ids_per_query: int  # run ids asked for in one read by id (`fetch_by_ids` starts with this)
    default_per_page: int  # runs per page a listing starts with
    min_per_page: int  # a page that fails is asked again smaller, down to this
    max_runs_per_request: int | None  # runs one write request may carry (None: only the apply's batch size)
    parse_project: Callable[[str], ProjectAddress]  # "ENTITY/PROJECT", a pasted page address, ...
    filter_value: Callable[[str, str], Any]  # what `--filter KEY=VALUE` compares KEY with
    filter_text: bool = False  # `--filters` is the tracker's own filter string (MLflow's), not a JSON document
    takes_tracking_uri: bool = False  # the backend takes `tracking_uri` (MLflow's server; W&B has base_url)


@dataclass(frozen=True)
class RunPatch:
    """One run's write: only the fields that change (keys from PATCH_FIELDS)."""

    storage_id: str  # RunRecord.storage_id: the tracker's own id of the run
    fields: Mapping[str, Any]


@dataclass(frozen=True)
class WriteOutcome:
    """What became of one `RunPatch`: `error` is None once the tracker confirmed the write.

    A failed request leaves every run in it unconfirmed (each with the request's error): whether one landed is
    not known, so the caller may send it again (a write sets values: sending a landed one again changes nothing).
    """

    storage_id: str
    error: str | None = None

    @property
    def landed(self) -> bool:
        return self.error is None


@runtime_checkable
class Backend(Protocol):
    """A tracker's runs, read and written. Methods raise `runsync.errors.BackendError` (one line, no secret)
    when the tracker can't be reached or refuses, and `ConfigError` for a project address or filter it can't take."""

    @property
    def capabilities(self) -> Capabilities: ...

    @property
    def base_url(self) -> str:
        """Where the tracker is, for messages (the host, once connected)."""
        ...

    @property
    def requests_sent(self) -> int:
        """Requests sent to the tracker so far (reads and writes, each try counted), for what a report says."""
        ...

    def login(self) -> None:
        """Connect and check the credentials now (else the first read or write does)."""
        ...

    def connect_in_background(self) -> None:
        """Start `login` on a thread; the first use of the connection waits for it and raises what it raised."""
        ...

    def iter_runs(
        self,
        project: str,
        *,
        filters: dict[str, Any] | str | None = ...,  # a str: the tracker's own filter language (MLflow's)
        order: str | None = ...,
        limit: int | None = ...,
        per_page: int | None = ...,  # None: the tracker's own page sizes (W&B: they grow with fast answers)
        with_summary: bool = ...,
        on_total: Callable[[int], None] | None = ...,
        on_warning: Callable[[str], None] | None = ...,
    ) -> Iterator[RunRecord]:
        """The project's runs matching `filters` (the tracker's filter language), in `order`, at most `limit`,
        each once, read a page at a time; `on_total` gets the count once known, `on_warning` what was off."""
        ...

    def fetch_by_ids(
        self,
        project: str,
        ids: Iterable[str],
        *,
        with_summary: bool = ...,
        on_warning: Callable[[str], None] | None = ...,
        on_run: Callable[[], None] | None = ...,
    ) -> dict[str, RunRecord]:
        """The runs with these ids (run id -> record; an id not found is absent), `ids_per_query` per read;
        `on_run` is called for each run read, possibly from several threads."""
        ...

    def write_runs(self, patches: Sequence[RunPatch]) -> list[WriteOutcome]:
        """Write these runs, as one request where the tracker allows; one outcome per patch, in order."""
        ...

    def write_request_bytes(self, writes: list[tuple[str, dict[str, Any]]]) -> int:
        """The size in bytes of the request `write_runs` would send for these (storage id, fields) pairs."""
        ...


@dataclass(frozen=True)
class Tracker:
    """A tracker runsync can talk to, as the factory (`runsync.backend.connect`) sees it."""

    name: str  # as ProjectAddress.tracker says it
    claims: Callable[[str], bool]  # whether a project address is this tracker's (cheap, never raises)
    parse_project: Callable[[str], ProjectAddress]  # raises ConfigError naming what is wrong
    capabilities: Callable[[], Capabilities]
    open: Callable[..., Backend]  # options -> a backend (connecting lazily, on first use or `login`)


__all__ = ["FIELD_KINDS", "PATCH_FIELDS", "Backend", "Capabilities", "ProjectAddress", "RunPatch", "Tracker",
           "WriteOutcome"]
