"""Backup use cases: directory trees and byte streams into a repository.

Each takes the repository's shared lock, stores data through a write session, commits
it (packs and index durable), and only then writes the snapshot. A failure before that
leaves no snapshot and no damage; whatever packs were uploaded become garbage for prune.
A source that failed is such a failure: a named path that is missing or unreadable
(checked before the repository is touched), or an empty stream unless it is allowed.
"""

from __future__ import annotations

import getpass
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO

from lifeboat import __version__
from lifeboat.core.patterns import PathFilter
from lifeboat.core.progress import Notice, NoticeSink, Progress, Severity
from lifeboat.core.snapshot import Snapshot, SnapshotFilter
from lifeboat.errors import SourceError
from lifeboat.repository.repo import Repository
from lifeboat.repository.session import SessionStats, WriteSession
from lifeboat.sources.files.archiver import ArchiveResult, FileArchiver, FileBackupOptions, normalize_paths
from lifeboat.sources.files.scanner import scan
from lifeboat.sources.files.targets import check_targets
from lifeboat.sources.stream import check_stream_name, store_stream, stream_tree


def default_workers() -> int:
    return max(2, os.cpu_count() or 2)


@dataclass(frozen=True)
class BackupRequest:
    """What to back up, and the labels the snapshot carries."""

    paths: tuple[str, ...] = ()
    source: str = ""
    tags: tuple[str, ...] = ()
    hostname: str = field(default_factory=socket.gethostname)
    includes: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    one_file_system: bool = False
    parent: str | None = None  # snapshot id; None picks the latest of the same source
    lock_wait: float = 0.0
    workers: int = field(default_factory=default_workers)
    # Count the files and bytes ahead of the walk, for a progress bar's ETA. It costs a
    # second pass over every directory, so only a frontend that shows progress asks.
    estimate_total: bool = False

    def source_name(self) -> str:
        if self.source:
            return self.source
        return ",".join("/" + "/".join(p) for p in normalize_paths(self.paths))


@dataclass
class BackupResult:
    snapshot: Snapshot
    archive: ArchiveResult
    stored: SessionStats
    duration: float
    notices: list[Notice] = field(default_factory=list)
    parent: str | None = None

    @property
    def partial(self) -> bool:
        return self.archive.errors > 0

    def to_json(self) -> dict[str, Any]:
        return {
            "snapshot": self.snapshot.to_json(),
            "parent": self.parent,
            "partial": self.partial,
            "duration_seconds": round(self.duration, 3),
            **self.snapshot.summary,
            "notices": [n.to_json() for n in self.notices],
        }


def snapshot_summary(archive: ArchiveResult, stored: SessionStats, duration: float, **more: Any) -> dict[str, Any]:
    """The counters a snapshot records about the backup that made it."""
    return {
        **archive.to_json(),
        "blobs_new": stored.blobs_new,
        "bytes_new": stored.bytes_new,
        "bytes_deduplicated": stored.bytes_deduplicated,
        "bytes_stored": stored.bytes_stored,
        "packs_written": stored.packs,
        "duration_seconds": round(duration, 3),
        **more,
    }


def find_parent(repo: Repository, source: str, hostname: str, kind: str) -> Snapshot | None:
    candidates = SnapshotFilter(sources=(source,), hostnames=(hostname,), kinds=(kind,)).apply(repo.snapshots())
    return candidates[-1] if candidates else None


class NoticeCollector:
    """Keeps the notices of a run and passes them on.

    Warnings whose message starts with one of ``expected`` are only counted (a live
    database changes files under its base backup, and WAL replay repairs that).
    """

    def __init__(self, sink: NoticeSink | None, *, expected: tuple[str, ...] = ()) -> None:
        self.notices: list[Notice] = []
        self.expected = 0
        self._expected_prefixes = expected
        self._sink = sink
        self._lock = threading.Lock()

    def __call__(self, notice: Notice) -> None:
        if (
            self._expected_prefixes
            and notice.severity is Severity.WARNING
            and notice.message.startswith(self._expected_prefixes)
        ):
            with self._lock:
                self.expected += 1
            return
        with self._lock:
            self.notices.append(notice)
        if self._sink is not None:
            self._sink(notice)


def check_paths(request: BackupRequest) -> None:
    """Raise :class:`SourceError` if a path the request names is missing or unreadable."""
    check_targets(request.paths, source=request.source)


