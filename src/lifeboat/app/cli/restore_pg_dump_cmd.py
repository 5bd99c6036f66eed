"""Restore from a pg_dump snapshot: one or more databases into a PostgreSQL server (under a new
name with --as; one schema or some tables; --clean, --create, --jobs), the globals (roles,
tablespaces), or one database as SQL (--sql FILE, '-' for standard output). A database that
exists is restored into only with --force."""

from __future__ import annotations

from typing import Annotated

from lifeboat.app.cli.context import CliContext
from lifeboat.app.cli.framework import Argument, Context, Option
from lifeboat.app.cli.options import NoLockOpt, PlanOpt, TagOpt
from lifeboat.app.cli.pg_options import DbnameOpt, HostOpt, PortOpt, UserOpt


def command(
    ctx: Context,
    snapshot: Annotated[str, Argument(help="Snapshot id prefix, or 'latest' (the newest pg_dump snapshot).")],
    source: Annotated[
        list[str] | None,
        Option(
            "--source",
            "-s",
            metavar="SOURCE",
            help="The configured pg_dump source (its connection is the default target).",
        ),
    ] = None,
    database: Annotated[
        list[str] | None, Option("--database", "-D", metavar="NAME", help="A database of the snapshot (repeatable).")
    ] = None,
    all_databases: Annotated[bool, Option("--all", help="Every database of the snapshot.")] = False,
    globals_: Annotated[
        bool, Option("--globals", help="Also restore the globals (roles, tablespaces), first.")
    ] = False,
    rename: Annotated[
        str | None, Option("--as", metavar="NEWNAME", help="Restore the one database under this name.")
    ] = None,
    host: HostOpt = None,
    port: PortOpt = None,
    user: UserOpt = None,
    dbname: DbnameOpt = None,
    clean: Annotated[bool, Option("--clean", help="Drop the objects restored before creating them.")] = False,
    create: Annotated[
        bool, Option("--create", help="Let pg_restore create the database (its archived name and properties).")
    ] = False,
    schema: Annotated[
        list[str] | None, Option("--schema", "-n", metavar="SCHEMA", help="Only this schema (repeatable).")
    ] = None,
    table: Annotated[
        list[str] | None, Option("--table", "-t", metavar="TABLE", help="Only this table (repeatable).")
    ] = None,
    data_only: Annotated[bool, Option("--data-only", help="Only the data, no schema.")] = False,
    schema_only: Annotated[bool, Option("--schema-only", help="Only the schema, no data.")] = False,
    jobs: Annotated[
        int | None,
        Option("--jobs", "-j", metavar="N", help="Parallel pg_restore (writes the archive to a temporary file first)."),
    ] = None,
    sql: Annotated[
        str | None, Option("--sql", metavar="FILE", help="Write the database's SQL to FILE ('-': standard output).")
    ] = None,
    force: Annotated[bool, Option("--force", help="Restore into a database that exists.")] = False,
    tag: TagOpt = None,
    no_lock: NoLockOpt = False,
    plan: PlanOpt = False,
) -> None:
    """Restore databases or globals of a pg_dump snapshot into a server, or one database as SQL."""
    from lifeboat.app.cli.restore_cmd import restore_through
    from lifeboat.config.resolve import expect_kind
    from lifeboat.errors import UsageError
    from lifeboat.sources.base import IntoServer

    state: CliContext = ctx.obj
    if sql == "-" and state.json:
        raise UsageError("--sql - writes the SQL to standard output: it cannot go with --json", hint="--sql FILE")
    only = source[0] if source and len(source) == 1 else None
    configured = expect_kind(state.config(), only, "pg_dump")
    settings = {
        "database": tuple(database or ()),
        "all": all_databases,
        "globals": globals_,
        "as": rename,
        "host": host,
        "port": port,
        "user": user,
        "dbname": dbname,
        "clean": clean,
        "create": create,
        "schema": tuple(schema or ()),
        "table": tuple(table or ()),
        "data_only": data_only,
        "schema_only": schema_only,
        "jobs": jobs,
        "sql": sql,
        "force": force,
    }
    done = restore_through(
        state,
        "pg_dump",
        snapshot,
        IntoServer(settings),
        source=source,
        tag=tag,
        no_lock=no_lock,
        configured=configured,
        kinds=("pg_dump",),  # latest: the newest pg_dump snapshot (of --source)
        plan=plan,
    )
    if state.json:
        state.output.emit_json(done.to_json())
    elif sql == "-":
        state.output.info(done.result.describe())  # standard output holds the SQL
    else:
        state.output.line(done.result.describe())
