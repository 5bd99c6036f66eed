"""PostgreSQL drills: a physical backup recovered into a scratch cluster to a point in time
(:mod:`lifeboat.operations.scratch`), and a pg_dump source's dumps restored into a new one."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from lifeboat.core.basebackup import RestoreTarget, base_backups
from lifeboat.core.drill import (
    DrillResult,
    achieved_rpo,
    as_utc,
    random_time,
    seconds_text,
)
from lifeboat.core.progress import Progress
from lifeboat.core.snapshot import Snapshot
from lifeboat.errors import ObjectNotFound, RecoveryFailed, UsageError
from lifeboat.operations.drill.context import Drill, run_queries, snapshot_for, teardown
from lifeboat.operations.read_lock import read_lock
from lifeboat.repository.repo import Repository

# --- PostgreSQL ----------------------------------------------------------------------------

NOT_REACHED = "recovery ended before configured recovery target was reached"  # PostgreSQL's FATAL
_REDO_DONE = re.compile(r"redo done at .*elapsed: ([0-9.]+) s")


class _FirstWrite(Progress):
    """Progress that notes when the restore wrote its first file: the end of planning."""

    first: float | None = None

    def _mark(self) -> None:
        if self.first is None:
            self.first = time.monotonic()

    def file_done(self) -> None:
        self._mark()
        super().file_done()

    def bytes_read(self, size: int) -> None:
        self._mark()
        super().bytes_read(size)

    def dir_done(self) -> None:
        self._mark()
        super().dir_done()


def drill_postgres(d: Drill) -> None:
    from lifeboat.operations.scratch import ScratchRequest, start_scratch

    result = d.result
    result.method = "a scratch cluster recovered to the target and promoted, queries run on it"
    restore_command = d.request.restore_commands.get(d.name)
    if not restore_command:
        raise UsageError(f"source {d.name}: no restore_command for its scratch cluster")
    began = time.monotonic()
    with read_lock(d.repo, use_lock=True):
        snapshots = [s for s in d.repo.snapshots() if s.source == d.name]
    backups = sorted(base_backups(snapshots), key=lambda b: b.stop_time)
    if not backups:
        raise ObjectNotFound(f"source {d.name} has no base backup to drill")
    recovery = RestoreTarget()
    if d.target.kind == "random":
        moment = _random_point(d.repo, d.name, backups)
        recovery = RestoreTarget(time=moment)
        result.target = f"random: time {moment.isoformat()}"
        result.recovered_to = moment
    elif d.target.kind == "time":
        assert d.target.time is not None
        recovery = RestoreTarget(time=d.target.time)
        result.recovered_to = d.target.time
    else:
        result.recovered_to = result.started
    reaching = [b for b in backups if recovery.time is None or b.stop_time <= recovery.time]
    chosen = reaching[-1] if reaching else backups[-1]
    needed = int(_snapshot_of(snapshots, chosen.snapshot_id).summary.get("bytes_total", 0))
    d.check_space(needed, f"base backup {chosen.snapshot_id[:8]}")
    progress = _FirstWrite()
    request = ScratchRequest(
        restore_command=restore_command,
        target=recovery,
        source=d.name,
        parent=d.scratch_parent(),
        start_timeout=d.remaining(),
        workers=d.request.workers,
    )
    d.events.progress = progress
    d.events.step(f"{d.name}: restoring into a scratch cluster, recovering to {recovery.describe()}…")
    try:
        with d.events.phase("restore", f"restoring {d.name}", counts=True):
            scratch = start_scratch(d.repo, request, progress=progress, notify=d.events.notice, clock=d.clock)
    except RecoveryFailed as exc:
        if d.target.kind != "random" or NOT_REACHED not in exc.message:
            _failed_phases(result, began, progress)
            raise
        # Nothing committed after the chosen time: the data then is the archive's end. Recover
        # to latest instead (the same data), measured afresh.
        result.notes.append(
            f"no transaction committed after {result.target.split('time ', 1)[-1]}: recovered to the end of "
            "the archive instead, which holds the same data"
        )
        began, progress = time.monotonic(), _FirstWrite()
        d.events.progress = progress
        request = replace(request, target=RestoreTarget(), start_timeout=d.remaining())
        try:
            scratch = start_scratch(d.repo, request, progress=progress, notify=d.events.notice, clock=d.clock)
        except BaseException:
            _failed_phases(result, began, progress)
            raise
    except BaseException:
        _failed_phases(result, began, progress)
        raise
    try:
        ready = time.monotonic()
        restored = scratch.restored
        result.snapshot = restored.backup.snapshot_id
        result.restored_bytes = restored.restored.bytes
        result.restored_files = restored.restored.files
        recovering = restored.recovery.seconds if restored.recovery else 0.0
        first = progress.first or began
        result.add_phase("plan", first - began)
        restore_seconds = max(0.0, ready - recovering - first)
        result.add_phase("restore", restore_seconds)
        start_total = max(0.0, ready - first - restore_seconds)
        replay = _replay_seconds(restored.recovery.log_file if restored.recovery else "")
        if replay is not None:
            replay = min(replay, start_total)
            result.add_phase("replay", replay)
        result.add_phase("start", start_total - (replay or 0.0))
        result.notes.extend(restored.warnings)
        d.events.check()
        d.events.step(f"{d.name}: serving after {seconds_text(ready - began)}; validating…")
        validating = time.monotonic()
        _validate_postgres(d, scratch.connection)
        result.add_phase("validate", time.monotonic() - validating)
    finally:
        teardown(scratch.stop)


def _failed_phases(result: DrillResult, began: float, progress: _FirstWrite) -> None:
    """The phases a drill that failed before serving went through: plan, and restore if it wrote."""
    failed_at = time.monotonic()
    result.add_phase("plan", (progress.first or failed_at) - began)
    if progress.first is not None:
        result.add_phase("restore", failed_at - progress.first)


def _snapshot_of(snapshots: Sequence[Snapshot], snapshot_id: str) -> Snapshot:
    return next(s for s in snapshots if s.id == snapshot_id)


def _random_point(repo: Repository, name: str, backups: Sequence[Any]) -> datetime:
    """A time between the oldest base backup's consistency point and the newest archived WAL."""
    from lifeboat.operations.pg_info import pg_info

    with read_lock(repo, use_lock=True):
        clusters = pg_info(repo, source=name)
    windows = [c.window for c in clusters if c.window is not None]
    if not windows:
        raise ObjectNotFound(f"source {name}: no recoverable window to choose a random point in")
    window = windows[-1]
    latest = window.latest_archived_at or max(b.stop_time for b in backups)
    return random_time(window.earliest_time, max(latest, window.earliest_time))


