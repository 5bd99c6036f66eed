"""The catalog in an SQLite file (the default: ``<state dir>/catalog.sqlite``), with the stdlib ``sqlite3``.

The file is created mode 0600 (SQLite gives its ``-wal`` and ``-shm`` files the same mode),
in WAL journal mode so readers (``sqlite3``, another ``lifeboat``) never block the daemon's
writes, with a busy timeout for the moments another process holds the write lock. Times are
stored as fixed-width ISO 8601 text in UTC (``2026-11-30T10:00:40.123456Z``: it sorts as it
reads), summaries as JSON text.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lifeboat.app.daemon.catalog_db import (
    CatalogDamaged,
    CatalogError,
    CatalogUnavailable,
    Cursor,
    Database,
    T,
    utc,
)
from lifeboat.errors import LifeboatError

BUSY_TIMEOUT_MS = 10_000
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
# SQLite's result codes (sqlite3.Error.sqlite_errorname) by what they mean for the user
_DAMAGE = ("SQLITE_CORRUPT", "SQLITE_NOTADB")
_UNAVAILABLE = ("SQLITE_CANTOPEN", "SQLITE_READONLY", "SQLITE_PERM", "SQLITE_IOERR", "SQLITE_FULL",
                "SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_AUTH")  # fmt: skip


class _SqliteCursor:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self._connection.execute(sql, tuple(params)).fetchall())

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return int(self._connection.execute(sql, tuple(params)).rowcount)


class SqliteDatabase(Database):
    dialect = "sqlite"
    time_type = "text"
    json_type = "text"

    def __init__(self, path: Path, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
        super().__init__(str(path))
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        _create_private(path)
        try:
            self._connection = sqlite3.connect(
                str(path), timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise self._failure(exc) from None
        try:
            self._connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            mode = self._wal_mode()
            self._connection.execute("PRAGMA synchronous = NORMAL")  # durable with WAL but for the last commits
            self._connection.execute("PRAGMA foreign_keys = ON")
            self._connection.execute("SELECT count(*) FROM sqlite_master").fetchone()  # reads the header
        except sqlite3.Error as exc:
            self._connection.close()
            raise self._failure(exc) from None
        if not mode or str(mode[0]).lower() != "wal":
            self._connection.close()
            raise CatalogUnavailable(
                f"the job catalog {path} cannot use SQLite's WAL journal (it is in {mode[0] if mode else '?'} mode)",
                hint="put the catalog on a local file system (WAL needs shared memory, not NFS)",
            )

    def _wal_mode(self) -> Any:
        """Switch to WAL. The switch needs the file to itself for a moment: while other connections
        open the same new file, SQLite answers "database is locked" at once, without its busy
        handler, or the old mode instead of waiting (measured: 4 threads opening one new file, 29
        of 300 rounds). So the switch is tried again within the busy timeout before the file is
        judged locked or unable to use WAL."""
        deadline = time.monotonic() + self.busy_timeout_ms / 1000
        while True:
            try:
                mode = self._connection.execute("PRAGMA journal_mode = WAL").fetchone()
            except sqlite3.OperationalError as exc:
                busy = str(getattr(exc, "sqlite_errorname", "")).startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))
                if not busy or time.monotonic() >= deadline:
                    raise
                mode = None
            if (mode and str(mode[0]).lower() == "wal") or time.monotonic() >= deadline:
                return mode
            time.sleep(0.02)

    def _transaction(self, work: Callable[[Cursor], T], *, write: bool) -> T:
        try:
            self._connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        except sqlite3.Error as exc:
            raise self._failure(exc) from None
        try:
            result = work(_SqliteCursor(self._connection))
            self._connection.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                self._connection.execute("ROLLBACK")
            raise self._failure(exc) from None
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self._connection.execute("ROLLBACK")
            raise
        return result

    def _failure(self, exc: sqlite3.Error) -> LifeboatError:
        code = str(getattr(exc, "sqlite_errorname", ""))
        text = str(exc)
        if code.startswith(_DAMAGE):
            return CatalogDamaged(f"the job catalog {self.path} is damaged: {text}")
        if code.startswith(_UNAVAILABLE) or (isinstance(exc, sqlite3.OperationalError) and not code):
            if code.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
                return CatalogUnavailable(
                    f"the job catalog {self.path} stayed locked by another process for "
                    f"{self.busy_timeout_ms / 1000:g}s: {text}",
                    hint="a long transaction of another program holds it (an open 'sqlite3' shell?); end it",
                )
            return CatalogUnavailable(f"cannot use the job catalog {self.path}: {text}", hint=_writable_hint(self.path))
        return CatalogError(f"the job catalog {self.path} refused an operation: {text}")

    def lock_schema(self, cursor: Any) -> None:
        """``BEGIN IMMEDIATE`` already holds the database's write lock."""

    def table_exists(self, cursor: Any, name: str) -> bool:
        return bool(cursor.rows("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)))

    def index_exists(self, cursor: Any, name: str) -> bool:
        return bool(cursor.rows("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", (name,)))

    def store_time(self, moment: datetime) -> str:
        return utc(moment).strftime(_TIME_FORMAT)

    def load_time(self, value: Any) -> datetime:
        return datetime.strptime(str(value), _TIME_FORMAT).replace(tzinfo=UTC)

    def store_json(self, value: dict[str, Any]) -> str:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)

    def load_json(self, value: Any) -> dict[str, Any]:
        loaded = json.loads(value) if value else {}
        return loaded if isinstance(loaded, dict) else {"value": loaded}

    def close(self) -> None:
        with self.locked():
            self._connection.close()


def _create_private(path: Path) -> None:
    """Create the catalog's directory (0700) and an empty file (0600) unless they exist."""
    try:
        if not path.parent.is_dir():
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if path.exists():
            return
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            return
        try:
            os.fchmod(fd, 0o600)
        finally:
            os.close(fd)
    except OSError as exc:
        raise CatalogUnavailable(
            f"cannot create the job catalog {path}: {exc.strerror or type(exc).__name__}", hint=_writable_hint(path)
        ) from None


def _writable_hint(path: Path) -> str:
    import pwd

    user = pwd.getpwuid(os.geteuid()).pw_name
    return (
        f"the user {user} must be able to write {path} and its directory {path.parent}; "
        "or set 'daemon.catalog' to a writable path"
    )
