"""The ``redis`` kind: the RDB from ``redis-cli --rdb -`` backed up as ``dump.rdb``, restored
into a stopped server's directory, checked with ``redis-check-rdb`` (see the package's docstring)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from lifeboat.core.snapshot import Snapshot
from lifeboat.core.tree import Node, NodeType
from lifeboat.errors import IntegrityError, LifeboatError, NotSupported, RestoreRefused, SourceError, UsageError, option
from lifeboat.sources.base import (
    BackupContext,
    BackupOptions,
    IntoServer,
    Produced,
    RestoreContext,
    RestoreDestination,
    RestoreInto,
    ScratchInstance,
    SourceKind,
    Verification,
    describe_into,
)
from lifeboat.sources.command.spec import program_environment
from lifeboat.sources.filewrite import owner_of_directory, write_node
from lifeboat.sources.tools.redis import RedisConnection

if TYPE_CHECKING:
    from lifeboat.config.model import RedisSourceConfig
    from lifeboat.core.protocols import BlobLoader
    from lifeboat.sources.plan import RestorePlan
    from lifeboat.sources.redis.rdb import RdbCheck

SNAPSHOT_KIND = "redis"
RDB_NAME = "dump.rdb"  # the file's name in the snapshot


@dataclass(frozen=True)
class RedisRequest:
    """Fetch the RDB of the server ``connection`` reaches."""

    connection: RedisConnection
    source: str


@dataclass(frozen=True)
class RedisRestore:
    """An RDB written into a server's directory (and the server started on it, if asked)."""

    snapshot: Snapshot
    path: str
    size: int
    check: RdbCheck
    server: dict[str, Any] = field(default_factory=dict)  # pid, port, log of a started server

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"snapshot": self.snapshot.id, "path": self.path, "bytes": self.size}
        doc["check"] = self.check.to_json()
        if self.server:
            doc["server"] = self.server
        return doc

    def failure(self) -> LifeboatError | None:
        return None

    def describe(self) -> str:
        from lifeboat.core.units import format_bytes

        keys = f", {self.check.keys} keys" if self.check.keys is not None else ""
        line = f"restored the RDB of snapshot {self.snapshot.short_id} to {self.path} ({format_bytes(self.size)}{keys})"
        if self.server:
            line += (
                f"; redis-server (pid {self.server['pid']}) is ready on 127.0.0.1:{self.server['port']}"
                + (" with the AOF on" if self.server.get("appendonly") else "")
                + f"; stop it with 'kill {self.server['pid']}'"
            )
        return line


