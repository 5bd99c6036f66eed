"""Restore drills: prove each source restorable by restoring it, measure how long it took, and
record the result.

For each source, :func:`drill_source` plans (the target: ``latest``, ``random`` — a point
chosen inside what the backups reach — or a time; the space the restore needs), restores
into a scratch instance, runs the validation queries, compares the measured RTO and the
achieved RPO with the source's objectives, and tears the instance down — however the drill
ends: a failure, the time limit, Ctrl-C or SIGTERM. The result is a
:class:`~lifeboat.core.drill.DrillResult`; :func:`record_drill` keeps it.

How each kind is drilled:

``postgres``
    A scratch cluster (:mod:`lifeboat.operations.scratch`: private directory, free port,
    socket only, never archiving, WAL fetched read-only) recovered to the target and
    promoted; the queries run through psycopg. The scratch cluster is started here rather
    than by the kind's ``scratch()`` verb because a PostgreSQL drill recovers to a *point in
    time*, not to a snapshot, and the ``restore_command`` it runs is spelled by the front end.
``redis``
    The kind's ``scratch()``: a redis-server loading the RDB on a free port; each query's
    ``sql`` is a Redis command (``DBSIZE``) run with redis-cli.
``pg_dump``
    A new cluster (initdb, socket only, never archiving) the kind's own restore loads the
    globals and every database into; the queries run through psycopg.
kinds that restore into a directory (files, sqlite, mariadb…)
    Restored into the scratch directory, then the kind's own ``verify``; a files source's
    restored files and bytes are compared with what its snapshot recorded; a sqlite source's
    queries run on the restored files (read-only).
the others (command, ldap…)
    The kind's ``verify`` only — nothing restored, no RTO — and the result says so.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lifeboat.core.basebackup import RestoreTarget, base_backups
from lifeboat.core.drill import (
    FAILED,
    MISSED,
    DrillResult,
    DrillTarget,
    QueryOutcome,
    achieved_rpo,
    as_utc,
    judge,
    random_time,
    seconds_text,
)
from lifeboat.core.events import Event, Events, NoticeRaised
from lifeboat.core.progress import NoticeSink, Progress, Severity
from lifeboat.core.snapshot import Snapshot
from lifeboat.core.units import format_bytes, parse_duration, parse_size
from lifeboat.errors import Cancelled, ExitCode, LifeboatError, ObjectNotFound, RecoveryFailed, UsageError
from lifeboat.operations.read_lock import read_lock
from lifeboat.repository.repo import Repository
from lifeboat.sources.base import IntoDirectory, IntoServer, RestoreContext, RestoreInto

if TYPE_CHECKING:
    from lifeboat.config.model import DrillConfig
    from lifeboat.core.records import Record
    from lifeboat.operations.records import RecordCache


@dataclass(frozen=True)
class DrillRequest:
    """What to drill and how. ``restore_commands``: per PostgreSQL source, the command its
    scratch server runs to fetch WAL (a front end spells it: it names this program)."""

    target: str | None = None  # over each source's drill.target
    restore_commands: Mapping[str, str] = field(default_factory=dict)
    environment: Mapping[str, str] | None = field(default=None, repr=False)
    workers: int = 2


class OverTimeLimit(LifeboatError):
    """The drill ran over its time limit and was stopped."""

    exit_code = ExitCode.OBJECTIVE_MISSED


# --- choosing sources --------------------------------------------------------------------


def drillable(configs: Mapping[str, Any], names: Sequence[str] = ()) -> list[str]:
    """The sources a drill covers: ``names``, or every configured source with a ``drill:``
    section or whose kind starts a scratch instance (postgres, pg_dump, redis)."""
    if names:
        unknown = [n for n in names if n not in configs]
        if unknown:
            raise UsageError(
                f"no configured source {', '.join(repr(n) for n in unknown)}",
                hint=f"configured: {', '.join(configs) or 'none'}",
            )
        return list(names)
    return [n for n, c in configs.items() if c.drill is not None or c.type in _RUNNERS]


# --- one source ----------------------------------------------------------------------------


def drill_source(
    repo: Repository,
    name: str,
    config: Any,
    request: DrillRequest,
    *,
    events: Events | None = None,
    notify: NoticeSink | None = None,
    clock: Callable[[], datetime] | None = None,
) -> DrillResult:
    """Drill one configured source; a failure is recorded in the result, never raised
    (Ctrl-C and SIGTERM are raised, once the scratch instance is gone). Notices (a damaged
    file named) go to ``notify`` and the errors among them into the result's reasons."""
    from lifeboat.config.model import DrillConfig

    clock = clock or (lambda: datetime.now(UTC))
    outer = events or Events()
    named: list[str] = []

    def sink(event: Event) -> None:
        if isinstance(event, NoticeRaised):
            if event.notice.severity is Severity.ERROR:
                named.append(f"{event.notice.path}: {event.notice.message}")
            if notify is not None:
                notify(event.notice)
        outer.emit(event)

    events = Events(sink, cancel=outer.cancel, operation="drill")
    drill = config.drill or DrillConfig()
    result = DrillResult(source=name, kind=config.type, target="", started=clock())
    result.rto_objective = parse_duration(config.rto).total_seconds() if config.rto else None
    result.rpo_objective = parse_duration(config.rpo).total_seconds() if config.rpo else None
    limit = parse_duration(drill.time_limit).total_seconds()
    clock_start = time.monotonic()
    try:
        target = DrillTarget.parse(request.target or drill.target)
    except ValueError as exc:
        raise UsageError(f"drill target: {exc}") from None
    result.target = target.describe()
    runner = _RUNNERS.get(config.type, _drill_by_restore)
    try:
        with _time_limit(limit, events) as expired:
            try:
                runner(_Drill(repo, name, config, drill, request, target, result, events, clock, clock_start, limit))
            except KeyboardInterrupt:
                if not expired.is_set():
                    raise
                raise OverTimeLimit(f"over the time limit ({seconds_text(limit)})") from None
            except Cancelled:
                if not expired.is_set():
                    raise
                raise OverTimeLimit(f"over the time limit ({seconds_text(limit)})") from None
    except OverTimeLimit as exc:
        result.status = MISSED
        result.reasons.append(exc.message)
    except (Cancelled, KeyboardInterrupt):
        raise
    except LifeboatError as exc:
        if not result.phases:  # it failed while planning
            result.add_phase("plan", time.monotonic() - clock_start)
        result.fail(exc.message)
        result.reasons.extend(named[:NAMED_MAX])
        if len(named) > NAMED_MAX:
            result.reasons.append(f"and {len(named) - NAMED_MAX} more")
        could_not_run = exc.exit_code in _OWN_CODES or isinstance(exc, SpaceRefused)
        result.exit_code = int(exc.exit_code) if could_not_run else int(ExitCode.INTEGRITY)
    result.finished = clock()
    result.judge_objectives(latest=target.kind == "latest")
    if result.status == MISSED and not result.exit_code:
        result.exit_code = int(ExitCode.OBJECTIVE_MISSED)
    elif result.status == FAILED and not result.exit_code:
        result.exit_code = int(ExitCode.INTEGRITY)
    return result


