"""What the service charges a request, beyond injected faults: server time per run a page returns (and the
gateway deadline a slow answer outlasts), a per-project quota with W&B's RateLimit-* headers, and its size limits.

Set through Faults.set / Sandbox.set_faults / POST /_sandbox/faults like every other knob:
- `read_ms_per_run`: server time per run a `runs` page or a `run` read returns (a page of 1,000 runs with big
  configs is slow on the service; REAL_WANDB.md "Reading runs").
- `gateway_timeout_s`: the gateway's deadline (None: none, the client's own timeout applies). A read over it is
  answered HTTP 504 at the deadline; writes over it are applied, then answered 504 (the backend finished, the
  gateway had given up).
- `quota_per_s` × `quota_window_s`: requests (`quota_unit="requests"`) or executed upsertBuckets
  (`"mutations"`) a project may spend in a fixed window before HTTP 429. Requests naming no project (Viewer, ...)
  have a quota of their own. With a quota on, every GraphQL answer carries `RateLimit-Limit` / `RateLimit-Remaining`
  (both scaled 0–1000) and `RateLimit-Reset` (seconds); `Retry-After` only with `retry_after` (REAL_WANDB.md
  "Limits").
- `max_config_bytes` (default 15,000,000) and `max_body_bytes` (default 10,000,000): see ConfigTooLarge and
  Limits.body_too_large. None/0 turns either off.
"""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Set as AbstractSet
from typing import Any

from graphql import OperationDefinitionNode
from graphql.language import ast
from graphql.utilities import value_from_ast_untyped

# "run config cannot exceed 15 MB" (HTTP 400, deeppavlov/AutoIntent#202). Whether the service's MB is 10**6 or
# 2**20 bytes is not known: the smaller, so the sandbox is never more lenient than the service.
DEFAULT_MAX_CONFIG_BYTES = 15_000_000
# "Requests over ~10 MB" (wandb/wandb#208); the status is not documented: 413, as a proxy's body limit answers.
DEFAULT_MAX_BODY_BYTES = 10_000_000
LIMIT_SETTINGS = ("read_ms_per_run", "gateway_timeout_s", "quota_per_s", "quota_window_s", "quota_unit",
                  "max_config_bytes", "max_body_bytes")
VIEWER = ("", "")  # the quota key of a request that names no project


class ConfigTooLarge(ValueError):
    """A run config over the limit: the service answers HTTP 400, the error at the mutation's path."""


class GatewayTimeout(Exception):
    """A read whose server time is over the gateway's deadline: HTTP 504, at the deadline."""


def megabytes(size: int) -> str:
    """The size as the service's message writes it: "15 MB"."""
    return f"{size / 1_000_000:g} MB"


def check_config_size(sent: Any, stored: str, limit: int | None) -> None:
    """Raise ConfigTooLarge when the config sent, or the run's config once it is applied, is over `limit` bytes.

    How the service measures is not documented: both are measured, as UTF-8 JSON (the client sends non-ASCII
    as \\u escapes, so the text sent can be the larger), and a small write that grows a big stored config past
    the limit is refused too (the stored config is what "run config" names).
    """
    if not limit:
        return
    sent_bytes = len(sent.encode()) if isinstance(sent, str) else 0
    if max(sent_bytes, len(stored.encode())) > limit:
        raise ConfigTooLarge(f"run config cannot exceed {megabytes(limit)}")


class _Window:
    __slots__ = ("start", "used")

    def __init__(self, start: float) -> None:
        self.start, self.used = start, 0


