"""Nothing below ``app/`` names a command-line flag in a message (docs/architecture.md).

An operation, a source or the repository names one of its options as ``errors.option("name")``,
which each front end spells its own way (``--name`` on the command line, ``name`` in the
configuration and the API). This test reads every string literal of the package outside
``app/`` — f-strings whole, docstrings left out — and fails on a ``--flag`` spelling, with
these exceptions, each a rule rather than a guess:

- ``demo.py`` (``make demo``) drives the command line itself, as a user would;
- ``sources/tools/`` builds the argv of external programs (initdb, pg_basebackup): those
  flags are the programs', not ours;
- a quoted Lifeboat command line (``'lifeboat check --read-data'``) is a whole command a
  message suggests running, written as a user would type it;
- the few literals in ``ALLOWED`` below, each with its reason.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import lifeboat

PACKAGE = Path(lifeboat.__file__).parent
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
COMMAND_LINE = re.compile(r"'lifeboat [^']*'")

ALLOWED = {
    # the usage error's default hint: only a command line has --help
    ("errors.py", "--help"),
    # an external program's options, named in a hint about setting PostgreSQL up
    ("operations/pg_check.py", "--data-checksums"),
    ("operations/pg_check.py", "--enable"),
    # the words of a configured archive_command are parsed to find its spool
    ("sources/postgres/spool.py", "--spool"),
    # a scheduled job's argv is the command line that does the same job by hand (the daemon runs
    # it); tests/unit/test_config_schedule.py parses each one with the real command line
    ("config/jobs.py", "--source"),
    ("config/jobs.py", "--repo"),
    ("config/jobs.py", "--from"),
    ("config/jobs.py", "--to"),
    ("config/jobs.py", "--all"),
}


def _docstrings(tree: ast.AST) -> set[int]:
    """The ids of the docstring nodes of a module, its classes and functions."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _literals(tree: ast.AST) -> list[tuple[int, str]]:
    """Every string literal with its line: an f-string as one text, its fields as ``{}``."""
    skip = _docstrings(tree)
    texts: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            parts = [v.value if isinstance(v, ast.Constant) else "{}" for v in node.values]
            texts.append((node.lineno, "".join(str(p) for p in parts)))
            skip.update(id(v) for v in node.values)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            texts.append((node.lineno, node.value))
    return texts


def flags_below_app() -> list[str]:
    found: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative == "demo.py" or relative.startswith(("app/", "sources/tools/")):
            continue
        for line, text in _literals(ast.parse(path.read_text(), filename=relative)):
            for flag in FLAG.findall(COMMAND_LINE.sub("", text)):
                if (relative, flag) not in ALLOWED:
                    found.append(f"{relative}:{line}: {flag} in {text!r}")
    return found


def test_no_message_below_app_names_a_command_line_flag() -> None:
    assert flags_below_app() == []


def test_the_scan_finds_a_flag_in_a_plain_string_and_in_an_f_string() -> None:
    source = 'def f(n):\n    """Docstrings may say --anything."""\n'
    source += '    raise E(f"--timeline {n!r}", hint="use --force")\n'
    texts = [t for _, t in _literals(ast.parse(source))]
    assert sorted(FLAG.findall(" ".join(texts))) == ["--force", "--timeline"]
    assert FLAG.findall(COMMAND_LINE.sub("", "run 'lifeboat check --read-data' there")) == []
