"""The shape of the code, checked: no import circle among runsync's modules, no import from a lower layer to a
higher one, the sandbox imported only by the CLI and the demo, W&B named only inside backend/, and column kinds
decided only by the field registry.

Every import counts, also the ones inside functions and under `if TYPE_CHECKING:`: a circle hidden there is still
a circle a reader has to hold in their head (and breaks as soon as someone moves the import to the top).
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "runsync"

# Top to bottom; a module may import its own layer or any layer below it. Each entry is a module or a package
# (a package stands for every module inside it).
LAYERS: list[tuple[str, ...]] = [
    ("runsync.__main__", "runsync.cli"),
    ("runsync.demo",),
    ("runsync", "runsync.api"),
    ("runsync.planner", "runsync.writer", "runsync.exporter"),
    ("runsync.sheets", "runsync.report", "runsync.journal"),
    ("runsync.fields",),
    ("runsync.backend",),
    ("runsync.model", "runsync.errors", "runsync.words", "runsync.version"),
]
SANDBOX = "runsync.sandbox"
SANDBOX_USERS = ("runsync.cli", "runsync.demo")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The runsync modules `name` imports, anywhere in the file (a package's __init__ when a name is not a module)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "runsync")
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            if origin.split(".")[0] != "runsync":
                continue
            for alias in node.names:
                child = f"{origin}.{alias.name}"
                found.add(child if child in modules else origin)
    found.discard(name)
    return {m for m in found if m in modules}


def graph() -> dict[str, set[str]]:
    modules = all_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in edges:
        if root in index:
            continue
        work: list[tuple[str, list[str]]] = [(root, sorted(edges[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, pending = work[-1]
            if pending:
                nxt = pending.pop()
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, sorted(edges[nxt])))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def within(module: str, unit: str) -> bool:
    return module == unit or module.startswith(unit + ".")


def layer_of(module: str) -> int | None:
    """The index of the layer holding `module` (the most specific entry wins: `runsync` holds only its __init__)."""
    best: tuple[int, int] | None = None
    for i, units in enumerate(LAYERS):
        for unit in units:
            if (module == unit if unit == "runsync" else within(module, unit)):
                if best is None or len(unit) > best[1]:
                    best = (i, len(unit))
    return best[0] if best else None


def test_circle_finder_finds_a_planted_circle() -> None:
    """The checker itself: a circle of three and a self-contained pair are found, a chain is not."""
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"e"}, "e": {"d"}, "f": {"a"}, "g": set()}
    assert sorted(circles(edges)) == [["a", "b", "c"], ["d", "e"]]
    assert circles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_import_reader_sees_hidden_imports(tmp_path: Path) -> None:
    """Function-local, TYPE_CHECKING and relative imports all count."""
    source = ("from __future__ import annotations\nfrom typing import TYPE_CHECKING\n"
              "if TYPE_CHECKING:\n    from runsync.model import Plan\n"
              "def f():\n    from runsync.fields import codec\n    import runsync.report.text\n"
              "from . import words\n")
    path = tmp_path / "probe.py"
    path.write_text(source)
    modules = {m: Path() for m in ("runsync.model", "runsync.fields", "runsync.fields.codec", "runsync.report.text",
                                   "runsync.words", "runsync.probe")}
    assert imports_of("runsync.probe", path, modules) == {
        "runsync.model", "runsync.fields.codec", "runsync.report.text", "runsync.words"}


def test_no_import_circle() -> None:
    found = circles(graph())
    assert not found, "import circles among runsync's modules:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_every_module_has_a_layer() -> None:
    unplaced = [m for m in all_modules() if layer_of(m) is None and not within(m, SANDBOX)]
    assert not unplaced, f"modules in no layer of tests/test_layers.py: {unplaced}"


def test_no_import_runs_up_a_layer() -> None:
    upward = []
    for module, targets in graph().items():
        if within(module, SANDBOX):
            continue
        for target in sorted(targets):
            if within(target, SANDBOX):
                continue
            if (mine := layer_of(module)) is not None and (theirs := layer_of(target)) is not None and theirs < mine:
                upward.append(f"{module} -> {target}")
    assert not upward, "imports that run up a layer:\n" + "\n".join(upward)


def test_sandbox_is_imported_only_by_cli_and_demo() -> None:
    users = [f"{m} -> {t}" for m, targets in graph().items() for t in targets
             if within(t, SANDBOX) and not within(m, SANDBOX) and not any(within(m, u) for u in SANDBOX_USERS)]
    assert not users, f"the sandbox is for the CLI, the demo and tests only: {users}"


def _top_level_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("tracker", ["wandb", "mlflow"])
def test_tracker_named_only_inside_backend(tracker: str) -> None:
    """Nothing outside backend/ imports the tracker's client or runsync's module for it (the sandbox is W&B's
    stand-in and the demo shows W&B's own client reading the result back: both are W&B by purpose)."""
    own = f"runsync.backend.{tracker}"
    allowed = ("runsync.backend", SANDBOX, "runsync.demo")
    offenders = []
    for module, path in all_modules().items():
        if any(within(module, a) for a in allowed):
            continue
        for name in _top_level_imports(path):
            if name == tracker or name.startswith(tracker + ".") or within(name, own):
                offenders.append(f"{module} imports {name}")
    assert not offenders, "\n".join(offenders)


COLUMN_KIND_NAMES = ("CONFIG_PREFIX", "SUMMARY_PREFIX", "TAG_COLUMN_PREFIX", "TEXT_FIELDS", "EDITABLE_FIELDS",
                     "READONLY_FIELDS")
PREFIX_TEST = re.compile(r"""\.(startswith|removeprefix)\(\s*["'](config\.|summary\.|tag:)""")


def test_column_kinds_decided_only_by_the_registry() -> None:
    """Only runsync/fields/ knows that `config.` starts a config column or which fields are text: every other
    module asks it."""
    offenders = []
    for module, path in all_modules().items():
        if within(module, "runsync.fields") or within(module, SANDBOX) or within(module, "runsync.backend"):
            continue
        text = path.read_text()
        for name in COLUMN_KIND_NAMES:
            if re.search(rf"\b{name}\b", text):
                offenders.append(f"{module} uses {name}")
        if PREFIX_TEST.search(text):
            offenders.append(f"{module} tests a column prefix")
    assert not offenders, "\n".join(offenders)
