"""A channel's rate limit: at most ``limit`` messages per window of ``period``, the window
starting at its first message. What is over the limit is dropped and counted; when the window
ends, the count is handed out once, for one "n alerts suppressed" message. Pure: the clock is
passed in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass
class RateWindow:
    limit: int
    period: timedelta
    start: datetime | None = None
    sent: int = 0
    suppressed: int = 0

    def admit(self, now: datetime) -> bool:
        """Whether a message may go out at ``now`` (counted); False: it is dropped (counted)."""
        if self.start is None or now >= self.start + self.period:
            self.start, self.sent, self.suppressed = now, 0, 0
        if self.sent < self.limit:
            self.sent += 1
            return True
        self.suppressed += 1
        return False

    def ended(self, now: datetime, *, force: bool = False) -> int:
        """The messages suppressed in a window that has ended by ``now`` (or, with ``force``,
        in the current one), each counted once; 0 when none were or the window is still open."""
        if self.start is None or not (force or now >= self.start + self.period):
            return 0
        count = self.suppressed
        self.start, self.sent, self.suppressed = None, 0, 0
        return count

    @property
    def ends(self) -> datetime | None:
        return self.start + self.period if self.start is not None else None
