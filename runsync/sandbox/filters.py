"""W&B's MongoDB-style run filters and orders, compiled once into Python predicates and sort keys."""
from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from .records import RunRec

MISSING: Any = object()  # a field the run does not have (distinct from a stored null)
Predicate = Callable[[RunRec], bool]


class FilterError(ValueError):
    """A filter or order the sandbox does not understand; reported as a GraphQL error."""


_PLAIN_FIELDS: dict[str, Callable[[RunRec], Any]] = {
    "name": lambda r: r.name,
    "id": lambda r: r.storage_id,
    "display_name": lambda r: r.display_name,
    "displayName": lambda r: r.display_name,
    "state": lambda r: r.state,
    "group": lambda r: r.grp,
    "jobType": lambda r: r.job_type,
    "job_type": lambda r: r.job_type,
    "tags": lambda r: r.tag_list,
    "notes": lambda r: r.notes,
    "description": lambda r: r.description,
    "createdAt": lambda r: r.created_at,
    "created_at": lambda r: r.created_at,
    "heartbeatAt": lambda r: r.heartbeat_at,
    "heartbeat_at": lambda r: r.heartbeat_at,
    "updatedAt": lambda r: r.updated_at,
    "sweep": lambda r: r.sweep_name,
}
_TIME_FIELDS = {"createdAt", "created_at", "heartbeatAt", "heartbeat_at", "updatedAt"}


def _walk(value: Any, parts: list[str]) -> Any:
    for part in parts:
        if isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return MISSING
    return value


def field_getter(path: str) -> Callable[[RunRec], Any]:
    """Return a function giving the value of `path` for a run (MISSING when absent)."""
    if path in _PLAIN_FIELDS:
        return _PLAIN_FIELDS[path]
    head, _, rest = path.partition(".")
    parts = rest.split(".") if rest else []
    if head == "config" and parts:
        key, sub = parts[0], parts[1:]
        # `config.lr` and `config.lr.value` both mean the user value; so do `config.model.depth`
        # and `config.model.value.depth`, since W&B stores each key as {"value": v, "desc": d}.
        if sub and sub[0] == "value":
            sub = sub[1:]

        def get_config(r: RunRec) -> Any:
            entry = r.raw_config.get(key, MISSING)
            if isinstance(entry, dict) and "value" in entry:
                entry = entry["value"]
            return entry if entry is MISSING else _walk(entry, sub)

        return get_config
    if head in ("summary_metrics", "summaryMetrics", "summary") and parts:
        return lambda r: _walk(r.summary_dict, parts)
    raise FilterError(f"unsupported filter field {path!r}")


# -- value comparison -----------------------------------------------------------------------------
def _kind(v: Any) -> int:
    if v is None or v is MISSING:
        return 0
    if isinstance(v, bool):
        return 1
    if isinstance(v, (int, float)):
        return 2
    if isinstance(v, str):
        return 3
    return 4


def _eq(a: Any, b: Any) -> bool:
    # Strict like MongoDB: True is not 1, but 1 == 1.0.
    if a is MISSING:
        return b is None
    return _kind(a) == _kind(b) and a == b


def _cmp_ok(a: Any, b: Any) -> bool:
    return a is not MISSING and _kind(a) == _kind(b) and _kind(a) in (2, 3)


def _norm_time(v: Any) -> Any:
    """Make ISO timestamps comparable whatever their form ("...Z", "+00:00", date only)."""
    if isinstance(v, str):
        try:
            dt = datetime.fromisoformat(v)
        except ValueError:
            return v
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return v


def _run_time(v: Any) -> Any:
    """_norm_time for stored values, with a fast path for the canonical "YYYY-MM-DDTHH:MM:SSZ"."""
    if isinstance(v, str) and len(v) == 20 and v[-1] == "Z":
        return v[:19] + ".000000"
    return _norm_time(v)


def _elements(v: Any) -> list[Any]:
    """Array semantics as in MongoDB: a list field matches when the list or any element does."""
    return [v, *v] if isinstance(v, list) else [v]


_COMPARE = {
    "$gt": lambda a, b: a > b, "$gte": lambda a, b: a >= b,
    "$lt": lambda a, b: a < b, "$lte": lambda a, b: a <= b,
}


