"""Filtered, ordered, cursor-paginated run listings over a Store snapshot."""
from __future__ import annotations

import base64
import bisect
import json
from typing import Any

from .filters import FilterError, compile_filter, name_candidates, parse_order
from .records import RunRec
from .store import Store

_CACHE_SIZE = 16


def decode_filters(filters: Any) -> Any:
    """Decode the `filters` argument: the client sends a JSON string; accept an object too."""
    if filters is None or filters == "":
        return {}
    if isinstance(filters, str):
        try:
            return json.loads(filters)
        except ValueError as e:
            raise FilterError(f"filters is not valid JSON: {e}") from None
    return filters


def _matches(store: Store, entity: str, project: str, filters: Any, order: str | None
             ) -> tuple[list[tuple], list[RunRec]]:
    """Return (ascending sort keys, runs) for a filter+order; cached per store generation."""
    spec = decode_filters(filters)
    gen, ordered, by_name = store.snapshot(entity, project)
    cache_key = (entity, project, gen, json.dumps(spec, sort_keys=True), order or "")
    with store.lock:
        hit = store.query_cache.get(cache_key)
        if hit is not None:
            store.query_cache.move_to_end(cache_key)
            return hit
    pred = compile_filter(spec)
    names = name_candidates(spec)
    # runsync asks for `{"name": {"$in": [200 ids]}}` a lot: look those up instead of scanning.
    pool = ordered if names is None else [by_name[n] for n in names if n in by_name]
    keyf, _ = parse_order(order)
    keyed = sorted(((keyf(r), r.rowid), r) for r in pool if pred(r)) if pool else []
    result = ([k for k, _ in keyed], [r for _, r in keyed])
    with store.lock:  # the LRU is shared by the server's threads
        store.query_cache[cache_key] = result
        while len(store.query_cache) > _CACHE_SIZE:
            store.query_cache.popitem(last=False)
    return result


def encode_cursor(key: tuple) -> str:
    """Encode a position (sort key, rowid) as an opaque cursor."""
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


def _decode_cursor(cursor: str) -> tuple:
    try:
        k, rowid = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return (tuple(k), int(rowid))
    except (ValueError, TypeError) as e:
        raise FilterError(f"invalid cursor {cursor!r}") from e


def count_runs(store: Store, entity: str, project: str, filters: Any) -> int:
    """Return how many runs of a project match the filters."""
    return len(_matches(store, entity, project, filters, None)[1])


def page_runs(store: Store, entity: str, project: str, filters: Any, order: str | None,
              first: int | None, after: str | None, shift: int = 0) -> dict[str, Any]:
    """Return one page: {"total", "items": [(run, cursor)], "has_next", "end_cursor"}.

    The cursor is the position by sort key + unique rowid, not an offset, so runs inserted,
    deleted or updated between pages never make a run appear twice or go missing.
    `shift` (the overlapping-pages fault) starts the page elsewhere: -k repeats the last k runs before the
    cursor, +k skips k runs after it, as the service's paging over a re-sorted live table can.
    """
    keys, recs = _matches(store, entity, project, filters, order)
    _, desc = parse_order(order)
    first = 50 if first is None else max(0, first)
    pos = _decode_cursor(after) if after else None
    try:
        if not desc:
            start = bisect.bisect_right(keys, pos) if pos is not None else 0
            start = min(max(0, start + shift), len(keys))
            idx = list(range(start, min(start + first, len(keys))))
            has_next = start + first < len(keys)
        else:
            end = bisect.bisect_left(keys, pos) if pos is not None else len(keys)
            end = min(max(0, end - shift), len(keys))
            idx = list(range(end - 1, max(end - first, 0) - 1, -1))
            has_next = end - first > 0
    except TypeError:
        raise FilterError("cursor does not belong to this order") from None
    items = [(recs[i], encode_cursor(keys[i])) for i in idx]
    return {
        "total": len(recs), "items": items, "has_next": has_next,
        "end_cursor": items[-1][1] if items else after,
    }
