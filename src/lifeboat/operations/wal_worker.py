"""A ``wal-push``/``wal-fetch`` call the spool could not answer at once, and the background
worker it starts: spool lock, repository, pusher or fetcher, failure records (docs/postgres.md).

The front end supplies what is its own: the configured source and the opened repository
(:class:`WalSetup`), and how to start work in a detached process (:data:`Spawn`, a fork for
the command line). Nothing here prints or decides exit codes. What only fetching needs is
imported when a fetch runs: ``archive_command`` starts a process for every WAL file.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from lifeboat.core.units import parse_size
from lifeboat.errors import UsageError, option
from lifeboat.operations.wal_push import (
    BackgroundPusher,
    OpeningArchive,
    PushResult,
    PushSettings,
    archive_file,
    failure_of,
    push_file,
)
from lifeboat.repository.wal import WalArchive
from lifeboat.sources.postgres.pgdata import read_system_id
from lifeboat.sources.postgres.spool import Failure, RecordedFailure, Spool

if TYPE_CHECKING:
    from lifeboat.config.model import PostgresSourceConfig
    from lifeboat.core.events import CancelToken
    from lifeboat.operations.wal_fetch import FetchResult, FetchSettings
    from lifeboat.repository.repo import Repository


class WalSetup(Protocol):
    """What a WAL call takes from its front end."""

    def source(self) -> PostgresSourceConfig | None:
        """The configured PostgreSQL source the call names, if it names one."""

    def open_repository(self) -> Repository:
        """The unlocked repository the call archives to (the source's, unless one was given)."""


Spawn = Callable[[Callable[[], None]], None]
"""Runs the given work in a detached process and returns at once."""


@dataclass(frozen=True)
class WalCall:
    """Where one call works: its spool and the data directory of the cluster it serves."""

    spool: str  # the spool of this cluster and repository (``<spool base>/<identity>``)
    data_directory: str
    sync: bool = False  # do the work in this process: no spool, no worker
    queue_max: str | None = None  # the limit given for this call (e.g. 8GiB), over the configured one


def _stamp() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S ")


# --- settings and the repository --------------------------------------------------------------


def push_settings(config: PostgresSourceConfig | None, queue_max: str | None) -> PushSettings:
    given = queue_max or (config.archive_queue_max if config else None)
    try:
        limit = parse_size(given) if given else None
    except ValueError as exc:
        raise UsageError(f"{option('queue_max')}: {exc}") from None
    return PushSettings(parallel=config.archive_parallel if config else 2, queue_max=limit)


def fetch_settings(config: PostgresSourceConfig | None, data_directory: str | None = None) -> FetchSettings:
    from lifeboat.operations.wal_fetch import FetchSettings
    from lifeboat.sources.postgres.recoveryconf import recovering_to_a_target

    damage_ends = data_directory is not None and recovering_to_a_target(data_directory)
    if config is None:
        return FetchSettings(damage_ends_recovery=damage_ends)
    return FetchSettings(
        prefetch=config.fetch_prefetch, parallel=config.fetch_parallel, damage_ends_recovery=damage_ends
    )


def cluster_system_id(data_directory: str) -> str:
    """The system identifier of the cluster in ``data_directory`` (its WAL archive's name)."""
    try:
        return read_system_id(data_directory)
    except OSError as exc:
        raise UsageError(
            f"cannot read the system identifier from {data_directory}/global/pg_control: {exc.strerror or exc}",
            hint="run wal-push/wal-fetch from PostgreSQL (it runs them inside the data directory)",
        ) from None


def open_archive(setup: WalSetup, data_directory: str) -> WalArchive:
    """The WAL archive of the cluster in ``data_directory``: the one place a call opens the repository."""
    system_id = cluster_system_id(data_directory)
    return WalArchive(setup.open_repository(), system_id)


# --- archiving -------------------------------------------------------------------------------------


def push(call: WalCall, path: str, setup: WalSetup, spawn: Spawn) -> PushResult:
    """Archive the WAL file at ``path``; returns once it is durable (or dropped by the queue limit).

    A failure is also kept in the spool, for a base backup waiting for the file to tell why.
    """
    try:
        return _push(call, path, setup, spawn)
    except Exception as exc:
        record_push_failure(call, os.path.basename(path), exc)
        raise


def _push(call: WalCall, path: str, setup: WalSetup, spawn: Spawn) -> PushResult:
    started = time.monotonic()
    name = os.path.basename(path)
    pg_wal = Path(os.path.dirname(os.path.abspath(path)))
    if not os.path.isfile(pg_wal / name):  # False for any path the system refuses, too long ones included
        raise UsageError(f"{pg_wal / name} does not exist", hint="archive_command must pass %p (the file's path)")
    queued = (pg_wal / "archive_status" / f"{name}.ready").exists()
    if call.sync or not queued:  # the background pusher only pushes what PostgreSQL queued
        setup.source()
        push_file(open_archive(setup, call.data_directory), pg_wal, name)
        return PushResult(name, "pushed", time.monotonic() - started)
    spool = Spool(call.spool).ensure()
    # The queue limit is this call's duty: read the configuration only when it may set one.
    config = setup.source() if not call.queue_max else None
    return archive_file(
        name,
        pg_wal,
        spool,
        lambda: spawn(lambda: run_pusher(call, name, pg_wal, setup)),
        push_settings(config, call.queue_max),
    )


def record_push_failure(call: WalCall, name: str, exc: Exception) -> None:
    """Keep why the push of ``name`` failed in the spool (the failure is reported all the same)."""
    record = RecordedFailure(name, time.time(), failure_of(exc))
    with contextlib.suppress(OSError):
        Spool(call.spool).record_failure(record)


def run_pusher(call: WalCall, first: str, pg_wal: Path, setup: WalSetup, *, cancel: CancelToken | None = None) -> None:
    """The background pusher's life: push until idle, unless another holds the spool's lock.

    Its failure is written to the spool for the call waiting on ``first``; ``cancel`` (the
    daemon's) stops it between segments.
    """
    spool = Spool(call.spool)
    lock = spool.push_lock()
    if not lock.try_acquire():
        return
    try:
        spool.clean_temporaries()
        config = setup.source()
        settings = push_settings(config, call.queue_max)
        spool.note_queue_limit(settings.queue_max)
        system_id = cluster_system_id(call.data_directory)
        # The key is derived while the pusher reads and compresses the first files.
        archive = OpeningArchive.start(system_id, lambda: WalArchive(setup.open_repository(), system_id))
        pusher = BackgroundPusher(archive, pg_wal, spool, settings, owns_spool=lock.is_current, cancel=cancel)
        pushed = pusher.run()
        unopened = archive.failure()
        if unopened is not None:
            raise unopened  # for the call waiting on ``first``, whichever files failed with it
        spool.log(_stamp() + f"pusher exits after {pushed} files")
    except BaseException as exc:  # noqa: BLE001 - reported to the waiting call through the spool
        if not lock.is_current():
            return  # the spool was removed under this worker; a new call starts a new one
        failure = failure_of(exc)
        spool.mark_push_failed(first, failure)
        spool.log(_stamp() + f"pusher FAILED: {failure.message}")
    finally:
        lock.release()


# --- recovery ---------------------------------------------------------------------------------------


def fetch(call: WalCall, name: str, path: str, setup: WalSetup, spawn: Spawn) -> FetchResult:
    """Put the WAL file ``name`` at ``path``, or say it is not archived; raises on any other failure."""
    from lifeboat.operations.wal_fetch import fetch_direct, fetch_file

    if "/" in name:
        raise UsageError(f"{name!r} is not a WAL file name", hint="restore_command must pass %f then %p")
    destination = Path(path)
    if call.sync:
        setup.source()
        damage_ends = fetch_settings(None, call.data_directory).damage_ends_recovery
        archive = open_archive(setup, call.data_directory)
        return fetch_direct(archive, name, destination, damage_ends_recovery=damage_ends)
    spool = Spool(call.spool).ensure()
    return fetch_file(
        name, destination, spool, lambda: spawn(lambda: run_fetcher(call, name, setup)), fetch_settings(None)
    )


def run_fetcher(call: WalCall, first: str, setup: WalSetup, *, cancel: CancelToken | None = None) -> None:
    """The background fetcher's life: serve requests and prefetch until idle, unless another
    holds the spool's lock. Its failure is written to the spool for the call waiting on ``first``;
    ``cancel`` (the daemon's) stops it between segments."""
    from lifeboat.core.wal import DEFAULT_SEGMENT_SIZE
    from lifeboat.operations.wal_fetch import FATAL, BackgroundFetcher

    spool = Spool(call.spool)
    lock = spool.fetch_lock()
    if not lock.try_acquire():
        return
    try:
        spool.clean_temporaries()
        config = setup.source()
        archive = open_archive(setup, call.data_directory)
        settings = fetch_settings(config, call.data_directory)
        fetcher = BackgroundFetcher(archive, spool, settings, segment_size=DEFAULT_SEGMENT_SIZE, cancel=cancel)
        fetched = fetcher.run()
        spool.log(_stamp() + f"fetcher exits after {fetched} files")
    except BaseException as exc:  # noqa: BLE001 - reported to the waiting call through the spool
        failure = failure_of(exc)
        spool.mark_fetch_failed(first, Failure(FATAL, failure.message, failure.hint))
        spool.log(_stamp() + f"fetcher FAILED: {failure.message}")
    finally:
        lock.release()
