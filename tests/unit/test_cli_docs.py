"""docs/cli.md is true to the command line: every command has a section, every option is in it,
and no section promises an option its command does not have.

The commands are the real ones: the command table of ``app/cli/main.py`` as click builds it,
groups walked, and the hidden routed commands under the names a user types (``restore-pg-dump``
is ``restore pg-dump``, :data:`lifeboat.app.cli.main.ROUTED_KINDS`).

The rules, kept simple so that a failure says plainly what to fix:

- A *section* of a page is a heading (``##`` to ``####``) and the text up to the next heading of
  the same or a higher level (so a ``####`` subsection belongs to its ``###`` section too). A
  heading *names* a command when one of its code spans starts with the command's words
  (`` ### `restore pg-dump SNAPSHOT` ``, `` ### `pg check` / `pg setup [--apply]` ``); the
  longest command wins, so `` `restore pg-dump …` `` names ``restore pg-dump``, not ``restore``.
- Forward: each option of a command (a click parameter; ``--recursive/--no-recursive`` is one)
  is named by one of its long spellings somewhere in a section naming the command. "As for
  `restore`" is not enough: the section names the option and may then point elsewhere for its
  meaning. The one exception is :data:`ELSEWHERE`: a group whose cli.md section links to a page
  of its own, where that page's section for each command holds its options.
- Reverse (the worse lie is a documented flag that does not exist): in a section naming
  commands, every option in the first cell of a table row, and every option in a code span that
  starts with an option, must be an option of one of the section's commands (or a global
  option). Anywhere in the page, a code span (or a line of a code block) that starts with a
  command, ``lifeboat …`` or not, may only use that command's options, up to a ``--`` after
  which a program's own arguments follow; this last rule holds on every page of docs/ and in
  README.md. Code spans of other programs (`` `pg_restore --list` ``) are not lifeboat's and are
  not checked.
- A short and a long spelling written as one (``-D, --target-dir``, ``-s/--source``) must be the
  same option of the section's command.
- Every exit code of :class:`lifeboat.errors.ExitCode` is a row of the exit code tables of
  docs/cli.md and README.md, and is in ``lifeboat --help``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import click
import pytest

from lifeboat.app.cli.main import EXIT_CODES_HELP, ROUTED_KINDS, app
from lifeboat.errors import ExitCode

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
CLI_MD = DOCS / "cli.md"

# Groups whose options are documented on a page of their own; their cli.md section must link it.
ELSEWHERE: dict[str, str] = {
    "migrate": "migrate.md",  # four commands sharing a dozen connection and point-in-time options, and a walk-through
}

# Options every command has, which no section needs to name.
IMPLIED = {"--help"}

# An option as written in the docs: ``--long-name`` or ``-x``. Not ``--keep-*`` (a family, in
# prose) nor ``-wal`` (a file suffix).
OPTION = re.compile(r"(?<![\w-])(--[A-Za-z0-9](?:[\w-]*[A-Za-z0-9])?|-[A-Za-z])(?![\w*-])")
SPAN = re.compile(r"`([^`\n]+)`")
# One option spelled two ways: ``-s, --source``, ``-s/--source``, or in a table's first cell two
# spans ``--table`, `-t``.
PAIR = re.compile(r"(?<![\w-])(-[A-Za-z])(?:, |/)(--[A-Za-z0-9][\w-]*)")
SPANNED_PAIR = re.compile(r"`(--[A-Za-z0-9][\w-]*)`(?:, |/)`(-[A-Za-z])`")
HEADING = re.compile(r"^(#{2,4}) (.+)$")


def _commands() -> dict[str, click.Command]:
    """Every command a user can run, by the words they type (``restore pg-dump``, ``key add``)."""
    typed = {routed: f"{verb} {kind}" for (verb, kind), routed in ROUTED_KINDS.items()}
    found: dict[str, click.Command] = {}

    def walk(group: click.Group, prefix: str) -> None:
        for name, command in group.commands.items():
            path = f"{prefix} {typed.get(name, name)}".strip()
            if isinstance(command, click.Group):
                walk(command, path)
            else:
                found[path] = command

    walk(ROOT_COMMAND, "")
    return found


ROOT_COMMAND = app.build()
COMMANDS = _commands()


def _spellings(param: click.Parameter) -> list[str]:
    return [*param.opts, *param.secondary_opts] if isinstance(param, click.Option) else []


GLOBAL_OPTIONS = {spelling for param in ROOT_COMMAND.params for spelling in _spellings(param)} | IMPLIED


def _options(command: click.Command) -> list[click.Option]:
    return [p for p in command.params if isinstance(p, click.Option) and not p.hidden]


def _spelled(command: click.Command) -> set[str]:
    return {s for p in command.params for s in _spellings(p)} | IMPLIED


@dataclass
class Section:
    page: str
    line: int
    title: str
    text: str  # the heading and its body, subsections included
    commands: set[str] = field(default_factory=set)


def _command_at(words: list[str]) -> tuple[str, list[str]] | None:
    """The command ``words`` start with (the longest), and the words after it; ``words`` may
    start with ``lifeboat`` and global options."""
    if words[:1] == ["lifeboat"]:
        words = words[1:]
        while words and words[0].startswith("-"):
            words = words[2:] if words[0] in ("-r", "--repo", "-c", "--config") else words[1:]
    for k in range(len(words), 0, -1):
        path = " ".join(words[:k])
        if path in COMMANDS:
            return path, words[k:]
    return None


def _in_fences(lines: list[str]) -> list[bool]:
    """For each line, whether it is part of a fenced code block (its fences included)."""
    inside, marks = False, []
    for line in lines:
        if line.startswith("```"):
            inside = not inside
            marks.append(True)
        else:
            marks.append(inside)
    return marks


def _sections(page: Path) -> list[Section]:
    lines = page.read_text(encoding="utf-8").splitlines()
    fenced = _in_fences(lines)
    headings = [(i, len(m[1]), m[2]) for i, line in enumerate(lines) if not fenced[i] and (m := HEADING.match(line))]
    sections = []
    for n, (start, level, title) in enumerate(headings):
        end = next((i for i, lvl, _ in headings[n + 1 :] if lvl <= level), len(lines))
        named = {found[0] for span in SPAN.findall(title) if (found := _command_at(span.split()))}
        sections.append(Section(page.name, start + 1, title, "\n".join(lines[start:end]), named))
    return sections


CLI_SECTIONS = _sections(CLI_MD)


def _sections_naming(path: str) -> list[Section]:
    found = [s for s in CLI_SECTIONS if path in s.commands]
    group = path.split(maxsplit=1)[0]
    if group in ELSEWHERE:
        found += [s for s in _sections(DOCS / ELSEWHERE[group]) if path in s.commands]
    return found


def _mentioned(sections: list[Section]) -> set[str]:
    return {option for s in sections for option in OPTION.findall(s.text)}


def test_the_walk_finds_every_kind_of_command() -> None:
    """The test sees hidden routed commands, groups' commands and plain ones."""
    assert {"restore pg-dump", "restore postgres", "drill report", "key add", "migrate import", "verify"} <= set(
        COMMANDS
    )
    assert all(f"{verb} {kind}" in COMMANDS for verb, kind in ROUTED_KINDS)


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_every_command_has_a_section(path: str) -> None:
    assert [s for s in CLI_SECTIONS if path in s.commands], (
        f"docs/cli.md has no '### `{path} …`' section for the command '{path}'"
    )


