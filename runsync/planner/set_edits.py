"""`runsync set`: bulk edits without a sheet. Desired edits from options, classified against live runs -> Plan.

The plan is made from one read of the selected runs (base = W&B at that read), so it holds changes only;
apply re-reads each run and refuses a field that moved since the plan, as for an import.
"""
from __future__ import annotations

import json
import os
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runsync.errors import CellError, ConfigError
from runsync.fields import ConfigKey, Tags, TextField, codec, kind_of
from runsync.fields.classify import (
    classify,
    config_edit_refusal,
    leave_out_running,
    live_value,
    same,
)
from runsync.model import ABSENT, Change, Plan, RunRecord
from runsync.planner.sizes import config_size_errors

if TYPE_CHECKING:
    from runsync.backend import Backend

SOURCE_PREFIX = "set:"  # Plan.source of a set: "set: --filter ... --set group=x" (and its journal's begin line)
ERROR_FILE = "runsync set"  # what CellError.file says for a refused edit
FIELDS_HELP = "name, group, job_type, notes, tags or config.KEY; MLflow: name, description, tags.KEY, params.KEY"


@dataclass(frozen=True)
class Cell:
    """A value as typed on a command line: decoded like a cell typed into a sheet (README "runsync set")."""

    text: str


@dataclass(frozen=True)
class Edit:
    """One desired edit of one field, for every selected run."""

    column: str  # name | group | job_type | notes | tags | config.<key>
    path: tuple[str, ...] = ()  # config key path
    value: Any = ABSENT  # to set: a Cell, or a Python value taken as it is
    clear: bool = False
    add: tuple[str, ...] = ()  # tags only
    remove: tuple[str, ...] = ()  # tags only


def _field(column: str, option: str) -> tuple[str, tuple[str, ...]]:
    """(column, config path) for a FIELD, or ConfigError naming the option."""
    column = column.strip()
    kind = kind_of(column)
    if kind.name in ("text", "tags"):
        return column, ()
    if isinstance(kind, ConfigKey):
        path = kind.path(column)
        if any(key == "" for key in path):
            raise ConfigError(f"{option} {column}: a config key path has an empty key")
        if path[0].startswith("_"):
            raise ConfigError(f"{option} {column}: config keys starting with _ are W&B's own")
        return codec.config_column(path), path
    raise ConfigError(f"{option} {column}: not a field runsync can set (one of {FIELDS_HELP})")


def parse_edits(set: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None, *,
                add_tags: Iterable[str] = (), remove_tags: Iterable[str] = (),
                clear: Iterable[str] = ()) -> tuple[Edit, ...]:
    """The desired edits, checked: no W&B request is made, so a bad FIELD fails before any."""
    pairs = list(set.items() if isinstance(set, Mapping) else set or ())
    edits: dict[str, Edit] = {}

    def add(edit: Edit, option: str) -> None:
        if edit.column in edits:
            raise ConfigError(f"{option} {edit.column}: the field is edited twice; edit it once")
        edits[edit.column] = edit

    for field, value in pairs:
        column, path = _field(str(field), "--set")
        if isinstance(value, Cell) and value.text == "":
            raise ConfigError(f"--set {column}=: empty VALUE; --clear {column} clears it"
                              + (", '\"\"' is the empty string" if path else ""))
        if column == "name" and not (isinstance(text := value.text if isinstance(value, Cell) else value, str)
                                     and text.strip()):
            raise ConfigError("--set name: a run name must be non-empty text")
        if isinstance(kind_of(column), TextField) and not isinstance(value, (Cell, str, type(None))):
            raise ConfigError(f"--set {column}: takes text, not {type(value).__name__}")
        if column == "tags" and not isinstance(value, Cell):
            if isinstance(value, str) or not all(isinstance(t, str) for t in value or ()):
                raise ConfigError("--set tags: takes a list of tags (text)")
            value = tuple(dict.fromkeys(value or ()))
        add(Edit(column, path, value=value), "--set")
    for field in clear:
        column, path = _field(str(field), "--clear")
        if column == "name":
            raise ConfigError("--clear name: a run name cannot be cleared")
        add(Edit(column, path, clear=True), "--clear")
    added, removed = _tags(add_tags, "--add-tag"), _tags(remove_tags, "--remove-tag")
    if both := [t for t in added if t in removed]:
        raise ConfigError(f"--add-tag and --remove-tag both name {both[0]!r}")
    if added or removed:
        if "tags" in edits:
            raise ConfigError("tags: --set tags or --clear tags replaces them all; "
                              "don't combine it with --add-tag/--remove-tag")
        add(Edit("tags", add=added, remove=removed), "--add-tag")
    if not edits:
        raise ConfigError("nothing to set: pass --set FIELD=VALUE, --add-tag, --remove-tag or --clear FIELD")
    return tuple(edits.values())


