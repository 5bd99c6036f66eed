"""The ``lifeboat`` command: global options, the command table and error handling.

Each command lives in its own ``*_cmd`` module and imports what it needs when it runs,
so ``lifeboat --help`` stays fast. Every error a user can cause ends here as one line
with a hint and a documented exit code (docs/cli.md); a traceback only with ``-v``.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from lifeboat import __version__
from lifeboat.app.cli import (
    backup_cmd,
    backup_postgres_cmd,
    check_cmd,
    command_cmd,
    config_cmd,
    copy_cmd,
    diff_cmd,
    dump_cmd,
    forget_cmd,
    init_cmd,
    key_cmd,
    ls_cmd,
    pg_cmd,
    prune_cmd,
    repair_cmd,
    restore_cmd,
    restore_postgres_cmd,
    snapshots_cmd,
    stats_cmd,
    unlock_cmd,
    wal_cmd,
)
from lifeboat.app.cli.context import CliContext
from lifeboat.app.cli.framework import Abort, App, Context, Exit, Group, Option
from lifeboat.errors import ExitCode, LifeboatError

EXIT_CODES_HELP = """
Exit codes: 0 ok · 1 error · 2 usage or configuration · 3 partial backup (files unreadable) ·
10 no repository · 11 repository locked · 12 wrong passphrase · 13 integrity error (damaged data) ·
14 storage unreachable or refused · 15 missing tool ·
16 source failed (a named path missing, a program failed; no snapshot saved) · 130 interrupted.
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
    ctx.obj = CliContext.create(repo=repo, config_path=config, json=json_output, quiet=quiet, verbose=verbose)


def guarded(fn: F) -> F:
    """Run a command body, turning errors into one line, a hint and the exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = kwargs.get("ctx") or next((a for a in args if isinstance(a, Context)), None)
        state: CliContext = ctx.obj if ctx is not None and isinstance(ctx.obj, CliContext) else CliContext()
        try:
            return fn(*args, **kwargs)
        except (Exit, Abort):
            raise
        except LifeboatError as exc:
            state.output.error(exc)
            raise Exit(int(exc.exit_code)) from None
        except KeyboardInterrupt:
            sys.stderr.write("lifeboat: interrupted; nothing was committed by the interrupted step\n")
            raise Exit(int(ExitCode.INTERRUPTED)) from None
        except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, no traceback
            state.output.internal_error(exc)
            raise Exit(int(ExitCode.ERROR)) from None

    return wrapper  # type: ignore[return-value]


def _register() -> None:
    for name, module in (
        ("init", init_cmd),
        ("backup", backup_cmd),
        ("snapshots", snapshots_cmd),
        ("ls", ls_cmd),
        ("restore", restore_cmd),
        ("dump", dump_cmd),
        ("diff", diff_cmd),
        ("check", check_cmd),
        ("forget", forget_cmd),
        ("prune", prune_cmd),
        ("stats", stats_cmd),
        ("unlock", unlock_cmd),
        ("copy", copy_cmd),
    ):
        app.command(name, help=module.__doc__)(guarded(module.command))
    for name, module in (("key", key_cmd), ("repair", repair_cmd), ("config", config_cmd), ("pg", pg_cmd)):
        group = Group(name, help=module.__doc__ or "")
        for sub, fn in module.COMMANDS.items():
            group.command(sub, help=fn.__doc__)(guarded(fn))
        app.add_group(group)
    # PostgreSQL (docs/postgres.md): archive/restore commands PostgreSQL runs, and the routed kinds.
    app.command("wal-push", help=wal_cmd.push_command.__doc__)(guarded(wal_cmd.push_command))
    app.command("wal-fetch", help=wal_cmd.fetch_command.__doc__)(guarded(wal_cmd.fetch_command))
    app.command("backup-postgres", help=backup_postgres_cmd.__doc__, hidden=True)(guarded(backup_postgres_cmd.command))
    app.command("restore-postgres", help=restore_postgres_cmd.__doc__, hidden=True)(
        guarded(restore_postgres_cmd.command)
    )
    # A program's output (docs/cli.md): 'backup command' and 'restore command'.
    app.command("backup-command", help=command_cmd.backup.__doc__, hidden=True)(guarded(command_cmd.backup))
    app.command("restore-command", help=command_cmd.restore.__doc__, hidden=True)(guarded(command_cmd.restore))


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


def main() -> None:
    """Console entry point."""
    from lifeboat.app.cli import walfast

    code = walfast.main()  # wal-push / wal-fetch (also reached before any CLI import via lifeboat.app.cli.entry)
    if code is not None:
        sys.exit(code)
    from lifeboat.app.runtime import tune_process

    tune_process()
    app(args=route(sys.argv[1:]), prog_name="lifeboat")


if __name__ == "__main__":
    main()