@pytest.mark.parametrize("group", sorted(ELSEWHERE))
def test_a_group_documented_elsewhere_links_its_page(group: str) -> None:
    sections = [s for s in CLI_SECTIONS if any(c.split()[0] == group for c in s.commands)]
    assert any(f"]({ELSEWHERE[group]}" in s.text for s in sections), (
        f"the cli.md section of '{group}' must link {ELSEWHERE[group]}, where its options are documented"
    )


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_every_option_is_documented_in_its_section(path: str) -> None:
    sections = _sections_naming(path)
    mentioned = _mentioned(sections)
    missing = [
        "/".join(s for s in _spellings(option) if s.startswith("--"))
        for option in _options(COMMANDS[path])
        if not any(s in mentioned for s in _spellings(option) if s.startswith("--"))
    ]
    where = ", ".join(f"{s.page}:{s.line}" for s in sections) or "no section"
    assert not missing, f"'{path}' has options its section ({where}) does not name: {', '.join(missing)}"


def _claims(section: Section) -> list[tuple[int, str, str | None]]:
    """What ``section`` says about options: (line, option, the command it is an option of, or
    None for one of the section's own commands)."""
    claims: list[tuple[int, str, str | None]] = []
    lines = section.text.splitlines()
    fenced = _in_fences(lines)
    for n, line in enumerate(lines):
        number = section.line + n
        if fenced[n]:
            words = line.split()
            if words[:1] in (["$"], ["#"]):  # a shell prompt
                words = words[1:]
            shows_the_error = n + 1 < len(lines) and "unknown option" in lines[n + 1]
            if words[:1] == ["lifeboat"] and not shows_the_error:
                claims += _command_claims(number, words)
            continue
        first_cell = line.split("|")[1] if line.startswith("|") else ""
        for span in SPAN.findall(line):
            words = span.split()
            if _command_at(words) is not None:
                claims += _command_claims(number, words)
            elif (span.startswith("-") or span in first_cell) and section.commands:
                claims += [(number, option, None) for option in OPTION.findall(span)]
    return claims


