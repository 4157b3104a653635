"""The codec's names for a value's type (`int`, `list`, ...) and the families a column's values share."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# Kinds of value that a cell of another kind in the same column most likely mistypes (`Yes` among bools).
TYPE_FAMILY = {"bool": "bool", "int": "number", "float": "number", "str": "text", "list": "JSON list",
               "dict": "JSON dict"}


def type_family(values: Iterable[Any]) -> str | None:
    """The one family every non-null value shares ("number", "bool", ...), or None when they differ or none."""
    return family_of(map(type_name, values))


def family_of(kinds: Iterable[str | None]) -> str | None:
    """type_family, given the values' `type_name`s."""
    families = {TYPE_FAMILY[k] for k in kinds if k is not None}
    return families.pop() if len(families) == 1 else None


_TYPE_NAMES = {bool: "bool", int: "int", float: "float", str: "str", list: "list", tuple: "list", dict: "dict"}


def type_name(value: Any) -> str | None:
    """The codec's name for a value's type, as used for `column_type`."""
    kind = _TYPE_NAMES.get(type(value))  # the exact built-in types, most values: what the loop below says
    if kind is not None:
        return kind
    for kind, types in (("bool", bool), ("int", int), ("float", float), ("str", str),
                        ("list", (list, tuple)), ("dict", dict)):
        if isinstance(value, types):
            return kind
    return None
