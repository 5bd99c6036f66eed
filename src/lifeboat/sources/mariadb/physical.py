"""Physical backups: mariabackup's xbstream stored as ``backup.xbstream`` as it comes, read
on the way for its binary log position; restored by mbstream into an empty data directory
and made consistent by ``mariabackup --prepare``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from lifeboat.core.tree import Node
from lifeboat.errors import IntegrityError, RestoreRefused, SourceError
from lifeboat.sources.base import BackupContext, RestoreContext
from lifeboat.sources.mariadb.xbstream import XbstreamReader, parse_binlog_info
from lifeboat.sources.stream import store_chunks, stream_node
from lifeboat.sources.tools.mariadb import (
    Connection,
    backup_argv,
    extract_argv,
    find_program,
    options_file,
    prepare_argv,
    run_to_end,
)
from lifeboat.sources.tools.program import Consumer, Producer

STREAM_NAME = "backup.xbstream"
BINLOG_INFO = "xtrabackup_binlog_info"


@dataclass(frozen=True)
class PhysicalBackup:
    node: Node
    reader: XbstreamReader


def back_up(ctx: BackupContext, connection: Connection, environment: Mapping[str, str] | None) -> PhysicalBackup:
    """Run mariabackup and store its stream; SourceError if it fails or the stream is not whole."""
    program = find_program("backup", environment)
    reader = XbstreamReader()
    with (
        options_file(connection) as options,
        Producer(backup_argv(program, options), env=environment, on_stderr=ctx.events.program_output) as running,
    ):
        stored = store_chunks(
            ctx.saver,
            ctx.chunker.chunks(running.stdout),
            ctx.events.progress,
            cancel=ctx.events.check,
            on_chunk=reader.feed,
        )
        running.finish()
    reader.end()
    if reader.problems:
        raise SourceError(f"mariabackup's stream is not whole: {reader.problems[0]}")
    if "xtrabackup_checkpoints" not in reader.kept:
        raise SourceError("mariabackup's stream has no xtrabackup_checkpoints: it is not a backup")
    node = stream_node(STREAM_NAME, stored)
    ctx.events.progress.file_done()
    return PhysicalBackup(node, reader)


@dataclass(frozen=True)
class PhysicalRestore:
    directory: str
    binlog: dict[str, str] | None
    owner: int | None  # the user the files were given to (when run as root)


def check_directory(directory: str, *, force: bool) -> None:
    """The data directory must be empty or absent (``force``: extract into it anyway)."""
    if os.path.isdir(directory) and os.listdir(directory) and not force:
        raise RestoreRefused(f"{directory} is not empty")
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise RestoreRefused(f"{directory} exists and is not a directory", hint="name a data directory to create")


def restore(
    ctx: RestoreContext, node: Node, directory: str, *, force: bool, environment: Mapping[str, str] | None
) -> PhysicalRestore:
    """Extract the stream into ``directory`` (empty, or created) and prepare it."""
    directory = os.path.abspath(directory)
    check_directory(directory, force=force)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    extract = extract_argv(find_program("stream", environment), directory)
    prepare = prepare_argv(find_program("backup", environment), directory)
    reader = XbstreamReader()
    with Consumer(extract, env=environment, on_stderr=ctx.events.program_output, stdout_to_stderr=True) as running:
        total = 0
        for data in ctx.loader.load_blobs(node.content):
            ctx.events.check()
            reader.feed(data)
            running.write(data)
            total += len(data)
            ctx.events.progress.bytes_read(len(data))
        if total != node.size:
            raise IntegrityError(f"{node.name}: its stored content has {total} bytes, its entry says {node.size}")
        reader.end()
        if reader.problems:
            raise IntegrityError(f"{node.name}: {reader.problems[0]}")
        running.finish()
    ctx.events.progress.file_done()
    run_to_end(prepare, environment=environment, on_stderr=ctx.events.program_output)
    owner = _give_to_owner(directory)
    binlog = reader.binlog_position()
    info = os.path.join(directory, BINLOG_INFO)
    if binlog is None and os.path.exists(info):
        with open(info, "rb") as handle:
            binlog = parse_binlog_info(handle.read())
    return PhysicalRestore(directory, binlog, owner)


def _give_to_owner(directory: str) -> int | None:
    """Run as root, the restored files get the data directory's owner (the server's user,
    when the directory was made for it), so that server can start on them."""
    if os.geteuid() != 0:
        return None
    stat = os.stat(directory)
    if stat.st_uid == 0:
        return None
    for root, dirs, files in os.walk(directory):
        for name in (*dirs, *files):
            os.lchown(os.path.join(root, name), stat.st_uid, stat.st_gid)
    return stat.st_uid
