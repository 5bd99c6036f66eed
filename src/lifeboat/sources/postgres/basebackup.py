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

The snapshot is saved by the operation around this (operations/snapshots.py) only after
all of it (packs → index → snapshot): a failure at any point, or a ``kill -9``, leaves no
snapshot, and the server ends the backup when our connection drops, so it is never left in
backup mode. This module sees the repository only through the backup context's protocols.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from lifeboat.core.basebackup import KIND, BaseBackup, TablespaceRecord
from lifeboat.core.defaults import ARCHIVE_WAIT_SECONDS
from lifeboat.core.progress import Notice, NoticeSink, Severity
from lifeboat.core.snapshot import Snapshot, find_parent
from lifeboat.core.tree import Node, NodeType, Tree
from lifeboat.core.wal import Lsn, parse_backup_label
from lifeboat.errors import LifeboatError, PartialBackup, PostgresError, UsageError, option
from lifeboat.sources.base import BackupContext, Produced
from lifeboat.sources.files.archiver import ArchiveResult, FileArchiver, FileBackupOptions
from lifeboat.sources.postgres import layout, pagecheck
from lifeboat.sources.postgres.archive_wait import ArchiverWatch, wait_for_wal
from lifeboat.sources.postgres.server import BackupStop, DatabaseSize, PgServer, ServerInfo, Tablespace
from lifeboat.sources.postgres.tarstream import TarTreeBuilder
from lifeboat.sources.postgres.treeparts import DATA, TABLESPACES, directory_node, places, small_file, split
from lifeboat.sources.tools.pg import Connection, PgBasebackup

REUSE_WINDOW_NS = 2_000_000_000  # re-read files modified this close to the previous backup's start
MAX_REPORTED_PAGES = 1000


@dataclass(frozen=True)
class PgBackupRequest:
    """A base backup of the cluster ``connection`` reaches."""

    method: str = "local"  # local | stream
    connection: Connection = field(default_factory=Connection)
    data_directory: str | None = None
    source: str = ""
    block_size: int | None = None  # default: the repository's
    verify_checksums: bool = False
    archive_wait: float = ARCHIVE_WAIT_SECONDS  # 0: do not wait for the WAL to be archived
    label: str | None = None
    full: bool = False  # read every file, even unchanged ones


# Expected while PostgreSQL runs: files change or disappear under a base backup, and WAL
# replay from the backup's start repairs whatever was read mid-change.
EXPECTED_DURING_BACKUP = ("changed while being read", "vanished before it could be read")


def source_name(request: PgBackupRequest, info: ServerInfo) -> str:
    return request.source or f"postgres-{info.system_id}"


class _ExpectedChanges:
    """Passes notices on, except the warnings a live database causes (:data:`EXPECTED_DURING_BACKUP`),
    which are only counted."""

    def __init__(self, sink: NoticeSink) -> None:
        self.expected = 0
        self._sink = sink
        self._lock = threading.Lock()

    def __call__(self, notice: Notice) -> None:
        if notice.severity is Severity.WARNING and notice.message.startswith(EXPECTED_DURING_BACKUP):
            with self._lock:
                self.expected += 1
            return
        self._sink(notice)


def _block_size(ctx: BackupContext, request: PgBackupRequest, page_size: int) -> int:
    size = request.block_size or ctx.block_size
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


def produce_base_backup(ctx: BackupContext, request: PgBackupRequest) -> Produced:
    """Take a base backup of the cluster ``request`` names into ``ctx.saver``; what the
    snapshot records, and what must happen before it is saved (the wait for its WAL)."""
    if request.method not in ("local", "stream"):
        raise UsageError(f"unknown backup method {request.method!r}: use local or stream")
    notices = _ExpectedChanges(ctx.events.notice)
    if request.method == "local":
        return _backup_local(ctx, request, notices)
    return _backup_stream(ctx, request, notices)


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


