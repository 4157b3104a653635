"""Where each plan made here came from (its journal's begin line), kept beside the frozen Plan."""
from __future__ import annotations

import weakref
from typing import Any

from runsync.backend import Backend
from runsync.model import Plan

# Plans made here -> what their journal's begin line says of where they came from (journal.export_header).
# Kept beside the (frozen, shared) Plan type rather than in it; an entry goes when its plan does.
_PLAN_HEADERS: dict[int, tuple[weakref.ref[Plan], dict[str, Any]]] = {}


def remember_header(plan: Plan, header: dict[str, Any]) -> Plan:
    key = id(plan)

    def forget(_: object) -> None:
        _PLAN_HEADERS.pop(key, None)

    _PLAN_HEADERS[key] = (weakref.ref(plan, forget), header)
    return plan


def header_of(plan: Plan) -> dict[str, Any]:
    entry = _PLAN_HEADERS.get(id(plan))
    return dict(entry[1]) if entry and entry[0]() is plan else {}


# Plans made here -> the backend that read their runs: `apply(plan)` writes through it (one client, one login),
# also when the caller's backend was another tracker's (the sheet named its own).
_PLAN_BACKENDS: dict[int, tuple[weakref.ref[Plan], Backend]] = {}


def remember_backend(plan: Plan, backend: Backend) -> Plan:
    key = id(plan)

    def forget(_: object) -> None:
        _PLAN_BACKENDS.pop(key, None)

    _PLAN_BACKENDS[key] = (weakref.ref(plan, forget), backend)
    return plan


def backend_of(plan: Plan) -> Backend | None:
    entry = _PLAN_BACKENDS.get(id(plan))
    return entry[1] if entry and entry[0]() is plan else None
