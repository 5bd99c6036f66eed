"""The job-history catalog: every run of every job — when, how it ended, the bytes, its events.

One catalog can hold many hosts: each daemon writes its own runs (every row carries its
host), and any of them reads all. By default it is an SQLite file in the state directory;
``daemon.catalog: postgresql://…`` puts it in PostgreSQL when several hosts report into one
place. The schema is migrated when the catalog is opened (``catalog_schema``). docs/catalog.md
describes what is stored and how to read it.

A :class:`Catalog` is safe to use from several threads: its database has one connection and
one lock. Its errors are :class:`CatalogError` and subclasses, re-exported here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from lifeboat.app.daemon.catalog_db import (
    CatalogDamaged,
    CatalogError,
    CatalogTooNew,
    CatalogUnavailable,
    Cursor,
    Database,
    utc,
)
from lifeboat.app.daemon.catalog_schema import migrate
from lifeboat.errors import ConfigError

__all__ = [
    "FINISHED",
    "INTERRUPTED_ERROR",
    "MAX_EVENTS_PER_RUN",
    "MAX_MESSAGE_CHARS",
    "STATUSES",
    "TRIGGERS",
    "Catalog",
    "CatalogDamaged",
    "CatalogError",
    "CatalogTooNew",
    "CatalogUnavailable",
    "JobRun",
    "RunEvent",
    "open_catalog",
]

TRIGGERS = ("schedule", "retry", "catch-up", "manual", "api")
STATUSES = ("running", "succeeded", "failed", "cancelled", "timed-out", "interrupted")
#: how a run can end (``running`` is not an end)
FINISHED = STATUSES[1:]
#: the events kept per run: the newest ones, so a chatty job cannot grow the catalog without bound
MAX_EVENTS_PER_RUN = 10_000
#: an event's message is cut to this many characters
MAX_MESSAGE_CHARS = 4_000
#: what ``interrupt_unfinished`` records as the error of a run the daemon did not see end
INTERRUPTED_ERROR = "the daemon stopped while the job ran (killed or crashed); the run did not finish"

_SELECT_RUNS = (
    "SELECT id, host, job, kind, target, trigger, attempt, started, finished, status, "
    "exit_code, error, bytes_read, bytes_added, summary FROM lifeboat_runs"
)
_INSERT_RUN = (
    "INSERT INTO lifeboat_runs (id, host, job, kind, target, trigger, attempt, started, finished, status, "
    "exit_code, error, bytes_read, bytes_added, summary) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (id) DO NOTHING"  # a retry after a dropped connection may find it written
)
_PRUNE = {
    False: "started < ? AND status <> 'running' AND host = ?",
    True: "started < ? AND status <> 'running'",
}


@dataclass(frozen=True)
class JobRun:
    """One run of one job (one attempt) on one host."""

    id: str
    host: str
    job: str  # "backup:db"
    kind: str  # backup | verify | drill | retention | copy | prune | check
    target: str  # the source or repository name
    trigger: str  # schedule | retry | catch-up | manual | api
    attempt: int  # 1 for the first try, 2… for retries
    started: datetime  # aware, UTC
    finished: datetime | None
    status: str  # running | succeeded | failed | cancelled | timed-out | interrupted
    exit_code: int | None
    error: str | None
    bytes_read: int | None
    bytes_added: int | None
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunEvent:
    """One line a run logged."""

    at: datetime
    level: str  # debug | info | warning | error
    message: str
    seq: int = field(default=0, compare=False)  # its place in the run (1, 2, …); 0 for the "dropped" notice


class Catalog:
    """The job history of ``host`` and of every other host writing to the same database."""

    def __init__(self, database: Database, *, host: str, max_events_per_run: int = MAX_EVENTS_PER_RUN) -> None:
        if not host:
            raise ConfigError("daemon.host: the host name in the catalog is empty", hint="set daemon.host")
        self._db = database
        self.host = host
        self.max_events_per_run = max_events_per_run

    @property
    def location(self) -> str:
        """Where the catalog is, safe to log: a file path, or a URL without its password."""
        return self._db.location

    # --- runs -----------------------------------------------------------------------------------
    def start_run(
        self,
        *,
        job: str,
        kind: str,
        target: str,
        trigger: str,
        attempt: int,
        started: datetime,
        run_id: str | None = None,
    ) -> JobRun:
        """Record a run that starts now (status ``running``) and return it; ``run_id`` when the
        caller gave the run its id before (a run asked for through the API), else a new UUID."""
        if trigger not in TRIGGERS:
            raise ValueError(f"unknown trigger {trigger!r}: one of {', '.join(TRIGGERS)}")
        run = JobRun(
            id=run_id or str(uuid.uuid4()), host=self.host, job=job, kind=kind, target=target, trigger=trigger,
            attempt=attempt, started=utc(started), finished=None, status="running",
            exit_code=None, error=None, bytes_read=None, bytes_added=None, summary={},
        )  # fmt: skip
        db = self._db

        def insert(cursor: Cursor) -> None:
            cursor.execute(
                _INSERT_RUN,
                (
                    run.id, run.host, run.job, run.kind, run.target, run.trigger, run.attempt,
                    db.store_time(run.started), None, run.status, None, None, None, None, db.store_json({}),
                ),
            )  # fmt: skip

        db.transaction(insert)
        return run

    def finish_run(
        self,
        run_id: str,
        *,
        status: str,
        finished: datetime,
        exit_code: int | None = None,
        error: str | None = None,
        bytes_read: int | None = None,
        bytes_added: int | None = None,
        summary: dict[str, Any] | None = None,
    ) -> None:
        """Record how a run ended. Raises ``KeyError`` for a run id the catalog does not hold."""
        if status not in FINISHED:
            raise ValueError(f"a run cannot finish as {status!r}: one of {', '.join(FINISHED)}")
        db = self._db

        def update(cursor: Cursor) -> int:
            return cursor.execute(
                "UPDATE lifeboat_runs SET finished = ?, status = ?, exit_code = ?, error = ?, bytes_read = ?, "
                "bytes_added = ?, summary = ? WHERE id = ?",
                (
                    db.store_time(finished), status, exit_code, error, bytes_read, bytes_added,
                    db.store_json(dict(summary or {})), run_id,
                ),
            )  # fmt: skip

        if db.transaction(update) == 0:
            raise KeyError(f"the catalog holds no run {run_id}")

    def interrupt_unfinished(self, *, finished: datetime) -> list[JobRun]:
        """Mark this host's runs still ``running`` as ``interrupted`` at ``finished``; the runs so marked.

        A daemon calls it when it starts: a run it left ``running`` was cut short by a kill -9,
        a crash or a power cut. Other hosts' runs are theirs to mark.
        """
        db = self._db

        def mark(cursor: Cursor) -> list[JobRun]:
            found = cursor.rows(
                _SELECT_RUNS + " WHERE host = ? AND status = 'running' ORDER BY started",
                (self.host,),
            )
            cursor.execute(
                "UPDATE lifeboat_runs SET status = 'interrupted', finished = ?, error = ? "
                "WHERE host = ? AND status = 'running'",
                (db.store_time(finished), INTERRUPTED_ERROR, self.host),
            )
            return [
                _replace(self._run(row), status="interrupted", finished=utc(finished), error=INTERRUPTED_ERROR)
                for row in found
            ]

        return db.transaction(mark)

    def runs(
        self,
        *,
        job: str | None = None,
        host: str | None = None,
        status: str | None = None,
        since: datetime | None = None,
        limit: int | None = 100,
    ) -> list[JobRun]:
        """Runs of all hosts (or of ``host``), newest first; ``since`` keeps those started at or after it."""
        where: list[str] = []
        params: list[Any] = []
        for column, value in (("job", job), ("host", host), ("status", status)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if since is not None:
            where.append("started >= ?")
            params.append(self._db.store_time(since))
        sql = _SELECT_RUNS + (" WHERE " + " AND ".join(where) if where else "")  # column names from the code
        sql += " ORDER BY started DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(max(0, int(limit)))
        rows = self._db.transaction(lambda cursor: cursor.rows(sql, params), write=False)
        return [self._run(row) for row in rows]

    def run(self, run_id: str) -> JobRun | None:
        rows = self._db.transaction(
            lambda cursor: cursor.rows(_SELECT_RUNS + " WHERE id = ?", (run_id,)),
            write=False,
        )
        return self._run(rows[0]) if rows else None

    def hosts(self) -> list[str]:
        """Every host that recorded a run or a fire time, sorted."""
        rows = self._db.transaction(
            lambda cursor: cursor.rows(
                "SELECT host FROM lifeboat_runs UNION SELECT host FROM lifeboat_fires ORDER BY host"
            ),
            write=False,
        )
        return [str(row[0]) for row in rows]

    def prune_history(self, older_than: datetime, *, all_hosts: bool = False) -> int:
        """Remove finished runs (and their events) that started before ``older_than``; how many.

        Only this host's runs, unless ``all_hosts`` (for the history of a host that is gone).
        Runs still ``running`` are never removed.
        """
        db = self._db
        where = _PRUNE[all_hosts]
        params: tuple[Any, ...] = (db.store_time(older_than),) + (() if all_hosts else (self.host,))

        def prune(cursor: Cursor) -> int:
            events = "DELETE FROM lifeboat_events WHERE run_id IN (SELECT id FROM lifeboat_runs WHERE " + where + ")"  # noqa: S608 - a constant
            cursor.execute(events, params)
            return cursor.execute("DELETE FROM lifeboat_runs WHERE " + where, params)  # noqa: S608 - a constant

        return db.transaction(prune)

    # --- events ---------------------------------------------------------------------------------
    def add_event(self, run_id: str, *, at: datetime, level: str, message: str) -> int:
        """Append a line to a run's events and return its ``seq``; only the newest
        ``max_events_per_run`` are kept."""
        db = self._db
        if len(message) > MAX_MESSAGE_CHARS:
            message = message[: MAX_MESSAGE_CHARS - 1] + "…"
        cap = self.max_events_per_run

        def append(cursor: Cursor) -> int:
            seq = int(cursor.rows("SELECT coalesce(max(seq), 0) + 1 FROM lifeboat_events WHERE run_id = ?",
                                  (run_id,))[0][0])  # fmt: skip
            cursor.execute(
                "INSERT INTO lifeboat_events (run_id, seq, host, at, level, message) VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, seq, self.host, db.store_time(at), level, message),
            )
            if seq > cap:
                cursor.execute("DELETE FROM lifeboat_events WHERE run_id = ? AND seq <= ?", (run_id, seq - cap))
            return seq

        return db.transaction(append)

    def events(self, run_id: str) -> list[RunEvent]:
        """A run's events, oldest first. When older ones were dropped (the cap), the first event says how many."""
        db = self._db
        rows = db.transaction(
            lambda cursor: cursor.rows(
                "SELECT seq, at, level, message FROM lifeboat_events WHERE run_id = ? ORDER BY seq", (run_id,)
            ),
            write=False,
        )
        events = [
            RunEvent(at=db.load_time(at), level=str(level), message=str(message), seq=int(seq))
            for seq, at, level, message in rows
        ]
        dropped = int(rows[0][0]) - 1 if rows else 0
        if dropped > 0:
            notice = (
                f"{dropped} earlier events of this run were dropped: the catalog keeps the newest "
                f"{self.max_events_per_run} of each run"
            )
            events.insert(0, RunEvent(at=events[0].at, level="warning", message=notice))
        return events

    # --- the missed-run policy's memory ----------------------------------------------------------
    def last_fire(self, job: str) -> datetime | None:
        """The scheduled time this host last handled for ``job`` (None: never)."""
        rows = self._db.transaction(
            lambda cursor: cursor.rows("SELECT fire FROM lifeboat_fires WHERE host = ? AND job = ?", (self.host, job)),
            write=False,
        )
        return self._db.load_time(rows[0][0]) if rows else None

    def set_last_fire(self, job: str, fire: datetime) -> None:
        db = self._db
        db.transaction(
            lambda cursor: cursor.execute(
                "INSERT INTO lifeboat_fires (host, job, fire) VALUES (?, ?, ?) "
                "ON CONFLICT (host, job) DO UPDATE SET fire = excluded.fire",
                (self.host, job, db.store_time(fire)),
            )
        )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, row: tuple[Any, ...]) -> JobRun:
        db = self._db
        (run_id, host, job, kind, target, trigger, attempt, started, finished, status,
         exit_code, error, bytes_read, bytes_added, summary) = row  # fmt: skip
        return JobRun(
            id=str(run_id), host=str(host), job=str(job), kind=str(kind), target=str(target), trigger=str(trigger),
            attempt=int(attempt), started=db.load_time(started),
            finished=None if finished is None else db.load_time(finished), status=str(status),
            exit_code=None if exit_code is None else int(exit_code), error=None if error is None else str(error),
            bytes_read=None if bytes_read is None else int(bytes_read),
            bytes_added=None if bytes_added is None else int(bytes_added), summary=db.load_json(summary),
        )  # fmt: skip


