"""Key paths: how a config (or summary) column names a key inside a run's nested config, and how values are
read and set at one. Pure, no I/O."""
from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from runsync.model import ABSENT

# --- config paths -------------------------------------------------------------------------------------
# A column names one key path: `config.` + the keys joined by `.`, where a `.` inside a key is written `\.`
# and a `\` inside a key `\\`. So {"a": {"b": 1}} is `config.a.b` and {"a.b": 1} is `config.a\.b`: both
# can live in one run (scripts that log flattened configs beside nested ones) and each keeps its column.

def config_column(path: Sequence[str]) -> str:
    """The column name for a config key path."""
    return "config." + ".".join(str(k).replace("\\", "\\\\").replace(".", "\\.") for k in path)


def config_path(column: str) -> tuple[str, ...]:
    """The key path a `config.` column names (inverse of config_column)."""
    return key_path(column[len("config."):] if column.startswith("config.") else column)


def summary_path(column: str) -> tuple[str, ...]:
    """The key path a `summary.` column names, spelled as config columns are: `summary.a.b` is the metric `b`
    nested in `a` (as W&B's `summary_metrics.a.b` filters spell it), `summary.a\\.b` the key "a.b" itself."""
    return key_path(column[len("summary."):])


def key_path(body: str) -> tuple[str, ...]:
    """Keys split at each `.` that is not escaped as `\\.` (a `\\\\` is one backslash)."""
    keys, buf, i = [], [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body) and body[i + 1] in ".\\":
            buf.append(body[i + 1])
            i += 2
            continue
        if ch == ".":
            keys.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
        i += 1
    keys.append("".join(buf))
    return tuple(keys)


def flatten_config(config: dict) -> dict[str, tuple[tuple[str, ...], Any]]:
    """Map each config column (see config_column) -> (path, leaf value); `_` top-level keys are W&B's own."""
    out: dict[str, tuple[tuple[str, ...], Any]] = {}

    def walk(node: dict, prefix: tuple[str, ...]) -> None:
        for key, value in node.items():
            path = prefix + (str(key),)
            if isinstance(value, dict) and value:
                walk(value, path)
            else:
                out[config_column(path)] = (path, value)

    walk({k: v for k, v in config.items() if not str(k).startswith("_")}, ())
    return dict(sorted(out.items()))


def get_path(config: dict, path: Sequence[str]) -> Any:
    """The value at `path`, or ABSENT."""
    node: Any = config
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return ABSENT
        node = node[key]
    return node


def cell_value_at(config: dict, path: Sequence[str]) -> Any:
    """What the column for `path` shows for this config: the leaf there, or ABSENT where there is none.

    A non-empty dict at `path` is not a leaf (its keys have columns of their own), so it shows as absent.
    """
    value = get_path(config, path)
    return ABSENT if isinstance(value, dict) and value else value


def blocking_ancestor(config: dict, path: Sequence[str]) -> tuple[tuple[str, ...], Any] | None:
    """The first key above `path` that holds something other than a dict (setting `path` would replace it)."""
    node: Any = config
    for i, key in enumerate(path[:-1]):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
        if not isinstance(node, dict):
            return tuple(path[: i + 1]), node
    return None


def set_path(config: dict, path: Sequence[str], value: Any) -> dict:
    """A copy of `config` with `path` set (ABSENT deletes it); the input is never mutated."""
    if not path:
        raise ValueError("empty config path")
    root = dict(config)
    node = root
    for key in path[:-1]:
        child = node.get(key)
        node[key] = dict(child) if isinstance(child, dict) else {}
        node = node[key]
    if value is ABSENT:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = copy.deepcopy(value)
    return root