def backup_files(
    repo: Repository,
    request: BackupRequest,
    *,
    progress: Progress | None = None,
    notify: NoticeSink | None = None,
    clock: Callable[[], datetime] | None = None,
) -> BackupResult:
    """Back up directory trees; returns the saved snapshot (partial if files were unreadable).

    Raises :class:`SourceError` before taking a lock if a named path is missing or unreadable.
    """
    check_paths(request)
    clock = clock or repo.clock
    progress = progress or Progress()
    collector = NoticeCollector(notify)
    started_at = clock()
    started = time.monotonic()
    source = request.source_name()
    options = FileBackupOptions(
        paths=tuple(os.path.abspath(p) for p in request.paths),
        filter=PathFilter.build(request.includes, request.excludes),
        one_file_system=request.one_file_system,
        readers=2 * max(1, request.workers),  # reads wait on the disk: twice the cores keeps them busy
    )
    with repo.lock(exclusive=False, operation="backup", wait=request.lock_wait):
        parent = (
            repo.resolve_snapshot(request.parent)
            if request.parent
            else find_parent(repo, source, request.hostname, "files")
        )
        stop_scan = threading.Event()
        scanner = threading.Thread(
            target=scan,
            args=(options.paths, options.filter, progress, stop_scan),
            kwargs={"one_fs": options.one_file_system},
            name="lifeboat-scan",
            daemon=True,
        )
        if request.estimate_total:
            scanner.start()
        elif parent is not None:
            # Without a scan, the previous backup of the source is the best estimate.
            files = sum(int(parent.summary.get(k, 0)) for k in ("files_new", "files_changed", "files_unmodified"))
            progress.scanned(files, int(parent.summary.get("bytes_total", 0)))
            progress.scan_finished = True
        try:
            with WriteSession(repo, workers=request.workers) as session:
                archiver = FileArchiver(
                    session,
                    repo.chunker(),
                    options,
                    parent_loader=repo,
                    parent_tree=parent.tree if parent else None,
                    progress=progress,
                    notify=collector,
                )
                archive = archiver.run()
                stored = session.commit()
        finally:
            stop_scan.set()
            if scanner.is_alive():
                scanner.join()
        duration = time.monotonic() - started
        snapshot = repo.save_snapshot(
            Snapshot(
                time=started_at,
                source=source,
                kind="files",
                tree=archive.tree,
                hostname=request.hostname,
                username=getpass.getuser(),
                paths=options.paths,
                tags=request.tags,
                parent=parent.id if parent else None,
                program_version=__version__,
                summary=snapshot_summary(archive, stored, duration),
            )
        )
    return BackupResult(snapshot, archive, stored, duration, collector.notices, parent.id if parent else None)


def backup_stream(
    repo: Repository,
    stream: BinaryIO,
    *,
    name: str,
    source: str = "",
    kind: str = "stdin",
    tags: tuple[str, ...] = (),
    hostname: str | None = None,
    extra: dict[str, Any] | None = None,
    lock_wait: float = 0.0,
    progress: Progress | None = None,
    clock: Callable[[], datetime] | None = None,
    workers: int | None = None,
    allow_empty: bool = False,
) -> BackupResult:
    """Back up one byte stream as a single file called ``name``.

    An empty stream is usually a producer that failed: it raises :class:`SourceError`
    (no snapshot) unless ``allow_empty``.
    """
    check_stream_name(name)
    clock = clock or repo.clock
    progress = progress or Progress()
    started_at = clock()
    started = time.monotonic()
    host = hostname or socket.gethostname()
    with repo.lock(exclusive=False, operation="backup", wait=lock_wait):
        with WriteSession(repo, workers=workers or default_workers()) as session:
            stored_stream = store_stream(session, repo.chunker(), stream, progress)
            if stored_stream.size == 0 and not allow_empty:
                raise SourceError(
                    "standard input was empty (0 bytes)",
                    hint="no snapshot was saved; the program piped in probably failed — "
                    "'lifeboat backup command' checks it; pass --allow-empty if empty is right",
                )
            tree = stream_tree(session, name, stored_stream)
            stored = session.commit()
        progress.file_done()
        duration = time.monotonic() - started
        archive = ArchiveResult(tree=tree, files_new=1, bytes_total=stored_stream.size)
        snapshot = repo.save_snapshot(
            Snapshot(
                time=started_at,
                source=source or f"stdin:{name}",
                kind=kind,
                tree=tree,
                hostname=host,
                username=getpass.getuser(),
                paths=(name,),
                tags=tags,
                program_version=__version__,
                summary=snapshot_summary(archive, stored, duration),
                extra=extra or {},
            )
        )
    return BackupResult(snapshot, archive, stored, duration)
