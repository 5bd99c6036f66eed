"""What Lifeboat reads in a mariadb-dump file: that it is whole (its header, its
``-- Dump completed`` line), the binary log position ``--master-data=2`` wrote into it, and
the statements of one table (for a one-table restore), filtered as the dump streams by.

mariadb-dump marks its sections with comment blocks::

    --
    -- Table structure for table `t`
    --
    ...
    -- Dumping data for table `t`          (the table's triggers follow its data)
    ...
    -- Dumping routines for database 'shop'
    ...
    /*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;    (the trailer: the session restored)
    -- Dump completed on 2026-11-30  7:00:03
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

HEADER_MARKS = (b"-- MariaDB dump", b"-- MySQL dump")
COMPLETED_MARK = b"-- Dump completed"
_HEAD_LINES = 4  # the header mark is on one of the first lines (after 10.11's sandbox-mode line)
_SECTION = re.compile(rb"^-- (Table structure for table|Dumping data for table) (`(?:[^`]|``)*`)\s*$")
_OTHER_SECTION = re.compile(
    rb"^-- (Temporary table structure for view|Temporary view structure for view|Final view structure for view"
    rb"|Dumping events for database|Dumping routines for database|Current Database:) "
)
_TRAILER = b"/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;"
_CHANGE_MASTER = re.compile(rb"^-- CHANGE MASTER TO MASTER_LOG_FILE='([^']+)', MASTER_LOG_POS=(\d+);")
_GTID = re.compile(rb"^-- SET GLOBAL gtid_slave_pos='([^']*)';")


def has_header(head: bytes) -> bool:
    """``head`` (the dump's first bytes) is mariadb-dump's (or mysqldump's) header."""
    return any(line.startswith(HEADER_MARKS) for line in head.splitlines()[:_HEAD_LINES])


def has_completed(tail: bytes) -> bool:
    """``tail`` (the dump's last bytes) ends with mariadb-dump's ``-- Dump completed`` line:
    a dump cut short (the program killed, a disk full) does not."""
    lines = [line for line in tail.splitlines() if line.strip()]
    return bool(lines) and lines[-1].startswith(COMPLETED_MARK)


def dump_problems(name: str, head: bytes, tail: bytes) -> list[str]:
    """What is wrong with a dump whose first and last bytes are ``head`` and ``tail``."""
    problems = []
    if not has_header(head):
        problems.append(f"{name}: does not start with mariadb-dump's header")
    if not has_completed(tail):
        problems.append(f"{name}: does not end with mariadb-dump's '-- Dump completed' line (cut short)")
    return problems


@dataclass
class DumpWatcher:
    """Sees a dump stream by as it is stored: keeps its first and last bytes and the binary
    log position written as a comment near its start."""

    head: bytes = b""
    tail: bytes = b""
    binlog: dict[str, str] = field(default_factory=dict)
    _scanned: int = 0

    KEEP = 4096
    SCAN = 64 * 1024  # the position comments are in the first lines; GTID may be further on

    def see(self, data: bytes) -> None:
        if len(self.head) < self.KEEP:
            self.head += data[: self.KEEP - len(self.head)]
        self.tail = (self.tail + data)[-self.KEEP :]
        if self._scanned < self.SCAN:
            self._scan(data[: self.SCAN - self._scanned])
            self._scanned += len(data)

    def _scan(self, data: bytes) -> None:
        for line in data.splitlines():
            position = _CHANGE_MASTER.match(line)
            if position:
                self.binlog.update(file=position.group(1).decode(), position=position.group(2).decode())
            gtid = _GTID.match(line)
            if gtid:
                self.binlog["gtid"] = gtid.group(1).decode()

    def tail_gtid(self) -> None:
        """The GTID comment may come after the tables: look for it in the tail as well."""
        if "gtid" not in self.binlog:
            self._scan(self.tail)

    def problems(self, name: str) -> list[str]:
        return dump_problems(name, self.head, self.tail)


def lines_of(pieces: Iterable[bytes | memoryview]) -> Iterator[bytes]:
    """The lines (with their line ends) of a stream given in pieces."""
    pending = b""
    for piece in pieces:
        data = pending + bytes(piece)
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                break
            yield data[start : end + 1]
            start = end + 1
        pending = data[start:]
    if pending:
        yield pending


def quoted(name: str) -> bytes:
    return ("`" + name.replace("`", "``") + "`").encode()


class TableFilter:
    """Passes on the lines of a dump that restore one table alone: the header (session
    settings), the table's structure and data sections (its triggers follow its data) and
    the trailer. ``found`` says, once the dump has gone by, whether it held the table."""

    def __init__(self, table: str) -> None:
        self.wanted = quoted(table)
        self.found = False

    def lines(self, pieces: Iterable[bytes | memoryview]) -> Iterator[bytes]:
        keep = True  # the header, before the first section
        for line in lines_of(pieces):
            section = _SECTION.match(line.rstrip(b"\r\n"))
            if section:
                keep = section.group(2) == self.wanted
                self.found = self.found or keep
            elif _OTHER_SECTION.match(line):
                keep = False
            elif line.rstrip(b"\r\n") == _TRAILER or line.startswith(COMPLETED_MARK):
                keep = True
            if keep:
                yield line


def tables_in(pieces: Iterable[bytes | memoryview]) -> list[str]:
    """The tables a dump holds the structure of (by its section comments)."""
    names = []
    for line in lines_of(pieces):
        section = _SECTION.match(line.rstrip(b"\r\n"))
        if section and section.group(1) == b"Table structure for table":
            names.append(section.group(2)[1:-1].replace(b"``", b"`").decode(errors="replace"))
    return names
