"""SQLite storage for the sandbox: projects and runs, shared by every process that opens the file."""
from __future__ import annotations

import bisect
import json
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from .limits import check_config_size
from .records import COLUMNS, RunRec, dumps, merge_config, storage_id, wrap_config

_SCHEMA = """
CREATE TABLE IF NOT EXISTS projects (
    rowid INTEGER PRIMARY KEY AUTOINCREMENT,
    entity TEXT NOT NULL, name TEXT NOT NULL, created_at TEXT NOT NULL,
    UNIQUE (entity, name)
);
CREATE TABLE IF NOT EXISTS runs (
    rowid INTEGER PRIMARY KEY AUTOINCREMENT,  -- the unique, immutable tie-breaker for ordering
    storage_id TEXT NOT NULL UNIQUE,
    entity TEXT NOT NULL, project TEXT NOT NULL, name TEXT NOT NULL,
    display_name TEXT, tags TEXT NOT NULL DEFAULT '[]', grp TEXT, job_type TEXT, notes TEXT,
    description TEXT, state TEXT NOT NULL, created_at TEXT NOT NULL, heartbeat_at TEXT,
    updated_at TEXT NOT NULL, config TEXT NOT NULL, summary TEXT NOT NULL,
    system_metrics TEXT NOT NULL DEFAULT '{}', history_line_count INTEGER NOT NULL DEFAULT 0,
    sweep_name TEXT, commit_sha TEXT,
    UNIQUE (entity, project, name)
);
"""
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM runs"
_INSERT_COLS = COLUMNS[1:]
_INSERT = f"INSERT INTO runs ({', '.join(_INSERT_COLS)}) VALUES ({', '.join('?' * len(_INSERT_COLS))})"


def now_iso() -> str:
    """Return the current UTC time the way W&B formats createdAt ("2024-05-01T12:34:56Z")."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def canonical_time(value: str) -> str:
    """Store any ISO 8601 time as W&B shows it: UTC, whole seconds, "Z" (sortable as text)."""
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _now_precise() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class _ProjectRuns:
    """Parsed runs of one project, kept in rowid order, so pages don't re-read SQLite."""

    def __init__(self, recs: list[RunRec]) -> None:
        self.ordered = recs
        self.by_name = {r.name: r for r in recs}

    def replace(self, rec: RunRec) -> None:
        i = bisect.bisect_left(self.ordered, rec.rowid, key=lambda r: r.rowid)
        self.ordered[i] = rec
        self.by_name[rec.name] = rec


