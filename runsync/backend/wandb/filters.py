"""Check a user's W&B run filter before it is sent, and rewrite the parts W&B cannot run.

W&B answers some filters with HTTP 500, which its client retries until its deadline, so a typo looks like
an outage for a minute (REAL_WANDB.md "Filters"). Refused here, at once, with the operator named:

- an operator W&B does not document (`$foo`, `$size`, `$not`, ...);
- a bare list on `tags` (`{"tags": ["a", "b"]}`, wandb/wandb#4068);
- a `$regex` that is not RE2 (look-around, back-references, possessive quantifiers, atomic groups,
  conditionals, Python-only escapes and flags): W&B matches with RE2.

Rewritten to an equivalent W&B can run: `{"F": {"$all": [a, b]}}` (HTTP 500 on `tags`, wandb/wandb#5967)
becomes `{"$and": [{"F": {"$in": [a]}}, {"F": {"$in": [b]}}]}`.

Field names are not checked: W&B accepts more than it documents (`name`, `sweep`, `created_at`, ...), and an
unknown field is answered at once with an error or no runs, not with a minute of retries.
"""
from __future__ import annotations

import json
from typing import Any

from runsync.errors import ConfigError

LOGICAL = ("$and", "$or", "$nor")
# Operators on a field that W&B documents, plus `$options` (the flags beside `$regex`).
FIELD_OPERATORS = frozenset(
    {"$in", "$nin", "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$exists", "$regex", "$options"}
)
_HINT = ("W&B documents $and $or $nor $in $nin $eq $ne $gt $gte $lt $lte $exists $regex (RE2); "
         "see README \"runsync export\"")


# Run fields W&B holds only as text (tags: a list of text). `--filter tags=2024` means the tag "2024": the
# JSON number 2024 would match no run, silently.
TEXT_FILTER_FIELDS = frozenset({"name", "id", "display_name", "displayName", "tags", "group", "job_type", "jobType",
                                "state", "notes", "description", "sweep"})


def pair_value(key: str, raw: str) -> Any:
    """What `--filter KEY=VALUE` compares KEY with: VALUE as JSON when it parses, else as text; on a text
    field a JSON number, boolean or null is the text typed (a JSON string or operator object is still read)."""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return raw
    if key in TEXT_FILTER_FIELDS and (value is None or isinstance(value, (bool, int, float))):
        return raw
    return value


def check_filters(filters: dict[str, Any] | None) -> dict[str, Any] | None:
    """Return `filters` as W&B can run them (`$all` rewritten), or raise ConfigError naming what is refused."""
    if filters is None:
        return None
    if not isinstance(filters, dict):
        raise ConfigError(f"filters must be a JSON object, got {_short(filters)}", hint=_HINT)
    return _document(filters, "filters")