NAMED_MAX = 5  # the damaged files a failed drill's reasons name

# Errors that say the drill could not run here (not that the backup is bad): their own exit code.
_OWN_CODES = {
    ExitCode.NO_REPOSITORY,
    ExitCode.LOCKED,
    ExitCode.WRONG_PASSPHRASE,
    ExitCode.STORAGE,
    ExitCode.MISSING_TOOL,
    ExitCode.USAGE,
}


@dataclass
class _Drill:
    """One source's drill in progress."""

    repo: Repository
    name: str
    config: Any
    drill: DrillConfig
    request: DrillRequest
    target: DrillTarget
    result: DrillResult
    events: Events
    clock: Callable[[], datetime]
    began: float  # monotonic
    limit: float  # seconds

    def reference(self) -> datetime | None:
        """The moment the achieved RPO is measured from: the drill's start for ``latest`` (a loss
        now), the time asked, or the point a ``random`` drill chose."""
        if self.target.kind == "latest":
            return self.result.started
        if self.target.kind == "time":
            return self.target.time
        return self.result.recovered_to

    def remaining(self) -> float:
        return max(1.0, self.limit - (time.monotonic() - self.began))

    def scratch_parent(self) -> str | None:
        parent: str | None = self.drill.scratch_dir
        if parent is not None and not os.path.isdir(parent):
            raise UsageError(f"drill scratch_dir {parent}: not a directory")
        return parent

    def check_space(self, needed: int, what: str) -> None:
        """Refuse before writing when ``needed`` is over the space limit or the free space."""
        if self.drill.space_limit is not None:
            limit = parse_size(str(self.drill.space_limit))
            if needed > limit:
                raise SpaceRefused(
                    f"{what} is {format_bytes(needed)}, over the drill's space limit {format_bytes(limit)}",
                    hint="raise drill.space_limit, or drill another source",
                )
        parent = self.scratch_parent() or tempfile.gettempdir()
        free = shutil.disk_usage(parent).free
        if needed > free:
            raise SpaceRefused(
                f"{what} is {format_bytes(needed)}, more than the {format_bytes(free)} free in {parent}",
                hint="free space there, or set drill.scratch_dir to a larger file system",
            )


