"""Backing up a program's output and restoring into a program (``backup command``,
``restore command``; the source is described in :mod:`lifeboat.sources.command`).

A backup runs the producer while its output is stored, and writes the snapshot only after
the producer exited 0 having written something (or ``allow_empty``): a failed, killed or
silent producer leaves no snapshot. A restore streams the stored file into the consumer
and succeeds only when every byte was read back, verified and taken, and the consumer
exited 0; a storage or integrity failure stops the consumer first.
"""

from __future__ import annotations

import getpass
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lifeboat import __version__
from lifeboat.core.progress import Progress
from lifeboat.core.snapshot import Snapshot, SnapshotFilter
from lifeboat.core.tree import Node, NodeType
from lifeboat.core.treewalk import find
from lifeboat.errors import ObjectNotFound, SourceError, UsageError
from lifeboat.operations.backup import BackupResult, default_workers, snapshot_summary
from lifeboat.operations.restore import read_lock, resolve, split_ref
from lifeboat.repository.repo import Repository
from lifeboat.repository.session import WriteSession
from lifeboat.sources.command.backup import produce
from lifeboat.sources.command.restore import consume
from lifeboat.sources.command.spec import ProgramSpec
from lifeboat.sources.files.archiver import ArchiveResult
from lifeboat.sources.stream import check_stream_name, stream_tree
from lifeboat.sources.tools.program import ProgramExit, StderrSink

SNAPSHOT_KIND = "command"


@dataclass(frozen=True)
class CommandBackupRequest:
    """Run ``producer`` and keep its output as the file ``name``."""

    name: str
    producer: ProgramSpec
    source: str = ""  # the snapshot's source; default: name
    tags: tuple[str, ...] = ()
    hostname: str = field(default_factory=socket.gethostname)
    allow_empty: bool = False
    lock_wait: float = 0.0
    workers: int = field(default_factory=default_workers)


def backup_command(
    repo: Repository,
    request: CommandBackupRequest,
    *,
    progress: Progress | None = None,
    on_stderr: StderrSink | None = None,
    clock: Callable[[], datetime] | None = None,
) -> BackupResult:
    """Back up the producer's output; the snapshot records how it ended and its stderr's end."""
    check_stream_name(request.name)
    clock = clock or repo.clock
    progress = progress or Progress()
    started_at = clock()
    started = time.monotonic()
    with repo.lock(exclusive=False, operation="backup", wait=request.lock_wait):
        with WriteSession(repo, workers=request.workers) as session:
            produced = produce(session, repo.chunker(), request.producer, progress=progress, on_stderr=on_stderr)
            if produced.stored.size == 0 and not request.allow_empty:
                raise SourceError(
                    produced.ended.with_last_line(f"{request.producer.program} wrote nothing (0 bytes)"),
                    hint="no snapshot was saved; pass --allow-empty (allow_empty: true) if an empty output is right",
                )
            tree = stream_tree(session, request.name, produced.stored)
            stored = session.commit()
        progress.file_done()
        duration = time.monotonic() - started
        archive = ArchiveResult(tree=tree, files_new=1, bytes_total=produced.stored.size)
        snapshot = repo.save_snapshot(
            Snapshot(
                time=started_at,
                source=request.source or request.name,
                kind=SNAPSHOT_KIND,
                tree=tree,
                hostname=request.hostname,
                username=getpass.getuser(),
                paths=(request.name,),
                tags=request.tags,
                program_version=__version__,
                summary=snapshot_summary(archive, stored, duration),
                extra={"command": produced.ended.to_json()},
            )
        )
    return BackupResult(snapshot, archive, stored, duration)


@dataclass(frozen=True)
class CommandRestore:
    """A file of a snapshot streamed into a consumer that took it all and exited 0."""

    snapshot: Snapshot
    path: str
    size: int
    ended: ProgramExit

    def to_json(self) -> dict[str, Any]:
        return {"snapshot": self.snapshot.id, "path": self.path, "bytes": self.size, **self.ended.to_json()}


def restore_command(
    repo: Repository,
    ref: str,
    consumer: ProgramSpec,
    *,
    path: str = "",
    selection: SnapshotFilter | None = None,
    use_lock: bool = True,
    progress: Progress | None = None,
    on_stderr: StderrSink | None = None,
    stdout_to_stderr: bool = False,
) -> CommandRestore:
    """Stream one file of ``ref`` (``id``, ``latest`` or ``id:/path``) into ``consumer``.

    Without a path, the snapshot must hold exactly one file (as a command or stdin snapshot does).
    """
    snapshot_ref, subpath = split_ref(ref)
    wanted = (path or subpath).strip("/")
    progress = progress or Progress()
    with read_lock(repo, use_lock=use_lock):
        snapshot = resolve(repo, snapshot_ref, selection)
        where, node = _the_file(repo, snapshot, wanted)
        ended = consume(repo, node, consumer, progress=progress, on_stderr=on_stderr, stdout_to_stderr=stdout_to_stderr)
    return CommandRestore(snapshot, "/" + where, node.size, ended)


def _the_file(repo: Repository, snapshot: Snapshot, path: str) -> tuple[str, Node]:
    if path:
        node = find(repo, snapshot.tree, path)
        if node is None:
            raise ObjectNotFound(f"snapshot {snapshot.short_id} has no path /{path}")
        if node.type is not NodeType.FILE:
            raise UsageError(f"/{path} is a {node.type.value}, not a file", hint="'lifeboat ls' lists the snapshot")
        return path, node
    nodes = repo.load_tree(snapshot.tree).nodes
    if len(nodes) == 1 and nodes[0].type is NodeType.FILE:
        return nodes[0].name, nodes[0]
    raise UsageError(
        f"snapshot {snapshot.short_id} does not hold exactly one file",
        hint=f"name the file with --path; 'lifeboat ls {snapshot.short_id}' lists the snapshot",
    )