def _replace(run: JobRun, **changes: Any) -> JobRun:
    from dataclasses import replace

    return replace(run, **changes)


def catalog_database(url: str | None, *, state_dir: str) -> Database:
    """The database a ``daemon.catalog`` setting names, opened but not migrated."""
    if url and "://" in url:
        from lifeboat.app.daemon.catalog_postgres import PostgresDatabase, is_postgres_url

        if not is_postgres_url(url):
            scheme = url.split("://", 1)[0]
            raise ConfigError(
                f"daemon.catalog: {scheme!r} URLs are not a catalog",
                hint="give a file path for an SQLite catalog, or a postgresql:// URL (docs/catalog.md)",
            )
        return PostgresDatabase(url)
    from lifeboat.app.daemon.catalog_sqlite import SqliteDatabase

    path = Path(url).expanduser() if url else Path("catalog.sqlite")
    return SqliteDatabase(path if path.is_absolute() else Path(state_dir) / path)


def open_catalog(
    url: str | None, *, state_dir: str, host: str, max_events_per_run: int = MAX_EVENTS_PER_RUN
) -> Catalog:
    """Open (and migrate to this program's schema) the catalog ``daemon.catalog`` names.

    ``url``: None for ``<state_dir>/catalog.sqlite``; a path (a relative one is below
    ``state_dir``); or a ``postgresql://`` / ``postgres://`` libpq URL.
    """
    if not host:
        raise ConfigError("daemon.host: the host name in the catalog is empty", hint="set daemon.host")
    database = catalog_database(url, state_dir=state_dir)
    try:
        migrate(database)
    except BaseException:
        database.close()
        raise
    return Catalog(database, host=host, max_events_per_run=max_events_per_run)
