"""Archiving WAL (``archive_command``): push a file, look ahead, and guard the queue.

PostgreSQL archives one file at a time and waits for each. The call it makes
(:func:`archive_file`) only waits for a status in the spool (kept until PostgreSQL has
marked the file done, so a repeated call after a crash finds it); a background pusher
(:class:`BackgroundPusher`, one per spool) pushes that file *and* every other ready one,
several at a time, keeping the repository open. So the next calls find their file
already pushed and return at once, without even deriving the key. A status says "done"
only after the repository said the object is durable.

The pusher starts reading and compressing at once: only sealing needs the key, which is
derived meanwhile in a thread of its own (:class:`OpeningArchive`), so the first call of a
burst waits for the key derivation *or* its file's compression, not for one after the
other. Each pusher thread reads segments into one reusable buffer
(:class:`~lifeboat.repository.wal.PayloadBuffer`).

When the queue of ready files grows past ``queue_max`` bytes (the repository has been
unreachable for long), the whole queue is dropped — marked done without being archived —
so that ``pg_wal`` does not fill the disk and stop the database. Point-in-time recovery
across the dropped range becomes impossible; the caller must say so loudly.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from lifeboat.core.events import CancelToken
from lifeboat.core.wal import WalFileKind, parse_wal_file_name
from lifeboat.errors import (
    ExitCode,
    IntegrityError,
    LifeboatError,
    TransientStorageError,
    UsageError,
    WalConflict,
    describe,
    error_from,
)
from lifeboat.repository.compression import Compressor
from lifeboat.repository.wal import WAL_COMPRESSION_LEVEL, PayloadBuffer, PushOutcome, WalArchive
from lifeboat.sources.postgres.pgdata import read_segment_header
from lifeboat.sources.postgres.spool import DROPPED, Failure, Spool
from lifeboat.sources.postgres.walqueue import file_size, ready_files


@dataclass(frozen=True)
class PushSettings:
    parallel: int = 2  # files pushed at the same time by the background pusher
    idle_exit: float = 10.0  # the pusher exits after this long with nothing to push
    queue_max: int | None = None  # bytes of ready WAL beyond which the queue is dropped
    timeout: float = 600.0  # how long a call waits for its file
    poll: float = 0.01


@dataclass(frozen=True)
class DropReport:
    """WAL dropped because the archive queue outgrew its limit."""

    names: tuple[str, ...]
    queued_bytes: int
    limit: int

    def alert(self) -> str:
        first, last = self.names[0], self.names[-1]
        return (
            f"ALERT: archive queue of {self.queued_bytes} bytes exceeds the limit of {self.limit} bytes: "
            f"DROPPED {len(self.names)} WAL files {first} .. {last} without archiving them. "
            "Point-in-time recovery across this range is impossible; fix archiving and take a new base backup."
        )


@dataclass
class PushResult:
    name: str
    outcome: str  # pushed | dropped
    waited: float
    dropped: DropReport | None = None
    notes: list[str] = field(default_factory=list)


_NOT_A_SEGMENT_HINT = (
    "the file in pg_wal is not a whole WAL segment (damaged, or not written by PostgreSQL); nothing was archived "
    "and PostgreSQL retries: check the disk, and what else writes into pg_wal"
)


def _unreadable(pg_wal: Path, name: str, exc: OSError) -> LifeboatError:
    return LifeboatError(
        f"cannot read the WAL file {pg_wal / name}: {exc.strerror or exc}",
        hint="archive_command must run as the cluster's owner and pass %p",
    )


def read_wal_file(pg_wal: Path, name: str, system_id: str) -> bytes:
    """The content of ``pg_wal/<name>``, checked to belong to cluster ``system_id``."""
    try:
        data = (pg_wal / name).read_bytes()
    except OSError as exc:
        raise _unreadable(pg_wal, name, exc) from None
    _check_wal_file(name, data, system_id)
    return data


def read_wal_payload(pg_wal: Path, name: str, system_id: str, buffer: PayloadBuffer) -> tuple[memoryview, memoryview]:
    """(payload, content) of ``pg_wal/<name>``, read into ``buffer`` and checked like
    :func:`read_wal_file`; valid until the buffer's next file."""
    try:
        with open(pg_wal / name, "rb", buffering=0) as file:
            # One byte more than the file's size: a file that grew while read is seen (and refused).
            area = buffer.content_area(name, os.fstat(file.fileno()).st_size + 1)
            size = 0
            while size < len(area) and (got := file.readinto(area[size:])):
                size += got
    except OSError as exc:
        raise _unreadable(pg_wal, name, exc) from None
    content = area[:size]
    if size == len(area):
        raise IntegrityError(f"{name} grew while it was read; refusing to archive it", hint=_NOT_A_SEGMENT_HINT)
    _check_wal_file(name, content, system_id)
    return buffer.payload(name, size), content