class Store:
    """Projects and runs in SQLite; thread-safe; sees writes made by other processes to the same file."""

    def __init__(self, path: str = ":memory:") -> None:
        self.path = str(path)
        self._lock = self.lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA busy_timeout = 10000")
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode = WAL")  # readers in other processes don't block
        self._db.executescript(_SCHEMA)
        self._cache: dict[tuple[str, str], _ProjectRuns] = {}
        # How an upsertBucket `config` lands: "merge" (W&B today: deep-merged, wandb/wandb#11055) or
        # "replace" (older self-hosted servers: the config sent becomes the whole config).
        self.config_merge = "merge"
        self.max_config_bytes: Any = lambda: None  # the serving sandbox's config size limit, asked per write
        self._data_version = self._pragma_data_version()
        self.generation = 0  # bumped on every change seen; keys every derived cache
        self.query_cache: OrderedDict[tuple, Any] = OrderedDict()  # used by query.py, under .lock

    # -- internals -------------------------------------------------------------------------------
    def _pragma_data_version(self) -> int:
        return self._db.execute("PRAGMA data_version").fetchone()[0]

    def _sync(self) -> None:
        """Drop caches when another connection (another process) committed since we last looked."""
        version = self._pragma_data_version()
        if version != self._data_version:
            self._data_version = version
            self._changed(None)

    def _changed(self, key: tuple[str, str] | None) -> None:
        self.generation += 1
        self.query_cache.clear()
        if key is None:
            self._cache.clear()
        else:
            self._cache.pop(key, None)

    def _ensure_project(self, entity: str, project: str, created_at: str | None = None) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO projects (entity, name, created_at) VALUES (?, ?, ?)",
            (entity, project, created_at or now_iso()),
        )

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    # -- projects --------------------------------------------------------------------------------
    def get_project(self, entity: str, project: str) -> dict[str, Any] | None:
        """Return {"rowid", "entity", "name", "created_at"} or None when the project does not exist."""
        with self._lock:
            row = self._db.execute(
                "SELECT rowid, entity, name, created_at FROM projects WHERE entity = ? AND name = ?",
                (entity, project),
            ).fetchone()
        return None if row is None else dict(zip(("rowid", "entity", "name", "created_at"), row, strict=True))

    def list_projects(self, entity: str | None = None) -> list[dict[str, Any]]:
        """Return the projects of an entity (all entities when None), oldest first."""
        sql = "SELECT rowid, entity, name, created_at FROM projects"
        args: tuple = ()
        if entity is not None:
            sql, args = sql + " WHERE entity = ?", (entity,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY rowid", args).fetchall()
        return [dict(zip(("rowid", "entity", "name", "created_at"), r, strict=True)) for r in rows]

    # -- runs: reading ---------------------------------------------------------------------------
    def snapshot(self, entity: str, project: str) -> tuple[int, list[RunRec], dict[str, RunRec]]:
        """Return (generation, runs in rowid order, runs by name); treat the lists as read-only."""
        with self._lock:
            self._sync()
            key = (entity, project)
            cached = self._cache.get(key)
            if cached is None:
                rows = self._db.execute(
                    _SELECT + " WHERE entity = ? AND project = ? ORDER BY rowid", key
                ).fetchall()
                cached = self._cache[key] = _ProjectRuns([RunRec(r) for r in rows])
            return self.generation, cached.ordered, cached.by_name

    def find_run(self, entity: str, project: str, run_id: str) -> RunRec | None:
        """Return the stored run record, or None."""
        return self.snapshot(entity, project)[2].get(run_id)

    def find_by_storage_id(self, sid: str) -> RunRec | None:
        """Return the run whose node id is `sid`, or None."""
        with self._lock:
            row = self._db.execute(_SELECT + " WHERE storage_id = ?", (sid,)).fetchone()
        return None if row is None else RunRec(row)

    def get_run(self, entity: str, project: str, run_id: str) -> dict[str, Any] | None:
        """Return the run as plain data (config: the stored wrapped config; user_config; summary; ...)."""
        rec = self.find_run(entity, project, run_id)
        return None if rec is None else rec.to_dict()

    def count_runs(self, entity: str, project: str) -> int:
        """Return the number of runs in a project."""
        with self._lock:
            return self._db.execute(
                "SELECT COUNT(*) FROM runs WHERE entity = ? AND project = ?", (entity, project)
            ).fetchone()[0]

    # -- runs: writing ---------------------------------------------------------------------------
    def create_run(
        self, entity: str, project: str, run_id: str, display_name: str | None = None,
        tags: Iterable[str] = (), group: str | None = None, job_type: str | None = None,
        notes: str | None = None, state: str = "finished", created_at: str | None = None,
        config: dict[str, Any] | None = None, summary: dict[str, Any] | None = None,
        config_descs: dict[str, str] | None = None,
    ) -> str:
        """Create a run from a plain user config (stored wrapped, as W&B does); return its node id."""
        row = self.run_row(entity, project, run_id, display_name, tags, group, job_type, notes,
                           state, created_at, config, summary, config_descs)
        self.insert_rows(entity, project, [row])
        return row[0]

    @staticmethod
    def run_row(
        entity: str, project: str, run_id: str, display_name: str | None = None,
        tags: Iterable[str] = (), group: str | None = None, job_type: str | None = None,
        notes: str | None = None, state: str = "finished", created_at: str | None = None,
        config: dict[str, Any] | None = None, summary: dict[str, Any] | None = None,
        config_descs: dict[str, str] | None = None,
    ) -> tuple:
        """Build one `runs` row (without rowid) for insert_rows; used by seeding in bulk."""
        created = canonical_time(created_at) if created_at else now_iso()
        return (
            storage_id(entity, project, run_id), entity, project, run_id,
            display_name if display_name is not None else run_id, dumps(list(tags)), group,
            job_type, notes, None, state, created, created, _now_precise(),
            dumps(wrap_config(config, config_descs)), dumps(summary or {}), "{}",
            int((summary or {}).get("_step", -1)) + 1, None, None,
        )

    def insert_rows(self, entity: str, project: str, rows: list[tuple]) -> None:
        """Insert many run rows of one project in a single transaction."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._ensure_project(entity, project, min((r[11] for r in rows), default=None))
                self._db.executemany(_INSERT, rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._changed((entity, project))

    def delete_run(self, entity: str, project: str, run_id: str) -> bool:
        """Delete a run; return whether it existed."""
        with self._lock:
            cur = self._db.execute(
                "DELETE FROM runs WHERE entity = ? AND project = ? AND name = ?",
                (entity, project, run_id),
            )
            self._changed((entity, project))
            return cur.rowcount > 0

    def upsert(self, inp: dict[str, Any]) -> tuple[RunRec, bool]:
        """Apply an upsertBucket input with W&B's semantics; return (run, inserted).

        The run is found by node `id`, else by entityName/modelName/name (created if missing).
        Config deep-merges (`config_merge = "replace"`: replaces), summary merges top-level keys, other
        fields replace when not null.
        """
        limit = self.max_config_bytes()
        with self._lock:
            self._sync()
            rec, inserted = None, False
            check_config_size(inp.get("config"), "", limit)  # also before a new run is created
            if inp.get("id"):
                rec = self.find_by_storage_id(inp["id"])
                if rec is None:
                    raise LookupError(f"run with id {inp['id']!r} not found")
            else:
                entity, project, name = inp.get("entityName"), inp.get("modelName"), inp.get("name")
                if not (entity and project and name):
                    raise ValueError("upsertBucket needs `id`, or `entityName`, `modelName` and `name`")
                rec = self.find_run(entity, project, name)
                if rec is None:
                    self.create_run(entity, project, name, state=inp.get("state") or "running")
                    rec, inserted = self.find_run(entity, project, name), True
            assert rec is not None
            sets: dict[str, Any] = {}
            for field, column in (("displayName", "display_name"), ("groupName", "grp"),
                                  ("notes", "notes"), ("jobType", "job_type"),
                                  ("description", "description"), ("state", "state"),
                                  ("commit", "commit_sha"), ("sweep", "sweep_name")):
                if inp.get(field) is not None:
                    sets[column] = inp[field]
            if inp.get("tags") is not None:
                sets["tags"] = dumps(list(inp["tags"]))
            if inp.get("config") is not None:
                incoming = _as_dict(inp["config"], "config")
                if self.config_merge == "replace":
                    sets["config"] = dumps(merge_config({}, incoming))  # wrapped as stored; nothing else kept
                else:
                    sets["config"] = dumps(merge_config(rec.raw_config, incoming))
                check_config_size(inp["config"], sets["config"], limit)  # before anything is written
            if inp.get("summaryMetrics") is not None:
                incoming = _as_dict(inp["summaryMetrics"], "summaryMetrics")
                sets["summary"] = dumps({**rec.summary_dict, **incoming})
            sets["updated_at"] = _now_precise()
            self._db.execute(
                f"UPDATE runs SET {', '.join(f'{c} = ?' for c in sets)} WHERE rowid = ?",
                (*sets.values(), rec.rowid),
            )
            new = RunRec(self._db.execute(_SELECT + " WHERE rowid = ?", (rec.rowid,)).fetchone())
            # Update the cached project in place: re-parsing 50k runs per write would be too slow.
            self.generation += 1
            self.query_cache.clear()
            cached = self._cache.get((new.entity, new.project))
            if cached is not None:
                cached.replace(new)
            return new, inserted


def _as_dict(value: Any, what: str) -> dict[str, Any]:
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a JSON object")
    return value
