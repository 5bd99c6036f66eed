"""PostgreSQL base backups: *local* (read the data directory in backup mode) and *stream*
(pg_basebackup's tar stream), each recorded with what a restore needs.

*local*: ``pg_backup_start`` on a held connection, the data directory and tablespaces
read in parallel by the file archiver (fixed page-aligned blocks for relation files,
optional page-checksum verification, files unchanged since the previous backup of the
source skipped — size, mtime, ctime and inode, with a safety window around that
backup's start), ``pg_backup_stop``, its ``backup_label``/``tablespace_map`` written into
the snapshot, then a wait until the WAL up to the stop position is archived in the
repository. *stream*: ``pg_basebackup -Ft -D - -X fetch`` stored as it streams; the WAL
needed for consistency travels inside the backup.

Only then is the snapshot saved (packs → index → snapshot): a failure at any point, or
a ``kill -9``, leaves no snapshot, and the server ends the backup when our connection
drops, so it is never left in backup mode.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from lifeboat import __version__
from lifeboat.core.basebackup import KIND, BaseBackup, TablespaceRecord
from lifeboat.core.progress import Notice, NoticeSink, Progress, Severity
from lifeboat.core.snapshot import Snapshot, SnapshotFilter
from lifeboat.core.tree import Node, NodeType, Tree
from lifeboat.core.wal import Lsn, parse_backup_label
from lifeboat.errors import LifeboatError, PostgresError, UsageError
from lifeboat.operations.archive_wait import ArchiverWatch, wait_for_wal
from lifeboat.operations.backup import NoticeCollector, default_workers, snapshot_summary
from lifeboat.repository.repo import Repository
from lifeboat.repository.session import SessionStats, WriteSession
from lifeboat.sources.files.archiver import ArchiveResult, FileArchiver, FileBackupOptions
from lifeboat.sources.postgres import layout, pagecheck
from lifeboat.sources.postgres.server import BackupStop, DatabaseSize, PgServer, ServerInfo, Tablespace
from lifeboat.sources.postgres.tarstream import TarTreeBuilder
from lifeboat.sources.postgres.treeparts import DATA, TABLESPACES, directory_node, places, small_file, split
from lifeboat.sources.tools.pg import Connection, PgBasebackup

REUSE_WINDOW_NS = 2_000_000_000  # re-read files modified this close to the previous backup's start
MAX_REPORTED_PAGES = 1000


@dataclass(frozen=True)
class PgBackupRequest:
    method: str = "local"  # local | stream
    connection: Connection = field(default_factory=Connection)
    data_directory: str | None = None
    source: str = ""
    tags: tuple[str, ...] = ()
    hostname: str = field(default_factory=socket.gethostname)
    block_size: int | None = None  # default: the repository's
    verify_checksums: bool = False
    workers: int = field(default_factory=default_workers)
    archive_wait: float = 300.0  # 0: do not wait for the WAL to be archived
    lock_wait: float = 0.0
    label: str | None = None
    full: bool = False  # read every file, even unchanged ones


@dataclass
class PgBackupResult:
    snapshot: Snapshot
    backup: BaseBackup
    stored: SessionStats
    duration: float
    wal_wait: float
    archive: ArchiveResult | None = None
    parent: str | None = None
    notices: list[Notice] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "snapshot": self.snapshot.to_json(),
            "parent": self.parent,
            "duration_seconds": round(self.duration, 3),
            "wal_wait_seconds": round(self.wal_wait, 3),
            **self.snapshot.summary,
            "postgres": self.backup.to_json(),
            "notices": [n.to_json() for n in self.notices],
        }


# Expected while PostgreSQL runs: files change or disappear under a base backup, and WAL
# replay from the backup's start repairs whatever was read mid-change.
EXPECTED_DURING_BACKUP = ("changed while being read", "vanished before it could be read")


def source_name(request: PgBackupRequest, info: ServerInfo) -> str:
    return request.source or f"postgres-{info.system_id}"


def find_parent_backup(repo: Repository, source: str, hostname: str) -> Snapshot | None:
    found = SnapshotFilter(sources=(source,), hostnames=(hostname,), kinds=(KIND,)).apply(repo.snapshots())
    return found[-1] if found else None


def _block_size(repo: Repository, request: PgBackupRequest, page_size: int) -> int:
    size = request.block_size or repo.header.block_size
    if size < page_size or size % page_size:
        raise UsageError(f"block size {size} must be a multiple of the page size {page_size}")
    return size


def _connect(request: PgBackupRequest) -> tuple[PgServer, ServerInfo]:
    server = PgServer.connect(request.connection, application_name="lifeboat backup")
    try:
        info = server.info()
        if info.in_recovery:
            raise PostgresError("the server is a standby; take base backups from the primary")
    except BaseException:
        server.close()
        raise
    return server, info


def backup_postgres(
    repo: Repository,
    request: PgBackupRequest,
    *,
    progress: Progress | None = None,
    notify: NoticeSink | None = None,
    clock: Callable[[], datetime] | None = None,
) -> PgBackupResult:
    """Take a base backup of the cluster ``request`` names; returns the saved snapshot."""
    if request.method not in ("local", "stream"):
        raise UsageError(f"unknown backup method {request.method!r}: use local or stream")
    progress = progress or Progress()
    notices = NoticeCollector(notify, expected=EXPECTED_DURING_BACKUP)
    with repo.lock(exclusive=False, operation="backup", wait=request.lock_wait):
        if request.method == "local":
            return _backup_local(repo, request, progress, notices, clock or repo.clock)
        return _backup_stream(repo, request, progress, notices, clock or repo.clock)


# --- local -------------------------------------------------------------------------------------


class _ChecksumVerifier:
    """The archiver's block hook: verifies relation pages, collects the damaged ones."""

    def __init__(self, start_lsn: int, page_size: int, relation_segment_size: int, notify: NoticeSink) -> None:
        self.start_lsn = start_lsn
        self.page_size = page_size
        self.relation_segment_size = relation_segment_size
        self.damaged: list[dict[str, Any]] = []
        self.pages = 0
        self._notify = notify
        self._lock = threading.Lock()

    def __call__(self, path: str, offset: int, data: bytes) -> None:
        name = os.path.basename(path)
        first = layout.first_block(name, self.relation_segment_size, self.page_size) + offset // self.page_size
        bad = pagecheck.damaged_pages(data, first, self.start_lsn)
        with self._lock:
            self.pages += len(data) // self.page_size
            for page in bad:
                if len(self.damaged) < MAX_REPORTED_PAGES:
                    self.damaged.append({"path": path, "block": page.block, "stored": page.stored})
        for page in bad:
            self._notify(
                Notice(
                    Severity.WARNING,
                    path,
                    f"page {page.block} fails its checksum (stored {page.stored:#06x}, computed {page.computed:#06x})",
                )
            )


