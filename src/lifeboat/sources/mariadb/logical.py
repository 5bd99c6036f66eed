"""Logical backups: mariadb-dump of each database streamed into the repository as
``<database>.sql``, and their restore — a database, or one table filtered out of its dump —
through the mariadb client (or as SQL into a file)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from lifeboat.core.tree import Node, NodeType
from lifeboat.errors import IntegrityError, ObjectNotFound, RestoreRefused, SourceError, UsageError, option
from lifeboat.sources.base import BackupContext, RestoreContext
from lifeboat.sources.mariadb.dumpfile import DumpWatcher, TableFilter
from lifeboat.sources.stream import check_stream_name, store_chunks, stream_node
from lifeboat.sources.tools.mariadb import (
    SYSTEM_DATABASES,
    Connection,
    dump_argv,
    find_program,
    load_argv,
    options_file,
    quote_identifier,
    quote_string,
    run_query,
)
from lifeboat.sources.tools.program import Consumer, Producer

SUFFIX = ".sql"


@dataclass(frozen=True)
class Server:
    """What a backup learns of the server before it dumps anything."""

    version: str
    binlog: bool  # the binary log is on
    schemata: dict[str, tuple[str, str]]  # database → (character set, collation)


def server_facts(
    client: str, connection: Connection, environment: Mapping[str, str] | None, ctx: BackupContext | RestoreContext
) -> Server:
    """The server's version, whether its binary log is on, and its databases; a server that
    cannot be reached (or refuses the password) is a SourceError naming the client's words."""
    on_stderr = ctx.events.program_output
    version, log_bin = run_query(
        client, connection, "SELECT VERSION(), @@log_bin", environment=environment, on_stderr=on_stderr
    )[0][:2]
    rows = run_query(
        client,
        connection,
        "SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA",
        environment=environment,
        on_stderr=on_stderr,
    )
    schemata = {row[0]: (row[1], row[2]) for row in rows if len(row) >= 3}
    return Server(version=version, binlog=log_bin == "1", schemata=schemata)


def chosen_databases(server: Server, databases: tuple[str, ...], exclude: tuple[str, ...], where: str) -> list[str]:
    """The databases named (each must exist), else every one but the system databases; less the excluded."""
    if databases:
        missing = [name for name in databases if name not in server.schemata]
        if missing:
            raise SourceError(
                f"database {missing[0]!r} does not exist on {where}",
                hint=f"no snapshot was saved; check the source's {option('databases')}",
            )
        chosen = list(dict.fromkeys(databases))
    else:
        chosen = sorted(name for name in server.schemata if name not in SYSTEM_DATABASES)
    chosen = [name for name in chosen if name not in exclude]
    if not chosen:
        raise SourceError(
            f"no database to back up on {where}", hint="no snapshot was saved; create one or fix the list"
        )
    for name in chosen:
        try:
            check_stream_name(name + SUFFIX)
        except UsageError:
            raise SourceError(f"database {name!r} cannot be stored under a file name") from None
    return chosen


@dataclass
class DumpedDatabase:
    name: str
    node: Node
    binlog: dict[str, str] = field(default_factory=dict)


def dump_database(
    ctx: BackupContext,
    dump: str,
    connection: Connection,
    database: str,
    *,
    binlog: bool,
    environment: Mapping[str, str] | None,
) -> DumpedDatabase:
    """Run mariadb-dump for ``database`` and store its output as it comes; SourceError if it
    fails or its output is not a whole dump."""
    watcher = DumpWatcher()
    with (
        options_file(connection) as options,
        Producer(
            dump_argv(dump, options, database, binlog=binlog), env=environment, on_stderr=ctx.events.program_output
        ) as running,
    ):
        stored = store_chunks(
            ctx.saver,
            ctx.chunker.chunks(running.stdout),
            ctx.events.progress,
            cancel=ctx.events.check,
            on_chunk=watcher.see,
        )
        running.finish()
    problems = watcher.problems(database + SUFFIX)
    if problems:
        raise SourceError(f"mariadb-dump's output is not a whole dump: {problems[0]}")
    watcher.tail_gtid()
    node = stream_node(database + SUFFIX, stored)
    ctx.events.progress.file_done()
    return DumpedDatabase(database, node, dict(watcher.binlog))


# --- restoring -----------------------------------------------------------------------------


def dumps_of(nodes: Iterable[Node]) -> dict[str, Node]:
    """The snapshot's dumps by database name."""
    return {
        node.name[: -len(SUFFIX)]: node for node in nodes if node.type is NodeType.FILE and node.name.endswith(SUFFIX)
    }


def pick_dump(dumps: Mapping[str, Node], database: str | None, short_id: str) -> tuple[str, Node]:
    """The dump of ``database``, or the only one."""
    if database:
        node = dumps.get(database)
        if node is None:
            raise ObjectNotFound(
                f"snapshot {short_id} holds no dump of database {database!r} (it holds: {', '.join(sorted(dumps))})"
            )
        return database, node
    if len(dumps) == 1:
        return next(iter(dumps.items()))
    raise UsageError(
        f"snapshot {short_id} holds {len(dumps)} databases: name one with {option('database')}",
        hint=f"it holds: {', '.join(sorted(dumps))}",
    )


