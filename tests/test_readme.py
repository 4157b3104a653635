"""The README as a newcomer reads it: short, every option documented, every command line valid, its plan real.

REGENERATE=1 rewrites the README's example plan from the sandbox (as test_render.py does its golden files).
"""
from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from helpers import invoke, set_in_wandb

from runsync.cli import cli

ROOT = Path(__file__).resolve().parent.parent
README_PATH = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
SEPARATORS = {";", "&&", "||", "|", "&", "(", ")"}


def readme() -> str:
    return README_PATH.read_text(encoding="utf-8")


def documented() -> str:
    """Everything a user can read: the README and docs/*.md."""
    return "\n".join([readme()] + [p.read_text(encoding="utf-8") for p in DOCS])


def code_blocks(text: str, languages: tuple[str, ...] = ("bash", "sh", "console", "")) -> list[str]:
    return [body for lang, body in re.findall(r"^```(\w*)\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
            if lang in languages]


def runsync_lines(text: str) -> Iterator[tuple[str, list[str]]]:
    """(the line, its arguments) for each `runsync ...` command in the shell code blocks of `text`."""
    for block in code_blocks(text):
        for line in block.replace("\\\n", " ").splitlines():
            lexer = shlex.shlex(line.removeprefix("$ "), posix=True, punctuation_chars=";&|()")
            lexer.whitespace_split = True
            words = list(lexer)
            segment: list[str] = []
            for word in words + [";"]:
                if word in SEPARATORS:
                    if segment[:1] == ["runsync"]:
                        yield line, segment[1:]
                    segment = []
                else:
                    segment.append(word)


def check_parses(args: list[str]) -> None:
    """Parse a command line as click would, without running it or needing its files: raise UsageError if not.

    click's own parser and parameter types, so unknown options and commands, missing values, extra arguments
    and bad numbers or choices fail; a path is not required to exist (`runs.xlsx` in an example).
    """
    command: click.Command = cli
    name, ctx = "runsync", None
    while True:
        ctx = click.Context(command, info_name=name, parent=ctx)
        opts, rest, _ = command.make_parser(ctx).parse_args(list(args))
        for param in command.get_params(ctx):
            value = opts.get(param.name)
            if value is None:
                if param.required and not opts.get("help"):
                    raise click.MissingParameter(ctx=ctx, param=param)
                continue
            if not isinstance(param.type, click.Path):
                param.type_cast_value(ctx, value)
        if opts.get("help") or opts.get("version"):
            return
        if isinstance(command, click.Group):
            if not rest:
                raise click.UsageError(f"{name}: no command", ctx)
            sub = command.get_command(ctx, rest[0])
            if sub is None:
                raise click.UsageError(f"no such command {rest[0]!r}", ctx)
            name, command, args = rest[0], sub, rest[1:]
            continue
        if rest:
            raise click.UsageError(f"unexpected extra arguments {rest}", ctx)
        return


def all_commands() -> Iterator[tuple[str, click.Command]]:
    def walk(command: click.Command, path: str) -> Iterator[tuple[str, click.Command]]:
        yield path, command
        if isinstance(command, click.Group):
            for name, sub in sorted(command.commands.items()):
                yield from walk(sub, f"{path} {name}")
    return walk(cli, "runsync")


def help_options(path: str, command: click.Command) -> list[str]:
    """Every option name `runsync ... --help` lists for this command."""
    ctx = click.Context(command, info_name=path)
    names = []
    for param in command.get_params(ctx):
        if isinstance(param, click.Option) and param.get_help_record(ctx) is not None:
            names += param.opts + param.secondary_opts
    return names


def test_readme_is_one_screenful_of_start_and_links_the_rest():
    text = readme()
    assert len(text.splitlines()) <= 350
    linked = set(re.findall(r"\]\((docs/[\w.-]+\.md)(?:#[\w-]*)?\)", text))
    assert {f"docs/{p.name}" for p in DOCS} <= linked  # every page is reachable from the README
    for target in linked:
        assert (ROOT / target).is_file(), target


def test_relative_links_in_readme_and_docs_resolve():
    for page in [README_PATH] + DOCS:
        for target, anchor in re.findall(r"\]\((?!https?:)([^)#\s]*)(?:#([\w-]+))?\)", page.read_text("utf-8")):
            dest = (page.parent / target) if target else page
            assert dest.exists(), (page.name, target)
            if anchor and dest.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", dest.read_text("utf-8"), re.MULTILINE)
                slugs = {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}
                assert anchor in slugs, (page.name, target, anchor)


@pytest.mark.parametrize("path,command", list(all_commands()), ids=lambda v: v if isinstance(v, str) else "")
def test_every_command_and_option_in_help_is_documented(path, command):
    text = documented()
    if path != "runsync":
        assert path in text
    missing = [o for o in help_options(path, command)
               if not re.search(r"(?<![\w-])" + re.escape(o) + r"(?![\w-])", text)]
    assert not missing, f"{path}: not in README.md or docs/*.md: {missing}"


def test_every_runsync_line_in_the_code_blocks_parses():
    lines = list(runsync_lines(documented()))
    assert len(lines) >= 20  # the README's own examples at least
    bad = []
    for line, args in lines:
        try:
            check_parses(args)
        except click.UsageError as e:
            bad.append(f"{line}\n    {e.format_message()}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("line", [
    "runsync import runs.xlsx --dry-runn",                     # a misspelt option
    "runsync exprot e/p -o runs.xlsx",                         # a misspelt command
    "runsync export e/p",                                      # -o is required
    "runsync import runs.xlsx --concurrency many",             # not a number
    "runsync import runs.xlsx --format yaml",                  # not a choice
    "runsync undo a.jsonl b.jsonl",                            # an extra argument
    "runsync sandbox seed --db sb.db --runs",                  # a missing value
    "rm -f sb.env; runsync sandbox serv --db sb.db &",         # after a `;`
])
def test_a_wrong_command_line_is_caught(line):
    [(_, args)] = list(runsync_lines(f"```bash\n{line}\n```\n"))
    with pytest.raises(click.UsageError):
        check_parses(args)


