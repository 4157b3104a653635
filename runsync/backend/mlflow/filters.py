"""runsync's run selection (a Mongo-style filter dict, an order) as MLflow's `search_runs` takes it: a filter
string (`params.lr = '0.1' and tags.team = 'a'`) and an `order_by` list.

MLflow's filter grammar has `and` but no `or`, `IN` only on `attributes.run_id`, no regular expressions: a filter
that needs those is refused here with a ConfigError naming it, not sent. A filter given as a string is MLflow's
own language, passed through as is (the server says what it does not like).
"""
from __future__ import annotations

import json
from typing import Any

from runsync.errors import ConfigError

# runsync's (W&B-shaped) field names -> MLflow's entity and key; anything else must say its entity
# (`params.X`, `tags.X`, `metrics.X`, `attributes.X`).
_ATTRIBUTES = {"id": "run_id", "run_id": "run_id", "name": "run_name", "display_name": "run_name",
               "displayName": "run_name", "run_name": "run_name", "state": "status", "status": "status",
               "created_at": "start_time", "createdAt": "start_time", "start_time": "start_time",
               "end_time": "end_time", "user_id": "user_id", "artifact_uri": "artifact_uri"}
_ENTITIES = {"config": "params", "params": "params", "param": "params", "tags": "tags", "tag": "tags",
             "summary": "metrics", "summary_metrics": "metrics", "metrics": "metrics", "metric": "metrics",
             "attributes": "attributes", "attribute": "attributes"}