def _tags(tags: Iterable[str], option: str) -> tuple[str, ...]:
    if isinstance(tags, str):
        tags = [tags]
    out = tuple(dict.fromkeys(tags))
    if any(not isinstance(t, str) or t == "" for t in out):
        raise ConfigError(f"{option}: a tag is non-empty text")
    return out


# -- the plan -------------------------------------------------------------------------------------------

def plan_edits(project: str, edits: Sequence[Edit], records: Sequence[RunRecord], *, source: str,
               include_running: bool = False, strict: bool = False, new_keys: bool = False,
               allow_text: bool = False) -> Plan:
    """Classify the desired edits against the runs as read (base = W&B at that read). Pure.

    `new_keys`: the user opted in to creating config keys the runs lack (recorded in the plan; apply checks).
    """
    errors: list[CellError] = []
    warnings: list[str] = []
    changes: list[Change] = []
    values = {}
    for edit in edits:
        value = _value(edit, records)
        if isinstance(value, codec.CellProblem):
            errors.append(CellError(ERROR_FILE, None, None, edit.column, value.message, _shown(edit.value)))
        values[edit.column] = value
        warnings.extend(_notes(edit, value, records))
        if (slip := _typing_slip(edit, value, records)) is not None:
            if strict or not allow_text:  # --strict refuses it, --allow-text or not
                quoted = shlex.quote(f"{edit.column}={json.dumps(value, ensure_ascii=False)}")
                errors.append(CellError(ERROR_FILE, None, None, edit.column,
                                        f"{slip}: refused{' (--strict)' if strict else ''}; quote it for text "
                                        f"(--set {quoted}) or pass --allow-text", _shown(edit.value)))
            else:
                warnings.append(slip + ": written as text (--allow-text)")
    for record in records if not errors else ():
        for edit in edits:
            live = live_value(record, edit.column, edit.path)
            desired = _desired(edit, values[edit.column], live, record)
            if same(edit.column, desired, live):
                continue
            if (refusal := kind_of(edit.column).edit_refusal(edit.column, live, live, desired)) is not None or (
                    edit.path and (refusal := config_edit_refusal(record.config, edit.column, edit.path, desired))):
                errors.append(CellError(ERROR_FILE, None, record.id, edit.column, refusal, _shown(edit.value)))
                continue
            change = classify(record.id, record, edit.column, edit.path, live, desired)
            if change is not None:
                changes.append(change)
    kept, conflicts, skipped, warning = leave_out_running(changes, (), {r.id: r for r in records}, include_running)
    errors.extend(config_size_errors(kept, {r.id: r for r in records}, file=ERROR_FILE))
    if warning:
        warnings.append(warning)
    if not records:
        warnings.append(f"no run of {project} matches the selection")
    return Plan(project=project, source=source, changes=() if errors else kept, conflicts=conflicts, infos=(),
                errors=tuple(errors), warnings=tuple(dict.fromkeys(warnings)), three_way=False,
                skipped=skipped, include_running=include_running, new_keys_allowed=new_keys)