class RedisSource(SourceKind):
    name = "redis"
    config_model = "lifeboat.config.model:RedisSourceConfig"
    snapshot_kinds = (SNAPSHOT_KIND,)
    # A stopped server's directory (settings: directory, dbfilename, force, pid_file, start_port, appendonly).
    restores_into = frozenset({RestoreInto.SERVER})
    runs_programs = True

    def check_restore(self, into: RestoreDestination) -> None:
        """Only into a server's directory: say how, for a front end that tried otherwise."""
        if not isinstance(into, IntoServer):
            raise NotSupported(
                "a redis source cannot restore into a directory or a program: it restores an RDB into "
                "a stopped server's directory",
                hint="'lifeboat restore redis SNAPSHOT --target-dir DIR' (docs/sources.md#redis)",
            )

    def label(self, request: RedisRequest) -> str:
        return f"backing up the RDB of redis {request.connection.describe()}"

    def request(self, config: RedisSourceConfig | None, options: BackupOptions) -> RedisRequest:
        if config is None:
            raise UsageError(
                "a redis backup needs a configured source", hint="configure it under sources: with type: redis"
            )
        return RedisRequest(connection(config, options.environment), options.source)

    def backup(self, ctx: BackupContext, request: RedisRequest) -> Produced:
        """INFO first (what the snapshot records, and a clear error for a wrong password), then
        the RDB streamed into the repository; redis-cli must exit 0 having sent a whole RDB."""
        from lifeboat.sources.files.archiver import ArchiveResult
        from lifeboat.sources.redis.client import server_info
        from lifeboat.sources.redis.rdb import RDB_MAGIC, RdbStream, transferred_bytes
        from lifeboat.sources.stream import store_stream, stream_tree
        from lifeboat.sources.tools.program import Producer

        conn = request.connection
        info = server_info(conn)
        # redis-cli's progress lines are kept in the snapshot's record, not shown
        with Producer(conn.rdb_transfer(), env=conn.env) as running:
            rdb = RdbStream(running.stdout)
            stored = store_stream(
                ctx.saver, ctx.chunker, cast(BinaryIO, rdb), ctx.events.progress, cancel=ctx.events.check
            )
            ended = running.finish()
        if not rdb.head.startswith(RDB_MAGIC):
            raise SourceError(
                ended.with_last_line(f"redis-cli sent {stored.size} bytes that are not an RDB file"),
                hint="no snapshot was saved; check that the address is a Redis server",
            )
        told = transferred_bytes(ended.stderr)
        if told is not None and told != stored.size:
            raise SourceError(f"redis-cli reported an RDB of {told} bytes, but {stored.size} bytes came through")
        tree = stream_tree(ctx.saver, RDB_NAME, stored)
        ctx.events.progress.file_done()
        record = {**info.to_json(), "rdb_bytes": stored.size, "eof_mark_removed": rdb.mark_removed}
        return Produced(
            tree=tree,
            source=request.source,
            kind=SNAPSHOT_KIND,
            paths=(RDB_NAME,),
            archive=ArchiveResult(tree=tree, files_new=1, bytes_total=stored.size),
            extra={"redis": record, "redis_cli": ended.to_json()},
            record=record,
        )

    def restore(self, ctx: RestoreContext, snapshot: Snapshot, into: RestoreDestination) -> RedisRestore:
        """Write the RDB as ``directory``/``dbfilename`` for a stopped server: never under a
        running one, never over an existing file without ``force``; then redis-check-rdb it."""
        from lifeboat.sources.redis.rdb import check_rdb
        from lifeboat.sources.tools.redis_server import set_appendonly, start_server

        directory, dbfilename = self._destination(ctx, into)
        assert isinstance(into, IntoServer)
        settings = into.settings
        target = os.path.join(directory, dbfilename)
        self._refuse(directory, target, settings)
        node = the_rdb(ctx.loader, snapshot)
        os.makedirs(directory, exist_ok=True)
        # checked before it takes the place of the server's file: a bad restore replaces nothing
        staged = os.path.join(directory, f".{dbfilename}.lifeboat-restore")
        write_node(ctx.loader, node, staged, owner=owner_of_directory(target))
        check = check_rdb(staged)
        if not check.ok:
            Path(staged).unlink(missing_ok=True)
            raise IntegrityError(f"the restored RDB does not pass redis-check-rdb: {check.problem}")
        os.replace(staged, target)
        ctx.events.progress.file_done()
        server: dict[str, Any] = {}
        port = settings.get("start_port")
        if port:
            started = start_server(directory, dbfilename, int(port), detach=True)
            server = {"pid": started.pid, "port": started.port, "log": started.log}
            if settings.get("appendonly"):
                set_appendonly(started.port)
                server["appendonly"] = True
        return RedisRestore(snapshot, target, node.size, check, server)

    def _destination(self, ctx: RestoreContext, into: RestoreDestination) -> tuple[str, str]:
        """The server's directory and the RDB's file name a restore into ``into`` writes."""
        self.check_restore(into)
        assert isinstance(into, IntoServer)
        settings = into.settings
        directory = str(settings.get("directory") or "")
        if not directory:
            raise UsageError(f"{option('directory')} is required", hint="the directory the server loads its RDB from")
        config: RedisSourceConfig | None = ctx.config
        dbfilename = str(settings.get("dbfilename") or (config.dbfilename if config is not None else RDB_NAME))
        if "/" in dbfilename or dbfilename in ("", ".", ".."):
            raise UsageError(f"{option('dbfilename')} {dbfilename!r} is not a plain file name")
        return directory, dbfilename

    @staticmethod
    def _refuse(directory: str, target: str, settings: Mapping[str, Any]) -> None:
        """What stops a restore before it writes (and its plan): a server running in the
        directory, an existing RDB without ``force``."""
        from lifeboat.sources.tools.redis_server import servers_in

        running = servers_in(directory, settings.get("pid_file")) if os.path.isdir(directory) else []
        if running:
            raise RestoreRefused(
                f"a redis-server (pid {', '.join(map(str, running))}) is running in {directory}",
                hint="stop the server first: it would not load the restored file, and its next save would overwrite it",
            )
        if os.path.lexists(target) and not settings.get("force"):
            raise RestoreRefused(
                f"{target} exists", hint=f"pass {option('force')} to replace it, or restore into another directory"
            )

    def plan(self, ctx: RestoreContext, snapshot: Snapshot, into: RestoreDestination) -> RestorePlan:
        """The RDB written into the server's directory; refused as the restore refuses."""
        from lifeboat.sources.plan import PlannedWrite, judge_space, new_plan, path_state

        directory, dbfilename = self._destination(ctx, into)
        assert isinstance(into, IntoServer)
        target = os.path.join(directory, dbfilename)
        node = the_rdb(ctx.loader, snapshot)
        plan = new_plan(self.name, snapshot, describe_into(into))
        plan.writes.append(PlannedWrite("RDB file", target, node.size, 1, state=path_state(target)))
        plan.attempt(lambda: self._refuse(directory, target, into.settings), "no redis-server runs in the directory")
        judge_space(plan, force=False)  # the old RDB stays until the new one is checked
        plan.unchecked.append("the RDB's content (redis-check-rdb runs on the restored file)")
        if into.settings.get("start_port"):
            plan.lines.append(f"then starts redis-server on port {into.settings['start_port']}")
        return plan

    def verify(self, ctx: RestoreContext, snapshot: Snapshot) -> Verification:
        """redis-check-rdb accepts the stored RDB (written to a private temporary file)."""
        from lifeboat.sources.redis.rdb import check_rdb

        node = the_rdb(ctx.loader, snapshot)
        with tempfile.TemporaryDirectory(prefix="lifeboat-verify-") as scratch:
            path = os.path.join(scratch, RDB_NAME)
            write_node(ctx.loader, node, path)
            check = check_rdb(path)
        keys = f" ({check.keys} keys)" if check.keys is not None else ""
        return Verification(
            checked=f"the RDB with redis-check-rdb{keys}", problems=() if check.ok else (check.problem,)
        )

    def scratch(self, ctx: RestoreContext, snapshot: Snapshot, directory: str) -> ScratchInstance:
        """redis-server on a free port, loading the snapshot's RDB restored into ``directory``
        (absent or without a dump.rdb); ``stop`` ends it and removes what it wrote there."""
        from lifeboat.sources.tools.redis_server import LOG_NAME, free_port, start_server

        made = not os.path.exists(directory)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self.restore(ctx, snapshot, IntoServer({"directory": directory, "dbfilename": RDB_NAME}))
        server = start_server(directory, RDB_NAME, free_port())

        def stop() -> None:
            server.stop()
            for name in (RDB_NAME, LOG_NAME):
                Path(directory, name).unlink(missing_ok=True)
            if made:
                with contextlib.suppress(OSError):
                    os.rmdir(directory)

        return ScratchInstance(
            kind=self.name, directory=directory, address={"host": "127.0.0.1", "port": server.port}, stop=stop
        )

    def describe(self, snapshot: Snapshot) -> list[str]:
        record = snapshot.extra.get("redis", {})
        if not isinstance(record, Mapping):
            return []
        aof = "; the server also keeps an AOF (the RDB is a full snapshot)" if record.get("aof_enabled") else ""
        return [
            f"Redis {record.get('version', '?')}: keys: {record.get('keys', 0)} in "
            f"{len(record.get('databases', {}))} database(s){aof}"
        ]