_NUMERIC_ATTRIBUTES = frozenset({"start_time", "end_time"})
_COMPARE = {"$eq": "=", "$ne": "!=", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_ORDERED = frozenset({">", ">=", "<", "<="})
_HINT = ("MLflow filters take $eq $ne $gt $gte $lt $lte (metrics and times), $in (run ids; one value elsewhere), "
         "$exists (params, tags), $and; or give MLflow's own filter string")


def filter_string(filters: dict[str, Any] | str | None) -> str:
    """`filters` in MLflow's filter language ("" for none); a string is already that language."""
    if filters is None:
        return ""
    if isinstance(filters, str):
        return filters.strip()
    if not isinstance(filters, dict):
        raise ConfigError(f"filters must be a JSON object or an MLflow filter string, got {_short(filters)}",
                          hint=_HINT)
    return " and ".join(_document(filters))


def pair_value(key: str, raw: str) -> Any:
    """What `--filter KEY=VALUE` compares KEY with: text, except a number for a metric or a time."""
    entity, name = _field(key)
    if entity == "metrics" or (entity == "attributes" and name in _NUMERIC_ATTRIBUTES):
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw
    return raw


def order_by(order: str | None) -> list[str]:
    """runsync's `+created_at` / `-config.lr` as MLflow's `order_by` (oldest first by default), with the run id
    last so that pages of equal keys keep one order."""
    if not order:
        return ["attributes.start_time ASC", "attributes.run_id ASC"]
    text = order.strip()
    if " " in text:  # already MLflow's form: "metrics.loss DESC"
        return [text]
    descending = text.startswith("-")
    entity, name = _field(text.lstrip("+-"))
    return [f"{entity}.{_key(name)} {'DESC' if descending else 'ASC'}", "attributes.run_id ASC"]


def _document(doc: dict[str, Any]) -> list[str]:
    clauses: list[str] = []
    for key, condition in doc.items():
        if key == "$and":
            if not isinstance(condition, list) or not all(isinstance(part, (dict, str)) for part in condition):
                raise ConfigError(f"$and takes a list of filters, got {_short(condition)}", hint=_HINT)
            for part in condition:  # a string among them: MLflow's own filter (`--filters` with `--filter`)
                clauses.extend([part.strip()] if isinstance(part, str) else _document(part))
        elif key in ("$or", "$nor"):
            raise ConfigError(f"MLflow's run filter has no {key}: its search joins conditions with `and` only",
                              hint=_HINT)
        elif key.startswith("$"):
            raise ConfigError(f"unknown filter operator {key}", hint=_HINT)
        else:
            clauses.extend(_condition(key, condition))
    return clauses


def _condition(key: str, condition: Any) -> list[str]:
    entity, name = _field(key)
    if not (isinstance(condition, dict) and any(k.startswith("$") for k in condition)):
        return [_compare(entity, name, "=", condition)]
    clauses = []
    for op, value in condition.items():
        if op in _COMPARE:
            clauses.append(_compare(entity, name, _COMPARE[op], value))
        elif op in ("$in", "$nin"):
            clauses.append(_in(entity, name, op, value))
        elif op == "$exists":
            if entity not in ("params", "tags"):
                raise ConfigError(f"{key}: MLflow's $exists (IS NULL) works on params and tags only", hint=_HINT)
            clauses.append(f"{entity}.{_key(name)} {'IS NOT NULL' if value else 'IS NULL'}")
        elif op == "$regex":
            raise ConfigError(f"{key}: MLflow's run filter has no regular expressions",
                              hint="use an MLflow filter string with LIKE, e.g. \"params.x LIKE 'abc%'\"")
        else:
            raise ConfigError(f"{key}: MLflow's run filter has no {op}", hint=_HINT)
    return clauses


def _in(entity: str, name: str, op: str, values: Any) -> str:
    if not isinstance(values, list) or not values:
        raise ConfigError(f"{entity}.{name}: {op} takes a non-empty list, got {_short(values)}", hint=_HINT)
    if entity == "attributes" and name == "run_id":  # the one key MLflow compares with a list
        listed = ", ".join(_literal(str(v)) for v in values)
        return f"attributes.run_id {'IN' if op == '$in' else 'NOT IN'} ({listed})"
    if len(values) == 1:
        return _compare(entity, name, "=" if op == "$in" else "!=", values[0])
    raise ConfigError(f"{entity}.{name}: MLflow's run filter has no `or`, so {op} with {len(values)} values "
                      "cannot be sent (it takes lists on attributes.run_id only)", hint=_HINT)


def _compare(entity: str, name: str, op: str, value: Any) -> str:
    numeric = entity == "metrics" or (entity == "attributes" and name in _NUMERIC_ATTRIBUTES)
    where = f"{entity}.{_key(name)}"
    if numeric and entity == "attributes" and isinstance(value, str):
        value = _epoch_ms(where, value)  # a time as W&B filters take it: MLflow's are milliseconds
    if numeric:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: MLflow compares it with a number, got {_short(value)}", hint=_HINT)
        return f"{where} {op} {value!r}"
    if op in _ORDERED:
        raise ConfigError(f"{where}: MLflow compares {entity} as text, with = and != only (not {op})", hint=_HINT)
    if value is None or isinstance(value, (dict, list)):
        raise ConfigError(f"{where}: MLflow holds {entity} as text; {_short(value)} is not one", hint=_HINT)
    if isinstance(value, bool):
        text = str(value)  # as mlflow.log_param(True) stores it
    elif entity == "attributes" and name == "status":
        text = str(value).upper()  # runsync's "finished" is MLflow's FINISHED
    else:
        text = str(value)
    return f"{where} {op} {_literal(text)}"


def _epoch_ms(where: str, text: str) -> int:
    """An ISO 8601 date or time (`2026-01-31`, `2026-01-31T12:00:00Z`; no zone: UTC) as MLflow's milliseconds."""
    from datetime import datetime, timezone

    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{where}: {_short(text)} is not a time", hint="give an ISO 8601 date or time, e.g. "
                          "2026-01-31 or 2026-01-31T12:00:00Z (UTC unless it says its zone), or milliseconds "
                          "since 1970") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return int(round(when.timestamp() * 1000))


def _field(key: str) -> tuple[str, str]:
    """(MLflow entity, key) of a filter or order key: `config.lr` -> ("params", "lr"), `name` -> attributes."""
    if key in _ATTRIBUTES:
        return "attributes", _ATTRIBUTES[key]
    head, dot, rest = key.partition(".")
    if dot and rest and head in _ENTITIES:
        entity = _ENTITIES[head]
        return entity, (_ATTRIBUTES.get(rest, rest) if entity == "attributes" else rest)
    raise ConfigError(f"MLflow has no run field {key!r}",
                      hint="name params.KEY, tags.KEY, metrics.KEY, or an attribute: id, name, state, created_at")


def _key(name: str) -> str:
    """A key as MLflow's filter reads it: in backticks (dots, spaces, any character but a backtick)."""
    if "`" in name:
        raise ConfigError(f"MLflow's filter cannot name the key {name!r}: it holds a backtick")
    return f"`{name}`"


def _literal(text: str) -> str:
    """A quoted string: MLflow strips the quotes and unescapes nothing, so pick a quote the text lacks."""
    if "'" not in text:
        return f"'{text}'"
    if '"' not in text:
        return f'"{text}"'
    raise ConfigError(f"MLflow's filter cannot compare with {text!r}: it holds both kinds of quote")


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:77] + "..."
