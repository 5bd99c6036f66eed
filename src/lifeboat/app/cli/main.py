"""The ``lifeboat`` command: global options, the command table and error handling.

Each command lives in its own ``*_cmd`` module, which the command table names and a run
imports only when its command line names that command (``lifeboat backup`` loads no other
command's module); each imports what it needs when it runs. Every error a user can cause ends here as one line
with a hint and a documented exit code (docs/cli.md); a traceback only with ``-v``.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import click

from lifeboat import __version__
from lifeboat.app.cli.audit_hook import Recorded
from lifeboat.app.cli.context import CliContext
from lifeboat.app.cli.framework import Abort, App, Context, Exit, LazyCommand, Option
from lifeboat.app.cli.interrupts import Signals, Terminated
from lifeboat.app.cli.output import Output, stream_closed
from lifeboat.errors import Cancelled, ExitCode, Interrupted, LifeboatError, option

EXIT_CODES_HELP = """
Exit codes: 0 ok · 1 error · 2 usage or configuration · 3 partial backup (files unreadable) ·
10 no repository · 11 repository locked · 12 wrong passphrase · 13 integrity error (damaged data) ·
14 storage unreachable or refused · 15 missing tool ·
16 source failed (a named path missing, a program failed; no snapshot saved) ·
17 objective missed (a drill over its RTO, RPO or time limit) · 130 interrupted or cancelled.
"""

app = App(
    "lifeboat",
    help="Lifeboat: backup and disaster recovery, one encrypted deduplicated repository.\n" + EXIT_CODES_HELP,
)

F = TypeVar("F", bound=Callable[..., Any])


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"lifeboat {__version__}\n")
        raise Exit(0)


@app.callback
def main_options(
    ctx: Context,
    repo: Annotated[
        str | None,
        Option("--repo", "-r", metavar="REPO", help="Repository URL or configured name [env LIFEBOAT_REPO]."),
    ] = None,
    config: Annotated[
        str | None,
        Option("--config", "-c", metavar="FILE", help="YAML configuration file [env LIFEBOAT_CONFIG]."),
    ] = None,
    json_output: Annotated[bool, Option("--json", help="Print one JSON document on stdout.")] = False,
    quiet: Annotated[bool, Option("--quiet", "-q", help="Print only errors.")] = False,
    verbose: Annotated[int, Option("--verbose", "-v", count=True, help="More detail; tracebacks.")] = 0,
    version: Annotated[bool, Option("--version", callback=_version, is_eager=True, help="Print the version.")] = False,
) -> None:
    signals = ctx.obj if isinstance(ctx.obj, Signals) else None  # given by main(): Ctrl-C and SIGTERM
    ctx.obj = CliContext.create(
        repo=repo, config_path=config, json=json_output, quiet=quiet, verbose=verbose, signals=signals
    )


class OutputClosed(Exception):
    """The reader of stdout or stderr went away (``lifeboat ls | head -1``)."""


def report(output: Output, exc: BaseException, *, exit_code: int | None = None, signals: Signals | None = None) -> int:
    """Print ``exc`` the one way every error is printed; returns the exit code (its own,
    unless ``exit_code`` is given). An operation cancelled because of a signal is reported
    as the interrupt it was."""
    if isinstance(exc, BrokenPipeError) and (stream_closed(sys.stdout) or stream_closed(sys.stderr)):
        raise OutputClosed from None
    exc = _interrupt_behind(exc) or exc
    if isinstance(exc, Cancelled) and signals is not None and (interruption := signals.interruption()):
        exc = interruption
    elif isinstance(exc, Terminated):
        exc = Interrupted("terminated by SIGTERM")
    elif isinstance(exc, KeyboardInterrupt):
        exc = Interrupted("interrupted")
    if isinstance(exc, LifeboatError):
        output.error(exc, exit_code=exit_code)
        return int(exc.exit_code) if exit_code is None else exit_code
    output.internal_error(exc)  # the last line of defence: one line, the traceback only with -v
    return int(ExitCode.ERROR)


def _interrupt_behind(exc: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C or SIGTERM that ``exc`` was raised while unwinding from, if any.

    An interrupt can land inside the standard library's own locking (a thread being
    started) and leave it to fail on the way out; what the user did is still an interrupt."""
    seen: BaseException | None = exc
    for _ in range(32):
        if seen is None:
            return None
        if isinstance(seen, KeyboardInterrupt):
            return seen
        seen = seen.__context__
    return None


