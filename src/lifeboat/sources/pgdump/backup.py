"""Backing up a cluster: ``pg_dumpall --globals-only``, then ``pg_dump -Z0`` of each database,
each program's output chunked into the repository as it comes.

One process per database writes a custom-format archive to standard output: nothing is copied
to local disk. With ``jobs``, pg_dump dumps the tables of a database in parallel, which only
the directory format can: the archive is written to a temporary directory (as large as the
database's uncompressed dump), stored file by file as ``<database>.dir/``, then removed.

Any program that fails (a database that vanished, a server that went down, a program killed)
fails the whole backup: no snapshot names part of a cluster as if it were all of it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass

from lifeboat.core.tree import Node, Tree
from lifeboat.errors import SourceError, option
from lifeboat.sources.base import BackupContext
from lifeboat.sources.pgdump.layout import GLOBALS_FILE, DumpedDatabase, dump_file
from lifeboat.sources.stream import StoredStream, directory_node, store_chunks, stream_node
from lifeboat.sources.tools.pgclient import Server, program_version, server_major
from lifeboat.sources.tools.program import Producer


@dataclass(frozen=True)
class DumpRequest:
    """Which databases of which cluster; ``databases`` None: every one that takes connections."""

    server: Server
    databases: tuple[str, ...] | None
    exclude: tuple[str, ...]
    source: str
    role_passwords: bool = True  # the roles' password hashes in the globals (needs a superuser)
    jobs: int | None = None  # parallel pg_dump (directory format, through a temporary directory)
    temp_dir: str | None = None  # where that directory goes (default: the system's)


@dataclass(frozen=True)
class ClusterDump:
    """What a backup stored (not yet committed)."""

    tree: bytes
    server_version: str
    server_version_num: int
    pg_dump_version: str
    globals_bytes: int
    databases: tuple[DumpedDatabase, ...]

    @property
    def bytes_total(self) -> int:
        return self.globals_bytes + sum(db.bytes for db in self.databases)


def chosen_databases(present: dict[str, int], wanted: Sequence[str] | None, exclude: Sequence[str]) -> list[str]:
    """The databases to dump, in order; a named database the server lacks is an error."""
    if wanted is not None:
        missing = [name for name in wanted if name not in present]
        if missing:
            raise SourceError(
                f'database "{missing[0]}" does not exist on the server (or does not take connections)',
                hint=f"no snapshot was saved; fix {option('databases')} or create the database",
            )
        names = list(dict.fromkeys(wanted))
    else:
        names = sorted(present)
    chosen = [name for name in names if name not in set(exclude)]
    if not chosen:
        raise SourceError(
            "no database left to dump", hint=f"no snapshot was saved; check {option('exclude_databases')}"
        )
    return chosen


def dump_cluster(ctx: BackupContext, request: DumpRequest) -> ClusterDump:
    """Store the globals and every chosen database; raises SourceError (nothing recorded) on a failure."""
    version, version_num = request.server.version()
    server = request.server.with_major(server_major(version_num))
    present = server.databases()
    names = chosen_databases(present, request.databases, request.exclude)
    nodes: list[Node] = []
    globals_stored = _run_and_store(
        ctx, server, server.globals_argv(role_passwords=request.role_passwords), GLOBALS_FILE
    )
    nodes.append(stream_node(GLOBALS_FILE, globals_stored))
    dumped: list[DumpedDatabase] = []
    for name in names:
        ctx.events.check()
        if request.jobs is None:
            file = dump_file(name)
            stored = _run_and_store(ctx, server, server.dump_argv(name), file)
            nodes.append(stream_node(file, stored))
            dumped.append(DumpedDatabase(name, file, present.get(name, 0), stored.size))
        else:
            node, size = _dump_directory(ctx, server, name, request.jobs, request.temp_dir)
            nodes.append(node)
            dumped.append(DumpedDatabase(name, node.name, present.get(name, 0), size, "directory"))
    tree = ctx.saver.save_tree(Tree(tuple(nodes)))
    return ClusterDump(
        tree=tree,
        server_version=version,
        server_version_num=version_num,
        pg_dump_version=program_version(server.program("pg_dump"), server.program_env()),
        globals_bytes=globals_stored.size,
        databases=tuple(dumped),
    )


def _run_and_store(ctx: BackupContext, server: Server, argv: list[str], file: str) -> StoredStream:
    with (
        ctx.events.phase("dump", f"dumping {file}"),
        Producer(argv, env=server.program_env(), on_stderr=ctx.events.program_output) as running,
    ):
        stored = store_chunks(
            ctx.saver, ctx.chunker.chunks(running.stdout), ctx.events.progress, cancel=ctx.events.check
        )
        running.finish()
    if stored.size == 0:
        raise SourceError(f"{os.path.basename(argv[0])} wrote nothing for {file}", hint="no snapshot was saved")
    ctx.events.progress.file_done()
    return stored


def _dump_directory(
    ctx: BackupContext, server: Server, database: str, jobs: int, temp_dir: str | None
) -> tuple[Node, int]:
    """``pg_dump -Fd -j N`` into a temporary directory, stored as a directory of files; the
    directory's node and the archive's length."""
    name = dump_file(database, directory=True)
    scratch = tempfile.mkdtemp(prefix="lifeboat-pg-dump-", dir=temp_dir)
    try:
        target = os.path.join(scratch, "archive")
        argv = server.dump_argv(database, directory=target, jobs=jobs)
        with (
            ctx.events.phase("dump", f"dumping {name} ({jobs} jobs)"),
            Producer(argv, env=server.program_env(), on_stderr=ctx.events.program_output) as running,
        ):
            running.stdout.read()  # it writes the archive into the directory, nothing here
            running.finish()
        members: list[Node] = []
        total = 0
        for member in sorted(os.listdir(target)):
            ctx.events.check()
            with open(os.path.join(target, member), "rb") as stream:
                stored = store_chunks(
                    ctx.saver, ctx.chunker.chunks(stream), ctx.events.progress, cancel=ctx.events.check
                )
            members.append(stream_node(member, stored))
            total += stored.size
            ctx.events.progress.file_done()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    subtree = ctx.saver.save_tree(Tree(tuple(members)))
    return directory_node(name, subtree), total