def _parent_start(parent: Snapshot | None) -> int | None:
    """When the previous backup started (ns), or None when there is none to take files from."""
    if parent is None:
        return None
    try:
        return int(BaseBackup.of(parent).start_time.timestamp() * 1_000_000_000)
    except LifeboatError:
        return None


def _backup_local(
    repo: Repository,
    request: PgBackupRequest,
    progress: Progress,
    notices: NoticeCollector,
    clock: Callable[[], datetime],
) -> PgBackupResult:
    started = time.monotonic()
    server, info = _connect(request)
    try:
        data_dir = os.path.realpath(request.data_directory or info.data_directory)
        if os.path.realpath(info.data_directory) != data_dir:
            raise UsageError(
                f"the server's data directory is {info.data_directory}, not {request.data_directory}",
                hint="give the data directory of the server you connect to, or use --method stream",
            )
        if not os.path.isfile(os.path.join(data_dir, "PG_VERSION")):
            raise UsageError(f"{data_dir} is not a readable PostgreSQL data directory on this host")
        tablespaces = server.tablespaces()
        databases = server.database_sizes()
        source = source_name(request, info)
        parent = None if request.full else find_parent_backup(repo, source, request.hostname)
        previous_start_ns = _parent_start(parent)
        block_size = _block_size(repo, request, info.block_size)
        label = _label(request, clock)
        roots = [split(data_dir), *(split(t.location) for t in tablespaces)]
        watch = _watch_archiver(request, server, data_dir)
        start_time = clock()
        start_lsn = server.backup_start(label, fast=True)
        verifier = (
            _ChecksumVerifier(start_lsn, info.block_size, info.relation_segment_size, notices)
            if request.verify_checksums
            else None
        )
        if request.verify_checksums and not info.data_checksums:
            notices(Notice(Severity.WARNING, data_dir, "data checksums are off in this cluster; nothing to verify"))
            verifier = None
        stops: list[BackupStop] = []
        with WriteSession(repo, workers=request.workers) as session:

            def backup_label(data: Node) -> list[Node]:
                """Once every file is read: stop the backup; its label goes into ``data/``."""
                stop = server.backup_stop()
                stops.append(stop)
                extra = [small_file(session, "backup_label", stop.label_file.encode(), data)]
                if stop.tablespace_map:
                    extra.append(small_file(session, "tablespace_map", stop.tablespace_map.encode(), data))
                return extra

            the_places, made_dirs = places(data_dir, [(t.oid, t.location) for t in tablespaces], backup_label)
            options = FileBackupOptions(
                places=the_places,
                made_dirs=made_dirs,
                filter=layout.backup_filter(data_dir),
                readers=max(1, request.workers),
                block_size_for=lambda parts: block_size if layout.is_relation_path(parts, roots) else 0,
                on_block=verifier,
                reuse_window_ns=REUSE_WINDOW_NS if previous_start_ns is not None else 0,
                started_ns=previous_start_ns or 0,
            )
            archiver = FileArchiver(
                session,
                repo.chunker(),
                options,
                parent_loader=repo if previous_start_ns is not None else None,
                parent_tree=parent.tree if parent is not None and previous_start_ns is not None else None,
                progress=progress,
                notify=notices,
            )
            archive = archiver.run()
            if not stops:
                raise LifeboatError(f"the data directory {data_dir} could not be backed up")
            stop = stops[0]
            next_xid = server.next_xid()
            server.close()
            _refuse_absent(archive, tablespaces)
            root = archive.tree
            stored = session.commit()
    finally:
        server.close()
    label_info = parse_backup_label(stop.label_file)
    backup = BaseBackup(
        method="local",
        system_id=info.system_id,
        version=info.version,
        version_num=info.version_num,
        timeline=label_info.start_timeline or info.timeline,
        start_lsn=start_lsn,
        stop_lsn=stop.lsn,
        start_time=start_time,
        stop_time=stop.stop_time,
        label=label,
        data_directory=data_dir,
        wal_segment_size=info.wal_segment_size,
        page_size=info.block_size,
        data_checksums=info.data_checksums,
        tablespaces=tuple(TablespaceRecord(t.oid, t.name, t.location) for t in tablespaces),
        databases=_database_records(databases),
        next_xid=next_xid,
        checksum_errors=tuple(verifier.damaged) if verifier else (),
    )
    if archive.errors:
        raise LifeboatError(
            f"{archive.errors} files of the data directory could not be read; the backup was not saved",
            hint="the messages above name them; the backup must run as a user that can read the whole directory",
        )
    try:
        wal_wait = wait_for_wal(repo, backup, request.archive_wait, watch)
    finally:
        if watch is not None:
            watch.close()
    duration = time.monotonic() - started
    more = {
        "method": "local",
        "checksum_pages_verified": verifier.pages if verifier else 0,
        "checksum_failures": len(verifier.damaged) if verifier else 0,
        "wal_wait_seconds": round(wal_wait, 3),
        "files_changed_during_backup": notices.expected,
    }
    summary = snapshot_summary(archive, stored, duration, **more)
    return _save(repo, request, source, root, backup, archive, stored, summary, duration, wal_wait, parent, notices)