def _op(op: str, arg: Any, siblings: dict[str, Any]) -> Callable[[Any], bool]:
    """Return a test of one field value for one operator."""
    if op == "$eq":
        return lambda v: any(_eq(e, arg) for e in _elements(v))
    if op == "$ne":
        return lambda v: not any(_eq(e, arg) for e in _elements(v))
    if op in ("$in", "$nin"):
        if not isinstance(arg, list):
            raise FilterError(f"{op} needs a list, got {arg!r}")
        hashable = all(_kind(a) in (2, 3) for a in arg)
        strs = {a for a in arg if isinstance(a, str)} if hashable else set()

        def is_in(v: Any) -> bool:
            for e in _elements(v):
                if hashable and isinstance(e, str):
                    if e in strs:
                        return True
                elif any(_eq(e, a) for a in arg):
                    return True
            return False

        return is_in if op == "$in" else (lambda v: not is_in(v))
    if op in _COMPARE:
        f = _COMPARE[op]
        return lambda v: any(_cmp_ok(e, arg) and f(e, arg) for e in _elements(v))
    if op == "$exists":
        return lambda v: (v is not MISSING) == bool(arg)
    if op == "$regex":
        flags = re.IGNORECASE if "i" in str(siblings.get("$options", "")) else 0
        try:
            rx = re.compile(str(arg), flags)
        except re.error as e:
            raise FilterError(f"invalid $regex {arg!r}: {e}") from None
        return lambda v: any(isinstance(e, str) and rx.search(e) is not None for e in _elements(v))
    if op == "$options":
        return lambda v: True
    if op == "$all":
        if not isinstance(arg, list):
            raise FilterError(f"$all needs a list, got {arg!r}")
        return lambda v: isinstance(v, list) and all(any(_eq(e, a) for e in v) for a in arg)
    if op == "$not":
        inner = _value_test(arg)
        return lambda v: not inner(v)
    raise FilterError(f"unsupported filter operator {op!r}")


def _value_test(cond: Any, time_field: bool = False) -> Callable[[Any], bool]:
    """Compile the condition on one field: an operator dict, or a literal meaning $eq."""
    if isinstance(cond, dict) and cond and all(k.startswith("$") for k in cond):
        tests = []
        for op, arg in cond.items():
            if time_field and op in _COMPARE | {"$eq": 0, "$ne": 0}:
                arg = _norm_time(arg)
            tests.append(_op(op, arg, cond))
        return lambda v: all(t(v) for t in tests)
    if isinstance(cond, dict) and any(k.startswith("$") for k in cond):
        raise FilterError(f"cannot mix operators and fields in {cond!r}")
    if time_field:
        cond = _norm_time(cond)
    return _op("$eq", cond, {})


def _all_of(subs: list[Callable[[Any], bool]]) -> Callable[[Any], bool]:
    return lambda r: all(p(r) for p in subs)


def _any_of(subs: list[Callable[[Any], bool]]) -> Callable[[Any], bool]:
    return lambda r: any(p(r) for p in subs)


def _none_of(subs: list[Callable[[Any], bool]]) -> Callable[[Any], bool]:
    return lambda r: not any(p(r) for p in subs)


def _tested(get: Callable[[Any], Any], test: Callable[[Any], bool],
            then: Callable[[Any], Any] | None = None) -> Callable[[Any], bool]:
    """A predicate: the run's field (through `then`, e.g. a time parsed) passes `test`."""
    if then is None:
        return lambda r: test(get(r))
    return lambda r: test(then(get(r)))


def compile_filter(spec: Any) -> Predicate:
    """Compile a filter document (already decoded from JSON) into a predicate over runs."""
    if spec is None or spec == {}:
        return lambda r: True
    if not isinstance(spec, dict):
        raise FilterError(f"filters must be a JSON object, got {spec!r}")
    preds: list[Predicate] = []
    for key, cond in spec.items():
        if key in ("$and", "$or", "$nor"):
            if not isinstance(cond, list):
                raise FilterError(f"{key} needs a list of filters")
            subs = [compile_filter(c) for c in cond]
            if key == "$and":
                preds.append(_all_of(subs))
            elif key == "$or":
                preds.append(_any_of(subs))
            else:
                preds.append(_none_of(subs))
        elif key.startswith("$"):
            raise FilterError(f"unsupported filter operator {key!r}")
        else:
            get = field_getter(key)
            test = _value_test(cond, key in _TIME_FIELDS)
            if key in _TIME_FIELDS:
                preds.append(_tested(get, test, _run_time))
            else:
                preds.append(_tested(get, test))
    if len(preds) == 1:
        return preds[0]
    return lambda r: all(p(r) for p in preds)


def name_candidates(spec: Any) -> list[str] | None:
    """Return the run names a filter is limited to by a top-level `name`/`$in` (fast path), else None."""
    if not isinstance(spec, dict):
        return None
    conds = [spec.get("name")] + [c.get("name") for c in spec.get("$and", []) if isinstance(c, dict)]
    for cond in conds:
        if isinstance(cond, str):
            return [cond]
        if isinstance(cond, dict) and isinstance(cond.get("$in"), list):
            if all(isinstance(x, str) for x in cond["$in"]):
                return list(dict.fromkeys(cond["$in"]))
        if isinstance(cond, dict) and isinstance(cond.get("$eq"), str):
            return [cond["$eq"]]
    return None


