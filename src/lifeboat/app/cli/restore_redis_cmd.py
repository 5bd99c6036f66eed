"""Restore a Redis server's RDB into its directory: 'lifeboat restore redis SNAPSHOT --target-dir DIR'.

The server must be stopped (it loads dir/dbfilename when it starts); --start-port starts a
fresh redis-server on the restored directory, for a drill or a check."""

from __future__ import annotations

from typing import Annotated

from lifeboat.app.cli.context import CliContext
from lifeboat.app.cli.framework import Argument, Context, Option
from lifeboat.app.cli.options import HostOpt, NoLockOpt, PlanOpt, SourceOpt, TagOpt


def command(
    ctx: Context,
    snapshot: Annotated[str, Argument(help="Snapshot id prefix or 'latest'.")],
    target_dir: Annotated[
        str, Option("--target-dir", "-D", metavar="DIR", help="The stopped server's directory (its 'dir').")
    ],
    dbfilename: Annotated[
        str | None,
        Option("--dbfilename", metavar="NAME", help="The file to write (default: the source's dbfilename, dump.rdb)."),
    ] = None,
    force: Annotated[bool, Option("--force", help="Replace an existing RDB file.")] = False,
    pid_file: Annotated[
        str | None, Option("--pid-file", metavar="FILE", help="Refuse if the PID in this file is alive.")
    ] = None,
    start_port: Annotated[
        int | None,
        Option("--start-port", metavar="PORT", min=1, max=65535, help="Then start redis-server on it, on this port."),
    ] = None,
    appendonly: Annotated[
        bool, Option("--appendonly", help="With --start-port: then turn the AOF on (CONFIG SET appendonly yes).")
    ] = False,
    source: SourceOpt = None,
    host: HostOpt = None,
    tag: TagOpt = None,
    no_lock: NoLockOpt = False,
    plan: PlanOpt = False,
) -> None:
    from lifeboat.app.cli.restore_cmd import restore_through
    from lifeboat.config.resolve import configured_source
    from lifeboat.errors import UsageError
    from lifeboat.sources.base import IntoServer

    state: CliContext = ctx.obj
    if appendonly and not start_port:
        raise UsageError("--appendonly goes with --start-port", hint="it turns the AOF on in the server it starts")
    only = source[0] if source and len(source) == 1 else None
    entry = configured_source(state.config(), only)
    configured = entry if entry is not None and entry.type == "redis" else None
    settings = {
        "directory": target_dir,
        "dbfilename": dbfilename,
        "force": force,
        "pid_file": pid_file,
        "start_port": start_port,
        "appendonly": appendonly,
    }
    into = IntoServer({key: value for key, value in settings.items() if value})
    done = restore_through(
        state,
        "redis",
        snapshot,
        into,
        source=source,
        host=host,
        tag=tag,
        no_lock=no_lock,
        plan=plan,
        configured=configured,
        kinds=("redis",),
    )
    if state.json:
        state.output.emit_json(done.to_json())
        return
    state.output.line(done.result.describe())
