"""Reading mariabackup's xbstream as it flows: which files it holds, whether each chunk's
checksum holds, whether it ends whole — and the few small files a backup's record needs
(``xtrabackup_binlog_info``: the binary log position; ``xtrabackup_checkpoints``).

mbstream has no listing mode, so this is how ``verify`` checks a physical backup without
extracting it, and how a backup learns its binlog position without a copy on disk. The
format (Percona's, kept by MariaDB) is a sequence of chunks::

    magic "XBSTCK01" | flags (1) | type (1: P payload, S sparse, E end of file)
    | path length (4, LE) | path | [S: sparse map entries (4)]
    | [P, S: payload length (8) | offset (8) | CRC-32 of the payload (4) | [S: map, 8 per entry] | payload]
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

MAGIC = b"XBSTCK01"
KEPT_FILES = ("xtrabackup_binlog_info", "xtrabackup_checkpoints", "xtrabackup_info", "backup-my.cnf")
_KEPT_LIMIT = 64 * 1024  # a kept file larger than this is not a metadata file: stop keeping it
_IGNORABLE = 0x01  # flag: a chunk of unknown type may be skipped


@dataclass
class XbstreamReader:
    """Feed it the stream's bytes in any pieces; then :meth:`end`. Problems are collected,
    not raised: after the first one the rest of the stream is not interpreted."""

    files: dict[str, int] = field(default_factory=dict)  # path → payload bytes seen
    ended: set[str] = field(default_factory=set)  # paths whose end-of-file chunk was seen
    kept: dict[str, bytes] = field(default_factory=dict)  # the small metadata files, whole
    problems: list[str] = field(default_factory=list)
    chunks: int = 0
    _buffer: bytearray = field(default_factory=bytearray)
    _offset: int = 0  # of the buffer's start in the stream

    def feed(self, data: bytes | memoryview) -> None:
        if self.problems:
            return
        self._buffer += data
        done = 0
        while not self.problems:
            used = self._chunk(done)
            if used == 0:
                break
            done += used
        if done:
            del self._buffer[:done]
            self._offset += done

    def end(self) -> None:
        """The stream has ended: it must end at a chunk's end, every file closed."""
        if self.problems:
            return
        if self._buffer:
            self.problems.append(f"the stream ends inside a chunk at byte {self._offset} (cut short)")
            return
        if not self.chunks:
            self.problems.append("the stream is empty")
            return
        unclosed = sorted(set(self.files) - self.ended)
        if unclosed:
            self.problems.append(f"{len(unclosed)} file(s) have no end in the stream (cut short), e.g. {unclosed[0]}")

    def _chunk(self, at: int) -> int:
        """Interpret the chunk starting ``at`` in the buffer; its length, or 0 if incomplete."""
        buffer = self._buffer
        if len(buffer) - at < 14:
            return 0
        if buffer[at : at + 8] != MAGIC:
            self.problems.append(f"no chunk starts at byte {self._offset + at}: not an xbstream, or damaged")
            return 0
        flags, kind = buffer[at + 8], chr(buffer[at + 9])
        (path_length,) = struct.unpack_from("<I", buffer, at + 10)
        head = at + 14 + path_length
        if len(buffer) < head:
            return 0
        path = bytes(buffer[at + 14 : head]).decode(errors="replace")
        if kind == "E":
            self.chunks += 1
            self.ended.add(path)
            self.files.setdefault(path, 0)
            return int(head - at)
        if kind not in ("P", "S"):
            if flags & _IGNORABLE:
                self.problems.append(f"an ignorable chunk of unknown type {kind!r} cannot be skipped safely")
            else:
                self.problems.append(f"a chunk of unknown type {kind!r} at byte {self._offset + at}")
            return 0
        sparse_entries = 0
        if kind == "S":
            if len(buffer) < head + 4:
                return 0
            (sparse_entries,) = struct.unpack_from("<I", buffer, head)
            head += 4
        if len(buffer) < head + 20:
            return 0
        length, _offset, checksum = struct.unpack_from("<QQI", buffer, head)
        start = head + 20 + 8 * sparse_entries
        stop = start + length
        if len(buffer) < stop:
            return 0
        payload = memoryview(buffer)[start:stop]
        try:
            if kind == "P" and zlib.crc32(payload) != checksum:
                self.problems.append(f"{path}: a chunk's checksum does not match (damaged)")
                return 0
            self.chunks += 1
            self.files[path] = self.files.get(path, 0) + length
            if path in KEPT_FILES and kind == "P":
                kept = self.kept.get(path, b"") + bytes(payload)
                if len(kept) <= _KEPT_LIMIT:
                    self.kept[path] = kept
        finally:
            payload.release()
        return int(stop - at)

    def binlog_position(self) -> dict[str, str] | None:
        """The binary log position mariabackup recorded (file, position, GTID), if any."""
        return parse_binlog_info(self.kept.get("xtrabackup_binlog_info", b""))

    def checkpoints(self) -> dict[str, str]:
        return parse_checkpoints(self.kept.get("xtrabackup_checkpoints", b""))


def parse_binlog_info(text: bytes) -> dict[str, str] | None:
    """``binlog.000001<TAB>1233<TAB>0-1-6`` → file, position, gtid (None: no binary log)."""
    for line in text.decode(errors="replace").splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and parts[0] and parts[1].isdigit():
            position = {"file": parts[0], "position": parts[1]}
            if len(parts) >= 3 and parts[2]:
                position["gtid"] = parts[2]
            return position
    return None


def parse_checkpoints(text: bytes) -> dict[str, str]:
    """``key = value`` lines (``backup_type = full-backuped``, ``to_lsn = …``)."""
    values: dict[str, str] = {}
    for line in text.decode(errors="replace").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    return values