def guarded(fn: F) -> F:
    """Run a command body, turning errors into one line, a hint and the exit code.

    Every exception leaves this way, ``BaseException`` subclasses too: an
    ``asyncio.CancelledError`` an async SDK lets out is an error like any other (an internal
    one, exit 1). Only the ways out of the program that are not errors pass through: click's
    exit, ``SystemExit`` and ``GeneratorExit``; Ctrl-C and SIGTERM are reported as interrupted.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = kwargs.get("ctx") or next((a for a in args if isinstance(a, Context)), None)
        state: CliContext = ctx.obj if ctx is not None and isinstance(ctx.obj, CliContext) else CliContext()
        with Recorded(click.get_current_context(silent=True), state, ROUTED_KINDS):  # its audit entry (docs/audit.md)
            try:
                return fn(*args, **kwargs)
            except (Exit, Abort, SystemExit, GeneratorExit):
                raise
            except BaseException as exc:  # noqa: BLE001 - every error leaves as one line
                raise Exit(report(state.output, exc, signals=state.signals)) from None

    return wrapper  # type: ignore[return-value]


def _register() -> None:
    """The command table: each command by its module, imported when a command line names it."""
    app.wrap = guarded
    for name in (
        "init",
        "backup",
        "snapshots",
        "ls",
        "restore",
        "dump",
        "diff",
        "check",
        "verify",
        "records",
        "health",
        "forget",
        "prune",
        "stats",
        "unlock",
        "copy",
        "drill",
        "serve",
    ):
        app.lazy(LazyCommand(name, f"lifeboat.app.cli.{name}_cmd", "command"))
    for name in ("key", "repair", "config", "pg", "migrate", "schedule", "alerts", "audit", "token"):
        app.lazy(LazyCommand(name, f"lifeboat.app.cli.{name}_cmd"))  # a group: the module's COMMANDS
    # PostgreSQL (docs/postgres.md): archive/restore commands PostgreSQL runs, and the routed kinds.
    app.lazy(LazyCommand("wal-push", "lifeboat.app.cli.wal_cmd", "push_command", help_from_function=True))
    app.lazy(LazyCommand("wal-fetch", "lifeboat.app.cli.wal_cmd", "fetch_command", help_from_function=True))
    for routed, module, attribute, from_function in (
        ("backup-postgres", "backup_postgres_cmd", "command", False),
        ("restore-postgres", "restore_postgres_cmd", "command", False),
        # A program's output (docs/cli.md): 'backup command' and 'restore command'.
        ("backup-command", "command_cmd", "backup", True),
        ("restore-command", "command_cmd", "restore", True),
        # Redis, SQLite, MariaDB, slapd and a cluster's logical dumps (docs/sources.md).
        ("restore-redis", "restore_redis_cmd", "command", False),
        ("restore-sqlite", "restore_sqlite_cmd", "command", False),
        ("restore-mariadb", "restore_mariadb_cmd", "command", False),
        ("restore-ldap", "restore_ldap_cmd", "command", False),
        ("restore-pg-dump", "restore_pg_dump_cmd", "command", False),
        # Restore drills (docs/drills.md): 'drill report'.
        ("drill-report", "drill_cmd", "report", True),
    ):
        app.lazy(
            LazyCommand(routed, f"lifeboat.app.cli.{module}", attribute, hidden=True, help_from_function=from_function)
        )


_register()


# Global options that take a value, so routing can skip over it.
_VALUE_OPTIONS = {"--repo", "-r", "--config", "-c"}
# ``lifeboat backup postgres ...`` runs the command ``backup-postgres`` (and so on): the
# kinds of a verb that take different options are separate (hidden) commands.
ROUTED_KINDS: dict[tuple[str, str], str] = {
    ("backup", "postgres"): "backup-postgres",
    ("restore", "postgres"): "restore-postgres",
    ("backup", "command"): "backup-command",
    ("restore", "command"): "restore-command",
    ("restore", "redis"): "restore-redis",
    ("restore", "sqlite"): "restore-sqlite",
    ("restore", "mariadb"): "restore-mariadb",
    ("restore", "ldap"): "restore-ldap",
    ("restore", "pg-dump"): "restore-pg-dump",
    ("drill", "report"): "drill-report",
}


_FLAG_OPTIONS = {"--json", "--quiet", "-q", "--verbose", "-v", "-vv", "-vvv"}


def route(argv: list[str]) -> list[str]:
    """Rewrite ``VERB KIND`` into the command registered for it in :data:`ROUTED_KINDS`,
    and move global options written after the command in front of it
    (``lifeboat snapshots --json`` works like ``lifeboat --json snapshots``)."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in _VALUE_OPTIONS:
            i += 2
            continue
        if arg.startswith("-"):
            i += 1
            continue
        if i + 1 < len(argv) and (arg, argv[i + 1]) in ROUTED_KINDS:
            argv = [*argv[:i], ROUTED_KINDS[(arg, argv[i + 1])], *argv[i + 2 :]]
        return _hoist_globals(argv, i)
    return argv


