"""A scratch PostgreSQL cluster recovered from a backup to a point in time: for reading what a
database held then (``migrate ... --time``), and for restore drills.

Given the repository, the source and a recovery target, :func:`start_scratch` restores the
chosen base backup into a new private directory, starts it on a free port with its socket in
that directory, waits until recovery reached the target and promoted, and returns a
:class:`~lifeboat.sources.base.ScratchInstance` whose ``stop()`` ends the server and removes
the directory. :func:`scratch_postgres` does the same as a context manager; any failure or
interruption on the way stops and removes what was made.

The scratch cluster must never touch the production cluster or the WAL archive: it never
archives (``archive_mode = off``, checked on the running server), listens on no TCP address,
keeps its socket, log, pid and authentication files in its own directory (settings that point
elsewhere — ``external_pid_file``, ``hba_file``, a logging collector's directory — are
overridden), and fetches WAL read-only with ``lifeboat wal-fetch``; ``stop()`` also ends the
background WAL fetcher that command leaves running in the scratch's data directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lifeboat.core.basebackup import RestoreTarget
from lifeboat.core.progress import NoticeSink, Progress
from lifeboat.errors import PostgresError, UsageError, option
from lifeboat.operations.pitr import PgRestoreRequest, PgRestoreResult, restore_postgres
from lifeboat.repository.repo import Repository
from lifeboat.sources.base import ScratchInstance
from lifeboat.sources.tools.pg import Connection, PgCtl, owner_of
from lifeboat.sources.tools.pgcluster import chown_tree, free_port

PREFIX = "lifeboat-scratch-"
HBA = "scratch_hba.conf"
IDENT = "scratch_ident.conf"
SOCKET_PATH_MAX = 107  # sockaddr_un.sun_path, less its terminating NUL


@dataclass(frozen=True)
class ScratchRequest:
    """Which backup to recover, to when, and where the scratch directory goes."""

    restore_command: str  # what the scratch server runs to fetch WAL (lifeboat wal-fetch …)
    target: RestoreTarget = field(default_factory=RestoreTarget)  # latest by default
    snapshot: str | None = None  # this base backup instead of the one chosen for the target
    source: str | None = None  # only this configured source's backups
    system_id: str | None = None
    parent: str | None = None  # the directory the scratch directory is made in (default: the temp dir)
    user: str | None = None  # the role to connect as (default: the data directory's owner's name)
    start_timeout: float = 3600.0
    workers: int = 2
    lock_wait: float = 0.0


@dataclass
class ScratchPostgres:
    """A running scratch cluster: how to reach it, what was restored, and how to end it."""

    instance: ScratchInstance
    restored: PgRestoreResult
    connection: Connection  # its socket directory, port and role (dbname: postgres)
    major: str

    def stop(self) -> None:
        self.instance.stop()

    def to_json(self) -> dict[str, Any]:
        recovery = self.restored.recovery
        return {
            "snapshot": self.restored.backup.snapshot_id,
            "timeline": recovery.timeline if recovery else self.restored.timeline,
            "recovery_stop": recovery.stop if recovery else "",
            "recovery_seconds": round(recovery.seconds, 3) if recovery else None,
            "directory": self.instance.directory,
            "port": self.connection.port,
        }


def scratch_settings(run_dir: Path, base: Path, port: int) -> dict[str, str]:
    """What keeps the scratch server to itself (written last in ``postgresql.auto.conf``)."""
    return {
        "port": str(port),
        "listen_addresses": "",
        "unix_socket_directories": str(run_dir),
        "unix_socket_permissions": "0700",
        "archive_mode": "off",
        "archive_command": "",
        "archive_cleanup_command": "",
        "recovery_end_command": "",
        "external_pid_file": "",
        "hba_file": str(base / HBA),
        "ident_file": str(base / IDENT),
        "logging_collector": "off",
        "log_destination": "stderr",
        "ssl": "off",
        "synchronous_standby_names": "",
        "primary_conninfo": "",
        "primary_slot_name": "",
        "cluster_name": "lifeboat-scratch",
    }


def start_scratch(
    repo: Repository,
    request: ScratchRequest,
    *,
    progress: Progress | None = None,
    notify: NoticeSink | None = None,
    clock: Callable[[], Any] | None = None,
) -> ScratchPostgres:
    """Recover ``request``'s backup into a new scratch directory and start it (promoted)."""
    from lifeboat.sources.postgres import datadir
    from lifeboat.sources.postgres.recovery import start_and_wait

    if request.parent is not None and not os.path.isdir(request.parent):
        raise UsageError(f"{option('scratch_dir')} {request.parent}: not a directory")
    base = Path(tempfile.mkdtemp(prefix=PREFIX, dir=request.parent))
    os.chmod(base, 0o755)  # noqa: S103 - the server's OS user must reach its directories
    data = base / "data"
    run_dir = base / "run"
    if len(str(run_dir / ".s.PGSQL.65535")) > SOCKET_PATH_MAX:
        shutil.rmtree(base, ignore_errors=True)
        raise UsageError(
            f"{option('scratch_dir')} {request.parent}: the scratch server's socket path would be longer than "
            f"{SOCKET_PATH_MAX} characters, which a Unix socket cannot be",
            hint="choose a shorter directory",
        )
    port = free_port()
    state: dict[str, str | None] = {"major": None}
    stop = _stopper(base, data, state)
    try:
        restored = restore_postgres(
            repo,
            PgRestoreRequest(
                target_dir=str(data),
                restore_command=request.restore_command,
                target=request.target,
                snapshot=request.snapshot,
                system_id=request.system_id,
                source=request.source,
                workers=request.workers,
                target_action="promote",
                archive=False,
                port=port,
                start=False,
                lock_wait=request.lock_wait,
                settings=scratch_settings(run_dir, base, port),
            ),
            progress=progress,
            notify=notify,
            clock=clock,
        )
        major = str(restored.backup.version_num // 10000)
        state["major"] = major
        owner = owner_of(data)
        run_dir.mkdir(mode=0o700)
        (base / HBA).write_text("local all all trust\n")
        (base / IDENT).write_text("")
        for path in (run_dir, base / HBA, base / IDENT):
            chown_tree(path, owner)
        restored.recovery = start_and_wait(
            str(data), port=port, action="promote", timeout=request.start_timeout, major=major
        )
        datadir.drop_prefetched_wal(data)
        connection = Connection(host=str(run_dir), port=port, user=request.user or owner, dbname="postgres")
        _check_not_archiving(connection)
    except BaseException:
        stop()
        raise
    instance = ScratchInstance(
        kind="postgres",
        directory=str(base),
        address={"host": str(run_dir), "port": port, "user": connection.user, "dbname": "postgres"},
        stop=stop,
    )
    return ScratchPostgres(instance, restored, connection, major)


@contextlib.contextmanager
def scratch_postgres(
    repo: Repository,
    request: ScratchRequest,
    *,
    progress: Progress | None = None,
    notify: NoticeSink | None = None,
) -> Iterator[ScratchPostgres]:
    """:func:`start_scratch`, stopped and removed when the block ends (however it ends)."""
    scratch = start_scratch(repo, request, progress=progress, notify=notify)
    try:
        yield scratch
    finally:
        scratch.stop()


def _check_not_archiving(connection: Connection) -> None:
    """The promoted scratch server must not archive: refuse it (and so stop it) if it would."""
    from lifeboat.sources.postgres.server import PgServer

    with PgServer.connect(connection, application_name="lifeboat scratch") as server:
        mode = server.setting("archive_mode")
    if mode != "off":
        raise PostgresError(
            f"the scratch cluster runs with archive_mode={mode}: stopped, so it cannot write into the WAL archive",
            hint="a setting file included after postgresql.auto.conf may set archive_mode; report this",
        )


def _stopper(base: Path, data: Path, state: Mapping[str, str | None]) -> Callable[[], None]:
    """``stop()``: end the server (if it runs) and remove the scratch directory; idempotent."""
    done: list[bool] = []

    def stop() -> None:
        if done:
            return
        done.append(True)
        try:
            _stop_server(data, state.get("major"))
            _stop_fetchers(base)
        finally:
            shutil.rmtree(base, ignore_errors=True)

    return stop


def _stop_fetchers(base: Path, *, wait: float = 10.0) -> None:
    """End the background WAL fetcher the scratch server's ``restore_command`` started: it
    outlives the server by design (it waits for the next request, then idles out), and it
    works in the scratch's data directory — found by that, and ended by its id."""
    pids = processes_in(base)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while pids and time.monotonic() < deadline:
        time.sleep(0.05)
        pids = [pid for pid in pids if _alive(pid)]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def processes_in(directory: Path) -> list[int]:
    """The processes whose working directory is ``directory`` or below it (Linux: /proc)."""
    root = os.path.realpath(directory)
    found = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if cwd == root or cwd.startswith(root + os.sep):
            found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (already ended, not yet reaped by its parent) is gone for our purpose
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


def _stop_server(data: Path, major: str | None) -> None:
    from lifeboat.sources.postgres.pgdata import server_running

    running = server_running(data) if data.is_dir() else None
    if running is None:
        return
    with contextlib.suppress(PostgresError):
        PgCtl(major).stop(str(data), mode="immediate", timeout=60)
    deadline = time.monotonic() + 30
    while server_running(data) is not None and time.monotonic() < deadline:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(running.pid, signal.SIGQUIT)  # pg_ctl failed: the postmaster's immediate shutdown
        time.sleep(0.2)
