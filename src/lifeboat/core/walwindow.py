"""The recoverable window of one cluster from the *names* of its archived WAL, in one pass.

``pg info`` (:mod:`lifeboat.operations.pg_info`) judges the window from the full listing,
file by file; a health check asks the same questions every minute of an archive with a
hundred thousand segments, so this module answers them from segment numbers per timeline
(sets of integers, no per-file objects) with the same rules:

- the history followed is the live timeline's path; a segment counts only when it is the
  file recovery would read for its number (:func:`timeline_for_segment`);
- the end of the archived WAL is the newest such segment;
- a base backup is usable when every segment from where its recovery starts reading to its
  consistency point is there; the earliest restorable point is the oldest usable backup's
  consistency time;
- recovery from the newest usable backup runs until the first missing segment after it
  (``blocked_by``): the latest restorable point is the segment before it, else the end;
- ``gap`` is the first segment missing after the *newest* backup on the path (pg info's);
- ``missing`` counts every segment missing between where the oldest kept backup's recovery
  starts and the end of the archived WAL: holes that make points in the window unreachable.

tests/unit/test_health.py holds it equal to ``pg info`` on the same archives (gaps, a timeline switch).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lifeboat.core.basebackup import BaseBackup, on_history
from lifeboat.core.wal import DEFAULT_SEGMENT_SIZE, TimelineHistory, TimelinePeriod, WalSegment, timeline_for_segment

MISSING_SHOWN = 5  # missing segments named (the rest are counted)


@dataclass(frozen=True)
class WalWindow:
    """What a cluster's archive allows on its live timeline's history."""

    timeline: int
    end: WalSegment | None  # the newest archived segment on the history
    reached: WalSegment | None  # the last segment recovery from the newest usable backup reaches
    earliest: BaseBackup | None  # the oldest usable base backup (None: nothing restorable)
    newest_usable: BaseBackup | None
    blocked_by: WalSegment | None  # the first segment missing after the newest usable backup
    gap: WalSegment | None  # the first segment missing after the newest backup on the history
    missing_count: int  # segments missing from the oldest backup's start to the end
    missing: tuple[WalSegment, ...]  # the first of them


def first_needed(backup: BaseBackup) -> int:
    """The first segment recovery from ``backup`` reads from the archive."""
    size = backup.wal_segment_size
    lsn = backup.stop_segment.next().start_lsn if backup.wal_included else backup.start_lsn
    return int(lsn) // size


def consistent_segment(backup: BaseBackup) -> int:
    """The last segment recovery needs to reach consistency (-1: inside the backup)."""
    if backup.wal_included:
        return -1
    return max(backup.stop_lsn - 1, backup.start_lsn) // backup.wal_segment_size


def wal_window(
    backups: Sequence[BaseBackup],
    history: TimelineHistory,
    present: Mapping[int, set[int]],
    size: int = DEFAULT_SEGMENT_SIZE,
) -> WalWindow:
    """The window on ``history`` given ``present`` (timeline → archived segment numbers)."""
    path = history.path()
    empty: set[int] = set()
    owners = _owners(path, size)

    def has(number: int) -> bool:
        return number in present.get(timeline_for_segment(path, number, size), empty)

    end_number = -1
    for timeline, first, high in owners:
        numbers = present.get(timeline, empty)
        if first == 0 and high is None:  # one timeline from the start: all of it
            end_number = max(end_number, max(numbers, default=-1))
        else:
            owned = (n for n in numbers if first <= n and (high is None or n < high))
            end_number = max(end_number, max(owned, default=-1))
    end = _segment(path, end_number, size) if end_number >= 0 else None
    on_path = [b for b in backups if on_history(b, history)]
    if not on_path:
        return WalWindow(history.timeline, end, None, None, None, None, None, 0, ())
    low = min(first_needed(b) for b in on_path)
    holes: list[int] = []
    for timeline, first, high in owners:
        numbers = present.get(timeline, empty)
        stop = end_number + 1 if high is None else min(high, end_number + 1)
        holes += [n for n in range(max(first, low), stop) if n not in numbers]
    holes.sort()

    def missing(backup: BaseBackup, until: int) -> int | None:
        start = first_needed(backup)
        stop = max(until, consistent_segment(backup))
        if stop < start:
            return None
        at = bisect_left(holes, start)
        if at < len(holes) and holes[at] <= stop:
            return holes[at]
        if stop > end_number:  # nothing on the history is archived past the end
            return max(start, end_number + 1)
        return None

    newest = max(on_path, key=lambda b: (b.stop_lsn, b.stop_time))
    gap_number = missing(newest, end_number)
    gap = _segment(path, gap_number, size) if gap_number is not None else None
    shown = tuple(_segment(path, n, size) for n in holes[:MISSING_SHOWN])
    usable = [b for b in on_path if missing(b, -1) is None]
    if not usable:
        return WalWindow(history.timeline, end, None, None, None, None, gap, len(holes), shown)
    earliest = min(usable, key=lambda b: b.stop_lsn)
    newest_usable = max(usable, key=lambda b: (b.stop_lsn, b.stop_time))
    blocked_number = missing(newest_usable, end_number)
    reached_number = end_number if blocked_number is None else blocked_number - 1
    first = first_needed(newest_usable)
    # pg info's rule: a segment that ends where recovery starts reading, or is absent, reaches nothing.
    reached = None
    if reached_number >= 0 and reached_number >= first and has(reached_number):
        reached = _segment(path, reached_number, size)
    return WalWindow(
        timeline=history.timeline,
        end=end,
        reached=reached,
        earliest=earliest,
        newest_usable=newest_usable,
        blocked_by=_segment(path, blocked_number, size) if blocked_number is not None else None,
        gap=gap,
        missing_count=len(holes),
        missing=shown,
    )


def _owners(path: Sequence[TimelinePeriod], size: int) -> list[tuple[int, int, int | None]]:
    """(timeline, first segment, end segment or None) that recovery along ``path`` reads from
    each timeline when every file is there: :func:`timeline_for_segment` as ranges, so a
    hundred thousand segments are judged without a call each. A period owns the segments
    from its beginning up to the earliest beginning of a later one."""
    owners: list[tuple[int, int, int | None]] = []
    for index, period in enumerate(path):
        later = [p.begin // size for p in path[index + 1 :]]
        high = min(later) if later else None
        first = period.begin // size
        if high is None or first < high:
            owners.append((period.timeline, first, high))
    return owners


def _segment(path: Sequence[TimelinePeriod], number: int, size: int) -> WalSegment:
    return WalSegment(timeline_for_segment(path, number, size), number, size)


__all__ = ["MISSING_SHOWN", "WalWindow", "consistent_segment", "first_needed", "wal_window"]
