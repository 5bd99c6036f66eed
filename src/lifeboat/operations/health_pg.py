"""What a running PostgreSQL cluster says about its archiving, for a health check.

Three facts, each from where it is true: the archiver's counters (``pg_stat_archiver``),
the ``.ready`` backlog (files PostgreSQL finished and ``archive_command`` has not yet
archived: counted in ``pg_wal/archive_status`` when the data directory is on this host and
readable, else with ``pg_ls_archive_statusdir()``), and Lifeboat's own spool (which of those
files a ``wal-push`` worker has stored, which failed and why). A cluster that cannot be
reached is *not known* — the health check says UNKNOWN for these, never CRITICAL: the
repository's WAL still tells how fresh the backups are.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lifeboat.core.health import ArchiverStats
from lifeboat.errors import LifeboatError
from lifeboat.sources.postgres.server import PgServer
from lifeboat.sources.postgres.spool import RecordedFailure, Spool, recorded_failures, spool_bases
from lifeboat.sources.postgres.walqueue import file_size, ready_files
from lifeboat.sources.tools.pg import Connection

CONNECT_TIMEOUT = 5  # seconds: a health check must answer even when the server does not


@dataclass
class SpoolQueue:
    """What Lifeboat's wal-push spools hold for the files PostgreSQL has ready."""

    queued: int  # ready files no spool has stored yet
    queued_bytes: int
    failed: list[str] = field(default_factory=list)  # files whose last push failed
    last_failure: RecordedFailure | None = None
    spools: int = 0

    def to_json(self) -> dict[str, Any]:
        failure = self.last_failure
        return {
            "queued": self.queued,
            "queued_bytes": self.queued_bytes,
            "failed": self.failed,
            "spools": self.spools,
            "last_failure": None
            if failure is None
            else {"wal": failure.wal, "at": failure.at, "message": failure.failure.message},
        }


@dataclass
class ClusterProbe:
    """A cluster as a health check sees it; ``error`` set when it could not be reached."""

    error: str = ""
    system_id: str = ""
    data_directory: str = ""
    archiver: ArchiverStats | None = None
    ready: int | None = None
    ready_how: str = ""  # where the backlog was counted, or why it was not
    spool: SpoolQueue | None = None
    spool_how: str = ""

    @property
    def reachable(self) -> bool:
        return not self.error

    def to_json(self) -> dict[str, Any]:
        return {
            "reachable": self.reachable,
            "error": self.error or None,
            "system_id": self.system_id or None,
            "data_directory": self.data_directory or None,
            "archiver": self.archiver.to_json() if self.archiver else None,
            "ready": self.ready,
            "ready_counted": self.ready_how,
            "spool": self.spool.to_json() if self.spool else None,
            "spool_note": self.spool_how or None,
        }


def probe_cluster(
    connection: Connection, *, configured_spool: str | None = None, timeout: int = CONNECT_TIMEOUT
) -> ClusterProbe:
    """Ask the cluster ``connection`` reaches; never raises for an unreachable one."""
    try:
        server = PgServer.connect(connection, application_name="lifeboat health", timeout=timeout)
    except LifeboatError as exc:
        return ClusterProbe(error=exc.message)
    probe = ClusterProbe()
    with server:
        try:
            row = server.rows(
                "SELECT (SELECT system_identifier FROM pg_control_system())::text,"
                " current_setting('data_directory'), current_setting('archive_command')"
            )[0]
            probe.system_id, probe.data_directory, archive_command = str(row[0]), str(row[1]), str(row[2])
            stats = server.archiver()
        except LifeboatError as exc:
            return ClusterProbe(error=exc.message)
        probe.archiver = ArchiverStats(
            archived_count=int(stats["archived_count"] or 0),
            last_archived_wal=stats["last_archived_wal"],
            last_archived_time=stats["last_archived_time"],
            failed_count=int(stats["failed_count"] or 0),
            last_failed_wal=stats["last_failed_wal"],
            last_failed_time=stats["last_failed_time"],
        )
        pg_wal = Path(probe.data_directory) / "pg_wal"
        ready: list[str] | None = None
        if os.access(pg_wal / "archive_status", os.R_OK | os.X_OK):
            ready = ready_files(pg_wal)
            probe.ready, probe.ready_how = len(ready), f"in {pg_wal / 'archive_status'}"
        else:
            try:
                probe.ready = server.integer(
                    "SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%%.ready'"
                )
                probe.ready_how = "with pg_ls_archive_statusdir()"
            except LifeboatError as exc:
                probe.ready_how = f"the data directory is not readable here and {exc.message}"
    if ready is None:
        probe.spool_how = "the data directory is not on this host (or not readable): the spool is not known"
        return probe
    bases = spool_bases(archive_command, probe.data_directory, configured_spool)
    probe.spool = _spool_queue(pg_wal, ready, bases)
    return probe


def probe_source(config: Any) -> ClusterProbe:
    """Ask the live cluster of the postgres source ``config``: its configured connection over
    libpq's PG* variables, and its configured spool (``health`` and the daemon's archiving watch)."""
    from lifeboat.sources.postgres.kind import connection_for

    return probe_cluster(connection_for(config, {}), configured_spool=getattr(config, "wal_spool_dir", None))


def _spool_queue(pg_wal: Path, ready: list[str], bases: list[Path]) -> SpoolQueue:
    """Which ready files no spool below ``bases`` has stored, which failed, and the last failure."""
    stored: set[str] = set()
    failed: set[str] = set()
    spools = 0
    for base in bases:
        try:
            entries = sorted(os.listdir(base))
        except OSError:
            continue
        for entry in entries:
            spool = Spool(base / entry)
            if not spool.out.is_dir():
                continue
            spools += 1
            try:
                statuses = spool.push_statuses()
            except OSError:
                continue
            stored |= {name for name, status in statuses.items() if status == "ok"}
            failed |= {name for name, status in statuses.items() if status == "error"}
    queued = [name for name in ready if name not in stored]
    failures = sorted(recorded_failures(bases), key=lambda r: r.at)
    return SpoolQueue(
        queued=len(queued),
        queued_bytes=sum(file_size(pg_wal, name) for name in queued),
        failed=sorted(failed & set(ready)),
        last_failure=failures[-1] if failures else None,
        spools=spools,
    )


__all__ = ["CONNECT_TIMEOUT", "ClusterProbe", "SpoolQueue", "probe_cluster"]
