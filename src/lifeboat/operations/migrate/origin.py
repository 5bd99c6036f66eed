"""Where an export reads from: an *origin* opens an :class:`Endpoint` for the time of one
export and closes it after.

:class:`LiveDatabase` is a running server; :class:`BackupAtTime` is a scratch cluster
recovered from a physical backup to a point in time (:mod:`lifeboat.operations.scratch`),
stopped and removed when the export ends, however it ends. An origin for a logical dump
(a ``pg_dump`` snapshot restored into a scratch database) fits the same protocol.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from lifeboat.operations.migrate.endpoint import Endpoint

if TYPE_CHECKING:
    from lifeboat.core.progress import NoticeSink, Progress
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