class SpaceRefused(LifeboatError):
    """A drill refused before writing: not enough room (exit 1: the backup is not in question)."""


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


def _drill_postgres(d: _Drill) -> None:
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
        _teardown(scratch.stop)


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


def _validate_postgres(d: _Drill, connection: Any) -> None:
    """The queries, the freshness query and the last replayed commit, on the scratch cluster."""
    from lifeboat.sources.tools.pg import Connection

    default_db = getattr(d.config, "dbname", None) or "postgres"

    def run(sql: str, database: str | None) -> Any:
        where = Connection(connection.host, connection.port, connection.user, database or default_db)
        return _pg_value(where, sql, timeout=d.remaining())

    last = run("SELECT pg_last_xact_replay_timestamp()", "postgres")
    d.result.last_commit = as_utc(last) if isinstance(last, datetime) else None
    _run_queries(d, run)
    if d.result.newest_row is None and d.result.last_commit is not None and d.drill.freshness is None:
        d.result.notes.append("achieved RPO measured from the last replayed transaction (no freshness query)")
        reference = d.reference()
        if reference is not None:
            d.result.achieved_rpo = achieved_rpo(reference, d.result.last_commit)


def _run_queries(d: _Drill, run: Callable[[str, str | None], Any]) -> None:
    """Each validation query through ``run(sql, database)``, judged; then the freshness query,
    whose time gives the achieved RPO. A query that errors fails the drill, named."""
    result = d.result
    for query in d.drill.queries:
        d.events.check()
        started = time.monotonic()
        try:
            value = run(query.sql, query.database)
        except LifeboatError as exc:
            outcome = QueryOutcome(query.name, None, f"failed: {exc.message}", time.monotonic() - started)
        else:
            problem = judge(value, minimum=query.min, maximum=query.max, equals=query.equals)
            outcome = QueryOutcome(query.name, _text(value), problem, time.monotonic() - started)
        result.queries.append(outcome)
        if not outcome.ok:
            result.fail(f"validation query {query.name!r} {outcome.problem}")
    freshness = d.drill.freshness
    if freshness is None:
        return
    try:
        answer = run(freshness.sql, freshness.database)
    except LifeboatError as exc:
        result.fail(f"freshness query failed: {exc.message}")
        return
    newest = _as_time(answer)
    if newest is None:
        result.fail(f"freshness query returned {_text(answer) or 'no value'}, not a time")
        return
    result.newest_row = newest
    reference = d.reference()
    if reference is not None:
        result.achieved_rpo = achieved_rpo(reference, newest)


def _as_time(value: Any) -> datetime | None:
    """A freshness answer as a UTC time: a timestamp, ISO 8601 text, or seconds since the epoch."""
    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        try:
            return as_utc(datetime.fromisoformat(value.strip()))
        except ValueError:
            return None
    return None