def _watch_archiver(request: PgBackupRequest, server: PgServer, data_dir: str) -> ArchiverWatch | None:
    """A watch on the server's archiving from now on, for the wait for WAL (None when not waiting)."""
    if request.archive_wait <= 0:
        return None
    try:
        return ArchiverWatch(
            server, data_dir, connect=lambda: PgServer.connect(request.connection, application_name="lifeboat backup")
        )
    except PostgresError:
        return None  # a role that may not read the archiver's statistics: wait without watching


def _label(request: PgBackupRequest, clock: Callable[[], datetime]) -> str:
    return request.label or f"lifeboat {clock().astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


def _database_records(databases: list[DatabaseSize]) -> tuple[dict[str, Any], ...]:
    return tuple({"name": d.name, "oid": d.oid, "size": d.size} for d in databases)


def _save(
    repo: Repository,
    request: PgBackupRequest,
    source: str,
    root: bytes,
    backup: BaseBackup,
    archive: ArchiveResult,
    stored: SessionStats,
    summary: dict[str, Any],
    duration: float,
    wal_wait: float,
    parent: Snapshot | None,
    notices: NoticeCollector,
) -> PgBackupResult:
    """Save the base backup's snapshot (its start time, the data directory as its path)."""
    snapshot = repo.save_snapshot(
        Snapshot(
            time=backup.start_time,
            source=source,
            kind=KIND,
            tree=root,
            hostname=request.hostname,
            username=getpass.getuser(),
            paths=(backup.data_directory,),
            tags=request.tags,
            parent=parent.id if parent else None,
            program_version=__version__,
            summary=summary,
            extra={"postgres": backup.to_json()},
        )
    )
    parent_id = parent.id if parent else None
    return PgBackupResult(
        snapshot,
        replace(backup, snapshot_id=snapshot.id),
        stored,
        duration,
        wal_wait,
        archive,
        parent_id,
        notices.notices,
    )


