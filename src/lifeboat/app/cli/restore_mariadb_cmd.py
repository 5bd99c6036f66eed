"""Restore a MariaDB backup: a database or one table of a logical backup into a running
server (or as SQL), or a physical backup into an empty data directory
('lifeboat restore mariadb SNAPSHOT ...'; docs/sources.md)."""

from __future__ import annotations

import sys
from typing import IO, Annotated, Any

from lifeboat.app.cli.context import CliContext
from lifeboat.app.cli.framework import Argument, Context, Option
from lifeboat.app.cli.options import HostOpt, NoLockOpt, PlanOpt, TagOpt


def command(
    ctx: Context,
    snapshot: Annotated[str, Argument(help="Snapshot id prefix or 'latest'.")],
    source: Annotated[
        str | None,
        Option("--source", "-s", metavar="SOURCE", help="A configured mariadb source (its snapshots, its server)."),
    ] = None,
    database: Annotated[
        str | None, Option("--database", "-d", metavar="DB", help="The database to restore (logical backups).")
    ] = None,
    as_name: Annotated[
        str | None, Option("--as", metavar="NEWNAME", help="Restore into this database instead (created if missing).")
    ] = None,
    table: Annotated[str | None, Option("--table", metavar="TABLE", help="Restore only this table.")] = None,
    sql: Annotated[
        str | None, Option("--sql", metavar="FILE", help="Write the SQL to FILE ('-': standard output), load nothing.")
    ] = None,
    target_dir: Annotated[
        str | None,
        Option("--target-dir", "-D", metavar="DIR", help="Physical backups: the data directory (empty or absent)."),
    ] = None,
    db_host: Annotated[str | None, Option("--db-host", metavar="HOST", help="The server's host.")] = None,
    db_port: Annotated[int | None, Option("--db-port", metavar="PORT", min=1, max=65535, help="Its port.")] = None,
    socket: Annotated[str | None, Option("--socket", metavar="PATH", help="Its Unix socket.")] = None,
    user: Annotated[str | None, Option("--user", "-u", metavar="USER", help="The user to connect as.")] = None,
    password_file: Annotated[
        str | None, Option("--password-file", metavar="FILE", help="A file holding the password (first line).")
    ] = None,
    force: Annotated[
        bool,
        Option("--force", help="Load into a database (or over a table) that exists; extract into a non-empty DIR."),
    ] = False,
    host: HostOpt = None,
    tag: TagOpt = None,
    no_lock: NoLockOpt = False,
    plan: PlanOpt = False,
) -> None:
    """Restore a MariaDB backup: a database or table into a server, its SQL, or a data directory."""
    from lifeboat.app.cli.restore_cmd import restore_through
    from lifeboat.config.resolve import expect_kind
    from lifeboat.errors import UsageError
    from lifeboat.sources.base import IntoDirectory, IntoServer, RestoreDestination

    state: CliContext = ctx.obj
    configured = expect_kind(state.config(), source, "mariadb")
    into: RestoreDestination
    logical_options = [
        name
        for name, value in (("--database", database), ("--as", as_name), ("--table", table), ("--sql", sql))
        if value
    ]
    if target_dir:
        if logical_options:
            raise UsageError(
                f"--target-dir restores a physical backup; {logical_options[0]} is for logical backups",
                hint="leave out one of them",
            )
        into = IntoDirectory(path=target_dir, force=force)
        done = restore_through(
            state,
            "mariadb",
            snapshot,
            into,
            source=[source] if source else None,
            host=host,
            tag=tag,
            no_lock=no_lock,
            plan=plan,
            configured=configured,
            kinds=("mariadb",),
        )
    else:
        if sql == "-" and state.json:
            raise UsageError("--sql - writes SQL to stdout; it has no --json form", hint="write it to a file instead")
        settings: dict[str, Any] = {
            "database": database,
            "as": as_name,
            "table": table,
            "force": force,
            "host": db_host,
            "port": db_port,
            "socket": socket,
            "user": user,
            "password_file": password_file,
        }
        output: IO[bytes] | None = None
        try:
            if sql == "-":
                output = sys.stdout.buffer
            elif sql and plan:
                settings["sql_file"] = sql  # a plan opens nothing: it says whether the file could be written
            elif sql:
                output = open(sql, "xb" if not force else "wb")  # noqa: SIM115 - closed below
            settings["sql"] = output
            into = IntoServer(settings=settings)
            done = restore_through(
                state,
                "mariadb",
                snapshot,
                into,
                source=[source] if source else None,
                host=host,
                tag=tag,
                no_lock=no_lock,
                plan=plan,
                configured=configured,
                kinds=("mariadb",),
            )
        except FileExistsError:
            raise UsageError(f"{sql} exists", hint="name a new file, or pass --force to overwrite it") from None
        finally:
            if output is not None and output is not sys.stdout.buffer:
                output.close()
    if state.json:
        state.output.emit_json(done.to_json())
        return
    if sql == "-":
        state.output.info(done.result.describe())  # stdout holds the SQL
    else:
        state.output.line(done.result.describe())