def readme_plan_block(text: str) -> str:
    """The first code block of the README that is a text plan (it ends with the `Plan:` line)."""
    for body in code_blocks(text, ("text",)):
        if re.search(r"^Plan: ", body, re.MULTILINE):
            return body
    raise AssertionError("README.md shows no text plan (a ```text block with a `Plan:` line)")


def test_readme_plan_is_what_the_sandbox_prints(sandbox, tmp_path, monkeypatch):
    """The first screen's plan, made again: the demo project, the demo's edits, two colleagues in W&B."""
    import openpyxl

    from runsync.demo import edit_demo_sheet
    from runsync.sandbox import seed_demo

    project = "/".join(seed_demo(sandbox.store))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NO_COLOR", "1")
    invoke("export", project, "-o", "runs.xlsx")
    edit_demo_sheet(Path("runs.xlsx"))  # a tag added, a group changed (row 3), a config typo fixed twice
    ids = [c.value for c in openpyxl.load_workbook("runs.xlsx")["runs"]["A"][1:]]
    set_in_wandb(ids[1], project, group="exp-c-rerun")  # the run the sheet regroups: a conflict
    set_in_wandb(ids[5], project, notes="diverged at epoch 3")  # a run the sheet leaves: kept
    shown = invoke("import", "runs.xlsx", "--dry-run", exit_code=1).stdout
    if os.environ.get("REGENERATE"):
        text = readme()
        README_PATH.write_text(text.replace(readme_plan_block(text), shown), encoding="utf-8")
    block = readme_plan_block(readme())
    shapes = {
        "change": r"^~ \w+ \([\w-]+\)$",
        "conflict": r"^! \w+ \([\w-]+\)$",
        "W&B-only": r"^  i \w+ [\w.]+: .+ → .+$",
        "summary": r"^Plan: \d+ runs?, \d+ fields? to change, \d+ conflicts?\.$",
    }
    for kind, shape in shapes.items():
        assert re.search(shape, shown, re.MULTILINE), (kind, shown)  # the renderer still draws it so
        assert re.search(shape, block, re.MULTILINE), (kind, block)
    assert block == shown, "README.md's plan is not what runsync prints now (REGENERATE=1 rewrites it)"