def dump_pieces(ctx: RestoreContext, node: Node) -> Iterator[bytes]:
    """The dump's bytes, verified blob by blob; its length checked at the end."""
    total = 0
    for data in ctx.loader.load_blobs(node.content):
        ctx.events.check()
        total += len(data)
        ctx.events.progress.bytes_read(len(data))
        yield data
    if total != node.size:
        raise IntegrityError(f"{node.name}: its stored content has {total} bytes, its entry says {node.size}")


def statements(ctx: RestoreContext, node: Node, table: str | None) -> tuple[Iterator[bytes], TableFilter | None]:
    """What to load: the whole dump, or only ``table``'s statements."""
    if not table:
        return dump_pieces(ctx, node), None
    chosen = TableFilter(table)
    return chosen.lines(dump_pieces(ctx, node)), chosen


@dataclass(frozen=True)
class LogicalTarget:
    """Where a logical restore goes: a server's database (created if missing), or SQL into ``sql``."""

    database: str  # in the snapshot
    into: str  # on the server
    table: str | None = None
    force: bool = False
    sql: IO[bytes] | None = None


def write_sql(ctx: RestoreContext, node: Node, target: LogicalTarget) -> int:
    """Write the dump (or the table's statements) into ``target.sql``; the bytes written."""
    assert target.sql is not None
    pieces, chosen = statements(ctx, node, target.table)
    written = 0
    for piece in pieces:
        target.sql.write(piece)
        written += len(piece)
    target.sql.flush()
    _table_found(chosen, target)
    return written


def load_into_server(
    ctx: RestoreContext,
    node: Node,
    target: LogicalTarget,
    connection: Connection,
    record: Mapping[str, Any],
    environment: Mapping[str, str] | None,
) -> int:
    """Load the dump (or one table of it) into ``target.into`` on the server; refuses a
    database (or, for one table, a table) that exists unless forced. The bytes loaded."""
    client = find_program("client", environment)
    server = server_facts(client, connection, environment, ctx)
    exists = target.into in server.schemata
    on_stderr = ctx.events.program_output
    if exists and not target.table and not target.force:
        raise RestoreRefused(
            f"database {target.into!r} already exists on {connection.describe()}",
            hint=f"restore under another name ({option('as')}), drop it, or pass {option('force')} to load into it "
            "(the dump's tables replace those of the same name)",
        )
    if exists and target.table and not target.force:
        found = run_query(
            client,
            connection,
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = "  # noqa: S608 - literals quoted
            f"{quote_string(target.into)} AND TABLE_NAME = {quote_string(target.table)}",
            environment=environment,
            on_stderr=on_stderr,
        )
        if found and found[0][0] != "0":
            raise RestoreRefused(
                f"table {target.table!r} already exists in database {target.into!r} on {connection.describe()}",
                hint=f"restore into another database ({option('as')}), or pass {option('force')} to replace it",
            )
    if not exists:
        charset, collation = _charset(record, target.database)
        create = f"CREATE DATABASE {quote_identifier(target.into)}"
        if charset:
            create += f" CHARACTER SET {charset}" + (f" COLLATE {collation}" if collation else "")
        run_query(client, connection, create, environment=environment, on_stderr=on_stderr)
    pieces, chosen = statements(ctx, node, target.table)
    try:
        with (
            options_file(connection) as options,
            Consumer(
                load_argv(client, options, target.into), env=environment, on_stderr=on_stderr, stdout_to_stderr=True
            ) as running,
        ):
            for piece in pieces:
                running.write(piece)
            _table_found(chosen, target)  # before the end: the client never sees a stream that held nothing
            running.finish()
    except ObjectNotFound:
        if not exists:  # the database made for the table holds nothing: take it away again
            drop = f"DROP DATABASE IF EXISTS {quote_identifier(target.into)}"
            run_query(client, connection, drop, environment=environment, on_stderr=on_stderr)
        raise
    ctx.events.progress.file_done()
    return running.written


def _table_found(chosen: TableFilter | None, target: LogicalTarget) -> None:
    if chosen is not None and not chosen.found:
        raise ObjectNotFound(f"the dump of database {target.database!r} holds no table {target.table!r}")


def _charset(record: Mapping[str, Any], database: str) -> tuple[str, str]:
    """The database's character set and collation the backup recorded (names only: checked)."""
    entry = record.get("databases", {}).get(database, {}) if isinstance(record.get("databases"), Mapping) else {}
    charset, collation = str(entry.get("charset") or ""), str(entry.get("collation") or "")
    if not (charset.replace("_", "").isalnum() and collation.replace("_", "").isalnum()):
        return "", ""
    return charset, collation