def _hoist_globals(argv: list[str], command_at: int) -> list[str]:
    head, rest = argv[:command_at], argv[command_at:]
    moved: list[str] = []
    kept: list[str] = []
    j = 0
    while j < len(rest):
        arg = rest[j]
        if arg == "--":
            kept.extend(rest[j:])
            break
        if arg in _FLAG_OPTIONS:
            moved.append(arg)
        elif arg in _VALUE_OPTIONS and j + 1 < len(rest):
            moved.extend(rest[j : j + 2])
            j += 1
        elif arg.split("=", 1)[0] in ("--repo", "--config"):
            moved.append(arg)
        else:
            kept.append(arg)
        j += 1
    return [*head, *moved, *kept]


def _globals(argv: list[str]) -> tuple[list[str], str | None]:
    """The global options of a routed command line, and its command."""
    i = 0
    while i < len(argv) and argv[i].startswith("-") and argv[i] != "--":
        i += 2 if argv[i] in _VALUE_OPTIONS else 1
    return argv[:i], argv[i] if i < len(argv) else None


def wants_json(argv: list[str]) -> bool:
    """Whether ``--json`` is among the global options of a routed command line."""
    return "--json" in _globals(argv)[0]


def command_of(argv: list[str]) -> str | None:
    """The command a routed command line runs (``ls``, ``restore-postgres``)."""
    return _globals(argv)[1]


def _display(error: LifeboatError) -> LifeboatError:
    """``restore-postgres`` is how the command line names ``restore postgres``; say it the user's way."""

    message, hint = error.spelled(option)  # the text as raised, its option markers kept for the report
    for (verb, kind), routed in ROUTED_KINDS.items():
        message, hint = message.replace(routed, f"{verb} {kind}"), hint.replace(routed, f"{verb} {kind}")
    error.message, error.hint = message, hint
    return error


def run(argv: list[str], signals: Signals | None = None) -> int:
    """Run one command line (after :func:`route`); returns the exit code. ``signals`` routes
    Ctrl-C and SIGTERM to the running operation (installed by :func:`main`)."""
    with contextlib.suppress(AttributeError, ValueError):
        # A file name that is not UTF-8 is printed as its own bytes (as ls does), whatever the locale.
        sys.stdout.reconfigure(errors="surrogateescape")  # type: ignore[union-attr]
    try:
        try:
            code = app(args=argv, prog_name="lifeboat", obj=signals, only=command_of(argv))
        except OutputClosed:
            raise
        except LifeboatError as exc:  # the command line itself was wrong
            fatal = None
            if command_of(argv) == "wal-fetch":  # PostgreSQL takes 2 for "not archived": recovery would end
                from lifeboat.app.cli.walrun import FETCH_FATAL

                fatal = FETCH_FATAL
            code = report(Output(json_mode=wants_json(argv)), _display(exc), exit_code=fatal)
        except (SystemExit, GeneratorExit):
            raise
        except BaseException as exc:  # noqa: BLE001 - every error leaves as one line
            code = report(Output(json_mode=wants_json(argv)), exc, signals=signals)
        sys.stdout.flush()
    except (OutputClosed, BrokenPipeError):
        return _closed()
    return code


def _closed() -> int:
    """Leave quietly because the reader of our output is gone, as coreutils, git and restic do:
    by SIGPIPE (a shell reports 141). Locks and temporary files were released on the way out."""
    import os
    import signal

    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            os.dup2(devnull, stream.fileno())  # nothing left in a buffer can complain at exit
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGPIPE)
    return 128 + signal.SIGPIPE  # not reached


def main() -> None:
    """Console entry point."""
    from lifeboat.app.cli import walcall, walfast

    code = walfast.main()  # wal-push / wal-fetch (also reached before any CLI import via lifeboat.app.cli.entry)
    if code is not None:
        sys.exit(code)
    from lifeboat.app.runtime import tune_process

    tune_process()
    argv = route(sys.argv[1:])
    if command_of(argv) in walcall.COMMANDS:  # PostgreSQL's commands keep its signal conventions
        sys.exit(run(argv))
    with Signals().installed(exiting=True) as signals:  # Ctrl-C and SIGTERM stop at a safe point: exit 130
        code = run(argv, signals)
    sys.exit(code)


if __name__ == "__main__":
    main()
