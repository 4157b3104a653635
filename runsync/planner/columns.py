"""What the planner learns of a sheet's columns before it reads a cell: each config or summary column's path and
type, the tag each `tag:NAME` column ticks, and the warnings about headers (damaged, renamed, not exported). Pure."""
from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping
from typing import Any

from runsync.fields import ConfigKey, TagTick, codec, kind_of, tag_column
from runsync.model import ABSENT, RunRecord, SheetData, SheetMeta
from runsync.planner import damage
from runsync.sheets.twin_headers import exported_tag, twin_headers


def config_paths(columns: list[str], meta: SheetMeta | None) -> dict[str, tuple[str, ...]]:
    """Config column -> its key path."""
    known = dict(meta.config_paths) if meta else {}
    paths: dict[str, tuple[str, ...]] = {}
    for column in columns:
        if not isinstance(kind_of(column), ConfigKey):
            continue
        # An exported column keeps the path recorded at export; any other is read by the spelling rule.
        paths[column] = tuple(known[column]) if column in known else codec.config_path(column)
    return paths


def column_types(sheet: SheetData, source: str, paths: Mapping[str, tuple[str, ...]], added: Collection[str],
                 live: Mapping[str, RunRecord]) -> tuple[dict[str, str | None], dict[str, str]]:
    """Each column's type (the most common of its reference values') and, where all its values share one, their
    family (codec.family_of)."""
    types: dict[str, str | None] = {}
    families: dict[str, str] = {}
    for column, path in paths.items():
        kinds = [codec.type_name(v) for v in _reference_values(sheet.meta, column, path, added, live)
                 if v is not ABSENT and v is not None]
        types[column] = _dominant_type(kinds) or _numbers_in_sheet(sheet, source, column)
        if family := codec.family_of(kinds):
            families[column] = family
    return types, families


def _dominant_type(kinds: list[str | None]) -> str | None:
    """The most common of the `codec.type_name`s of a column's non-null values."""
    counted = Counter(kinds)
    return counted.most_common(1)[0][0] if counted else None


def _numbers_in_sheet(sheet: SheetData, source: str, column: str) -> str | None:
    """"number" for an XLSX column with no exported type whose value cells are all numbers: a text cell
    there holding a number's exact text (a copy of a float runsync wrote as text) is that number."""
    if source != "xlsx":
        return None  # a CSV cell is text anyway: inference reads numbers
    kinds = [codec.type_name(cells.get(column)) for _, cells in sheet.rows
             if not isinstance(cells.get(column), (str, type(None)))]
    return "number" if kinds and codec.family_of(kinds) == "number" else None


def _reference_values(meta: SheetMeta | None, column: str, path: tuple[str, ...], added: Collection[str],
                      live: Mapping[str, RunRecord]) -> list[Any]:
    """The column's values as exported (or, with no base or not exported, as W&B holds them)."""
    if meta and meta.base and column not in added:
        return [base.get(column, ABSENT) for base in meta.base.values()]
    kind = kind_of(column)
    return [kind.live(r, column, path) for r in live.values()]


def tag_names(columns: list[str], meta: SheetMeta | None) -> dict[str, str]:
    """`tag:NAME` column -> the tag; a header that lost a tag's edge spaces still names the exported tag."""
    exported = list(meta.tag_columns) if meta else []
    names = {}
    for column in columns:
        kind = kind_of(column)
        if not isinstance(kind, TagTick):
            continue
        tag = kind.tag(column)
        names[column] = exported_tag(tag, exported) or tag
    return names


def damaged_headers(path: str, columns: list[str], meta: SheetMeta | None) -> tuple[set[str], list[str]]:
    """Headers a legacy encoding mangled (`tag:?` for `tag:🔥`): read as new, they'd add a tag or key; and the
    warnings naming them."""
    if meta is None:
        return set(), []
    exported = set(meta.config_paths) | {tag_column(t) for t in meta.tag_columns}
    missing = exported - set(columns)
    damaged = set()
    warnings = []
    for column in columns:
        for original in missing if column not in exported else ():
            if why := damage.lost_characters(original, column):
                warnings.append(f"{path}: column {column!r} is {original!r} damaged ({why}): ignored")
                damaged.add(column)
                break
    return damaged, warnings


def renamed_headers(path: str, columns: list[str], meta: SheetMeta | None) -> list[str]:
    """Warn about a column the export did not write whose name differs from an exported one only in case,
    spaces or invisible characters (planned with --new-keys only: api refuses it before reading W&B)."""
    if meta is None:
        return []
    warnings = []
    for column, twin in twin_headers(columns, meta.config_paths, meta.tag_columns):
        gone = "" if twin in columns else f"; {twin!r} is no longer in the sheet"
        what = "keys are case-sensitive, so its values go to a new key" if isinstance(kind_of(column), ConfigKey) \
            else "tags are exact, so its ticks go to a new tag"
        warnings.append(f"{path}: column {column!r} is not the exported {twin!r}{gone}: W&B "
                        f"{what} (rename the header back to edit {twin!r})")
    return warnings


def not_exported(path: str, added: Collection[str], paths: Mapping[str, tuple[str, ...]],
                 live: Mapping[str, RunRecord]) -> list[str]:
    """Warn about an added column for a key W&B holds: planned against W&B now, not against the export."""
    warnings = []
    for column in sorted(added):
        held = sum(codec.get_path(r.config, paths[column]) is not ABSENT for r in live.values())
        if held:
            warnings.append(
                f"{path}: column {column!r} was not exported: planned against W&B now (it holds "
                f"the key in {held} of the sheet's runs; an empty cell keeps W&B's value)")
    return warnings
