"""Facts read straight from a PostgreSQL data directory and WAL files, without a server.

The system identifier is the first field of ``global/pg_control``; every WAL segment
starts with a long page header naming the system identifier and segment size it belongs
to; ``postmaster.pid`` says whether (and where) a server runs on the directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from lifeboat.core.walpage import parse_long_header

CONTROL_FILE = "global/pg_control"


def read_system_id(data_dir: str | os.PathLike[str]) -> str:
    """The cluster's system identifier (decimal, as PostgreSQL prints it)."""
    with open(Path(data_dir) / CONTROL_FILE, "rb") as control:
        head = control.read(8)
    if len(head) != 8:
        raise ValueError(f"{Path(data_dir) / CONTROL_FILE} is truncated")
    return str(int.from_bytes(head, "little"))


@dataclass(frozen=True)
class SegmentHeader:
    """The long page header at the start of a WAL segment."""

    magic: int
    timeline: int
    page_address: int
    system_id: str
    segment_size: int
    block_size: int


def read_segment_header(data: bytes | memoryview) -> SegmentHeader | None:
    """The header of a segment's first page, or None if it has none (not a segment)."""
    try:
        header = parse_long_header(data)
    except ValueError:
        return None
    return SegmentHeader(
        header.magic, header.timeline, header.page_address, header.system_id, header.segment_size, header.block_size
    )


@dataclass(frozen=True)
class PostmasterPid:
    """What ``postmaster.pid`` says about a server (lines: pid, dir, start, port, socket dir, …)."""

    pid: int
    data_dir: str
    port: int | None
    socket_dir: str
    listen: str
    status: str


def read_postmaster_pid(data_dir: str | os.PathLike[str]) -> PostmasterPid | None:
    try:
        lines = (Path(data_dir) / "postmaster.pid").read_text(errors="replace").splitlines()
    except (FileNotFoundError, NotADirectoryError):
        return None
    if not lines or not lines[0].strip().lstrip("-").isdigit():
        return None

    def line(n: int) -> str:
        return lines[n].strip() if len(lines) > n else ""

    port = line(3)
    return PostmasterPid(
        pid=abs(int(lines[0].strip())),
        data_dir=line(1),
        port=int(port) if port.isdigit() else None,
        socket_dir=line(4).split(",")[0].strip(),
        listen=line(5),
        status=line(7),
    )


def server_running(data_dir: str | os.PathLike[str]) -> PostmasterPid | None:
    """The running server's pid file, or None when no live process owns the directory."""
    info = read_postmaster_pid(data_dir)
    if info is None:
        return None
    try:
        os.kill(info.pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return info
    return info


def pg_version(data_dir: str | os.PathLike[str]) -> str:
    """The major version in ``PG_VERSION`` (e.g. ``15``), or '' if missing."""
    try:
        return (Path(data_dir) / "PG_VERSION").read_text().strip()
    except OSError:
        return ""
