"""Fake WAL files for tests that need no server: segments with a real long page header."""

from __future__ import annotations

import os
import struct
from pathlib import Path

from lifeboat.core.wal import DEFAULT_SEGMENT_SIZE, WalSegment

SYSTEM_ID = "7301234567890123456"
_HEADER = struct.Struct("<HHIQI4xQII")


def segment_bytes(
    name: str, *, system_id: str = SYSTEM_ID, fill: bytes = b"", size: int = DEFAULT_SEGMENT_SIZE
) -> bytes:
    segment = WalSegment.parse(name, size)
    header = _HEADER.pack(0xD110, 0x0002, segment.timeline, segment.start_lsn, 0, int(system_id), size, 8192)
    body = (fill or name.encode()) * 64
    return header + body + bytes(size - len(header) - len(body))


def make_pg_wal(data_dir: Path, *, system_id: str = SYSTEM_ID) -> Path:
    """A data directory skeleton: global/pg_control (system id) and pg_wal/archive_status."""
    (data_dir / "global").mkdir(parents=True, exist_ok=True)
    (data_dir / "global" / "pg_control").write_bytes(int(system_id).to_bytes(8, "little") + bytes(8184))
    (data_dir / "pg_wal" / "archive_status").mkdir(parents=True, exist_ok=True)
    return data_dir / "pg_wal"


def add_ready(pg_wal: Path, name: str, data: bytes | None = None) -> Path:
    path = pg_wal / name
    path.write_bytes(segment_bytes(name) if data is None else data)
    (pg_wal / "archive_status" / f"{name}.ready").touch()
    return path


def mark_done(pg_wal: Path, name: str) -> None:
    os.replace(pg_wal / "archive_status" / f"{name}.ready", pg_wal / "archive_status" / f"{name}.done")
