"""Restore SQLite databases: 'lifeboat restore sqlite SNAPSHOT --to PATH' (one database to a file)
or '--target-dir DIR' (each below DIR under its original path). Each restored file is checked
with PRAGMA integrity_check; an existing file is replaced only with --force."""

from __future__ import annotations

from typing import Annotated

from lifeboat.app.cli.context import CliContext
from lifeboat.app.cli.framework import Argument, Context, Exit, Option
from lifeboat.app.cli.options import HostOpt, NoLockOpt, PlanOpt, SourceOpt, TagOpt


def command(
    ctx: Context,
    snapshot: Annotated[str, Argument(help="Snapshot id prefix or 'latest'.")],
    to: Annotated[str | None, Option("--to", metavar="PATH", help="Write the database to this file.")] = None,
    target_dir: Annotated[
        str | None,
        Option("--target-dir", "-D", metavar="DIR", help="Write each database below DIR under its original path."),
    ] = None,
    database: Annotated[
        str | None,
        Option("--database", metavar="PATH", help="The database to restore, by its path when it was backed up."),
    ] = None,
    force: Annotated[bool, Option("--force", help="Replace existing database files.")] = False,
    source: SourceOpt = None,
    host: HostOpt = None,
    tag: TagOpt = None,
    no_lock: NoLockOpt = False,
    plan: PlanOpt = False,
) -> None:
    from lifeboat.app.cli.restore_cmd import restore_through
    from lifeboat.config.resolve import configured_source
    from lifeboat.errors import UsageError
    from lifeboat.sources.base import IntoDirectory, IntoServer, RestoreDestination

    state: CliContext = ctx.obj
    if (to is None) == (target_dir is None):
        raise UsageError("give --to PATH or --target-dir DIR", hint="--to writes one database to a file")
    into: RestoreDestination
    if to is not None:
        into = IntoServer({"path": to, "database": database or "", "force": force})
    else:
        assert target_dir is not None
        into = IntoDirectory(path=target_dir, subpath=(database or "").strip("/"), force=force)
    only = source[0] if source and len(source) == 1 else None
    entry = configured_source(state.config(), only)
    configured = entry if entry is not None and entry.type == "sqlite" else None  # its repository, if it names one
    done = restore_through(
        state,
        "sqlite",
        snapshot,
        into,
        source=source,
        host=host,
        tag=tag,
        no_lock=no_lock,
        plan=plan,
        configured=configured,
        kinds=("sqlite",),
    )
    if state.json:
        state.output.emit_json(done.to_json())
    else:
        state.output.line(done.result.describe())
    failure = done.result.failure()
    if failure is not None:
        state.output.error(failure)
        raise Exit(int(failure.exit_code))