# -- ordering -------------------------------------------------------------------------------------
def sort_key(value: Any) -> tuple:
    """Map any JSON value to a totally ordered, JSON-encodable key (missing/null < bool < num < str)."""
    kind = _kind(value)
    if kind == 0:
        return (0, 0)
    if kind == 4:
        import json

        return (4, json.dumps(value, sort_keys=True))
    if kind == 2 and value != value:  # NaN sorts after every number
        return (2, float("inf"), 1)
    return (kind, value) if kind != 2 else (kind, value, 0)


def parse_order(order: str | None) -> tuple[Callable[[RunRec], tuple], bool]:
    """Return (key function, descending) for an order like "-created_at" or "+config.lr.value"."""
    order = (order or "+created_at").strip() or "+created_at"
    desc = order.startswith("-")
    field = order.lstrip("+-")
    if field in ("created_at", "createdAt", "heartbeat_at", "heartbeatAt", "updatedAt"):
        getter = field_getter(field)
        return (lambda r: (3, _run_time(getter(r)))), desc
    getter = field_getter(field)
    return (lambda r: sort_key(getter(r))), desc


# -- what the real service refuses (strict mode) --------------------------------------------------
def service_refusal(spec: Any) -> str | None:
    """Say why the real W&B service would answer this filter with HTTP 500, or None.

    `{"tags": {"$all": [...]}}` (wandb/wandb#5967) and a bare list on `tags` (#4068) are known; a `$regex`
    that RE2 cannot compile (look-around, back-references, possessive or atomic groups, conditionals,
    `\\Z`, verbose/ASCII flags) is inferred to be the same. The sandbox answers them HTTP 500 too unless
    started with strict_filters=False (`runsync sandbox serve --lenient-filters`).
    """
    if isinstance(spec, list):
        for sub in spec:
            found = service_refusal(sub)
            if found:
                return found
        return None
    if not isinstance(spec, dict):
        return None
    for key, cond in spec.items():
        if key in ("$and", "$or", "$nor", "$not"):
            found = service_refusal(cond)
        elif key == "tags" and isinstance(cond, list):
            found = "a bare list on tags"
        elif key == "tags" and isinstance(cond, dict) and "$all" in cond:
            found = "$all on tags"
        elif isinstance(cond, dict):
            found = None
            if isinstance(cond.get("$regex"), str):
                found = _not_re2(cond["$regex"])
            if found is None and "$not" in cond:
                found = service_refusal({key: cond["$not"]})
        else:
            found = None
        if found:
            return found
    return None


def _not_re2(pattern: str) -> str | None:
    """Python's own parse of the pattern, searched for what RE2 lacks (None: RE2-compatible, or unparsable)."""
    try:
        from re import _constants as c  # type: ignore[attr-defined]
        from re import _parser as sre  # type: ignore[attr-defined]
    except ImportError:  # Python < 3.11: no possessive or atomic groups to find either
        import sre_constants as c
        import sre_parse as sre
    import warnings

    try:
        with warnings.catch_warnings():  # "possible nested set" and the like: not our business here
            warnings.simplefilter("ignore")
            parsed = sre.parse(pattern)
    except Exception:
        return None  # not a regex at all: compile_filter reports it as a GraphQL error
    names = {
        "ASSERT": "look-around", "ASSERT_NOT": "negative look-around", "GROUPREF": "a back-reference",
        "GROUPREF_EXISTS": "a conditional group", "ATOMIC_GROUP": "an atomic group",
        "POSSESSIVE_REPEAT": "a possessive quantifier",
    }
    bad_ops = {getattr(c, name): what for name, what in names.items() if hasattr(c, name)}
    end_string = getattr(c, "AT_END_STRING", None)

    def walk(node: Any) -> str | None:
        if isinstance(node, (list, tuple)) or type(node).__name__ == "SubPattern":
            items = list(node)
            is_op = len(items) == 2 and type(items[0]).__name__ == "_NamedIntConstant"  # an (opcode, argument) pair
            if is_op and items[0] in bad_ops:
                return bad_ops[items[0]]
            if is_op and items[0] is getattr(c, "AT", None) and items[1] is end_string:
                return "\\Z"
            if is_op and items[0] is getattr(c, "SUBPATTERN", None) and isinstance(items[1], tuple):
                _group, add_flags, _del, _sub = items[1]
                if add_flags & (re.VERBOSE | re.ASCII | re.LOCALE):
                    return "an inline flag RE2 lacks"
            for item in items:
                found = walk(item)
                if found:
                    return found
        return None

    if parsed.state.flags & (re.VERBOSE | re.ASCII | re.LOCALE):
        return "an inline flag RE2 lacks"
    return walk(list(parsed))