def _command_claims(number: int, words: list[str]) -> list[tuple[int, str, str | None]]:
    found = _command_at(words)
    if found is None:
        return []
    path, rest = found
    if "--" in rest:
        rest = rest[: rest.index("--")]
    return [(number, option, path) for option in OPTION.findall(" ".join(rest))]


def _all_claims() -> list[tuple[Section, int, str, str | None]]:
    """The claims of the reference pages (cli.md and the pages of :data:`ELSEWHERE`), and the
    quoted command lines of every other page: there a section about one command may well
    mention another's options in passing, but `` `restore --start` `` must be a real one."""
    references = {CLI_MD.name, *ELSEWHERE.values()}
    pages = [*sorted(DOCS.glob("*.md")), ROOT / "README.md"]
    seen: set[tuple[str, int, str, str | None]] = set()
    claims = []
    for page in pages:
        for section in _sections(page):
            for number, option, command in _claims(section):
                if command is None and page.name not in references:
                    continue
                key = (section.page, number, option, command)
                if key not in seen:  # a subsection's lines are also its parent section's
                    seen.add(key)
                    claims.append((section, number, option, command))
    return claims


def test_documented_options_exist() -> None:
    claims = _all_claims()
    assert any(c[0].page == "postgres.md" for c in claims)  # the other pages are read too
    wrong = []
    for section, number, option, command in claims:
        if command is not None:
            allowed, whose = _spelled(COMMANDS[command]) | GLOBAL_OPTIONS, f"'{command}'"
        else:
            allowed = set(GLOBAL_OPTIONS).union(*(_spelled(COMMANDS[c]) for c in section.commands))
            whose = " or ".join(f"'{c}'" for c in sorted(section.commands))
        if option not in allowed:
            wrong.append(f"{section.page}:{number}: {option} is not an option of {whose}")
    assert not wrong, "documented options that do not exist:\n" + "\n".join(wrong)


def _pairs(section: Section) -> list[tuple[int, str, str, set[str]]]:
    """The options ``section`` spells both ways: (line, short, long, the commands it belongs to)."""
    pairs = []
    lines = section.text.splitlines()
    fenced = _in_fences(lines)
    for n, line in enumerate(lines):
        if fenced[n]:
            continue
        first_cell = line.split("|")[1] if line.startswith("|") else ""
        if section.commands:  # in a table's first cell (in prose, "`--force`, `-j` apply" is a list)
            pairs += [(section.line + n, m[2], m[1], section.commands) for m in SPANNED_PAIR.finditer(first_cell)]
        for span in SPAN.findall(line):
            found = _command_at(span.split())
            commands = {found[0]} if found else section.commands
            pairs += [(section.line + n, m[1], m[2], commands) for m in PAIR.finditer(span) if commands]
    return pairs


def test_short_and_long_spellings_agree() -> None:
    """``-d, --database`` in a section must be one option, not ``-d`` of one and ``--database`` of another."""
    wrong = []
    for page in (CLI_MD, *(DOCS / name for name in sorted(set(ELSEWHERE.values())))):
        seen = set()
        for section in _sections(page):
            for number, short, long, commands in _pairs(section):
                params = [*ROOT_COMMAND.params, *(p for c in commands for p in COMMANDS[c].params)]
                if (number, short, long) not in seen and not any({short, long} <= set(_spellings(p)) for p in params):
                    wrong.append(f"{page.name}:{number}: {short} and {long} are not one option of {sorted(commands)}")
                seen.add((number, short, long))
    assert not wrong, "\n".join(wrong)


def _exit_code_rows(page: Path, heading: str) -> set[int]:
    text = page.read_text(encoding="utf-8")
    table = text.split(heading, 1)[1].split("\n#", 1)[0]
    return {int(m[1]) for m in re.finditer(r"^\| (\d+) \|", table, re.MULTILINE)}


@pytest.mark.parametrize(("page", "heading"), [(CLI_MD, "## Exit codes"), (ROOT / "README.md", "## Exit codes")])
def test_every_exit_code_is_in_the_table(page: Path, heading: str) -> None:
    rows = _exit_code_rows(page, heading)
    missing = [f"{int(code)} ({code.name})" for code in ExitCode if int(code) not in rows]
    assert not missing, f"{page.name}'s exit code table lacks {', '.join(missing)}"
    unknown = sorted(rows - {int(code) for code in ExitCode} - {141})  # 141: the shell's SIGPIPE, explained
    assert not unknown, f"{page.name}'s exit code table has codes lifeboat does not use: {unknown}"


def test_every_exit_code_is_in_the_help() -> None:
    listed = {int(m) for m in re.findall(r"(?:: |· |\n)(\d+) ", EXIT_CODES_HELP)}
    assert {int(code) for code in ExitCode} <= listed, sorted({int(c) for c in ExitCode} - listed)
