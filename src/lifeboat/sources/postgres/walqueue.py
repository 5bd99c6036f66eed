"""PostgreSQL's archive queue: the ``pg_wal/archive_status/*.ready`` files.

PostgreSQL marks a WAL file ready for archiving by creating ``<name>.ready`` and, once
``archive_command`` succeeded, renames it to ``<name>.done``. The files are archived in
name order; timeline history files are pushed first, because recovery needs them to find
its way between timelines.
"""

from __future__ import annotations

import os
from pathlib import Path

from lifeboat.core.wal import is_wal_file_name

READY = ".ready"


def archive_order(name: str) -> tuple[int, str]:
    return (0 if name.endswith(".history") else 1, name)


def ready_files(pg_wal: str | os.PathLike[str]) -> list[str]:
    """The WAL files waiting to be archived, in the order to push them."""
    status = Path(pg_wal) / "archive_status"
    try:
        with os.scandir(status) as listing:
            names = [e.name[: -len(READY)] for e in listing if e.name.endswith(READY)]
    except FileNotFoundError:
        return []
    return sorted((n for n in names if is_wal_file_name(n)), key=archive_order)


def file_size(pg_wal: str | os.PathLike[str], name: str) -> int:
    try:
        return (Path(pg_wal) / name).stat().st_size
    except OSError:
        return 0
