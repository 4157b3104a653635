"""The upsertBucket fields for a run's changes: only what changed, config keys merged into W&B's wrapped config."""
from __future__ import annotations

import copy
from typing import Any

from runsync.fields import codec, kind_of
from runsync.fields.kinds import WRITE_CONFIG, WRITE_PARAMS, WRITE_SUMMARY, WRITE_TAG_VALUES, WRITE_TAGS
from runsync.model import ABSENT, Change, RunRecord


def would_replace(record: RunRecord, change: Change) -> bool:
    if kind_of(change.field).write_to != WRITE_CONFIG or change.sheet is ABSENT:
        return False
    held = codec.get_path(record.config, change.path)
    return codec.blocking_ancestor(record.config, change.path) is not None or (isinstance(held, dict) and bool(held))


def write_fields(record: RunRecord, changes: list[Change], *, whole_config: bool = False) -> dict[str, Any]:
    """The upsertBucket inputs for these changes: only what changed.

    Config: only the changed top-level keys, each with its whole value as `record` holds it (wrapped, its
    description kept) and the edit applied; W&B merges them into the stored config, so keys someone else
    set since `record` was read are left alone. `whole_config`: all of `record`'s config with the edits
    (for a server that replaces the config; `record` must then be read just before the write).
    """
    fields: dict[str, Any] = {}
    config: dict[str, Any] | None = None
    for change in changes:
        value = None if change.sheet is ABSENT else change.sheet
        kind = kind_of(change.field)
        target = kind.write_to  # the registry says where the edit goes; the inputs' shape is here
        if target == WRITE_SUMMARY:
            # The whole summary, as read just before the write, with only this metric changed (a nested one
            # in place: `summary.a.b` never becomes a flat key "a.b").
            fields["summary"] = codec.set_path(fields.get("summary", record.raw_summary), change.path, value)
        elif target == WRITE_CONFIG:
            if config is None:
                config = copy.deepcopy(record.raw_config) if whole_config else {}
            top = change.path[0]
            if top not in config and top in record.raw_config:
                config[top] = copy.deepcopy(record.raw_config[top])
            _set_config_value(config, change.path, value)
        elif target == WRITE_TAGS:
            fields["tags"] = list(value or ())
        elif target == WRITE_TAG_VALUES:  # keyed tags: only the keys that change; None deletes the key
            fields.setdefault("tag_values", {})[kind.key(change.field)] = value
        elif target == WRITE_PARAMS:  # flat params, added key by key (the tracker refuses a changed one)
            fields.setdefault("raw_config", {})[kind.key(change.field)] = value
        else:
            # W&B reads a null input as "leave as is"; an emptied cell must be sent as "".
            fields[kind.attribute or change.field] = "" if value is None else value
    if config is not None:
        fields["raw_config"] = config
    return fields


def config_after(record: RunRecord, fields: dict[str, Any]) -> dict[str, Any]:
    """The run's whole config (wrapped, as W&B stores it) once the write of `fields` lands: the top-level keys
    sent replace `record`'s (they carry their whole value), the others stay as they are (not copied)."""
    return {**record.raw_config, **fields.get("raw_config", {})}


def _set_config_value(raw_config: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    """Set a key inside W&B's wrapped config, keeping the key's description."""
    top, rest = path[0], path[1:]
    entry = raw_config.get(top)
    if isinstance(entry, dict) and "value" in entry:
        wrapped = dict(entry)
    else:
        wrapped = {"value": entry if top in raw_config else None, "desc": None}
    if rest:
        inner = wrapped["value"] if isinstance(wrapped["value"], dict) else {}
        wrapped["value"] = codec.set_path(inner, rest, value)
    else:
        wrapped["value"] = value
    raw_config[top] = wrapped