def _replay_seconds(log_file: str) -> float | None:
    """PostgreSQL's own measure of WAL replay ("redo done at … elapsed: 0.42 s")."""
    if not log_file:
        return None
    try:
        text = Path(log_file).read_text(errors="replace")
    except OSError:
        return None
    found = _REDO_DONE.findall(text)
    return float(found[-1]) if found else None


def _validate_postgres(d: Drill, connection: Any) -> None:
    """The queries, the freshness query and the last replayed commit, on the scratch cluster."""
    from lifeboat.sources.tools.pg import Connection

    default_db = getattr(d.config, "dbname", None) or "postgres"

    def run(sql: str, database: str | None) -> Any:
        where = Connection(connection.host, connection.port, connection.user, database or default_db)
        return pg_value(where, sql, timeout=d.remaining())

    last = run("SELECT pg_last_xact_replay_timestamp()", "postgres")
    d.result.last_commit = as_utc(last) if isinstance(last, datetime) else None
    run_queries(d, run)
    if d.result.newest_row is None and d.result.last_commit is not None and d.drill.freshness is None:
        d.result.notes.append("achieved RPO measured from the last replayed transaction (no freshness query)")
        reference = d.reference()
        if reference is not None:
            d.result.achieved_rpo = achieved_rpo(reference, d.result.last_commit)


def pg_value(where: Any, sql: str, *, timeout: float) -> Any:
    """The first column of the first row of ``sql`` (None: no row), in a read-only transaction."""
    from lifeboat.errors import MissingTool, PostgresError

    try:
        import psycopg
    except ImportError:  # pragma: no cover - a declared dependency
        raise MissingTool("the psycopg package is not installed", hint="pip install 'psycopg[binary]'") from None
    params: dict[str, Any] = {
        "host": where.host,
        "port": where.port,
        "user": where.user,
        "dbname": where.dbname,
        "application_name": "lifeboat drill",
        "connect_timeout": 30,
        # a little past the drill's time left: the time limit, not the server, stops a slow query
        "options": f"-c statement_timeout={int((timeout + 5) * 1000)} -c default_transaction_read_only=on",
    }
    try:
        with psycopg.connect(**params) as conn, conn.cursor() as cur:
            cur.execute(sql.encode())
            row = cur.fetchone() if cur.description else None
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise PostgresError(f"{first} (database {where.dbname})") from None
    return row[0] if row else None


# --- pg_dump: a fresh scratch cluster the dumps are restored into --------------------------


def drill_pg_dump(d: Drill) -> None:
    """A scratch cluster the dumps are restored into, globals and every database
    (:mod:`lifeboat.operations.dump_scratch`), the queries run on it, then stopped and removed."""
    from lifeboat.operations.dump_scratch import DumpScratchRequest, start_dump_scratch

    result = d.result
    result.method = "a new scratch cluster the dumps were restored into (globals and every database), queries run on it"
    began = time.monotonic()
    snapshot = snapshot_for(d)
    d.check_space(int(snapshot.summary.get("bytes_total", 0)), f"snapshot {snapshot.short_id}")
    result.add_phase("plan", time.monotonic() - began)
    request = DumpScratchRequest(
        parent=d.scratch_parent(), start_timeout=d.remaining(), environment=d.request.environment or {}
    )
    scratch = start_dump_scratch(d.repo, snapshot, request, events=d.events, on_phase=result.add_phase)
    try:
        result.notes.extend(scratch.notes)
        result.restored_bytes = sum(int(item.get("bytes", 0)) for item in scratch.restored)
        result.restored_files = len(scratch.restored)
        d.events.check()
        validating = time.monotonic()
        default_db = getattr(d.config, "dbname", None) or "postgres"
        where = scratch.connection

        def run(sql: str, database: str | None) -> Any:
            return pg_value(replace(where, dbname=database or default_db), sql, timeout=d.remaining())

        run_queries(d, run)
        result.add_phase("validate", time.monotonic() - validating)
    finally:
        teardown(scratch.stop)