def _check_wal_file(name: str, data: bytes | memoryview, system_id: str) -> None:
    """Refuse a segment that is not a whole one of cluster ``system_id``."""
    parsed = parse_wal_file_name(name)
    if parsed.kind in (WalFileKind.SEGMENT, WalFileKind.PARTIAL):
        header = read_segment_header(data)
        if header is None:
            raise IntegrityError(
                f"{name} does not start with a WAL page header; refusing to archive it", hint=_NOT_A_SEGMENT_HINT
            )
        if header.system_id != system_id:
            raise WalConflict(
                f"{name} belongs to database system {header.system_id}, not {system_id} (pg_control)",
                hint="the segment is from another cluster; check the data directory archive_command runs in",
            )
        if len(data) != header.segment_size:
            raise IntegrityError(
                f"{name} has {len(data)} bytes, its header says {header.segment_size}", hint=_NOT_A_SEGMENT_HINT
            )


def push_file(archive: WalArchive, pg_wal: Path, name: str) -> PushOutcome:
    return archive.push(name, read_wal_file(pg_wal, name, archive.system_id))


def failure_of(exc: BaseException) -> Failure:
    if isinstance(exc, LifeboatError):
        return Failure(int(exc.exit_code), exc.message, exc.hint, type(exc).__name__)
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        return Failure(int(ExitCode.ERROR), f"WAL spool error: {exc.strerror or exc}{where}")
    return Failure(int(ExitCode.ERROR), f"internal error: {describe(exc)}")


# --- the call PostgreSQL makes ----------------------------------------------------------------


def enforce_queue_limit(pg_wal: Path, spool: Spool, queue_max: int | None) -> DropReport | None:
    """Drop every ready, unpushed file when together they exceed ``queue_max`` bytes."""
    if not queue_max:
        return None
    pending = [n for n in ready_files(pg_wal) if spool.push_done(n) is None]
    queued = sum(file_size(pg_wal, n) for n in pending)
    if queued <= queue_max:
        return None
    for name in pending:
        spool.mark_pushed(name, dropped=True)
    report = DropReport(tuple(pending), queued, queue_max)
    spool.log(time.strftime("%Y-%m-%d %H:%M:%S ") + report.alert())
    return report


