"""Backing up any kind of source: the one place a backup's snapshot is saved.

A kind (:mod:`lifeboat.sources.base`) produces its tree into the write session; around it,
this takes the repository's shared lock, commits the session (packs and index durable),
lets the kind finish (PostgreSQL waits for its WAL), and only then writes the snapshot.
A failure or a cancellation before that leaves no snapshot and no damage; whatever packs
were uploaded become garbage for prune.

Events, in order: ``store`` started (with the live counters) → notices as they come →
``store``'s counters and end → ``commit`` → the kind's own steps (``wal-wait``) →
``snapshot`` → the result. The operation can be cancelled until the snapshot is written.
"""

from __future__ import annotations

import getpass
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lifeboat import __version__
from lifeboat.core.events import Event, Events, NoticeRaised
from lifeboat.core.host import this_host
from lifeboat.core.progress import Notice
from lifeboat.core.snapshot import Snapshot
from lifeboat.errors import LifeboatError
from lifeboat.repository.repo import Repository
from lifeboat.repository.session import SessionStats, WriteSession
from lifeboat.sources.base import BackupContext, SourceKind
from lifeboat.sources.files.archiver import ArchiveResult


def default_workers() -> int:
    return max(2, os.cpu_count() or 2)


@dataclass(frozen=True)
class SourceBackup:
    """One backup to run: a kind, its request, and what every backup has."""

    kind: SourceKind
    request: Any  # the kind's own request (SourceKind.request made it)
    tags: tuple[str, ...] = ()
    hostname: str = field(default_factory=this_host)
    lock_wait: float = 0.0
    workers: int = field(default_factory=default_workers)
    label: str = "backing up"  # for a progress line


@dataclass
class BackupResult:
    """A saved backup: its snapshot, what the source found, what was stored, and the notices."""

    snapshot: Snapshot
    archive: ArchiveResult
    stored: SessionStats
    duration: float
    notices: list[Notice] = field(default_factory=list)
    parent: str | None = None
    record: Any = None  # the kind's own record (a base backup, a producer's end)
    incomplete: LifeboatError | None = None  # why the saved snapshot is partial (exit 3)
    details: dict[str, Any] = field(default_factory=dict)  # the kind's part of the JSON form

    @property
    def partial(self) -> bool:
        return self.incomplete is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "snapshot": self.snapshot.to_json(),
            "parent": self.parent,
            "partial": self.partial,
            "duration_seconds": round(self.duration, 3),
            **self.snapshot.summary,
            **self.details,
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


class _NoticeRecorder:
    """An event sink that keeps the notices for the result and passes every event on."""

    def __init__(self, sink: Callable[[Event], None]) -> None:
        self.notices: list[Notice] = []
        self._sink = sink

    def __call__(self, event: Event) -> None:
        if isinstance(event, NoticeRaised):
            self.notices.append(event.notice)
        self._sink(event)


def run_backup(
    repo: Repository,
    job: SourceBackup,
    *,
    events: Events | None = None,
    clock: Callable[[], datetime] | None = None,
) -> BackupResult:
    """Back up ``job`` into ``repo``; returns the saved snapshot (partial if the kind says so).

    Raises before taking a lock if the source fails its check (a named path is missing).
    """
    given = events or Events()
    recorder = _NoticeRecorder(given.sink)
    events = Events(recorder, cancel=given.cancel, operation="backup")
    events.progress = given.progress
    job.kind.check(job.request)
    clock = clock or repo.clock
    started_at = clock()
    started = time.monotonic()
    with repo.lock(exclusive=False, operation="backup", wait=job.lock_wait):
        from lifeboat.repository.wal import WalArchive

        with WriteSession(repo, workers=job.workers) as session:
            ctx = BackupContext(
                saver=session,
                chunker=repo.chunker(),
                reader=repo,
                archived_wal=lambda system_id: WalArchive(repo, system_id),
                block_size=repo.header.block_size,
                hostname=job.hostname,
                workers=job.workers,
                events=events,
                clock=clock,
            )
            with events.phase("store", job.label, counts=True):
                produced = job.kind.backup(ctx, job.request)
            with events.phase("commit", "writing the index"):
                stored = session.commit()
        more = produced.finish() if produced.finish is not None else {}
        duration = time.monotonic() - started
        with events.phase("snapshot", "saving the snapshot"):
            snapshot = repo.save_snapshot(
                Snapshot(
                    time=produced.time or started_at,
                    source=produced.source,
                    kind=produced.kind,
                    tree=produced.tree,
                    hostname=job.hostname,
                    username=getpass.getuser(),
                    paths=produced.paths,
                    tags=job.tags,
                    parent=produced.parent.id if produced.parent else None,
                    program_version=__version__,
                    summary=snapshot_summary(produced.archive, stored, duration, **produced.summary, **more),
                    extra=produced.extra,
                )
            )
    result = BackupResult(
        snapshot,
        produced.archive,
        stored,
        duration,
        recorder.notices,
        produced.parent.id if produced.parent else None,
        produced.record,
        produced.partial(snapshot) if produced.partial is not None else None,
        produced.details(snapshot) if produced.details is not None else {},
    )
    events.result(result.to_json())
    return result
