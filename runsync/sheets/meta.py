"""SheetMeta <-> JSON, for the hidden `_runsync` sheet and the CSV sidecar; with a format-version check."""
from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator, Mapping
from typing import Any

from runsync.errors import CellError, SheetError
from runsync.model import SHEET_FORMAT_VERSION, CompactRow, SheetMeta
from runsync.sheets.common import BaseRows

FORMAT_MARKER = "runsync-format"


# Plain JSON cannot hold NaN/inf exactly, so they are tagged: {"$f": "nan"}. A dict with a `$` key of
# its own is wrapped as {"$d": {...}} so a config can never be mistaken for a tag.
def encode_value(value: Any) -> Any:
    """A typed value as strict JSON (no NaN), reversible with decode_value."""
    if isinstance(value, float) and not math.isfinite(value):
        return {"$f": repr(value)}
    if isinstance(value, (list, tuple)):
        return [encode_value(v) for v in value]
    if isinstance(value, (dict, CompactRow)):  # a base read from a sheet is a CompactRow
        body = {str(k): encode_value(v) for k, v in value.items()}
        return {"$d": body} if any(str(k).startswith("$") for k in value) else body
    return value


def decode_value(value: Any) -> Any:
    """Inverse of encode_value."""
    if isinstance(value, list):
        return [decode_value(v) for v in value]
    if isinstance(value, dict):
        if len(value) == 1 and "$f" in value:
            return float(value["$f"])
        if len(value) == 1 and "$d" in value:
            return {k: decode_value(v) for k, v in value["$d"].items()}
        return {k: decode_value(v) for k, v in value.items()}
    return value


def dumps(value: Any) -> str:
    """`value` as compact ASCII JSON, tagged as encode_value does (a chunk of N characters is N UTF-16 units)."""
    try:  # values from W&B's JSON (text keys) seldom need a tag: skip the copy encode_value makes
        text = json.dumps(value, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    except (ValueError, TypeError):  # NaN or infinity; a key that is not text
        text = None
    if text is None or '"$' in text:  # a key starting with `$` (or text that looks like one): tag exactly
        text = json.dumps(encode_value(value), ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    return text


def loads(text: str) -> Any:
    return decode_value(json.loads(text))


def meta_header(meta: SheetMeta) -> dict[str, Any]:
    """Everything in `meta` except the base snapshot."""
    return {
        "format_version": meta.format_version,
        "project": meta.project,
        "selection": meta.selection,
        "exported_at": meta.exported_at,
        "runsync_version": meta.runsync_version,
        "config_paths": meta.config_paths,
        "tag_columns": meta.tag_columns,
        "editable_summary": meta.editable_summary,
    }


def meta_json_text(meta: SheetMeta, base: BaseRows | None = None) -> Iterator[str]:
    """The CSV's sidecar: the whole of `meta` as JSON (`indent=1`, values tagged where needed: encode_value) under
    the header's keys and "base", in pieces, the base one run at a time: from `base` (default
    `meta.base.items()`), which is gone through once."""
    options: dict[str, Any] = {"ensure_ascii": False, "allow_nan": False, "indent": 1}
    head = json.dumps({**encode_value(meta_header(meta)), "base": {}}, **options)
    runs = iter(meta.base.items() if base is None else base)
    first = next(runs, None)
    if first is None:
        yield head
        return
    empty = "{}\n}"  # the end of `head`: the empty base, the end of the object
    yield head[: -len(empty)] + "{"
    for n, (rid, values) in enumerate(itertools.chain([first], runs)):
        # A run's entry sits two levels deep: its lines get two more spaces (a newline inside text is `\n`).
        entry = json.dumps(encode_value(values), **options).replace("\n", "\n  ")
        yield f"{',' if n else ''}\n  {json.dumps(str(rid), ensure_ascii=False)}: {entry}"
    yield "\n }\n}"


def meta_from_json(data: Any, *, source: str, base: Mapping[str, Mapping[str, Any]] | None = None) -> SheetMeta:
    """Rebuild SheetMeta; `base` overrides data["base"] (the XLSX keeps it in separate rows)."""
    def fail(message: str) -> SheetError:
        return SheetError([CellError(source, None, None, None, message)])

    if not isinstance(data, dict):
        raise fail("runsync metadata is not a JSON object")
    version = data.get("format_version")
    if not isinstance(version, int):
        raise fail("runsync metadata has no format_version")
    if version > SHEET_FORMAT_VERSION:
        raise fail(f"made by a newer runsync (sheet format {version}, this runsync reads up to "
                   f"{SHEET_FORMAT_VERSION}): upgrade runsync")
    try:
        if base is None:
            base = {rid: decode_value(b) for rid, b in data.get("base", {}).items()}
        return SheetMeta(
            project=data["project"],
            selection=decode_value(data.get("selection", {})),
            exported_at=data["exported_at"],
            runsync_version=data.get("runsync_version", ""),
            format_version=version,
            config_paths={k: list(v) for k, v in decode_value(data.get("config_paths", {})).items()},
            base=base,
            tag_columns=list(data.get("tag_columns", [])),
            editable_summary=list(data.get("editable_summary", [])),
        )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise fail(f"runsync metadata is damaged ({type(exc).__name__}: {exc})") from None