def _pg_value(where: Any, sql: str, *, timeout: float) -> Any:
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


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


# --- Redis ---------------------------------------------------------------------------------


def _drill_redis(d: _Drill) -> None:
    from lifeboat.sources.registry import source_kind
    from lifeboat.sources.tools.redis_server import _cli

    result = d.result
    result.method = "a scratch redis-server loading the RDB; queries are Redis commands"
    began = time.monotonic()
    snapshot = _snapshot_for(d)
    d.check_space(int(snapshot.summary.get("bytes_total", 0)), f"snapshot {snapshot.short_id}")
    kind = source_kind("redis")
    directory = _scratch_directory(d)
    result.add_phase("plan", time.monotonic() - began)
    started = time.monotonic()
    ctx = RestoreContext(loader=d.repo, events=d.events, config=d.config, environment=d.request.environment)
    try:
        with read_lock(d.repo, use_lock=True):
            instance = kind.scratch(ctx, snapshot, str(directory / "redis"))
    except BaseException:
        _teardown(lambda: shutil.rmtree(directory, ignore_errors=True))
        result.add_phase("restore", time.monotonic() - started)
        raise
    try:
        result.add_phase("start", time.monotonic() - started)
        port = int(instance.address["port"])
        validating = time.monotonic()

        def run(sql: str, database: str | None) -> Any:
            answer = _cli(port, *(["-n", database] if database else []), *shlex.split(sql)).strip().splitlines()
            return answer[0] if answer else None

        _run_queries(d, run)
        result.add_phase("validate", time.monotonic() - validating)
    finally:
        _teardown(instance.stop, lambda: shutil.rmtree(directory, ignore_errors=True))


# --- pg_dump: a fresh scratch cluster the dumps are restored into --------------------------


def _drill_pg_dump(d: _Drill) -> None:
    """initdb a private cluster (socket only, never archiving), restore the globals and every
    database into it with pg_restore, run the queries, stop and remove it."""
    from lifeboat.errors import MissingTool
    from lifeboat.operations.scratch import SOCKET_PATH_MAX
    from lifeboat.sources.registry import source_kind
    from lifeboat.sources.tools.pgcluster import ScratchCluster, chown_tree, default_os_user, free_port

    result = d.result
    result.method = "a new scratch cluster the dumps were restored into (globals and every database), queries run on it"
    began = time.monotonic()
    snapshot = _snapshot_for(d)
    d.check_space(int(snapshot.summary.get("bytes_total", 0)), f"snapshot {snapshot.short_id}")
    directory = _scratch_directory(d)
    os.chmod(directory, 0o755)  # noqa: S103 - the server's OS user must reach its directories
    major = str(snapshot.extra.get("pg_dump", {}).get("server_major") or "") or None
    cluster = ScratchCluster(directory / "cluster", port=free_port(), os_user=default_os_user(), major=major)
    result.add_phase("plan", time.monotonic() - began)
    try:
        if len(str(cluster.socket_dir / ".s.PGSQL.65535")) > SOCKET_PATH_MAX:
            raise UsageError(
                f"drill scratch_dir {d.scratch_parent()}: too long a path for the scratch cluster's socket"
            )
        started = time.monotonic()
        try:
            cluster.init(checksums=False, settings=_PG_DUMP_SCRATCH)
        except MissingTool:
            if major is None:
                raise
            result.notes.append(f"PostgreSQL {major} is not installed here: the dumps were restored into the default")
            cluster.major = None
            cluster.init(checksums=False, settings=_PG_DUMP_SCRATCH)
        chown_tree(directory / "cluster", cluster.os_user)
        cluster.start(timeout=d.remaining())
        result.add_phase("start", time.monotonic() - started)
        restoring = time.monotonic()
        where = cluster.connection()
        settings = {"all": True, "globals": True, "force": True, "host": where.host, "port": where.port,
                    "user": where.user, "dbname": "postgres"}  # fmt: skip
        ctx = RestoreContext(loader=d.repo, events=d.events, config=None, environment=d.request.environment)
        with read_lock(d.repo, use_lock=True):
            restored = source_kind("pg_dump").restore(ctx, snapshot, IntoServer(settings))
        failure = restored.failure()
        if failure is not None:
            raise type(failure)(f"the restore is incomplete: {failure.message}", hint=failure.hint)
        result.restored_bytes = sum(int(item.get("bytes", 0)) for item in restored.to_json().get("restored", []))
        result.restored_files = len(restored.to_json().get("restored", []))
        result.add_phase("restore", time.monotonic() - restoring)
        d.events.check()
        validating = time.monotonic()
        default_db = getattr(d.config, "dbname", None) or "postgres"

        def run(sql: str, database: str | None) -> Any:
            return _pg_value(replace(where, dbname=database or default_db), sql, timeout=d.remaining())

        _run_queries(d, run)
        result.add_phase("validate", time.monotonic() - validating)
    finally:
        _teardown(lambda: _stop_cluster(cluster), lambda: shutil.rmtree(directory, ignore_errors=True))