def connection(config: RedisSourceConfig, environment: Mapping[str, str] | None) -> RedisConnection:
    """The configured server; the password from ``password_file`` (else REDISCLI_AUTH of the
    environment) goes to redis-cli by its environment only."""
    env = program_environment(environment)
    if config.password_file:
        try:
            password = Path(config.password_file).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise SourceError(
                f"cannot read the redis password file {config.password_file}: {exc.strerror or exc}"
            ) from None
        env["REDISCLI_AUTH"] = password
    return RedisConnection(
        host=config.host,
        port=config.port,
        socket=config.socket,
        user=config.user,
        tls=config.tls,
        cacert=config.cacert,
        env=env,
    )


def the_rdb(loader: BlobLoader, snapshot: Snapshot) -> Node:
    """The snapshot's RDB file (a redis snapshot's only file)."""
    if snapshot.kind != SNAPSHOT_KIND:
        raise UsageError(
            f"snapshot {snapshot.short_id} is a {snapshot.kind} snapshot, not a redis one",
            hint="'lifeboat snapshots' shows each snapshot's kind",
        )
    for node in loader.load_tree(snapshot.tree).nodes:
        if node.name == RDB_NAME and node.type is NodeType.FILE:
            return node
    raise IntegrityError(f"snapshot {snapshot.short_id} holds no {RDB_NAME}")