def _backup_local(ctx: BackupContext, request: PgBackupRequest, notices: _ExpectedChanges) -> Produced:
    clock = ctx.clock
    server, info = _connect(request)
    try:
        data_dir = os.path.realpath(request.data_directory or info.data_directory)
        if os.path.realpath(info.data_directory) != data_dir:
            raise UsageError(
                f"the server's data directory is {info.data_directory}, not {request.data_directory}",
                hint=f"give the data directory of the server you connect to, or back up with {option('method')} stream",
            )
        if not os.path.isfile(os.path.join(data_dir, "PG_VERSION")):
            raise UsageError(f"{data_dir} is not a readable PostgreSQL data directory on this host")
        tablespaces = server.tablespaces()
        databases = server.database_sizes()
        source = source_name(request, info)
        parent = None if request.full else find_parent(ctx.readable_snapshots(), source, ctx.hostname, KIND)
        previous_start_ns = _parent_start(parent)
        block_size = _block_size(ctx, request, info.block_size)
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

        def backup_label(data: Node) -> list[Node]:
            """Once every file is read: stop the backup; its label goes into ``data/``."""
            stop = server.backup_stop()
            stops.append(stop)
            extra = [small_file(ctx.saver, "backup_label", stop.label_file.encode(), data)]
            if stop.tablespace_map:
                extra.append(small_file(ctx.saver, "tablespace_map", stop.tablespace_map.encode(), data))
            return extra

        the_places, made_dirs = places(data_dir, [(t.oid, t.location) for t in tablespaces], backup_label)
        options = FileBackupOptions(
            places=the_places,
            made_dirs=made_dirs,
            filter=layout.backup_filter(data_dir),
            readers=max(1, ctx.workers),
            block_size_for=lambda parts: block_size if layout.is_relation_path(parts, roots) else 0,
            on_block=verifier,
            reuse_window_ns=REUSE_WINDOW_NS if previous_start_ns is not None else 0,
            started_ns=previous_start_ns or 0,
        )
        archiver = FileArchiver(
            ctx.saver,
            ctx.chunker,
            options,
            parent_loader=ctx.reader if previous_start_ns is not None else None,
            parent_tree=parent.tree if parent is not None and previous_start_ns is not None else None,
            progress=ctx.events.progress,
            notify=notices,
            cancel=ctx.events.check,
        )
        archive = archiver.run()
        if not stops:
            raise LifeboatError(f"the data directory {data_dir} could not be backed up")
        stop = stops[0]
        next_xid = server.next_xid()
        server.close()
        _refuse_absent(archive, tablespaces)
        root = archive.tree
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

    def finish() -> dict[str, Any]:
        """After the commit: refuse a backup with unreadable files, wait for its WAL."""
        if archive.errors:
            raise LifeboatError(
                f"{archive.errors} files of the data directory could not be read; the backup was not saved",
                hint="the messages above name them; the backup must run as a user that can read the whole directory",
            )
        try:
            with ctx.events.phase("wal-wait", "waiting for the backup's WAL to be archived"):
                wal_wait = wait_for_wal(ctx.archived_wal(backup.system_id), backup, request.archive_wait, watch)
        finally:
            if watch is not None:
                watch.close()
        return {
            "method": "local",
            "checksum_pages_verified": verifier.pages if verifier else 0,
            "checksum_failures": len(verifier.damaged) if verifier else 0,
            "wal_wait_seconds": round(wal_wait, 3),
            "files_changed_during_backup": notices.expected,
        }

    return _produced(source, root, backup, archive, parent, finish)


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


def _produced(
    source: str,
    root: bytes,
    backup: BaseBackup,
    archive: ArchiveResult,
    parent: Snapshot | None,
    finish: Callable[[], dict[str, Any]],
) -> Produced:
    """The base backup's snapshot: its start time, the data directory as its path, its record."""
    return Produced(
        tree=root,
        source=source,
        kind=KIND,
        paths=(backup.data_directory,),
        archive=archive,
        time=backup.start_time,
        parent=parent,
        extra={"postgres": backup.to_json()},
        finish=finish,
        record=backup,
        partial=lambda snapshot: _damaged_pages(snapshot, backup),
        details=lambda snapshot: {
            "wal_wait_seconds": snapshot.summary.get("wal_wait_seconds", 0.0),
            "postgres": backup.to_json(),
        },
    )


def _damaged_pages(snapshot: Snapshot, backup: BaseBackup) -> PartialBackup | None:
    """A base backup holding pages that failed their checksum is saved as read, and partial."""
    if not backup.checksum_errors:
        return None
    return PartialBackup(
        f"snapshot {snapshot.short_id} holds {len(backup.checksum_errors)} pages that failed their checksum"
        " (listed above)",
        hint="the backup was saved as read; check the server's storage and the tables those pages belong to",
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


def _backup_stream(ctx: BackupContext, request: PgBackupRequest, notices: _ExpectedChanges) -> Produced:
    clock = ctx.clock
    server, info = _connect(request)
    try:
        tablespaces = server.tablespaces()
        if tablespaces:
            raise UsageError(
                f"the cluster has {len(tablespaces)} tablespaces; pg_basebackup cannot stream those to standard output",
                hint=f"back up with {option('method')} local on the database host",
            )
        databases = server.database_sizes()
    finally:
        server.close()
    source = source_name(request, info)
    block_size = _block_size(ctx, request, info.block_size)
    label = _label(request, clock)
    start_time = clock()
    tool = PgBasebackup(str(info.version_num // 10000))
    saver = ctx.saver
    builder = TarTreeBuilder(
        saver,
        ctx.chunker,
        block_size_for=lambda parts: block_size if layout.is_relation_path(parts, [()]) else 0,
        progress=ctx.events.progress,
        cancel=ctx.events.check,
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
    archive = ArchiveResult(tree=root, files_new=built.files, dirs=built.dirs, bytes_total=built.bytes_total)
    return _produced(source, root, backup, archive, None, lambda: {"method": "stream"})


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
