"""The catalog's schema as an ordered list of migrations, applied when a catalog is opened.

Each :class:`Migration` moves the schema from ``version - 1`` to ``version``; the table
``lifeboat_catalog_schema`` has one row per step applied (its version, when, and which
Lifeboat applied it). Opening a catalog applies the missing steps in one transaction — on
PostgreSQL under an advisory lock, on SQLite under its write lock — so two daemons starting
at once migrate it once. A catalog whose version is newer than :data:`LATEST` is refused:
its tables may mean something this program does not know.

A step is only ever appended: a released step never changes (catalogs out there ran it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import lifeboat
from lifeboat.app.daemon.catalog_db import CatalogTooNew, Cursor, Database


@dataclass(frozen=True)
class Migration:
    version: int
    what: str
    statements: tuple[str, ...]  # with {time} and {json} for the back end's column types


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "runs, their events, the last fire time of each job",
        (
            """CREATE TABLE lifeboat_runs (
                id text PRIMARY KEY,
                host text NOT NULL,
                job text NOT NULL,
                kind text NOT NULL,
                target text NOT NULL,
                trigger text NOT NULL,
                attempt integer NOT NULL,
                started {time} NOT NULL,
                finished {time},
                status text NOT NULL,
                exit_code integer,
                error text,
                bytes_read bigint,
                bytes_added bigint,
                summary {json} NOT NULL
            )""",
            "CREATE INDEX lifeboat_runs_job_started ON lifeboat_runs (job, started)",
            "CREATE INDEX lifeboat_runs_host ON lifeboat_runs (host)",
            "CREATE INDEX lifeboat_runs_status ON lifeboat_runs (status)",
            """CREATE TABLE lifeboat_events (
                run_id text NOT NULL REFERENCES lifeboat_runs (id) ON DELETE CASCADE,
                seq bigint NOT NULL,
                host text NOT NULL,
                at {time} NOT NULL,
                level text NOT NULL,
                message text NOT NULL,
                PRIMARY KEY (run_id, seq)
            )""",
            """CREATE TABLE lifeboat_fires (
                host text NOT NULL,
                job text NOT NULL,
                fire {time} NOT NULL,
                PRIMARY KEY (host, job)
            )""",
        ),
    ),
    Migration(
        2,
        "index on the start time: the newest runs of all jobs, and pruning old history",
        ("CREATE INDEX lifeboat_runs_started ON lifeboat_runs (started)",),
    ),
)

#: the newest schema version this program knows
LATEST = MIGRATIONS[-1].version

_SCHEMA_TABLE = """CREATE TABLE IF NOT EXISTS lifeboat_catalog_schema (
    version integer PRIMARY KEY,
    applied {time} NOT NULL,
    program text NOT NULL
)"""


def schema_version(database: Database) -> int:
    """The version the catalog is at (0: empty)."""

    def read(cursor: Cursor) -> int:
        if not database.table_exists(cursor, "lifeboat_catalog_schema"):
            return 0
        return int(cursor.rows("SELECT coalesce(max(version), 0) FROM lifeboat_catalog_schema")[0][0])

    return database.transaction(read, write=False)


def migrate(database: Database, *, upto: int | None = None, migrations: Sequence[Migration] = MIGRATIONS) -> list[int]:
    """Bring the catalog to version ``upto`` (default: the newest) in one transaction; the versions applied.

    Raises :class:`CatalogTooNew` (changing nothing) when the catalog is newer than this
    program knows; a step that fails rolls back every step of this call.
    """
    known = migrations[-1].version
    steps = [step for step in migrations if upto is None or step.version <= upto]

    def apply(cursor: Cursor) -> list[int]:
        database.lock_schema(cursor)
        cursor.execute(database.sql(_SCHEMA_TABLE))
        current = int(cursor.rows("SELECT coalesce(max(version), 0) FROM lifeboat_catalog_schema")[0][0])
        if current > known:
            raise CatalogTooNew(
                f"the job catalog {database.location} has schema version {current}; "
                f"this Lifeboat ({lifeboat.__version__}) knows versions up to {known}"
            )
        applied: list[int] = []
        for step in steps:
            if step.version <= current:
                continue
            for statement in step.statements:
                cursor.execute(database.sql(statement))
            cursor.execute(
                "INSERT INTO lifeboat_catalog_schema (version, applied, program) VALUES (?, ?, ?)",
                (step.version, database.store_time(datetime.now(UTC)), f"lifeboat {lifeboat.__version__}"),
            )
            applied.append(step.version)
        return applied

    return database.transaction(apply)
