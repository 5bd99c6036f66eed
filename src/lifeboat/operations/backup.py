"""Backup use cases by kind: directory trees, byte streams, PostgreSQL base backups and a
program's output. Each is a thin front over :func:`lifeboat.operations.snapshots.run_backup`,
which saves every kind's snapshot the same way (lock, write session, commit, snapshot).

A source that failed leaves no snapshot: a named path that is missing or unreadable
(checked before the repository is touched), an empty stream unless it is allowed, a
producer that failed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO

from lifeboat.core.events import Events
from lifeboat.core.host import this_host
from lifeboat.operations.snapshots import BackupResult, SourceBackup, default_workers, run_backup, snapshot_summary
from lifeboat.repository.repo import Repository
from lifeboat.sources.files.kind import FilesRequest, FilesSource
from lifeboat.sources.files.targets import check_targets
from lifeboat.sources.stream import StreamRequest, StreamSource

__all__ = [
    "BackupRequest",
    "BackupResult",
    "backup_files",
    "backup_stream",
    "check_paths",
    "default_workers",
    "snapshot_summary",
]


@dataclass(frozen=True)
class BackupRequest:
    """What to back up, and the labels the snapshot carries."""

    paths: tuple[str, ...] = ()
    source: str = ""
    tags: tuple[str, ...] = ()
    hostname: str = field(default_factory=this_host)
    includes: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    one_file_system: bool = False
    parent: str | None = None  # snapshot id; None picks the latest of the same source
    lock_wait: float = 0.0
    workers: int = field(default_factory=default_workers)
    # Count the files and bytes ahead of the walk, for a progress bar's ETA. It costs a
    # second pass over every directory, so only a frontend that shows progress asks.
    estimate_total: bool = False

    def files_request(self) -> FilesRequest:
        return FilesRequest(
            paths=self.paths,
            source=self.source,
            includes=self.includes,
            excludes=self.excludes,
            one_file_system=self.one_file_system,
            parent=self.parent,
            count_ahead=self.estimate_total,
        )

    def source_name(self) -> str:
        return self.files_request().source_name()


def check_paths(request: BackupRequest) -> None:
    """Raise :class:`SourceError` if a path the request names is missing or unreadable."""
    check_targets(request.paths, source=request.source)


def backup_files(
    repo: Repository,
    request: BackupRequest,
    *,
    events: Events | None = None,
    clock: Callable[[], datetime] | None = None,
) -> BackupResult:
    """Back up directory trees; returns the saved snapshot (partial if files were unreadable).

    Raises :class:`SourceError` before taking a lock if a named path is missing or unreadable.
    """
    job = SourceBackup(
        FilesSource(),
        request.files_request(),
        tags=request.tags,
        hostname=request.hostname,
        lock_wait=request.lock_wait,
        workers=request.workers,
    )
    return run_backup(repo, job, events=events, clock=clock)


def backup_stream(
    repo: Repository,
    stream: BinaryIO,
    *,
    name: str,
    source: str = "",
    tags: tuple[str, ...] = (),
    hostname: str | None = None,
    lock_wait: float = 0.0,
    events: Events | None = None,
    clock: Callable[[], datetime] | None = None,
    workers: int | None = None,
    allow_empty: bool = False,
) -> BackupResult:
    """Back up one byte stream as a single file called ``name``.

    An empty stream is usually a producer that failed: it raises :class:`SourceError`
    (no snapshot) unless ``allow_empty``.
    """
    job = SourceBackup(
        StreamSource(),
        StreamRequest(stream, name, source=source, allow_empty=allow_empty),
        tags=tags,
        hostname=hostname or this_host(),
        lock_wait=lock_wait,
        workers=workers or default_workers(),
        label="backing up stdin",
    )
    return run_backup(repo, job, events=events, clock=clock)