_PG_DUMP_SCRATCH = {
    "listen_addresses": "",
    "archive_mode": "off",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "unix_socket_permissions": "0700",
    "cluster_name": "lifeboat-scratch",
}


def _stop_cluster(cluster: Any) -> None:
    """Stop a scratch cluster at once (immediate; SIGQUIT to its postmaster if pg_ctl cannot)."""
    from lifeboat.operations.scratch import _stop_server

    if cluster.data_dir.is_dir():
        _stop_server(cluster.data_dir, cluster.major)


# --- every other kind: restore into the scratch directory, then the kind's verify -----------


def _drill_by_restore(d: _Drill) -> None:
    from lifeboat.sources.registry import source_kind

    result = d.result
    kind = source_kind(d.config.type)
    began = time.monotonic()
    snapshot = _snapshot_for(d)
    if RestoreInto.DIRECTORY not in kind.restores_into:
        _drill_by_verify(d, kind, snapshot, began)
        return
    answers_queries = kind.name == "sqlite"
    if d.drill.queries and not answers_queries:
        result.notes.append(f"validation queries are not run for a {kind.name} source (no instance serves them)")
    result.method = f"restored into a scratch directory, then checked by the {kind.name} kind" + (
        "; queries run on the restored files" if answers_queries else ""
    )
    d.check_space(int(snapshot.summary.get("bytes_total", 0)), f"snapshot {snapshot.short_id}")
    directory = _scratch_directory(d)
    result.add_phase("plan", time.monotonic() - began)
    try:
        started = time.monotonic()
        ctx = RestoreContext(loader=d.repo, events=d.events, config=d.config, environment=d.request.environment)
        with read_lock(d.repo, use_lock=True):
            restored = kind.restore(ctx, snapshot, IntoDirectory(str(directory / "restored"), workers=2))
            result.add_phase("restore", time.monotonic() - started)
            failure = restored.failure()
            if failure is not None:
                raise type(failure)(f"the restore is incomplete: {failure.message}", hint=failure.hint)
            counted = restored.to_json()
            written = counted.get("databases")
            if isinstance(written, list):  # sqlite: one entry per database file
                result.restored_files = len(written)
                result.restored_bytes = sum(int(db.get("bytes", 0)) for db in written)
            else:
                result.restored_files = int(counted.get("files", 0))
                result.restored_bytes = int(counted.get("bytes", 0))
            validating = time.monotonic()
            verification = kind.verify(ctx, snapshot)
        for problem in verification.problems:
            result.fail(problem)
        if kind.name == "files":
            _compare_counts(result, snapshot)
        if answers_queries and isinstance(written, list):
            files = {str(db["database"]): str(db["path"]) for db in written}
            _run_queries(d, lambda sql, database: _sqlite_value(files, sql, database))
        result.add_phase("validate", time.monotonic() - validating)
    finally:
        _teardown(lambda: shutil.rmtree(directory, ignore_errors=True))


