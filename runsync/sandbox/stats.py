"""Request counters: requests, operations by name, executed mutations, 429s answered, faults by kind."""
from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class Stats:
    """The counters behind GET /_sandbox/stats; safe to add to from the server's threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.requests = 0
            self.mutations = 0
            self.rate_limited = 0  # every 429 answered: the quota's and the injected rate limit's
            self.operations: Counter[str] = Counter()
            self.faults: Counter[str] = Counter({"429": 0, "500": 0, "hang": 0})

    def add(self, **kw: Any) -> None:
        with self._lock:
            self.requests += kw.get("requests", 0)
            self.mutations += kw.get("mutations", 0)
            self.rate_limited += kw.get("rate_limited", 0)
            if kw.get("operation"):
                self.operations[kw["operation"]] += 1
            if kw.get("fault"):
                self.faults[kw["fault"]] += 1

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {"requests": self.requests, "operations": dict(self.operations),
                    "mutations": self.mutations, "rate_limited": self.rate_limited, "faults": dict(self.faults)}
