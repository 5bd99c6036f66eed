"""The database under the job catalog: one connection, one lock, one SQL text for both back ends.

A :class:`Database` runs a function inside one transaction while holding its lock, so the
daemon's job threads can share it. SQL is written once with ``?`` placeholders and the
column types ``{time}`` and ``{json}``; each back end (``catalog_sqlite``,
``catalog_postgres``) says how it spells those, how it stores times and JSON, and how it
maps its driver's errors to the errors below. Nothing else differs between them.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from lifeboat.errors import ExitCode, IntegrityError, LifeboatError, UnsupportedFormat

T = TypeVar("T")


# --- errors ---------------------------------------------------------------------------------


class CatalogError(LifeboatError):
    """The job catalog refused or failed an operation."""

    default_hint = "docs/catalog.md describes the catalog; 'daemon.catalog' in the configuration names it"


class CatalogUnavailable(CatalogError):
    """The catalog cannot be opened or reached: an unreachable or refusing PostgreSQL server,
    a wrong password, an SQLite file or directory this OS user may not write."""

    exit_code = ExitCode.ERROR
    default_hint = "check 'daemon.catalog' in the configuration and that the catalog is reachable and writable"


class CatalogDamaged(IntegrityError):
    """The catalog's file is not an SQLite database, or is damaged."""

    default_hint = (
        "move the file aside to start a new, empty job history ('sqlite3 FILE .recover' may save the old one)"
    )


class CatalogTooNew(UnsupportedFormat):
    """The catalog was migrated by a newer Lifeboat than this one (another host's, or an upgrade rolled back)."""

    default_hint = "upgrade lifeboat on this host to the version the other hosts run; never edit the schema by hand"


# --- times ----------------------------------------------------------------------------------


def utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive datetime is a programming error (its zone is unknown)."""
    if moment.tzinfo is None or moment.tzinfo.utcoffset(moment) is None:
        raise ValueError(f"a naive datetime cannot be stored in the catalog: {moment.isoformat()}")
    return moment.astimezone(UTC)


# --- the connection ----------------------------------------------------------------------------


class Cursor(Protocol):
    """What a transaction's function gets: SQL with ``?`` placeholders, rows as tuples."""

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int: ...


class Database(ABC):
    """One connection to the catalog's database, shared by threads under a lock."""

    #: ``sqlite`` or ``postgresql``
    dialect: str
    #: how the column types of the schema are spelled
    time_type: str
    json_type: str

    def __init__(self, location: str) -> None:
        #: where the catalog is, safe to show (a URL's password removed)
        self.location = location
        self._lock = threading.RLock()

    @contextmanager
    def locked(self) -> Iterator[None]:
        with self._lock:
            yield

    def transaction(self, work: Callable[[Cursor], T], *, write: bool = True) -> T:
        """Run ``work`` in one transaction (committed when it returns, rolled back when it raises)."""
        with self._lock:
            return self._transaction(work, write=write)

    @abstractmethod
    def _transaction(self, work: Callable[[Cursor], T], *, write: bool) -> T: ...

    @abstractmethod
    def lock_schema(self, cursor: Cursor) -> None:
        """Hold a lock until the transaction ends so that one process at a time migrates."""

    @abstractmethod
    def table_exists(self, cursor: Cursor, name: str) -> bool: ...

    @abstractmethod
    def index_exists(self, cursor: Cursor, name: str) -> bool: ...

    @abstractmethod
    def store_time(self, moment: datetime) -> Any: ...

    @abstractmethod
    def load_time(self, value: Any) -> datetime: ...

    @abstractmethod
    def store_json(self, value: dict[str, Any]) -> Any: ...

    @abstractmethod
    def load_json(self, value: Any) -> dict[str, Any]: ...

    @abstractmethod
    def close(self) -> None: ...

    def sql(self, text: str) -> str:
        """``text`` with the schema's column types spelled for this back end."""
        return text.replace("{time}", self.time_type).replace("{json}", self.json_type)
