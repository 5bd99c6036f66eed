"""Waiting for the WAL a base backup needs, and noticing when archiving fails meanwhile.

A local base backup is whole only with the WAL from its start to its stop, which the
server's ``archive_command`` pushes into the repository. While the backup waits for it,
:class:`ArchiverWatch` follows the server's archiver statistics (``pg_stat_archiver``):
when ``archive_command`` has failed since the backup began and failed last, the failing
``wal-push`` left its error in its spool (``out/failed``). A failure retries will not
cure — a file of the repository the server's user may not read, a wrong passphrase, a WAL
conflict — ends the wait at once with that error's own class and exit code (a permission
problem exits 14, not 13); a failure without a recorded reason, a transient or a generic
one, is named when the wait runs out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lifeboat.core.basebackup import BaseBackup
from lifeboat.core.protocols import ArchivedWal
from lifeboat.core.wal import WalSegment
from lifeboat.errors import (
    ArchivingFailed,
    ExitCode,
    LifeboatError,
    PostgresError,
    TransientStorageError,
    WalMissing,
    error_from,
)
from lifeboat.sources.postgres.server import PgServer
from lifeboat.sources.postgres.spool import RecordedFailure, recorded_failures, spool_bases

WATCH_EVERY = 0.5  # seconds between two looks at pg_stat_archiver
_CLOCK_SLACK = 2.0  # seconds a spool record may seem to predate the backup (clocks, rounding)
# Failures PostgreSQL's retries will not cure: waiting on is pointless. (A generic error — a
# pusher that stopped, an internal error — and a transient one may pass: the wait goes on.)
_PERMANENT = frozenset(
    {
        ExitCode.USAGE,
        ExitCode.NO_REPOSITORY,
        ExitCode.WRONG_PASSPHRASE,
        ExitCode.INTEGRITY,
        ExitCode.STORAGE,
        ExitCode.MISSING_TOOL,
    }
)


@dataclass(frozen=True)
class ArchiverStats:
    """What ``pg_stat_archiver`` says about the server's archiving."""

    failed_count: int
    last_failed_wal: str | None
    last_failed_time: datetime | None
    last_archived_time: datetime | None

    @classmethod
    def of(cls, row: dict[str, Any]) -> ArchiverStats:
        return cls(
            int(row["failed_count"] or 0), row["last_failed_wal"], row["last_failed_time"], row["last_archived_time"]
        )

    @property
    def failing(self) -> bool:
        """True when the archiver's last attempt failed."""
        if self.last_failed_time is None:
            return False
        return self.last_archived_time is None or self.last_failed_time >= self.last_archived_time


class ArchiverWatch:
    """Tells whether ``archive_command`` has been failing since a base backup began, and why."""

    def __init__(
        self,
        server: PgServer,
        data_directory: str,
        *,
        connect: Callable[[], PgServer] | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """Watch from now on; later looks use ``server``, or a connection ``connect`` opens (and
        :meth:`close` closes) when ``server`` will be closed before the wait."""
        self._connect = connect
        self._server: PgServer | None = None if connect is not None else server
        try:
            archive_command = server.setting("archive_command")
        except PostgresError:
            archive_command = ""  # only superusers and pg_read_all_settings may read it: the default spool
        self._bases = spool_bases(archive_command, data_directory)
        self._baseline = ArchiverStats.of(server.archiver()).failed_count
        self._since = wall_clock()
        self.seen: LifeboatError | None = None  # the last failure noticed

    def close(self) -> None:
        if self._server is not None and self._connect is not None:
            self._server.close()
            self._server = None

    def _stats(self) -> ArchiverStats | None:
        try:
            if self._server is None and self._connect is not None:
                self._server = self._connect()
            return ArchiverStats.of(self._server.archiver()) if self._server is not None else None
        except LifeboatError:
            self.close()  # the watch is a courtesy: the wait goes on without it
            return None

    def _record(self, wal: str) -> RecordedFailure | None:
        matching = [r for r in recorded_failures(self._bases) if r.wal == wal and r.at >= self._since - _CLOCK_SLACK]
        return max(matching, key=lambda r: r.at) if matching else None

    def check(self) -> LifeboatError | None:
        """The archiving failure that makes waiting longer pointless, if there is one.

        A failure seen but not worth stopping for (transient, or without a recorded reason)
        is kept in :attr:`seen` for the message when the wait runs out.
        """
        stats = self._stats()
        if stats is None or stats.failed_count <= self._baseline or not stats.failing:
            return None
        wal = stats.last_failed_wal or "?"
        failures = stats.failed_count - self._baseline
        record = self._record(wal)
        if record is None:
            self.seen = ArchivingFailed(
                f"archive_command failed {failures} times meanwhile, last on {wal} "
                f"at {stats.last_failed_time:%Y-%m-%d %H:%M:%S %Z}"
            )
            return None
        failure = record.failure
        message = f"archive_command fails on {wal}: {failure.message}"
        error = error_from(failure.code, failure.kind, message, failure.hint)
        self.seen = error
        permanent = error.exit_code in _PERMANENT and not isinstance(error, TransientStorageError)
        return error if permanent else None


def wait_for_wal(
    archive: ArchivedWal,
    backup: BaseBackup,
    timeout: float,
    watch: ArchiverWatch | None = None,
    *,
    poll: float = 0.05,
) -> float:
    """Wait until every segment from the backup's start to its stop is in ``archive`` (the
    backup's system's archived WAL); returns seconds waited.

    Raises the archiver's own error as soon as ``watch`` sees a permanent failure, else
    :class:`WalMissing` (or the archiving failure seen) once ``timeout`` has passed.
    """
    if timeout <= 0:
        return 0.0
    started = time.monotonic()
    next_look = started
    segment: WalSegment = backup.start_segment
    last = backup.stop_segment
    while True:
        while segment <= last and archive.exists(segment.name):
            segment = segment.next()
        if segment > last:
            return time.monotonic() - started
        now = time.monotonic()
        if watch is not None and now >= next_look:
            next_look = now + WATCH_EVERY
            failed = watch.check()
            if failed is not None:
                raise _not_saved(failed)
        if now - started > timeout:
            if watch is not None and watch.seen is not None:
                raise _not_saved(
                    watch.seen, f"WAL segment {segment.name} did not reach the repository within {timeout:.0f}s"
                )
            raise WalMissing(
                f"WAL segment {segment.name}, needed to restore this backup, did not reach the repository "
                f"within {timeout:.0f}s; the backup was not saved",
                hint="check that archive_command is 'lifeboat wal-push %p' into this repository "
                "('lifeboat pg check'), and the server log for archive failures",
            )
        time.sleep(poll)


_NOT_ARCHIVED = "the WAL this backup needs cannot reach the repository"


def _not_saved(error: LifeboatError, before: str = _NOT_ARCHIVED) -> LifeboatError:
    """``error`` with its message saying what it stopped and that the backup was not saved
    (same class, exit code and hint)."""
    error.message = f"{before}: {error.message}; the backup was not saved"
    error.args = (error.message,)
    return error
