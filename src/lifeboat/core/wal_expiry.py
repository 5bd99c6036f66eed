"""Which archived WAL may go once retention has decided which base backups stay (pure).

Recovery starts reading WAL at a base backup's start segment and never reads a lower
segment number, on any timeline. So the **horizon** of a database system is the start
segment of its oldest kept base backup: every segment, ``.partial`` and ``.backup`` file
numbered below it — on every timeline — can never be read again, and everything from it
on stays: the WAL each kept backup needs up to its consistency point, the WAL the recovery
window needs after the backup that reaches its start (retention keeps that backup, so it
is never newer than the horizon), and the WAL of other timelines those backups lead to.
Timeline history files always stay: they are tiny and recovery needs them to find its way.

It is safe while archiving runs: what PostgreSQL pushes now is newer than any existing
base backup's start, so never below the horizon. Without a kept base backup nothing goes
(the archive would be useless, but it may be all there is).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field

from lifeboat.core.basebackup import BaseBackup
from lifeboat.core.wal import WalFileKind, WalSegment, parse_wal_file_name, segments_per_log


@dataclass(frozen=True)
class RemovedRange:
    """The files removed from one timeline: ``first`` .. ``last`` by name."""

    timeline: int
    first: str
    last: str
    files: int
    stored_bytes: int

    def to_json(self) -> dict[str, object]:
        return {
            "timeline": self.timeline,
            "first": self.first,
            "last": self.last,
            "files": self.files,
            "stored_bytes": self.stored_bytes,
        }


@dataclass
class WalExpiryPlan:
    """What goes from one system's archive, and why."""

    system_id: str
    horizon: WalSegment | None  # the first segment kept; None: nothing may go
    horizon_backup: str = ""  # the snapshot of the oldest kept base backup
    remove: list[tuple[str, int]] = field(default_factory=list)  # (name, stored bytes), by name
    kept: int = 0

    @property
    def reason(self) -> str:
        if self.horizon is None:
            return "no base backup is kept, so every archived file stays"
        return f"before {self.horizon.name}, the start of the oldest kept base backup {self.horizon_backup[:8]}"

    @property
    def ranges(self) -> list[RemovedRange]:
        # A WAL file name begins with its timeline's 8 hex digits: in name order each timeline is
        # one slice, found by bisection (a hundred thousand files, a few timelines).
        ordered = sorted(self.remove)  # already in name order: one pass
        names = [name for name, _size in ordered]
        found: list[RemovedRange] = []
        for digits in sorted({name[:8] for name in names}):
            lo, hi = bisect_left(names, digits), bisect_left(names, digits + "\x7f")
            stored = sum(size for _name, size in ordered[lo:hi])
            found.append(RemovedRange(int(digits, 16), names[lo], names[hi - 1], hi - lo, stored))
        return found


def wal_horizon(kept: Iterable[BaseBackup]) -> BaseBackup | None:
    """The kept base backup whose start is the lowest segment (None if none is kept)."""
    backups = list(kept)
    if not backups:
        return None
    return min(backups, key=lambda b: (b.start_segment.number, b.start_time))


def plan_wal_expiry(system_id: str, kept: Iterable[BaseBackup], archived: Iterable[tuple[str, int]]) -> WalExpiryPlan:
    """The files of ``archived`` ((name, stored bytes) pairs of one system) that no kept base
    backup of that system can read again."""
    mine = [b for b in kept if b.system_id == system_id]
    oldest = wal_horizon(mine)
    files = sorted(archived)
    if oldest is None:
        return WalExpiryPlan(system_id, None, kept=len(files))
    horizon = oldest.start_segment
    plan = WalExpiryPlan(system_id, horizon, oldest.snapshot_id)
    per_log = segments_per_log(horizon.size)

    def number(name: str) -> int:
        parsed = parse_wal_file_name(name)
        return horizon.number if parsed.kind is WalFileKind.HISTORY else parsed.segment(horizon.size).number

    # A segment's number from its hex digits, in one comprehension (a hundred thousand of them).
    numbers = [int(n[8:16], 16) * per_log + int(n[16:], 16) if len(n) == 24 else number(n) for n, _size in files]
    plan.remove = [file for file, n in zip(files, numbers, strict=True) if n < horizon.number]
    plan.kept = len(files) - len(plan.remove)
    return plan
