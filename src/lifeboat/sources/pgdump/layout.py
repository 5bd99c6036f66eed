"""Where a pg_dump snapshot keeps what: ``globals.sql`` and ``<database>.dump``, and the record
(``extra["pg_dump"]``) naming each database's file."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

GLOBALS_FILE = "globals.sql"
DUMP_SUFFIX = ".dump"  # a custom-format archive (one file)
DIRECTORY_SUFFIX = ".dir"  # a directory-format archive (a backup with jobs)
RECORD_KEY = "pg_dump"


def dump_file(database: str, *, directory: bool = False) -> str:
    """The name of a database's archive: its name, '%' and '/' escaped (a database name may
    hold a '/', a file name may not), then ``.dump`` (or ``.dir`` for a directory archive)."""
    return database.replace("%", "%25").replace("/", "%2F") + (DIRECTORY_SUFFIX if directory else DUMP_SUFFIX)


@dataclass(frozen=True)
class DumpedDatabase:
    """One database as the snapshot recorded it."""

    name: str
    file: str
    size: int  # the database's size on the server (pg_database_size)
    bytes: int  # the archive's length
    format: str = "custom"  # or "directory"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "file": self.file, "size": self.size, "bytes": self.bytes, "format": self.format}


def recorded(extra: Mapping[str, Any]) -> tuple[list[DumpedDatabase], str]:
    """The databases a snapshot's record names, and its globals file ("" if none)."""
    record = extra.get(RECORD_KEY)
    if not isinstance(record, Mapping):
        return [], ""
    dumped = [
        DumpedDatabase(
            str(item["name"]),
            str(item["file"]),
            int(item.get("size", 0)),
            int(item.get("bytes", 0)),
            str(item.get("format", "custom")),
        )
        for item in record.get("databases", ())
        if isinstance(item, Mapping) and "name" in item and "file" in item
    ]
    globals_record = record.get("globals")
    globals_file = str(globals_record.get("file", "")) if isinstance(globals_record, Mapping) else ""
    return dumped, globals_file
