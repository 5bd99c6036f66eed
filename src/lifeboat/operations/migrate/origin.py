"""Where an export reads from: an *origin* opens an :class:`Endpoint` for the time of one
export and closes it after.

:class:`LiveDatabase` is a running server; :class:`BackupAtTime` is a scratch cluster
recovered from a physical backup to a point in time (:mod:`lifeboat.operations.scratch`),
stopped and removed when the export ends, however it ends. :class:`DumpAtPoint` is a
``pg_dump`` snapshot restored into a scratch cluster (:mod:`lifeboat.operations.dump_scratch`),
removed the same way: a dump is a point in time, so it reads the database as it was dumped.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from lifeboat.operations.migrate.endpoint import Endpoint

if TYPE_CHECKING:
    from lifeboat.core.progress import NoticeSink, Progress
    from lifeboat.core.snapshot import Snapshot
    from lifeboat.operations.dump_scratch import DumpScratchRequest
    from lifeboat.operations.scratch import ScratchPostgres, ScratchRequest
    from lifeboat.repository.repo import Repository


class Origin(Protocol):
    def open(self, dbname: str | None) -> AbstractContextManager[Endpoint]:
        """The database ``dbname`` (None: the origin's default) for the time of the block."""
        ...

    def describe(self) -> dict[str, Any]:
        """Where the rows came from, for results and manifests (valid once opened)."""
        ...


@dataclass
class LiveDatabase:
    """A running server, as given."""

    endpoint: Endpoint

    @contextmanager
    def open(self, dbname: str | None) -> Iterator[Endpoint]:
        yield self.endpoint.with_dbname(dbname)

    def describe(self) -> dict[str, Any]:
        c = self.endpoint.connection
        return {"type": "live", "host": c.host, "port": c.port, "dbname": c.dbname}


@dataclass
class BackupAtTime:
    """A scratch cluster recovered from the repository's backup to ``request.target``."""

    repo: Repository
    request: ScratchRequest
    environment: Mapping[str, str] = field(default_factory=dict, repr=False)
    source: str | None = None
    progress: Progress | None = None
    notify: NoticeSink | None = None
    scratch: dict[str, Any] = field(default_factory=dict)  # what the last scratch cluster was

    @contextmanager
    def open(self, dbname: str | None) -> Iterator[Endpoint]:
        from lifeboat.operations.scratch import scratch_postgres

        with scratch_postgres(self.repo, self.request, progress=self.progress, notify=self.notify) as scratch:
            self.scratch = scratch.to_json()
            yield self._endpoint(scratch, dbname)

    def _endpoint(self, scratch: ScratchPostgres, dbname: str | None) -> Endpoint:
        # libpq's PG* variables must not steer the connection to another server
        environment = {k: v for k, v in self.environment.items() if not k.startswith("PG")}
        connection = replace(scratch.connection, dbname=dbname or "postgres")
        return Endpoint(connection, environment, label=self._label(), major=scratch.major)

    def _label(self) -> str:
        return f"the backup of {self.source or 'the database'} as at {self.request.target.describe()}"

    def describe(self) -> dict[str, Any]:
        return {
            "type": "backup",
            "source": self.source,
            "target": self.request.target.describe(),
            **self.scratch,
        }


@dataclass
class DumpAtPoint:
    """A pg_dump snapshot's database restored into a scratch cluster for the time of the block
    (only ``request.tables`` of it when pg_restore can select them)."""

    repo: Repository
    snapshot: Snapshot
    request: DumpScratchRequest
    source: str | None = None
    chosen_by: str = ""  # how the dump was chosen ("the newest at or before …"), for messages
    scratch: dict[str, Any] = field(default_factory=dict)  # what the last scratch cluster was

    @contextmanager
    def open(self, dbname: str | None) -> Iterator[Endpoint]:
        from lifeboat.operations.dump_scratch import dump_scratch

        database = dbname or (self.request.databases[0] if self.request.databases else None)
        with dump_scratch(self.repo, self.snapshot, self.request) as scratch:
            self.scratch = scratch.to_json()
            connection = replace(scratch.connection, dbname=database or "postgres")
            environment = {k: v for k, v in self.request.environment.items() if not k.startswith("PG")}
            yield Endpoint(connection, environment, label=self._label(database), major=scratch.major)

    def _label(self, database: str | None) -> str:
        return f"database {database} of the dump {self.snapshot.short_id} of {self.source or 'a pg_dump source'}"

    def describe(self) -> dict[str, Any]:
        return {
            "type": "dump",
            "source": self.source,
            "target": self.chosen_by,
            **self.scratch,
            "snapshot": self.snapshot.id,
            "dumped_at": self.snapshot.time.isoformat(),
            "database": self.request.databases[0] if self.request.databases else None,
        }
