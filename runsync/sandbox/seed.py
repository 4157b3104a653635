"""Deterministic, realistic-looking runs for tests, the demo and benchmarks."""
from __future__ import annotations

import json
import random
import sqlite3
import string
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from .records import COLUMNS, dumps
from .store import Store

DEMO_ENTITY = "demo"
DEMO_PROJECT = "image-classification"
TAGS = ("baseline", "sweep", "ablation", "prod", "debug", "v2", "résumé")
GROUPS = (None, "exp-a", "exp-b", "exp-c")
JOB_TYPES = ("train", "train", "eval", None)
STATES = ("finished",) * 8 + ("crashed", "running")
ADJECTIVES = ("swift", "bright", "quiet", "bold", "lucky", "misty", "solar", "frosty", "dark", "gentle")
NOUNS = ("river", "forest", "comet", "meadow", "wave", "pine", "moon", "field", "cloud", "sun")
_START = datetime(2024, 5, 1, 9, 0, 0, tzinfo=timezone.utc)


def _run_id(rng: random.Random, used: set[str]) -> str:
    while True:
        rid = "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(8))
        if rid not in used:
            used.add(rid)
            return rid


def _config(rng: random.Random) -> tuple[dict[str, Any], dict[str, str]]:
    config: dict[str, Any] = {
        "dataset": rng.choice(("cifar10", "cifar100", "mnist")),
        "lr": round(10 ** rng.uniform(-4, -1), 6),
        "batch_size": rng.choice((32, 64, 128, 256)),
        "optimizer": rng.choice(("adam", "sgd", "adamw")),
        "epochs": rng.randint(5, 100),
        "model": {"depth": rng.choice((18, 34, 50)), "width": rng.choice((1.0, 2.0, 0.5))},
        "augment": rng.random() < 0.5,
        "seed_note": None,
    }
    if rng.random() < 0.5:  # optional keys: absent on some runs, as in real projects
        config["dropout"] = round(rng.uniform(0.0, 0.5), 2)
    if rng.random() < 0.3:
        config["layers"] = [rng.choice((64, 128, 256)) for _ in range(rng.randint(1, 3))]
    descs = {}
    if rng.random() < 0.5:
        descs = {"lr": "peak learning rate", "batch_size": "per-device batch size"}
    return config, descs


def _rows(entity: str, project: str, runs: int, seed: int) -> tuple[list[tuple], list[str]]:
    rng = random.Random(seed)
    used: set[str] = set()
    rows, ids = [], []
    when = _START + timedelta(minutes=rng.randint(0, 600))
    for i in range(runs):
        rid = _run_id(rng, used)
        config, descs = _config(rng)
        state = rng.choice(STATES)
        step = rng.randint(10, 5000)
        acc = round(rng.uniform(0.3, 0.99), 4)
        summary = {"acc": acc, "loss": round(rng.uniform(0.01, 2.5), 4), "_step": step}
        notes = rng.choice((None, None, "looks good", "diverged after warmup"))
        rows.append(Store.run_row(
            entity, project, rid,
            display_name=f"{rng.choice(ADJECTIVES)}-{rng.choice(NOUNS)}-{i + 1}",
            tags=sorted(rng.sample(TAGS, rng.randint(0, 3))), group=rng.choice(GROUPS),
            job_type=rng.choice(JOB_TYPES), notes=notes, state=state,
            created_at=when.strftime("%Y-%m-%dT%H:%M:%SZ"), config=config, summary=summary,
            config_descs=descs,
        ))
        ids.append(rid)
        when += timedelta(seconds=rng.randint(0, 3600))  # equal createdAt values can happen
    return rows, ids


def _with_config_value(row: tuple, key: str, value: Any) -> tuple:
    i = COLUMNS.index("config") - 1  # rows for insert_rows have no rowid
    raw = json.loads(row[i])
    raw[key]["value"] = value
    return (*row[:i], dumps(raw), *row[i + 1:])


def _with_store(store_or_path: Store | str | Path) -> tuple[Store, bool]:
    if isinstance(store_or_path, Store):
        return store_or_path, False
    return Store(str(store_or_path)), True


def seed_project(store_or_dbpath: Store | str | Path, entity: str = "e", project: str = "p",
                 runs: int = 100, seed: int = 0) -> list[str]:
    """Add `runs` deterministic runs to a project (one transaction); return their ids in order."""
    store, owned = _with_store(store_or_dbpath)
    try:
        rows, ids = _rows(entity, project, runs, seed)
        try:
            store.insert_rows(entity, project, rows)
        except sqlite3.IntegrityError as e:
            raise ValueError(f"{entity}/{project} already has runs from seed {seed}: {e}") from None
        return ids
    finally:
        if owned:
            store.close()


def seed_demo(store_or_dbpath: Store | str | Path) -> tuple[str, str]:
    """Create the small demo project (12 runs) unless it exists; return (entity, project)."""
    store, owned = _with_store(store_or_dbpath)
    try:
        if store.count_runs(DEMO_ENTITY, DEMO_PROJECT) == 0:
            rows, _ = _rows(DEMO_ENTITY, DEMO_PROJECT, 12, seed=2024)
            # Two runs carry the typo "adma" for the demo to fix in the sheet (runsync.demo.TYPO).
            for i in (3, 8):
                rows[i] = _with_config_value(rows[i], "optimizer", "adma")
            store.insert_rows(DEMO_ENTITY, DEMO_PROJECT, rows)
        return DEMO_ENTITY, DEMO_PROJECT
    finally:
        if owned:
            store.close()