def _value(edit: Edit, records: Sequence[RunRecord]) -> Any:
    """The one value a --set writes to every run (decoded once, so all runs get the same), or a CellProblem."""
    if edit.clear or edit.add or edit.remove:
        return None
    kind = kind_of(edit.column)
    if not isinstance(edit.value, Cell):
        return None if isinstance(kind, TextField) and edit.value == "" else edit.value
    text = edit.value.text
    if kind.name == "text":
        return text  # text fields (and MLflow's text tags and params) take VALUE literally, quotes and all
    if isinstance(kind, Tags):
        return kind.decode(text, column=edit.column, source="typed")
    if text[:1] == '"':
        try:
            quoted = json.loads(text)
        except ValueError:
            quoted = None
        if isinstance(quoted, str):
            return quoted  # '"007"': a string, whatever the key holds
    # As if typed into a sheet cell whose exported value is of the type every selected run's value shares
    # (10 into floats is 10.0, 007 into text stays "007"); with no such type, as typed into an empty cell.
    held = [v for r in records if (v := codec.cell_value_at(r.config, edit.path)) is not ABSENT and v is not None]
    kinds = {codec.type_name(v) for v in held}
    hint = held[0] if len(kinds) == 1 else ABSENT
    return kind.decode(text, column=edit.column, base=hint, source="typed")


def _desired(edit: Edit, value: Any, live: Any, record: RunRecord) -> Any:
    if edit.add or edit.remove:
        tags = [t for t in (live or ()) if t not in edit.remove]
        return tuple(tags + [t for t in edit.add if t not in tags])
    if edit.clear:
        if edit.column == "tags":
            return ()
        if kind_of(edit.column).keyed and not edit.path:  # an MLflow tag: deleted (a param: refused as an edit)
            return kind_of(edit.column).sheet_value(None, live)
        # A key a run doesn't have is not added as null; one holding keys of its own is refused (not absent).
        return ABSENT if edit.path and codec.get_path(record.config, edit.path) is ABSENT else None
    if edit.column == "tags":
        return tuple(value)
    return value


def _typing_slip(edit: Edit, value: Any, records: Sequence[RunRecord]) -> str | None:
    """Text for a key whose selected values all share another kind (`Yes` among booleans), as import warns."""
    if not (isinstance(edit.value, Cell) and edit.path and isinstance(value, str)) or edit.value.text[:1] == '"':
        return None  # a quoted VALUE is text on purpose
    family = codec.type_family(codec.cell_value_at(r.config, edit.path) for r in records)
    if family is None or family == "text":
        return None
    return f"--set {edit.column}: {value!r} is text where the selected runs hold {family} values"


def _notes(edit: Edit, value: Any, records: Sequence[RunRecord]) -> list[str]:
    """Warnings about edits that most likely don't do what was meant."""
    notes = []
    if edit.column == "name" and len(records) > 1:
        notes.append(f"--set name: {len(records)} runs will share the name {value!r}")
    if edit.column in ("name", "group", "job_type") and isinstance(value, str) and value != value.strip():
        notes.append(f"--set {edit.column}: {value!r} has leading or trailing spaces: written as is")
    for tag in edit.remove:
        if records and not any(tag in r.tags for r in records):
            notes.append(f"--remove-tag {tag}: no selected run has this tag")
    if edit.clear and edit.path and records and all(codec.get_path(r.config, edit.path) is ABSENT for r in records):
        notes.append(f"--clear {edit.column}: no selected run has this config key")
    return notes


def _shown(value: Any) -> Any:
    return value.text if isinstance(value, Cell) else (None if value is ABSENT else value)


def describe(edits: Sequence[Edit], *, filters: dict[str, Any] | str | None = None, order: str | None = None,
             limit: int | None = None) -> str:
    """Plan.source of a set: the command-line options that make it, e.g. "set: --set group=x"."""
    words: list[str] = []
    if filters:
        words += ["--filters", filters if isinstance(filters, str)
                  else json.dumps(filters, ensure_ascii=False, sort_keys=True)]
    if order:
        words += ["--order", order]
    if limit is not None:
        words += ["--limit", str(limit)]
    for edit in edits:
        if edit.clear:
            words += ["--clear", edit.column]
        elif edit.add or edit.remove:
            words += [w for t in edit.add for w in ("--add-tag", t)]
            words += [w for t in edit.remove for w in ("--remove-tag", t)]
        else:
            words += ["--set", f"{edit.column}={_option_text(edit)}"]
    return f"{SOURCE_PREFIX} {shlex.join(words)}"