class Limits:
    """The settings above, and the quota's windows; safe to use from the server's threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._request = threading.local()  # when the request on this thread arrived (for the gateway deadline)
        self.stopping = threading.Event()  # the server's: a slow read ends when the server stops
        self._windows: dict[tuple[str, str], _Window] = {}
        self.read_ms_per_run = 0.0
        self.gateway_timeout_s: float | None = None
        self.quota_per_s: float | None = None
        self.quota_window_s = 1.0
        self.quota_unit = "requests"
        self.max_config_bytes: int | None = DEFAULT_MAX_CONFIG_BYTES
        self.max_body_bytes: int | None = DEFAULT_MAX_BODY_BYTES

    def set(self, **kw: Any) -> None:
        """Change the settings named in LIMIT_SETTINGS (validated before any is changed)."""
        for name in ("read_ms_per_run", "gateway_timeout_s", "quota_per_s", "quota_window_s"):
            if kw.get(name) is not None and not float(kw[name]) >= 0:
                raise ValueError(f"{name} must be a number >= 0, got {kw[name]!r}")
        for name in ("max_config_bytes", "max_body_bytes"):
            size = kw.get(name)
            if size is not None and (isinstance(size, bool) or not float(size).is_integer() or size < 0):
                raise ValueError(f"{name} must be a whole number of bytes >= 0, got {size!r}")
        if "quota_unit" in kw and kw["quota_unit"] not in ("requests", "mutations"):
            raise ValueError(f"quota_unit must be 'requests' or 'mutations', got {kw['quota_unit']!r}")
        if "quota_window_s" in kw and not float(kw["quota_window_s"] or 0) > 0:
            raise ValueError(f"quota_window_s must be > 0, got {kw['quota_window_s']!r}")
        with self._lock:
            if "read_ms_per_run" in kw:
                self.read_ms_per_run = float(kw["read_ms_per_run"] or 0)
            if "gateway_timeout_s" in kw:
                self.gateway_timeout_s = float(kw["gateway_timeout_s"]) if kw["gateway_timeout_s"] else None
            if "quota_per_s" in kw:
                self.quota_per_s = float(kw["quota_per_s"]) if kw["quota_per_s"] else None
            if "quota_window_s" in kw:
                self.quota_window_s = float(kw["quota_window_s"])
            if "quota_unit" in kw:
                self.quota_unit = kw["quota_unit"]
            for name in ("max_config_bytes", "max_body_bytes"):
                if name in kw:
                    setattr(self, name, int(kw[name]) if kw[name] else None)
            if {"quota_per_s", "quota_window_s", "quota_unit"} & set(kw):
                self._windows.clear()  # a new quota starts with fresh windows

    def settings(self) -> dict[str, Any]:
        with self._lock:
            return {name: getattr(self, name) for name in LIMIT_SETTINGS}

    # -- time -------------------------------------------------------------------------------------------------
    def begin_request(self) -> None:
        """Mark the arrival of the request this thread handles (the gateway's clock starts)."""
        self._request.started = time.monotonic()

    def past_deadline(self) -> bool:
        """Whether the gateway has given up on this thread's request by now."""
        deadline = self.gateway_timeout_s
        if not deadline:
            return False
        return time.monotonic() - getattr(self._request, "started", time.monotonic()) > deadline

    def read_cost(self, runs: int) -> None:
        """Spend the server time of reading `runs` runs; raise GatewayTimeout, at the deadline, if it is over."""
        cost = runs * self.read_ms_per_run / 1000.0
        if not cost:
            return
        deadline = self.gateway_timeout_s
        if deadline:
            left = deadline - (time.monotonic() - getattr(self._request, "started", time.monotonic()))
            if cost > left:
                self.stopping.wait(max(0.0, left))
                raise GatewayTimeout(f"{runs} runs take {cost:g} s, over the gateway's deadline of {deadline:g} s")
        self.stopping.wait(cost)

    def body_too_large(self, length: int) -> str | None:
        """The 413 message for a request body of `length` bytes (None: within the limit)."""
        limit = self.max_body_bytes
        if limit and length > limit:
            return f"request entity too large: {length} bytes, the limit is {megabytes(limit)}"
        return None

    # -- quota ------------------------------------------------------------------------------------------------
    def charge(self, keys: AbstractSet[tuple[str, str]], mutations: int, retry_after: bool) -> tuple[bool, dict[str, str]]:
        """Spend one request (or `mutations` writes) from each project's window; return (allowed, headers).

        Refused when any project's window cannot pay it all (nothing is spent then); the headers describe the
        most spent window. No quota: always allowed, no headers."""
        with self._lock:
            if not self.quota_per_s:
                return True, {}
            cost = mutations if self.quota_unit == "mutations" else 1
            allowed = max(1, math.floor(self.quota_per_s * self.quota_window_s + 1e-9))
            now = time.monotonic()
            windows = [self._window(key, now) for key in sorted(keys or {VIEWER})]
            ok = all(w.used + cost <= allowed for w in windows)
            if ok:
                for w in windows:
                    w.used += cost
            worst = max(windows, key=lambda w: w.used)
            reset = max(1, math.ceil(worst.start + self.quota_window_s - now))
            headers = {"RateLimit-Limit": "1000",
                       "RateLimit-Remaining": str(max(0, allowed - worst.used) * 1000 // allowed),
                       "RateLimit-Reset": str(reset)}
            if not ok and retry_after:
                headers["Retry-After"] = str(reset)
            return ok, headers

    def _window(self, key: tuple[str, str], now: float) -> _Window:
        window = self._windows.get(key)
        if window is None or now >= window.start + self.quota_window_s:  # a fixed window, as W&B's
            window = self._windows[key] = _Window(now)
        return window


def request_projects(document: ast.DocumentNode, operation_name: str | None, variables: dict[str, Any],
                     default_entity: str, store: Any) -> set[tuple[str, str]]:
    """The (entity, project) pairs a request names: `project(...)` root fields and upsertBucket inputs."""
    ops = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)
           and (operation_name is None or (d.name and d.name.value == operation_name))]
    keys: set[tuple[str, str]] = set()
    for field in ops[0].selection_set.selections if ops else ():
        if not isinstance(field, ast.FieldNode):
            continue
        args = {a.name.value: value_from_ast_untyped(a.value, variables) for a in field.arguments or ()}
        if field.name.value == "project" and args.get("name"):
            keys.add((args.get("entityName") or default_entity, args["name"]))
        elif field.name.value == "upsertBucket" and isinstance(args.get("input"), dict):
            inp = args["input"]
            rec = store.find_by_storage_id(inp["id"]) if isinstance(inp.get("id"), str) else None
            if rec is not None:
                keys.add((rec.entity, rec.project))
            elif inp.get("modelName"):
                keys.add((inp.get("entityName") or default_entity, inp["modelName"]))
    return keys
