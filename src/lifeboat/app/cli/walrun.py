"""Running ``wal-push`` / ``wal-fetch`` when the spool could not answer: the call
PostgreSQL waits on, and the background workers it starts (docs/postgres.md).

``wal-push`` exits 0 only once the file is durable in the repository. ``wal-fetch``
exits 0 when the file was restored, 1 when it is not in the archive (the end of
recovery), and 126 on any other failure, so that PostgreSQL stops recovery instead of
promoting a database that lacks WAL. Nothing here imports the CLI framework: calls come
from the fast start in :mod:`lifeboat.app.cli.walfast`.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from lifeboat.app.cli.walfast import WalInvocation, data_directory
from lifeboat.errors import ExitCode, LifeboatError, UsageError, describe

if TYPE_CHECKING:
    from lifeboat.app.cli.context import CliContext
    from lifeboat.config.model import PostgresSourceConfig
    from lifeboat.operations.wal_fetch import FetchSettings
    from lifeboat.operations.wal_push import PushSettings
    from lifeboat.repository.wal import WalArchive

FETCH_FATAL = 126


def _say(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _error(exc: LifeboatError, verbose: int) -> None:
    _say(f"lifeboat: error: {' '.join(exc.message.split())}")  # one line, whatever a path holds
    if exc.hint:
        _say(f"  hint: {' '.join(exc.hint.split())}")
    if verbose:
        from lifeboat.app.cli.tracebacks import format_traceback

        sys.stderr.write(format_traceback(exc))


def run(inv: WalInvocation, root: str) -> int:
    """Run one call; returns the process exit status."""
    fetching = inv.command == "wal-fetch"
    try:
        return _fetch(inv, root) if fetching else _push(inv, root)
    except LifeboatError as exc:
        _error(exc, inv.verbose)
        if not fetching:
            _record_failure(inv, root, exc)
        return FETCH_FATAL if fetching else int(exc.exit_code)
    except KeyboardInterrupt:
        _say("lifeboat: interrupted")
        return FETCH_FATAL if fetching else int(ExitCode.INTERRUPTED)
    except Exception as exc:  # noqa: BLE001 - PostgreSQL's log gets one line, never a traceback
        _say(f"lifeboat: internal error: {describe(exc)}")
        if not fetching:
            _record_failure(inv, root, exc)
        return FETCH_FATAL if fetching else int(ExitCode.ERROR)


def _record_failure(inv: WalInvocation, root: str, exc: Exception) -> None:
    """Keep why this push failed in the spool: a base backup waiting for the file reports it."""
    from lifeboat.operations.wal_push import failure_of
    from lifeboat.sources.postgres.spool import RecordedFailure, Spool

    record = RecordedFailure(os.path.basename(inv.args[0]), time.time(), failure_of(exc))
    with contextlib.suppress(OSError):  # the failure is reported on stderr all the same
        Spool(root).record_failure(record)


# --- configuration ----------------------------------------------------------------------------


def _context(inv: WalInvocation) -> CliContext:
    from lifeboat.app.cli.context import CliContext

    return CliContext.create(repo=inv.repo, config_path=inv.config, json=False, quiet=True, verbose=inv.verbose)


def source_config(state: CliContext, source: str | None) -> PostgresSourceConfig | None:
    """The configured PostgreSQL source named ``source`` (its repository becomes the default)."""
    if not source:
        return None
    config = state.config()
    found = config.sources.get(source) if config is not None else None
    if found is None:
        raise UsageError(f"no source {source!r} in the configuration", hint="check --source and --config")
    if found.type != "postgres":
        raise UsageError(f"source {source!r} is a {found.type} source, not a postgres one")
    if found.repository and not state.repo:
        state.repo = found.repository
    return found


def _push_settings(inv: WalInvocation, config: PostgresSourceConfig | None) -> PushSettings:
    from lifeboat.core.units import parse_size
    from lifeboat.operations.wal_push import PushSettings

    queue_max = inv.queue_max or (config.archive_queue_max if config else None)
    try:
        limit = parse_size(queue_max) if queue_max else None
    except ValueError as exc:
        raise UsageError(f"--queue-max: {exc}") from None
    return PushSettings(parallel=config.archive_parallel if config else 2, queue_max=limit)


def _fetch_settings(config: PostgresSourceConfig | None, pgdata: str | None = None) -> FetchSettings:
    from lifeboat.operations.wal_fetch import FetchSettings
    from lifeboat.sources.postgres.recoveryconf import recovering_to_a_target

    damage_ends = pgdata is not None and recovering_to_a_target(pgdata)
    if config is None:
        return FetchSettings(damage_ends_recovery=damage_ends)
    return FetchSettings(
        prefetch=config.fetch_prefetch, parallel=config.fetch_parallel, damage_ends_recovery=damage_ends
    )


def _open_archive(state: CliContext, pgdata: str) -> WalArchive:
    from lifeboat.repository.wal import WalArchive
    from lifeboat.sources.postgres.pgdata import read_system_id

    try:
        system_id = read_system_id(pgdata)
    except OSError as exc:
        raise UsageError(
            f"cannot read the system identifier from {pgdata}/global/pg_control: {exc.strerror or exc}",
            hint="run wal-push/wal-fetch from PostgreSQL (it runs them inside the data directory)",
        ) from None
    return WalArchive(state.open_repository(), system_id)


# --- background workers --------------------------------------------------------------------------


def spawn(work: Callable[[], None]) -> None:
    """Run ``work`` in a detached grandchild process (no threads exist yet in this one)."""
    pid = os.fork()
    if pid:
        os.waitpid(pid, 0)
        return
    try:
        os.setsid()
        if os.fork():
            os._exit(0)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        work()
    except BaseException:  # noqa: BLE001, S110 - a worker never returns into the caller's code
        pass
    finally:
        os._exit(0)


def _push_worker(inv: WalInvocation, root: str, first: str, pgdata: str, pg_wal: Path) -> None:
    from lifeboat.operations.wal_push import BackgroundPusher, failure_of
    from lifeboat.sources.postgres.spool import Spool

    spool = Spool(root)
    lock = spool.push_lock()
    if not lock.try_acquire():
        return
    try:
        spool.clean_temporaries()
        state = _context(inv)
        config = source_config(state, inv.source)
        archive = _open_archive(state, pgdata)
        pusher = BackgroundPusher(archive, pg_wal, spool, _push_settings(inv, config), owns_spool=lock.is_current)
        pushed = pusher.run()
        spool.log(time.strftime("%Y-%m-%d %H:%M:%S ") + f"pusher exits after {pushed} files")
    except BaseException as exc:  # noqa: BLE001 - reported to the waiting call through the spool
        if not lock.is_current():
            return  # the spool was removed under this worker; a new call starts a new one
        failure = failure_of(exc)
        spool.mark_push_failed(first, failure)
        spool.log(time.strftime("%Y-%m-%d %H:%M:%S ") + f"pusher FAILED: {failure.message}")
    finally:
        lock.release()


def _fetch_worker(inv: WalInvocation, root: str, first: str, pgdata: str) -> None:
    from lifeboat.core.wal import DEFAULT_SEGMENT_SIZE
    from lifeboat.operations.wal_fetch import FATAL, BackgroundFetcher
    from lifeboat.operations.wal_push import failure_of
    from lifeboat.sources.postgres.spool import Failure, Spool

    spool = Spool(root)
    lock = spool.fetch_lock()
    if not lock.try_acquire():
        return
    try:
        spool.clean_temporaries()
        state = _context(inv)
        config = source_config(state, inv.source)
        archive = _open_archive(state, pgdata)
        settings = _fetch_settings(config, pgdata)
        fetcher = BackgroundFetcher(archive, spool, settings, segment_size=DEFAULT_SEGMENT_SIZE)
        fetched = fetcher.run()
        spool.log(time.strftime("%Y-%m-%d %H:%M:%S ") + f"fetcher exits after {fetched} files")
    except BaseException as exc:  # noqa: BLE001 - reported to the waiting call through the spool
        failure = failure_of(exc)
        spool.mark_fetch_failed(first, Failure(FATAL, failure.message, failure.hint))
        spool.log(time.strftime("%Y-%m-%d %H:%M:%S ") + f"fetcher FAILED: {failure.message}")
    finally:
        lock.release()


# --- the two calls ------------------------------------------------------------------------------


def _push(inv: WalInvocation, root: str) -> int:
    from lifeboat.operations.wal_push import archive_file, push_file
    from lifeboat.sources.postgres.spool import Spool

    path = inv.args[0]
    name = os.path.basename(path)
    pg_wal = Path(os.path.dirname(os.path.abspath(path)))
    pgdata = data_directory(path)
    if not os.path.isfile(pg_wal / name):  # False for any path the system refuses, too long ones included
        raise UsageError(f"{pg_wal / name} does not exist", hint="archive_command must pass %p (the file's path)")
    queued = (pg_wal / "archive_status" / f"{name}.ready").exists()
    if inv.sync or not queued:  # the background pusher only pushes what PostgreSQL queued
        state = _context(inv)
        source_config(state, inv.source)
        push_file(_open_archive(state, pgdata), pg_wal, name)
        return 0
    spool = Spool(root).ensure()
    # The queue limit is this call's duty: read the configuration only when it may set one.
    config = source_config(_context(inv), inv.source) if inv.source and not inv.queue_max else None
    settings = _push_settings(inv, config)
    result = archive_file(
        name, pg_wal, spool, lambda: spawn(lambda: _push_worker(inv, root, name, pgdata, pg_wal)), settings
    )
    if result.dropped is not None:
        _say("lifeboat: " + result.dropped.alert())
    elif result.outcome == "dropped":
        _say(f"lifeboat: ALERT: {name} was DROPPED without archiving (archive queue over its limit)")
    return 0


def _fetch(inv: WalInvocation, root: str) -> int:
    from lifeboat.operations.wal_fetch import NOT_FOUND, fetch_direct, fetch_file
    from lifeboat.sources.postgres.spool import Spool

    name, path = inv.args
    if "/" in name:
        raise UsageError(f"{name!r} is not a WAL file name", hint="restore_command must pass %f then %p")
    destination = Path(path)
    pgdata = data_directory(path)
    if inv.sync:
        state = _context(inv)
        source_config(state, inv.source)
        damage_ends = _fetch_settings(None, pgdata).damage_ends_recovery
        result = fetch_direct(_open_archive(state, pgdata), name, destination, damage_ends_recovery=damage_ends)
    else:
        spool = Spool(root).ensure()
        result = fetch_file(
            name,
            destination,
            spool,
            lambda: spawn(lambda: _fetch_worker(inv, root, name, pgdata)),
            _fetch_settings(None),
        )
    if result.note:
        _say(f"lifeboat: warning: {result.note}")
    return 0 if result.found else NOT_FOUND
