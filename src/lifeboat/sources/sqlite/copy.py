"""SQLite itself: an online copy of a database with the backup API, and ``PRAGMA integrity_check``."""

from __future__ import annotations

import contextlib
import sqlite3
import urllib.parse
from dataclasses import dataclass
from typing import Any

from lifeboat.errors import SourceError

BUSY_TIMEOUT_SECONDS = 60.0  # how long the copy waits for a writer's lock
PROBLEMS_KEPT = 10  # integrity_check's first messages


@dataclass(frozen=True)
class DatabaseCopy:
    """What the copy of one database holds."""

    path: str  # the database copied
    size: int  # bytes of the copy
    page_size: int
    pages: int
    tables: int

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "bytes": self.size,
            "page_size": self.page_size,
            "pages": self.pages,
            "tables": self.tables,
        }


def online_copy(path: str, into: str) -> DatabaseCopy:
    """Copy the database ``path`` into the new file ``into`` in one backup step, read-only on
    the source (no journal or WAL file is created beside it); then check the copy. Any
    failure — not a database, locked too long, a copy that fails its check — is a SourceError."""
    uri = "file:" + urllib.parse.quote(path) + "?mode=ro"
    try:
        with (
            contextlib.closing(sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_SECONDS)) as source,
            contextlib.closing(sqlite3.connect(into)) as copy,
        ):
            source.backup(copy)  # pages=-1: one step, one consistent read
    except sqlite3.Error as exc:
        raise SourceError(
            f"{path}: cannot copy the SQLite database: {exc}",
            hint="no snapshot was saved; check that the path is a SQLite database this user can read",
        ) from None
    problems = integrity_problems(into)
    if problems:
        raise SourceError(
            f"{path}: the copy fails PRAGMA integrity_check: {'; '.join(problems)}",
            hint="no snapshot was saved; the database itself is damaged: check it with sqlite3 .recover",
        )
    return describe_copy(path, into)


def describe_copy(path: str, copy: str) -> DatabaseCopy:
    import os

    with contextlib.closing(sqlite3.connect(copy)) as db:
        page_size = int(db.execute("PRAGMA page_size").fetchone()[0])
        pages = int(db.execute("PRAGMA page_count").fetchone()[0])
        tables = int(db.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0])
    return DatabaseCopy(path, os.path.getsize(copy), page_size, pages, tables)


def integrity_problems(path: str) -> list[str]:
    """``PRAGMA integrity_check`` of the database file ``path`` (a copy or a restored file, not
    the live database): its messages, none when "ok" (a file that is not a database is one problem)."""
    try:
        with contextlib.closing(sqlite3.connect(path)) as db:
            rows = db.execute(f"PRAGMA integrity_check({PROBLEMS_KEPT})").fetchall()
    except sqlite3.Error as exc:
        return [str(exc)]
    messages = [str(row[0]) for row in rows]
    return [] if messages == ["ok"] else messages