def _next_xid(request: PgBackupRequest) -> int:
    with PgServer.connect(request.connection, application_name="lifeboat backup") as server:
        return server.next_xid()


def _refuse_absent(archive: ArchiveResult, tablespaces: list[Tablespace]) -> None:
    """A tablespace the backup could not take fails it (no snapshot without one)."""
    for space in tablespaces:
        if os.path.abspath(space.location) in archive.absent:
            raise LifeboatError(f"tablespace {space.name} at {space.location} could not be backed up")


# --- stream ------------------------------------------------------------------------------------


def _backup_stream(
    repo: Repository,
    request: PgBackupRequest,
    progress: Progress,
    notices: NoticeCollector,
    clock: Callable[[], datetime],
) -> PgBackupResult:
    started = time.monotonic()
    server, info = _connect(request)
    try:
        tablespaces = server.tablespaces()
        if tablespaces:
            raise UsageError(
                f"the cluster has {len(tablespaces)} tablespaces; pg_basebackup cannot stream those to standard output",
                hint="use --method local on the database host",
            )
        databases = server.database_sizes()
    finally:
        server.close()
    source = source_name(request, info)
    block_size = _block_size(repo, request, info.block_size)
    label = _label(request, clock)
    start_time = clock()
    tool = PgBasebackup(str(info.version_num // 10000))
    with WriteSession(repo, workers=request.workers) as session:
        saver = session
        builder = TarTreeBuilder(
            saver,
            repo.chunker(),
            block_size_for=lambda parts: block_size if layout.is_relation_path(parts, [()]) else 0,
            progress=progress,
        )
        with tool.stream(request.connection, label) as tar:
            built = builder.consume(tar)
        label_text = built.texts.get("backup_label", b"").decode(errors="replace")
        if not label_text:
            raise PostgresError("pg_basebackup's archive has no backup_label")
        like = Node(name=DATA, type=NodeType.DIR, uid=built.root_uid, gid=built.root_gid)
        data_node = directory_node(saver, DATA, (), like)
        data_node = replace(data_node, subtree=built.tree, mode=0o700)
        root = saver.save_tree(Tree((data_node, directory_node(saver, TABLESPACES, (), like))))
        stored = session.commit()
    stop_time = clock()
    label_info = parse_backup_label(label_text)
    stop_lsn = _stop_lsn(built.texts.get("backup_manifest", b""), tool.log) or label_info.start_lsn
    try:
        next_xid = _next_xid(request)
    except LifeboatError:
        next_xid = None
    backup = BaseBackup(
        method="stream",
        system_id=info.system_id,
        version=info.version,
        version_num=info.version_num,
        timeline=label_info.start_timeline or info.timeline,
        start_lsn=label_info.start_lsn,
        stop_lsn=stop_lsn,
        start_time=start_time,
        stop_time=stop_time,
        label=label,
        data_directory=info.data_directory,
        wal_segment_size=info.wal_segment_size,
        page_size=info.block_size,
        data_checksums=info.data_checksums,
        databases=_database_records(databases),
        next_xid=next_xid,
        wal_included=True,
    )
    duration = time.monotonic() - started
    archive = ArchiveResult(tree=root, files_new=built.files, dirs=built.dirs, bytes_total=built.bytes_total)
    summary = snapshot_summary(archive, stored, duration, method="stream")
    return _save(repo, request, source, root, backup, archive, stored, summary, duration, 0.0, None, notices)


def _stop_lsn(manifest: bytes, log: str) -> Lsn | None:
    """The backup's end: the manifest's last WAL range, else pg_basebackup's 'end point' message."""
    if manifest:
        try:
            ranges = json.loads(manifest).get("WAL-Ranges", [])
            if ranges:
                return Lsn.parse(str(ranges[-1]["End-LSN"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            pass
    for line in log.splitlines():
        if "write-ahead log end point:" in line:
            return Lsn.parse(line.rsplit(":", 1)[1].strip())
    return None
