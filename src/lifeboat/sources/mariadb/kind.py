"""The ``mariadb`` kind: logical (mariadb-dump per database) or physical (mariabackup)
backups of a MariaDB or MySQL server (see the package's docstring)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from lifeboat.core.snapshot import Snapshot
from lifeboat.core.tree import Node, NodeType, Tree
from lifeboat.errors import LifeboatError, NotSupported, ObjectNotFound, UsageError, option
from lifeboat.sources.base import (
    BackupContext,
    BackupOptions,
    IntoDirectory,
    IntoServer,
    Produced,
    RestoreContext,
    RestoreDestination,
    RestoreInto,
    SourceKind,
    Verification,
    describe_into,
)
from lifeboat.sources.mariadb.connection import (
    CONNECTION_KEYS,
    connect,
    connection_settings,
    programs_environment,
    read_password,
)
from lifeboat.sources.tools.mariadb import replay_hint

if TYPE_CHECKING:
    from lifeboat.config.model import MariadbSourceConfig
    from lifeboat.sources.plan import RestorePlan

SNAPSHOT_KIND = "mariadb"
LOGICAL, PHYSICAL = "logical", "physical"


@dataclass(frozen=True)
class MariadbRequest:
    """Back up the server the connection settings name, by ``method``."""

    source: str
    method: str
    settings: Mapping[str, Any]  # the connection keys (host, port, socket, user, password_file, password_env)
    databases: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    environment: Mapping[str, str] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class MariadbRestore:
    """What a restore did, for the front ends."""

    snapshot: Snapshot
    method: str
    what: str  # in words
    details: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"snapshot": self.snapshot.id, "method": self.method, **self.details}

    def failure(self) -> LifeboatError | None:
        return None

    def describe(self) -> str:
        return self.what


class MariadbSource(SourceKind):
    name = "mariadb"
    config_model = "lifeboat.config.model:MariadbSourceConfig"
    snapshot_kinds = (SNAPSHOT_KIND,)
    restores_into = frozenset({RestoreInto.SERVER, RestoreInto.DIRECTORY})
    runs_programs = True

    def label(self, request: MariadbRequest) -> str:
        return f"backing up MariaDB ({request.method})"

    def request(self, config: MariadbSourceConfig | None, options: BackupOptions) -> MariadbRequest:
        """The configured source's keys, each over-ridden by a setting given."""
        settings = options.settings
        method = settings.get("method") or (config.method if config is not None else LOGICAL)
        if method not in (LOGICAL, PHYSICAL):
            raise UsageError(f"unknown MariaDB backup method {method!r}", hint="use logical or physical")
        databases = tuple(settings.get("databases") or (config.databases if config is not None else ()))
        exclude = tuple(settings.get("exclude_databases") or (config.exclude_databases if config is not None else ()))
        if method == PHYSICAL and (databases or exclude):
            raise UsageError(f"method physical backs up the whole server: {option('databases')} is for method logical")
        return MariadbRequest(
            source=options.source or "mariadb",
            method=method,
            settings=connection_settings(config, settings),
            databases=databases,
            exclude=exclude,
            environment=options.environment,
        )

    def check(self, request: MariadbRequest) -> None:
        """The password can be read (a missing file fails before the repository is opened)."""
        read_password(request.settings, request.environment)

    def backup(self, ctx: BackupContext, request: MariadbRequest) -> Produced:
        from lifeboat.sources.files.archiver import ArchiveResult
        from lifeboat.sources.mariadb import logical, physical
        from lifeboat.sources.tools.mariadb import find_program

        connection = connect(request.settings, request.environment)
        environment = programs_environment(request.environment, request.settings)
        server = logical.server_facts(find_program("client", environment), connection, environment, ctx)
        record: dict[str, Any] = {
            "method": request.method,
            "server_version": server.version,
            "connection": connection.describe(),
        }
        if request.method == PHYSICAL:
            done = physical.back_up(ctx, connection, environment)
            nodes: tuple[Node, ...] = (done.node,)
            position = done.reader.binlog_position()
            record["binlog"] = position if position is not None else "off"
            record["checkpoints"] = done.reader.checkpoints()
            record["files"] = len(done.reader.files)
        else:
            dump = find_program("dump", environment)
            chosen = logical.chosen_databases(server, request.databases, request.exclude, connection.describe())
            dumped = [
                logical.dump_database(ctx, dump, connection, name, binlog=server.binlog, environment=environment)
                for name in chosen
            ]
            nodes = tuple(d.node for d in dumped)
            record["binlog"] = "on" if server.binlog else "off"
            record["databases"] = {
                d.name: {
                    "file": d.node.name,
                    "bytes": d.node.size,
                    "charset": server.schemata[d.name][0],
                    "collation": server.schemata[d.name][1],
                    **({"binlog": d.binlog} if d.binlog else {}),
                }
                for d in dumped
            }
        tree = ctx.saver.save_tree(Tree(nodes))
        total = sum(node.size for node in nodes)
        return Produced(
            tree=tree,
            source=request.source,
            kind=SNAPSHOT_KIND,
            paths=tuple(node.name for node in nodes),
            archive=ArchiveResult(tree=tree, files_new=len(nodes), bytes_total=total),
            extra={"mariadb": record},
            record=record,
        )

    def restore(self, ctx: RestoreContext, snapshot: Snapshot, into: RestoreDestination) -> MariadbRestore:
        """Physical: into a data directory. Logical: a database (or one table) into a running
        server, or its SQL into a stream (``settings["sql"]``)."""
        if self._method(snapshot, into) == PHYSICAL:
            assert isinstance(into, IntoDirectory)
            return self._restore_physical(ctx, snapshot, into)
        assert isinstance(into, IntoServer)
        return self._restore_logical(ctx, snapshot, into.settings)

    def _method(self, snapshot: Snapshot, into: RestoreDestination) -> str:
        """The backup's method, refused unless ``into`` fits it (a directory for a physical one)."""
        self.check_restore(into)
        method = _record(snapshot).get("method")
        if isinstance(into, IntoDirectory) and method != PHYSICAL:
            raise NotSupported(
                f"snapshot {snapshot.short_id} is a logical MariaDB backup: it restores into a server",
                hint=f"give {option('database')} and the server to load it into",
            )
        if isinstance(into, IntoServer) and method != LOGICAL:
            raise NotSupported(
                f"snapshot {snapshot.short_id} is a physical MariaDB backup: it restores into a data directory",
                hint=f"give {option('target_dir')}",
            )
        return str(method)

    def plan(self, ctx: RestoreContext, snapshot: Snapshot, into: RestoreDestination) -> RestorePlan:
        """Physical: the stream extracted into the data directory (empty or absent, as the
        restore demands). Logical: the chosen dump loaded into the server, or written as SQL."""
        from lifeboat.sources.mariadb import logical, physical
        from lifeboat.sources.plan import PlannedWrite, judge_space, new_plan, path_state

        method = self._method(snapshot, into)
        plan = new_plan(self.name, snapshot, describe_into(into))
        if method == PHYSICAL:
            assert isinstance(into, IntoDirectory)
            directory = os.path.abspath(into.path)
            node = _file(ctx, snapshot, physical.STREAM_NAME)
            plan.writes.append(PlannedWrite("data directory", directory, node.size, 1, state=path_state(directory)))
            plan.attempt(
                lambda: physical.check_directory(directory, force=into.force), "the data directory can be written"
            )
            judge_space(plan, force=into.force)
            plan.unchecked.append("the prepare step of mariabackup (runs after the extraction)")
            return plan
        assert isinstance(into, IntoServer)
        settings = into.settings
        nodes = ctx.loader.load_tree(snapshot.tree).nodes
        database, node = logical.pick_dump(logical.dumps_of(nodes), settings.get("database"), snapshot.short_id)
        table = settings.get("table")
        what = f"table {table!r} of database {database!r}" if table else f"database {database!r}"
        sql_file = settings.get("sql_file")
        if sql_file:
            plan.writes.append(PlannedWrite(f"SQL of {what}", str(sql_file), node.size, 1, state=path_state(sql_file)))
            plan.attempt(
                lambda: _refuse_sql_file(str(sql_file), bool(settings.get("force"))), "the SQL file can be written"
            )
            judge_space(plan, force=bool(settings.get("force")))
        elif settings.get("sql") is not None:
            plan.writes.append(PlannedWrite(f"SQL of {what}", "standard output", node.size, 1, on_disk=False))
        else:
            into_name = settings.get("as") or database
            plan.writes.append(
                PlannedWrite(f"{what} as database {into_name!r}", "the server", node.size, 1, on_disk=False)
            )
            plan.unchecked.append(
                f"whether database {into_name!r} exists on the server (the restore refuses it without "
                f"{option('force')}) and the server's free space"
            )
        return plan

    def _restore_physical(self, ctx: RestoreContext, snapshot: Snapshot, into: IntoDirectory) -> MariadbRestore:
        from lifeboat.sources.mariadb import physical

        node = _file(ctx, snapshot, physical.STREAM_NAME)
        environment = programs_environment(ctx.environment, connection_settings(ctx.config, {}))
        done = physical.restore(ctx, node, into.path, force=into.force, environment=environment)
        where = ""
        if done.binlog:
            where = f"; binlog position {done.binlog['file']}:{done.binlog['position']}"
            where += f" (GTID {done.binlog['gtid']})" if done.binlog.get("gtid") else ""
            where += "\n" + replay_hint(done.binlog)
        return MariadbRestore(
            snapshot,
            PHYSICAL,
            f"restored and prepared snapshot {snapshot.short_id} into {done.directory}{where}",
            {"target_dir": done.directory, "binlog": done.binlog or "off", "owner_uid": done.owner},
        )

    def _restore_logical(self, ctx: RestoreContext, snapshot: Snapshot, settings: Mapping[str, Any]) -> MariadbRestore:
        from lifeboat.sources.mariadb import logical

        nodes = ctx.loader.load_tree(snapshot.tree).nodes
        database, node = logical.pick_dump(logical.dumps_of(nodes), settings.get("database"), snapshot.short_id)
        sql: IO[bytes] | None = settings.get("sql")
        target = logical.LogicalTarget(
            database=database,
            into=settings.get("as") or database,
            table=settings.get("table") or None,
            force=bool(settings.get("force")),
            sql=sql,
        )
        what = f"table {target.table!r} of database {database!r}" if target.table else f"database {database!r}"
        details: dict[str, Any] = {"database": database, "table": target.table}
        if sql is not None:
            written = logical.write_sql(ctx, node, target)
            details["bytes"] = written
            return MariadbRestore(
                snapshot, LOGICAL, f"wrote the SQL of {what} of snapshot {snapshot.short_id}", details
            )
        values = connection_settings(ctx.config, {k: settings.get(k) for k in CONNECTION_KEYS})
        connection = connect(values, ctx.environment)
        environment = programs_environment(ctx.environment, values)
        loaded = logical.load_into_server(ctx, node, target, connection, _record(snapshot), environment)
        details.update({"into": target.into, "server": connection.describe(), "bytes": loaded})
        text = (
            f"restored {what} of snapshot {snapshot.short_id} into database {target.into!r} on {connection.describe()}"
        )
        databases = _record(snapshot).get("databases")
        position = databases.get(database, {}).get("binlog") if isinstance(databases, Mapping) else None
        if isinstance(position, Mapping) and position.get("file") and not target.table:
            details["binlog"] = dict(position)
            text += "\n" + replay_hint(position, database)
        return MariadbRestore(snapshot, LOGICAL, text, details)

    def verify(self, ctx: RestoreContext, snapshot: Snapshot) -> Verification:
        """Logical: each dump starts with mariadb-dump's header and ends with its ``-- Dump
        completed`` line. Physical: the xbstream reads whole (every chunk's checksum, every
        file ended) and holds xtrabackup_checkpoints."""
        from lifeboat.sources.mariadb.dumpfile import dump_problems
        from lifeboat.sources.mariadb.logical import dumps_of
        from lifeboat.sources.mariadb.physical import STREAM_NAME
        from lifeboat.sources.mariadb.xbstream import XbstreamReader

        record = _record(snapshot)
        nodes = ctx.loader.load_tree(snapshot.tree).nodes
        problems: list[str] = []
        if record.get("method") == PHYSICAL:
            node = next((n for n in nodes if n.name == STREAM_NAME and n.type is NodeType.FILE), None)
            if node is None:
                return Verification("mariabackup's stream", (f"the snapshot holds no {STREAM_NAME}",))
            reader = XbstreamReader()
            for data in ctx.loader.load_blobs(node.content):
                ctx.events.check()
                reader.feed(data)
            reader.end()
            problems.extend(f"{STREAM_NAME}: {problem}" for problem in reader.problems)
            if not reader.problems and not reader.checkpoints().get("backup_type"):
                problems.append(f"{STREAM_NAME}: holds no xtrabackup_checkpoints")
            return Verification(f"mariabackup's stream ({len(reader.files)} files)", tuple(problems))
        dumps = dumps_of(nodes)
        recorded = record.get("databases")
        for name in recorded if isinstance(recorded, Mapping) else ():
            if name not in dumps:
                problems.append(f"the dump of database {name!r} is missing")
        for node in dumps.values():
            if sum(ctx.loader.raw_lengths(node.content)) != node.size:
                problems.append(f"{node.name}: its blobs do not add up to its recorded size")
                continue
            head = b"".join(ctx.loader.load_blobs(node.content[:1]))
            tail = b"".join(ctx.loader.load_blobs(node.content[-2:]))
            problems.extend(dump_problems(node.name, head, tail))
        return Verification(f"{len(dumps)} mariadb-dump file(s) whole", tuple(problems))

    def describe(self, snapshot: Snapshot) -> list[str]:
        record = _record(snapshot)
        if not record:
            return []
        lines = [f"MariaDB {record.get('server_version', '?')}, {record.get('method', '?')} backup"]
        databases = record.get("databases")
        if isinstance(databases, Mapping):
            lines.append(f"databases: {', '.join(sorted(databases))}")
        binlog = record.get("binlog")
        if isinstance(binlog, Mapping):
            lines.append(f"binlog position {binlog.get('file')}:{binlog.get('position')}")
        elif binlog == "off":
            lines.append("the binary log was off: no point-in-time replay past this backup")
        return lines


def _record(snapshot: Snapshot) -> Mapping[str, Any]:
    if snapshot.kind != SNAPSHOT_KIND:
        raise NotSupported(f"snapshot {snapshot.short_id} is a {snapshot.kind} backup, not a MariaDB one")
    record = snapshot.extra.get("mariadb", {})
    return record if isinstance(record, Mapping) else {}


def _refuse_sql_file(path: str, force: bool) -> None:
    """What ``--sql FILE`` meets when it opens the file (it never overwrites without ``force``)."""
    if os.path.lexists(path) and not force:
        raise UsageError(f"{path} exists", hint=f"name a new file, or pass {option('force')} to overwrite it")


def _file(ctx: RestoreContext, snapshot: Snapshot, name: str) -> Any:
    for node in ctx.loader.load_tree(snapshot.tree).nodes:
        if node.name == name and node.type is NodeType.FILE:
            return node
    raise ObjectNotFound(f"snapshot {snapshot.short_id} holds no {name}")
