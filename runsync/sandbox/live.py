"""Simulated training processes: a running run's process re-sends its (stale) config now and then.

A real run whose process is alive has a wandb-core that re-sends its whole config (REAL_WANDB.md "Writing
runs"): an edit made from outside to a key it holds is undone. Here each run whose state is `running`
gets a process holding the config the run had when the process first saw it; every `interval` seconds it
sends that config again, through the store, exactly as an upsertBucket with only `config` would.
"""
from __future__ import annotations

import copy
import threading
from typing import Any

from .records import merge_config
from .store import Store


class LiveProcesses:
    """The processes of every running run in a store; `stop()` ends them."""

    def __init__(self, store: Store, interval: float) -> None:
        if interval <= 0:
            raise ValueError(f"live process interval must be positive, got {interval}")
        self.store = store
        self.interval = float(interval)
        self.resends = 0  # config re-sends that changed something
        self._configs: dict[str, dict[str, Any]] = {}  # storage id -> the config its process holds
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.tick()  # runs running now get their process (and its config) at once, not one interval later
        self._thread = threading.Thread(target=self._loop, name="runsync-sandbox-live", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception:  # the store closed under us while stopping: not news
                if self._stop.is_set():
                    return
                raise

    def tick(self) -> None:
        """Start a process for each newly running run; have every process re-send its config."""
        with self._lock:
            running = {}
            for project in self.store.list_projects():
                for rec in self.store.snapshot(project["entity"], project["name"])[1]:
                    if rec.state == "running":
                        running[rec.storage_id] = rec
            for sid in [s for s in self._configs if s not in running]:
                del self._configs[sid]  # finished: its process is gone
            for sid, rec in running.items():
                held = self._configs.setdefault(sid, copy.deepcopy(rec.raw_config))
                lands = held if self.store.config_merge == "replace" else merge_config(rec.raw_config, held)
                if lands != rec.raw_config:
                    self.store.upsert({"id": sid, "config": held})
                    self.resends += 1

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