def _sqlite_value(files: Mapping[str, str], sql: str, database: str | None) -> Any:
    """The first column of the first row of ``sql`` on a restored SQLite file, opened read-only:
    ``database`` is its path when backed up (or its file name); default: the only one."""
    import sqlite3
    from urllib.request import pathname2url

    from lifeboat.errors import SourceError

    if database:
        chosen = [path for name, path in files.items() if database in (name, os.path.basename(name))]
    else:
        chosen = list(files.values()) if len(files) == 1 else []
    if len(chosen) != 1:
        raise UsageError(
            f"query database {database or '(none given)'}: "
            + ("not among" if database else "choose one of")
            + f" the restored databases {', '.join(sorted(files))}"
        )
    try:
        with contextlib.closing(sqlite3.connect(f"file:{pathname2url(chosen[0])}?mode=ro", uri=True)) as conn:
            row = conn.execute(sql).fetchone()
    except sqlite3.Error as exc:
        raise SourceError(f"SQLite refused the query: {exc}") from None
    return row[0] if row else None


def _drill_by_verify(d: _Drill, kind: Any, snapshot: Snapshot, began: float) -> None:
    """A kind with no scratch instance that restores only into a program or a live server: its
    own verify is all a drill can run (nothing restored, so no RTO) — and the result says so."""
    result = d.result
    result.method = f"the {kind.name} kind's verify only: it has no scratch instance to restore into yet"
    result.notes.append(
        f"not restored: a {kind.name} source has no scratch instance yet, so its verify ran instead and no RTO "
        "was measured"
    )
    if d.drill.queries:
        result.notes.append(f"validation queries are not run for a {kind.name} source (no instance serves them)")
    result.add_phase("plan", time.monotonic() - began)
    verifying = time.monotonic()
    ctx = RestoreContext(loader=d.repo, events=d.events, config=d.config, environment=d.request.environment)
    with read_lock(d.repo, use_lock=True):
        verification = kind.verify(ctx, snapshot)
    result.add_phase("verify", time.monotonic() - verifying)
    result.method += f" ({verification.checked})"
    for problem in verification.problems:
        result.fail(problem)


def _compare_counts(result: DrillResult, snapshot: Snapshot) -> None:
    """A files snapshot restored whole holds the files and bytes its backup recorded."""
    summary = snapshot.summary
    files = sum(int(summary.get(k, 0)) for k in ("files_new", "files_changed", "files_unmodified"))
    size = int(summary.get("bytes_total", 0))
    if summary and result.restored_files != files:
        result.fail(f"restored {result.restored_files} files; the snapshot recorded {files}")
    if summary and result.restored_bytes != size:
        result.fail(f"restored {result.restored_bytes} bytes; the snapshot recorded {size}")


def _snapshot_for(d: _Drill) -> Snapshot:
    """The source's newest snapshot at or before the target (``random``: a random one)."""
    import random

    with read_lock(d.repo, use_lock=True):
        snapshots = sorted((s for s in d.repo.snapshots() if s.source == d.name), key=lambda s: s.time)
    if not snapshots:
        raise ObjectNotFound(f"source {d.name} has no snapshot to drill")
    if d.target.kind == "random":
        chosen = random.choice(snapshots)  # noqa: S311 - a sample, not a secret
        d.result.target = f"random: snapshot {chosen.short_id}"
    elif d.target.kind == "time":
        assert d.target.time is not None
        before = [s for s in snapshots if s.time <= d.target.time]
        if not before:
            raise ObjectNotFound(f"source {d.name} has no snapshot at or before {d.target.time.isoformat()}")
        chosen = before[-1]
    else:
        chosen = snapshots[-1]
    d.result.snapshot = chosen.id
    d.result.recovered_to = chosen.time
    reference = d.reference()
    if reference is not None:  # without a freshness query: what the snapshot holds is as old as it is
        d.result.achieved_rpo = achieved_rpo(reference, chosen.time)
    return chosen


def _scratch_directory(d: _Drill) -> Path:
    return Path(tempfile.mkdtemp(prefix="lifeboat-scratch-", dir=d.scratch_parent()))


_RUNNERS: dict[str, Callable[[_Drill], None]] = {
    "postgres": _drill_postgres,
    "redis": _drill_redis,
    "pg_dump": _drill_pg_dump,
}


