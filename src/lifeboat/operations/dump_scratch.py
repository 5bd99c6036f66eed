"""A scratch PostgreSQL cluster a ``pg_dump`` snapshot is restored into: for reading what a
database held when it was dumped (``migrate ... --source DUMPS``), and for drills of a pg_dump
source.

A dump is a point in time, not a window: there is no recovery to a moment between two dumps,
only the chosen dump. :func:`start_dump_scratch` makes a private cluster (initdb in a new
directory, socket only, never archiving), starts it on a free port, restores the globals and
the databases asked for through the pg_dump kind's own restore (only some tables of one, with
``pg_restore -n/-t``, when that suffices: a one-table export of a big dump does not wait for
the rest), and returns a :class:`DumpScratch` whose ``stop()`` ends the server and removes the
directory. :func:`dump_scratch` does the same as a context manager; any failure or
interruption on the way stops and removes what was made.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lifeboat.core.events import Events
from lifeboat.core.snapshot import Snapshot
from lifeboat.errors import MissingTool, SourceError, UsageError, option
from lifeboat.operations.read_lock import read_lock
from lifeboat.repository.repo import Repository
from lifeboat.sources.base import IntoServer, RestoreContext, ScratchInstance
from lifeboat.sources.tools.pg import Connection

SETTINGS = {
    "listen_addresses": "",
    "archive_mode": "off",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "unix_socket_permissions": "0700",
    "cluster_name": "lifeboat-scratch",
}


@dataclass(frozen=True)
class DumpScratchRequest:
    """What of the dump to restore, and where the scratch directory goes."""

    databases: tuple[str, ...] = ()  # these databases (none: every one the dump holds)
    tables: tuple[str, ...] = ()  # only these tables ([SCHEMA.]TABLE) of the one database, when possible
    parent: str | None = None  # the directory the scratch directory is made in (default: the temp dir)
    start_timeout: float = 600.0
    environment: Mapping[str, str] = field(default_factory=dict, repr=False)


@dataclass
class DumpScratch:
    """A running scratch cluster holding a dump: how to reach it, what went in, how to end it."""

    instance: ScratchInstance
    snapshot: Snapshot
    connection: Connection  # its socket directory, port and role (dbname: postgres)
    major: str | None
    restored: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tables_only: bool = False  # only the asked-for tables were restored (pg_restore -t)

    def stop(self) -> None:
        self.instance.stop()

    def to_json(self) -> dict[str, Any]:
        return {
            "snapshot": self.snapshot.id,
            "dumped_at": self.snapshot.time.isoformat(),
            "databases": [item["database"] for item in self.restored if item.get("what") == "database"],
            "tables_only": self.tables_only,
            "notes": list(self.notes),
            "directory": self.instance.directory,
            "port": self.connection.port,
        }


def dump_databases(snapshot: Snapshot) -> list[str]:
    """The databases a pg_dump snapshot holds."""
    from lifeboat.sources.pgdump.layout import recorded

    dumped, _globals = recorded(snapshot.extra)
    return sorted(item.name for item in dumped)


def start_dump_scratch(
    repo: Repository,
    snapshot: Snapshot,
    request: DumpScratchRequest,
    *,
    events: Events | None = None,
    on_phase: Callable[[str, float], None] | None = None,
) -> DumpScratch:
    """initdb a private cluster, start it, restore ``request``'s part of ``snapshot`` into it.
    ``on_phase`` hears how long "start" and "restore" took (a drill's measures)."""
    from lifeboat.operations.scratch import PREFIX, SOCKET_PATH_MAX
    from lifeboat.sources.tools.pgcluster import ScratchCluster, chown_tree, default_os_user, free_port

    events = events or Events()
    if request.parent is not None and not os.path.isdir(request.parent):
        raise UsageError(f"{option('scratch_dir')} {request.parent}: not a directory")
    base = Path(tempfile.mkdtemp(prefix=PREFIX, dir=request.parent))
    os.chmod(base, 0o755)  # noqa: S103 - the server's OS user must reach its directories
    major = str(snapshot.extra.get("pg_dump", {}).get("server_major") or "") or None
    cluster = ScratchCluster(base / "cluster", port=free_port(), os_user=default_os_user(), major=major)
    stop = _stopper(base, cluster)
    notes: list[str] = []
    try:
        if len(str(cluster.socket_dir / ".s.PGSQL.65535")) > SOCKET_PATH_MAX:
            raise UsageError(
                f"{option('scratch_dir')} {request.parent}: the scratch server's socket path would be longer than "
                f"{SOCKET_PATH_MAX} characters, which a Unix socket cannot be",
                hint="choose a shorter directory",
            )
        started = time.monotonic()
        try:
            cluster.init(checksums=False, settings=SETTINGS)
        except MissingTool:
            if major is None:
                raise
            notes.append(f"PostgreSQL {major} is not installed here: the dump was restored into the default version")
            cluster.major = None
            cluster.init(checksums=False, settings=SETTINGS)
        chown_tree(base / "cluster", cluster.os_user)
        cluster.start(timeout=request.start_timeout)
        if on_phase is not None:
            on_phase("start", time.monotonic() - started)
        restoring = time.monotonic()
        where = cluster.connection()
        restored, tables_only = _restore(repo, snapshot, request, where, events, notes)
        if on_phase is not None:
            on_phase("restore", time.monotonic() - restoring)
    except BaseException:
        stop()
        raise
    instance = ScratchInstance(
        kind="pg_dump",
        directory=str(base),
        address={"host": where.host, "port": where.port, "user": where.user, "dbname": "postgres"},
        stop=stop,
    )
    return DumpScratch(instance, snapshot, where, cluster.major, restored, notes, tables_only)


@contextlib.contextmanager
def dump_scratch(
    repo: Repository, snapshot: Snapshot, request: DumpScratchRequest, *, events: Events | None = None
) -> Iterator[DumpScratch]:
    """:func:`start_dump_scratch`, stopped and removed when the block ends (however it ends)."""
    scratch = start_dump_scratch(repo, snapshot, request, events=events)
    try:
        yield scratch
    finally:
        scratch.stop()


def selective(tables: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """The ``pg_restore -n``/``-t`` selection restoring just ``tables`` (None: restore the whole
    database — tables of several schemas, or names needing quotes, which pg_restore cannot take)."""
    if not tables or any('"' in t for t in tables):
        return None
    schemas = {t.split(".", 1)[0] for t in tables if "." in t}
    if len(schemas) > 1 or (schemas and any("." not in t for t in tables)):
        return None
    return tuple(schemas), tuple(t.split(".", 1)[-1] for t in tables)


def _restore(
    repo: Repository,
    snapshot: Snapshot,
    request: DumpScratchRequest,
    where: Connection,
    events: Events,
    notes: list[str],
) -> tuple[list[dict[str, Any]], bool]:
    """The globals and the databases (or the tables) through the pg_dump kind's restore; a
    selective restore that fails (a table using a type or sequence left out) is done again whole."""
    from lifeboat.sources.registry import source_kind

    # libpq's PG* variables must not steer the restore to another server
    environment = {k: v for k, v in request.environment.items() if not k.startswith("PG")}
    ctx = RestoreContext(loader=repo, events=events, config=None, environment=environment)
    target = {"host": where.host, "port": where.port, "user": where.user, "dbname": "postgres"}
    databases = {"database": list(request.databases)} if request.databases else {"all": True}
    selection = selective(request.tables) if len(request.databases) == 1 else None
    kind = source_kind("pg_dump")
    restored: list[dict[str, Any]] = []
    with read_lock(repo, use_lock=True):
        if selection is not None:
            schemas, tables = selection
            settings = {**target, **databases, "globals": True, "force": True, "schema": schemas, "table": tables}
            try:
                done = kind.restore(ctx, snapshot, IntoServer(settings))
                return list(done.to_json().get("restored", [])), True
            except SourceError:
                notes.append(
                    "the table(s) could not be restored alone (pg_restore -t leaves out the types, functions "
                    "and sequences they may use): the whole database was restored"
                )
                _drop(where, request.databases[0], environment)
                restored = [{"what": "globals", "database": "", "into": "postgres", "bytes": 0}]
                done = kind.restore(ctx, snapshot, IntoServer({**target, **databases, "force": True}))
                return restored + list(done.to_json().get("restored", [])), False
        done = kind.restore(ctx, snapshot, IntoServer({**target, **databases, "globals": True, "force": True}))
    return list(done.to_json().get("restored", [])), False


def _drop(where: Connection, database: str, environment: Mapping[str, str]) -> None:
    from lifeboat.sources.tools.pgclient import Server

    server = Server(where.host, where.port, where.user, "postgres", env=environment)
    if server.exists(database):
        server.query('DROP DATABASE :"name"', 1, {"name": database})


def _stopper(base: Path, cluster: Any) -> Callable[[], None]:
    """``stop()``: end the server at once (if it runs) and remove the scratch directory; idempotent;
    Ctrl-C and SIGTERM held back until both are done."""
    from lifeboat.operations.drill.context import teardown
    from lifeboat.operations.scratch import _stop_server

    done: list[bool] = []

    def stop_server() -> None:
        if cluster.data_dir.is_dir():
            _stop_server(cluster.data_dir, cluster.major)

    def stop() -> None:
        if done:
            return
        done.append(True)
        teardown(stop_server, lambda: shutil.rmtree(base, ignore_errors=True))

    return stop
