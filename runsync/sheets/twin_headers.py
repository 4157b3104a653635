"""Headers that differ from exported ones only by case, spaces or invisible characters (`config.lr ` or
`config.LR` for the exported `config.lr`, `tag:Debug` for `tag:debug`). W&B keys and tags are exact, so such a
header writes a new key (or tag), which W&B cannot delete: refused unless the user asks for new keys
(--new-keys). Pure: needs only the sheet's header and the export's metadata, so W&B is not read first."""
from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from runsync.errors import CellError
from runsync.fields import ConfigKey, TagTick, kind_of, tag_column
from runsync.model import SheetData


def _bare(text: str) -> str:
    """`text` without whitespace and invisible (format) characters: NBSP, zero-width space, BOM, soft hyphen."""
    return "".join(ch for ch in text if not ch.isspace() and unicodedata.category(ch) != "Cf")


def _loose(column: str) -> str:
    """A header as a person might retype it: case, spaces, invisible characters and width ignored (NFKC: a
    fullwidth `ｌ` or the script `ℓ` a Japanese IME or an autocorrect types is its plain letter)."""
    return unicodedata.normalize("NFKC", _bare(column)).casefold()


def exported_tag(tag: str, exported: list[str]) -> str | None:
    """The exported tag a `tag:` header names: itself, or the one tag it equals but for lost edge spaces."""
    if tag in exported:
        return tag
    alike = [t for t in exported if t.strip() == tag.strip()]
    return alike[0] if len(alike) == 1 else None


def twin_headers(columns: Iterable[str], config_columns: Iterable[str],
                 tag_columns: Iterable[str]) -> list[tuple[str, str]]:
    """(header, exported header) for each config or `tag:` header the export did not write that differs from
    one it did only by case, spaces or invisible characters: W&B keys and tags are exact, so it would write a
    new key (or tag), never the exported one. Pure; needs only the header and the export's metadata."""
    exported_config = [c for c in config_columns if isinstance(c, str)]
    exported_tags = [t for t in tag_columns if isinstance(t, str)]
    loose = {_loose(c): c for c in exported_config}
    loose.update({_loose(tag_column(t)): tag_column(t) for t in exported_tags})
    twins = []
    for column in columns:
        kind = kind_of(column)
        if isinstance(kind, ConfigKey):
            known = column in exported_config
        elif isinstance(kind, TagTick):
            known = exported_tag(kind.tag(column), exported_tags) is not None
        else:
            continue
        twin = None if known else loose.get(_loose(column))
        if twin is not None and twin != column:
            twins.append((column, twin))
    return twins


def twin_header_errors(sheet: SheetData) -> list[CellError]:
    """One error per twin header (`twin_headers`), naming both headers and the opt-in; none without a base."""
    if sheet.meta is None:
        return []
    errors = []
    for column, twin in twin_headers(sheet.columns, sheet.meta.config_paths, sheet.meta.tag_columns):
        what = "key" if isinstance(kind_of(column), ConfigKey) else "tag"
        errors.append(CellError(sheet.path, None, None, column,
                                f"differs from the exported {twin!r} only in {_how_they_differ(column, twin)}: W&B "
                                f"{what}s are exact, so it would create a new {what}; rename it back to edit "
                                f"{twin!r}, or pass --new-keys to create the new {what}"))
    return errors


def _how_they_differ(a: str, b: str) -> str:
    """What a person can't see between two twin headers: "case", "spaces", "U+00A0 (no-break space)"."""
    parts = []
    if _bare(a).casefold() != _bare(b).casefold():
        parts.append("look-alike characters (fullwidth or compatibility forms)")
    elif _bare(a) != _bare(b):
        parts.append("case")
    if a.count(" ") != b.count(" "):
        parts.append("spaces")
    odd = sorted({ch for ch in a + b if ch != " " and a.count(ch) != b.count(ch)
                  and (ch.isspace() or unicodedata.category(ch) == "Cf")})
    parts += [f"U+{ord(ch):04X} ({unicodedata.name(ch, 'unnamed').lower()})" for ch in odd]
    return ", ".join(parts) or "case, spaces or invisible characters"


__all__ = ["exported_tag", "twin_header_errors", "twin_headers"]