def archive_file(
    name: str,
    pg_wal: Path,
    spool: Spool,
    start_worker: Callable[[], None],
    settings: PushSettings,
    *,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> PushResult:
    """Return once ``name`` is durable in the repository (or dropped); raise if it cannot be.

    A failure recorded for ``name`` is taken as left by an earlier attempt (or seen by the fast
    start while it waited) and retried once by a pusher that opens the repository anew."""
    started = monotonic()
    status = spool.push_done(name)
    if status is not None:
        return PushResult(name, status if status == DROPPED else "pushed", 0.0)
    if not (pg_wal / name).is_file():
        raise UsageError(f"{pg_wal / name} does not exist", hint="archive_command must pass %p (the file's path)")
    dropped = enforce_queue_limit(pg_wal, spool, settings.queue_max)
    if dropped is not None and name in dropped.names:
        return PushResult(name, DROPPED, monotonic() - started, dropped)
    spool.forget_push_failure(name)  # a failure left by an earlier attempt is retried, not repeated
    lock = spool.push_lock()
    starts = 0
    next_check = started
    while True:
        status = spool.push_done(name)
        if status is not None:
            return PushResult(name, status if status == DROPPED else "pushed", monotonic() - started)
        failure = spool.push_failure(name)
        if failure is not None:
            spool.forget_push_failure(name)
            raise _failure_error(failure)
        now = monotonic()
        if now - started > settings.timeout:
            raise LifeboatError(
                f"{name} was not archived within {settings.timeout:.0f}s",
                hint=f"see {spool.log_path}; PostgreSQL will retry",
            )
        if now >= next_check:
            next_check = now + 0.2
            if not lock.held_elsewhere() and spool.push_done(name) is None and spool.push_failure(name) is None:
                if starts >= 3:
                    raise LifeboatError(
                        f"the background pusher stopped three times without archiving {name}",
                        hint=f"see {spool.log_path}",
                    )
                starts += 1
                start_worker()
        sleep(settings.poll)


def _failure_error(failure: Failure) -> LifeboatError:
    return error_from(failure.code, failure.kind, failure.message, failure.hint)


# --- the background pusher ---------------------------------------------------------------------


class OpeningArchive:
    """The WAL archive of cluster ``system_id``, being opened (its key derived) in a thread of
    its own while the pusher already reads and compresses.

    Deriving the key (Argon2id) keeps a core busy for a few hundred milliseconds at the start
    of every burst, while PostgreSQL waits on the burst's first call; compression, the most
    costly step of a push, needs no key and runs on the other core meanwhile.
    """

    def __init__(self, system_id: str, opened: Future[WalArchive], compression_level: int) -> None:
        self.system_id = system_id
        self.compression_level = compression_level  # what the archive will most likely use
        self._opened = opened

    @classmethod
    def start(cls, system_id: str, open_archive: Callable[[], WalArchive]) -> OpeningArchive:
        """Open the archive with ``open_archive`` in a new thread."""
        opened: Future[WalArchive] = Future()

        def run() -> None:
            try:
                opened.set_result(open_archive())
            except BaseException as exc:  # noqa: BLE001 - every push waiting for the key reports it
                opened.set_exception(exc)

        threading.Thread(target=run, name="lifeboat-walpush-open", daemon=True).start()
        # A repository's WAL is compressed at WAL_COMPRESSION_LEVEL unless its own level is lower.
        return cls(system_id, opened, WAL_COMPRESSION_LEVEL)

    @classmethod
    def ready(cls, archive: WalArchive) -> OpeningArchive:
        opened: Future[WalArchive] = Future()
        opened.set_result(archive)
        return cls(archive.system_id, opened, archive.compression_level)

    def get(self, timeout: float) -> WalArchive:
        """The opened archive (waits for it, at most ``timeout`` seconds); raises why it could
        not be opened."""
        try:
            return self._opened.result(timeout)
        except TimeoutError:
            if self._opened.done():
                raise  # the opening itself timed out: its own error
            raise TransientStorageError(
                f"opening the repository took longer than {timeout:g} s",
                hint="check that the repository's storage answers; the file is archived on the next call",
            ) from None

    def failure(self) -> BaseException | None:
        """Why the archive could not be opened, once that is known."""
        return self._opened.exception() if self._opened.done() else None


class BackgroundPusher:
    """Pushes every ready WAL file of one cluster, ``parallel`` at a time, until idle."""

    def __init__(
        self,
        archive: WalArchive | OpeningArchive,
        pg_wal: Path,
        spool: Spool,
        settings: PushSettings,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        owns_spool: Callable[[], bool] = lambda: True,
        cancel: CancelToken | None = None,
    ) -> None:
        self.archive = archive if isinstance(archive, OpeningArchive) else OpeningArchive.ready(archive)
        self._compressor = Compressor(self.archive.compression_level)
        self._buffers = threading.local()  # one PayloadBuffer per pusher thread
        self.cancel = cancel or CancelToken()
        self._owns_spool = owns_spool
        self.pg_wal = pg_wal
        self.spool = spool
        self.settings = settings
        self._monotonic = monotonic
        self.pushed = 0
        self.failed: set[str] = set()

    def _log(self, text: str) -> None:
        self.spool.log(time.strftime("%Y-%m-%d %H:%M:%S ") + text)

    def _push(self, name: str) -> str:
        if self.cancel.cancelled:
            return ""  # queued before the cancel: left for the next pusher
        buffer = getattr(self._buffers, "buffer", None)
        if buffer is None:
            buffer = self._buffers.buffer = PayloadBuffer()
        payload, content = read_wal_payload(self.pg_wal, name, self.archive.system_id, buffer)
        compressed = self._compressor.compress(payload)
        archive = self.archive.get(self.settings.timeout)  # the key: derived meanwhile, the first time
        if archive.compression_level != self._compressor.level:
            compressed = archive.compress(payload)  # a repository that compresses less (or not at all)
        outcome = archive.store(name, compressed, content)
        self.spool.mark_pushed(name)
        return outcome.value

    def _tidy(self, ready: set[str]) -> None:
        """Forget statuses of files PostgreSQL no longer has queued (it marked them done)."""
        for name in self.spool.push_statuses():
            if name not in ready and name not in self.failed:
                self.spool.forget_push(name)

    def run(self) -> int:
        """Push until nothing is ready for ``idle_exit`` seconds, a push fails or the cancel token
        is set; returns files pushed. A cancel is obeyed between segments: no new push starts, the
        ones under way finish and record their status, and the pusher returns (a later call of
        ``archive_command`` starts a new one for what is left)."""
        in_flight: dict[Future[str], str] = {}
        idle_since = self._monotonic()
        last_tidy = 0.0
        stop = False
        with ThreadPoolExecutor(max(1, self.settings.parallel), thread_name_prefix="lifeboat-walpush") as pool:
            while True:
                if not self._owns_spool():
                    return self.pushed  # the spool was removed: its statuses are no longer ours to write
                if self.cancel.cancelled and not stop:
                    stop = True
                    self._log(f"pusher stopping: {self.cancel.reason or 'cancelled'}")
                ready = ready_files(self.pg_wal)
                finished = self.spool.pushed_names()  # one listing, not a status read per ready file
                busy = set(in_flight.values())
                if not stop:
                    for name in ready:
                        if len(in_flight) >= 2 * max(1, self.settings.parallel):
                            break
                        if name in busy or name in self.failed or name in finished:
                            continue
                        in_flight[pool.submit(self._push, name)] = name
                        busy.add(name)
                if in_flight:
                    done, _ = wait(list(in_flight), timeout=0.5, return_when=FIRST_COMPLETED)
                    for future in done:
                        name = in_flight.pop(future)
                        exc = future.exception()
                        if exc is None:
                            if future.result():
                                self.pushed += 1
                                self._log(f"pushed {name} ({future.result()})")
                            continue
                        if not self._owns_spool():
                            return self.pushed
                        failure = failure_of(exc)
                        self.failed.add(name)
                        self.spool.mark_push_failed(name, failure)
                        self._log(f"FAILED {name}: {failure.message}")
                        stop = True  # let PostgreSQL's retry start a fresh pusher
                    idle_since = self._monotonic()
                    continue
                if stop:
                    return self.pushed
                now = self._monotonic()
                if now - last_tidy > 5.0:
                    last_tidy = now
                    self._tidy(set(ready))
                pending = [n for n in ready if n not in self.failed and n not in finished]
                if pending:
                    idle_since = now
                    continue
                if now - idle_since >= self.settings.idle_exit:
                    return self.pushed
                time.sleep(min(0.05, self.settings.idle_exit))