def _document(doc: dict[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    extra: list[dict[str, Any]] = []  # `$all` rewritten into `$and` terms
    for key, cond in doc.items():
        if not isinstance(key, str):
            raise ConfigError(f"filter key {key!r} in {where} is not text")
        if key in LOGICAL:
            if not isinstance(cond, list) or not cond or not all(isinstance(c, dict) for c in cond):
                raise ConfigError(f"filter operator {key} needs a non-empty list of filters, got {_short(cond)}",
                                  hint=_HINT)
            out[key] = [_document(c, key) for c in cond]
        elif key.startswith("$"):
            raise ConfigError(f"filter operator {key} is not one W&B supports at the top of a filter", hint=_HINT)
        else:
            kept, terms = _field(key, cond)
            if kept is not _DROP:
                out[key] = kept
            extra.extend(terms)
    if extra:
        out = _and(out, extra)
    return out


_DROP: Any = object()


def _field(field: str, cond: Any) -> tuple[Any, list[dict[str, Any]]]:
    """Check one field's condition; return (what to keep under the field, `$and` terms to add)."""
    if isinstance(cond, list) and field == "tags":
        raise ConfigError(
            f"filter on tags: a bare list {_short(cond)} is refused by W&B (HTTP 500); write "
            '{"tags": {"$in": [...]}} for any of them or {"tags": {"$all": [...]}} for all of them')
    if not isinstance(cond, dict) or not any(isinstance(k, str) and k.startswith("$") for k in cond):
        return cond, []  # a literal: equality (on a list field, "contains")
    if not all(isinstance(k, str) and k.startswith("$") for k in cond):
        raise ConfigError(f"filter on {field}: cannot mix operators and plain keys in {_short(cond)}")
    kept: dict[str, Any] = {}
    terms: list[dict[str, Any]] = []
    for op, arg in cond.items():
        if op == "$all":
            if not isinstance(arg, list):
                raise ConfigError(f"filter on {field}: $all needs a list, got {_short(arg)}")
            # Every value present == one `$in` per value; `$all: []` matches nothing, as `$in: []` does.
            terms.extend([{field: {"$in": [value]}} for value in arg] or [{field: {"$in": []}}])
        elif op not in FIELD_OPERATORS:
            raise ConfigError(f"filter on {field}: operator {op} is not one W&B supports", hint=_HINT)
        elif op in ("$in", "$nin") and not isinstance(arg, list):
            raise ConfigError(f"filter on {field}: {op} needs a list, got {_short(arg)}")
        elif op == "$regex":
            if not isinstance(arg, str):
                raise ConfigError(f"filter on {field}: $regex needs text, got {_short(arg)}")
            problem = re2_problem(arg)
            if problem:
                raise ConfigError(f"filter on {field}: $regex {arg!r} is not RE2, which W&B uses: {problem}")
            kept[op] = arg
        elif op == "$options" and "$regex" not in cond:
            raise ConfigError(f"filter on {field}: $options without $regex")
        else:
            kept[op] = arg
    return (kept if kept else _DROP), terms


def _and(doc: dict[str, Any], terms: list[dict[str, Any]]) -> dict[str, Any]:
    """AND extra terms into a document, keeping its `$and` (if any) one flat list."""
    out = dict(doc)
    out["$and"] = list(out.get("$and", [])) + terms
    return out


# -- RE2 ------------------------------------------------------------------------------------------
_RE2_FLAGS = set("imsU")
_PY_ONLY_ESCAPES = {"Z": "\\Z (use \\z)", "u": "\\uXXXX (use \\x{XXXX})", "U": "\\UXXXXXXXX (use \\x{...})",
                    "N": "\\N{name}", "k": "the back-reference \\k<name>", "g": "\\g"}


def re2_problem(pattern: str) -> str | None:
    """Say why `pattern` is not RE2 syntax (what Python's `re` accepts and RE2 refuses), or None.

    A scan, not a full parser: it finds look-around, back-references, possessive quantifiers, atomic
    groups, conditionals, comments, Python-only escapes and inline flags, outside and inside classes.
    """
    i, n = 0, len(pattern)
    in_class = False
    after_quantifier: bool | str = False  # True after a quantifier, "lazy" after its `?`
    last_quantifier = ""
    while i < n:
        c = pattern[i]
        if c == "\\":
            problem, i = _escape_step(pattern, i, in_class)
            if problem:
                return problem
            after_quantifier = False
            continue
        if in_class:
            if c == "[" and pattern.startswith("[:", i):  # [[:alpha:]]
                end = pattern.find(":]", i + 2)
                i = i + 1 if end < 0 else end + 2
                continue
            if c == "]":
                in_class = False
            i += 1
            continue
        if c == "[":
            in_class, i, after_quantifier = True, _class_body_start(pattern, i), False
            continue
        if c in "*+?" or (c == "{" and _counted_repeat_end(pattern, i)):
            end = _counted_repeat_end(pattern, i) if c == "{" else i + 1
            if after_quantifier == "lazy":
                return f"quantifier {pattern[i:end]} after a lazy quantifier"
            if after_quantifier:
                if c == "?":  # `*?`, `+?`, `??`, `{n}?`: lazy, fine in RE2
                    after_quantifier = "lazy"
                    i += 1
                    continue
                if c == "+":
                    return f"possessive quantifier {last_quantifier}+"
                return f"repeated quantifier {last_quantifier}{pattern[i:end]}"
            last_quantifier = pattern[i:end]
            i = end
            after_quantifier = True
            continue
        after_quantifier = False
        if c == "(" and pattern.startswith("(?", i):
            problem, i = _group_step(pattern, i)
            if problem:
                return problem
            continue
        i += 1
    return None


def _escape_step(pattern: str, i: int, in_class: bool) -> tuple[str | None, int]:
    """The backslash at pattern[i]: why RE2 refuses it (or None), and the index after it."""
    n = len(pattern)
    if i + 1 >= n:
        return "it ends with a lone backslash", i
    e = pattern[i + 1]
    if e == "Q":  # \Q...\E: literal text in RE2
        end = pattern.find("\\E", i + 2)
        return None, n if end < 0 else end + 2
    if not in_class and e in "123456789" and not (i + 2 < n and pattern[i + 2] in "01234567"):
        return f"back-reference \\{e}", i
    if e in _PY_ONLY_ESCAPES:
        return f"escape {_PY_ONLY_ESCAPES[e]}", i
    return None, i + 2


def _class_body_start(pattern: str, i: int) -> int:
    """The index after the `[` at pattern[i], its `^` and a leading `]` (literal there)."""
    n = len(pattern)
    i += 1
    if i < n and pattern[i] == "^":
        i += 1
    if i < n and pattern[i] == "]":
        i += 1
    return i


def _group_step(pattern: str, i: int) -> tuple[str | None, int]:
    """The `(?` at pattern[i]: why RE2 refuses that group (or None), and the index to scan on from."""
    rest = pattern[i + 2:]
    if rest.startswith(("=", "!")):
        return f"look-ahead (?{rest[0]}", i
    if rest.startswith(("<=", "<!")):
        return f"look-behind (?{rest[:2]}", i
    if rest.startswith(">"):
        return "atomic group (?>", i
    if rest.startswith("("):
        return "conditional (?(", i
    if rest.startswith("#"):
        return "comment (?#", i
    if rest.startswith("P="):
        return "back-reference (?P=", i
    if rest.startswith(("P<", "<", ":")):
        return None, i + 2
    flags = ""
    for ch in rest:
        if ch in ":)":
            break
        flags += ch
    bad = [f for f in flags.replace("-", "") if f not in _RE2_FLAGS]
    if bad or not flags:
        return f"inline flag (?{flags})" + (" (RE2 knows only i m s U)" if bad else ""), i
    return None, i + 2 + len(flags)


def _counted_repeat_end(pattern: str, i: int) -> int:
    """If pattern[i:] starts a counted repeat `{n}`, `{n,}`, `{n,m}`, return the index after `}`, else 0."""
    end = pattern.find("}", i)
    if end < 0:
        return 0
    body = pattern[i + 1:end]
    lo, comma, hi = body.partition(",")
    if lo.isdigit() and (not comma or hi == "" or hi.isdigit()):
        return end + 1
    return 0


def _short(value: Any, limit: int = 80) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