# --- tearing down --------------------------------------------------------------------------


def _teardown(*steps: Callable[[], None]) -> None:
    """Run every step of a tear-down, each even when one before it failed, with Ctrl-C, SIGTERM
    and the time limit held back until the end (on the main thread): an interruption arriving
    now is delivered once the scratch instance is gone, so it cannot leave half of it behind."""
    held = {signal.SIGINT, signal.SIGTERM}
    main = threading.current_thread() is threading.main_thread()
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held) if main else None
    failure: BaseException | None = None
    try:
        for step in steps:
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - the next step still runs; the first failure is raised
                failure = failure or exc
    finally:
        if previous is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    if failure is not None:
        raise failure


# --- the time limit ------------------------------------------------------------------------


@contextlib.contextmanager
def _time_limit(seconds: float, events: Events) -> Iterator[threading.Event]:
    """While the block runs, stop it after ``seconds``: the cancel token is set, and on the main
    thread SIGINT is delivered to it (this thread only, not the programs it runs), so a wait for
    a program or a recovery ends too, as Ctrl-C ends it, and everything is torn down on the way
    out. The event yielded says the limit was reached."""
    expired = threading.Event()
    done = threading.Event()
    main = threading.main_thread().ident if threading.current_thread() is threading.main_thread() else None

    def watch() -> None:
        if done.wait(seconds):
            return
        expired.set()
        events.cancel.cancel("over the time limit")
        if main is not None and not done.is_set():
            signal.pthread_kill(main, signal.SIGINT)

    watcher = threading.Thread(target=watch, name="drill-time-limit", daemon=True)
    watcher.start()
    try:
        yield expired
    finally:
        done.set()
        watcher.join(timeout=5)


# --- recording -----------------------------------------------------------------------------


def drill_record(result: DrillResult, *, time: datetime) -> Record:
    """The repository record of a drill: its verdict, the few numbers a health check reads
    (``summary``) and the whole result."""
    from lifeboat.core.records import DRILL
    from lifeboat.operations.records import new_record

    summary = {
        **result.summary(),
        "target": result.target,
        "rto_objective_seconds": result.rto_objective,
        "rpo_objective_seconds": result.rpo_objective,
        "seconds": round(result.seconds, 3),
        "problems": list(result.reasons[:10]),  # what 'lifeboat records' shows first
    }
    return new_record(DRILL, result.source, ok=result.ok, summary=summary, result=result.to_json(), time=time)


def record_drill(repo: Repository, result: DrillResult, cache: RecordCache | None = None) -> str:
    """Keep ``result`` in the repository (an encrypted ``drill`` record, so the history survives
    the loss of this host) and in the local cache; returns the record's id. A repository that
    refuses the write raises (StorageError): the caller says the drill was not recorded."""
    from lifeboat.operations.records import save_record

    saved = save_record(repo, drill_record(result, time=result.finished or repo.clock()), cache)
    return saved.id


def drill_history(
    repo: Repository, *, sources: Sequence[str] = (), cache: RecordCache | None = None
) -> tuple[list[DrillResult], dict[str, str]]:
    """The drills recorded in the repository, newest first (of ``sources`` only when given), and
    the records that cannot be read (id → problem). A record whose result is not a drill result
    is reported with them, never passed over silently."""
    from lifeboat.core.records import DRILL
    from lifeboat.operations.records import list_records

    listing = list_records(repo, kind=DRILL, cache=cache)
    found: list[DrillResult] = []
    unreadable = dict(listing.unreadable)
    for record in listing.records:
        if sources and record.source not in sources:
            continue
        try:
            found.append(DrillResult.from_json(record.result))
        except ValueError as exc:
            unreadable[record.id] = str(exc)
    return sorted(found, key=lambda r: r.started, reverse=True), unreadable


__all__ = [
    "DrillRequest",
    "OverTimeLimit",
    "SpaceRefused",
    "drill_history",
    "drill_record",
    "drill_source",
    "drillable",
    "record_drill",
]