def _option_text(edit: Edit) -> str:
    value = edit.value
    if isinstance(value, Cell):
        return value.text
    if isinstance(kind_of(edit.column), TextField):
        return value or ""
    if edit.column == "tags":
        return codec.format_tags(value)
    return json.dumps(value, ensure_ascii=False)  # a Python str shows quoted: it stays a string


def is_set_source(source: str) -> bool:
    return source.startswith(SOURCE_PREFIX)


# -- journals -------------------------------------------------------------------------------------------

def state_dir() -> Path:
    """runsync's state folder: $XDG_STATE_HOME/runsync, else ~/.local/state/runsync."""
    base = os.environ.get("XDG_STATE_HOME")
    return (Path(base) if base and os.path.isabs(base) else Path.home() / ".local" / "state") / "runsync"


def project_home(project: str, what: str) -> Path:
    """STATE/ENTITY/PROJECT/`what`: where a project's journals without a sheet live (`set`, `frame`).

    Each part of the address is one folder name, whatever it holds: an MLflow experiment may be named
    `/Users/me/exp` or `..`, which as a path would leave the state folder.
    """
    from urllib.parse import quote

    from runsync.backend import parse_project_address

    address = parse_project_address(project)
    parts = [quote(part, safe=" @+,=-_.~") for part in (address.owner, address.name)]
    return state_dir().joinpath(*[p.replace(".", "%2E") if p in (".", "..") else p for p in parts], what)


def new_set_journal(project: str) -> str:
    """A new, empty journal for one set: STATE/ENTITY/PROJECT/set.runsync-journals/<UTC time>-<n>.jsonl."""
    from runsync.journal.events import new_journal_path

    return new_journal_path(project_home(project, "set"))


# -- the library call -----------------------------------------------------------------------------------

def set_runs(
    project: str,
    *,
    filters: dict[str, Any] | str | None = None,
    order: str | None = None,
    limit: int | None = None,
    set: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
    add_tags: Iterable[str] = (),
    remove_tags: Iterable[str] = (),
    clear: Iterable[str] = (),
    include_running: bool = False,
    strict: bool = False,
    new_keys: bool = False,
    backend: Backend | None = None,
    on_run: Callable[[], None] | None = None,
    allow_text: bool = False,
) -> Plan:
    """Plan one edit for every selected run and return the Plan (`runsync.apply(plan)` writes it); writes nothing.

    `set`: {FIELD: value}, FIELD one of name, group, job_type, notes, tags, config.KEY (`config.a\\.b` for
    a key with a dot). A Python value is written as it is; `Cell("0.01")` is decoded as the CLI decodes
    VALUE. `clear`: FIELDs to empty (a config key becomes null). Running runs are skipped unless
    `include_running`. A bad FIELD raises ConfigError before any W&B request. `new_keys` (--new-keys) opts in
    to creating a config key in runs that lack it, which W&B cannot delete; without it `apply` refuses.
    Text for a key whose selected values all share another type (`Cell("Yes")` over booleans) is an error
    unless `allow_text`; a JSON-quoted `Cell('"Yes"')` is text on purpose; `strict` refuses it regardless.
    """
    from runsync.backend import backend_for, parse_project_address

    edits = parse_edits(set, add_tags=add_tags, remove_tags=remove_tags, clear=clear)
    project = parse_project_address(project).path
    backend = backend_for(project, backend)
    tracker = backend.capabilities.tracker
    if foreign := [e.column for e in edits if tracker not in kind_of(e.column).trackers]:
        raise ConfigError(f"{project} is a {tracker} project: its runs have no field {foreign[0]!r} "
                          f"(one of {', '.join(sorted(kind_of(foreign[0]).trackers))}'s)")
    records = []
    for record in backend.iter_runs(project, filters=filters, order=order, limit=limit):
        records.append(record)
        if on_run:
            on_run()
    plan = plan_edits(project, edits, records, include_running=include_running, strict=strict, new_keys=new_keys,
                      source=describe(edits, filters=filters, order=order, limit=limit), allow_text=allow_text)
    return plan.with_run_urls({r.id: r for r in records})


__all__ = ["Cell", "Edit", "describe", "new_set_journal", "parse_edits", "plan_edits", "set_runs", "state_dir"]
