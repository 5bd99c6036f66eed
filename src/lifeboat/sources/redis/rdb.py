"""The RDB stream as redis-cli hands it over, and ``redis-check-rdb`` on a stored RDB.

A server doing a diskless transfer (``repl-diskless-sync yes``, Redis 7's default) ends the
RDB with a 40-character EOF mark. ``redis-cli --rdb FILE`` cuts the mark off with
``ftruncate``, which it cannot do to standard output: the mark comes through. An RDB file
itself always ends with the EOF opcode (0xFF) and an 8-byte checksum, so its last 40 bytes are
never all hexadecimal digits: when the stream's last 40 bytes are, they are the mark, and
:class:`RdbStream` leaves them out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import BinaryIO

EOF_MARK_SIZE = 40
_HEX = frozenset(b"0123456789abcdef")
RDB_MAGIC = b"REDIS"
_TRANSFERRED = re.compile(rb"Transfer finished with success after (\d+) bytes")


class RdbStream:
    """``stream`` read with ``read(n)``, holding back its last 40 bytes until it ends, so a
    diskless transfer's EOF mark is never stored. ``head`` is the first bytes given out."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._held = bytearray()
        self._ended = False
        self.head = b""
        self.mark_removed = False

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = 1 << 20
        while not self._ended and len(self._held) < n + EOF_MARK_SIZE:
            data = self._stream.read(n + EOF_MARK_SIZE - len(self._held))
            if not data:
                self._ended = True
                self._drop_mark()
            else:
                self._held += data
        available = len(self._held) if self._ended else len(self._held) - EOF_MARK_SIZE
        take = min(n, available)
        out = bytes(self._held[:take])
        del self._held[:take]
        if len(self.head) < len(RDB_MAGIC):
            self.head += out[: len(RDB_MAGIC) - len(self.head)]
        return out

    def _drop_mark(self) -> None:
        tail = self._held[-EOF_MARK_SIZE:]
        if len(tail) == EOF_MARK_SIZE and all(byte in _HEX for byte in tail):
            del self._held[-EOF_MARK_SIZE:]
            self.mark_removed = True


def transferred_bytes(stderr: bytes) -> int | None:
    """The RDB's length as redis-cli reported it (``Transfer finished … after N bytes``)."""
    found = _TRANSFERRED.search(stderr)
    return int(found.group(1)) if found else None


@dataclass(frozen=True)
class RdbCheck:
    """What ``redis-check-rdb`` said about one RDB file."""

    ok: bool
    keys: int | None  # the keys it read
    problem: str  # its error, when not ok

    def to_json(self) -> dict[str, object]:
        return {"ok": self.ok, "keys": self.keys, "problem": self.problem}


def check_rdb(path: str) -> RdbCheck:
    """Run ``redis-check-rdb`` on ``path``: ok when it exits 0 and says "RDB looks OK"."""
    from lifeboat.sources.tools.redis import run_check_rdb

    return parse_check(*run_check_rdb(path))


def parse_check(status: int, output: str) -> RdbCheck:
    """redis-check-rdb's exit status and report into an :class:`RdbCheck`."""
    keys_found = re.search(r"\[info\] (\d+) keys read", output)
    keys = int(keys_found.group(1)) if keys_found else None
    if status == 0 and "RDB looks OK" in output:
        return RdbCheck(True, keys, "")
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    problem = ""
    if "--- RDB ERROR DETECTED ---" in lines:
        after = lines[lines.index("--- RDB ERROR DETECTED ---") + 1 :]
        problem = "; ".join(line for line in after if not line.startswith("[info]"))[:500]
    if not problem:
        problem = lines[-1][:300] if lines else f"exit status {status}"
    return RdbCheck(False, keys, f"redis-check-rdb: {problem}")
