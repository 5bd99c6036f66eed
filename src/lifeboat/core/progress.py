"""Progress counters and notices that operations publish and frontends render.

Operations update a :class:`Progress` (thread-safe counters) and call a notice sink
for things a user must see (an unreadable file, a file that changed while read). The
CLI polls the counters to draw its progress bar; the daemon turns them into metrics.
Nothing here prints.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from lifeboat.errors import spell_options


class Severity(StrEnum):
    WARNING = "warning"  # reported; the result is still complete
    ERROR = "error"  # something was left out: the backup is partial


@dataclass(frozen=True)
class Notice:
    """Something about one path that the user must hear about."""

    severity: Severity
    path: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"severity": self.severity.value, "path": self.path, "message": spell_options(self.message)}


NoticeSink = Callable[[Notice], None]


def ignore_notices(notice: Notice) -> None:
    return None


@dataclass
class Progress:
    """Counters of a running backup or restore."""

    files_total: int = 0
    bytes_total: int = 0
    scan_finished: bool = False
    files_done: int = 0
    dirs_done: int = 0
    bytes_done: int = 0
    current: str = ""
    started: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def scanned(self, files: int, size: int) -> None:
        with self._lock:
            self.files_total += files
            self.bytes_total += size

    def file_done(self) -> None:
        with self._lock:
            self.files_done += 1

    def file_read(self, size: int) -> None:
        """One whole file of ``size`` bytes is done."""
        with self._lock:
            self.files_done += 1
            self.bytes_done += size

    def bytes_read(self, size: int) -> None:
        with self._lock:
            self.bytes_done += size

    def dir_done(self) -> None:
        with self._lock:
            self.dirs_done += 1

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def eta(self) -> float | None:
        """Seconds left, once the scan knows the total and some bytes are done."""
        elapsed = self.elapsed()
        if not self.scan_finished or self.bytes_done <= 0 or elapsed <= 0:
            return None
        rate = self.bytes_done / elapsed
        return max(0.0, (self.bytes_total - self.bytes_done) / rate)
