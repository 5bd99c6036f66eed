"""Which timeline of an archive a restore follows by default, and which others it names (pure).

A repository can hold several timelines of one cluster: the one production archives on,
the ones earlier disaster restores created, and the ones restored copies archived because
they were started with ``--archive``. PostgreSQL's own ``recovery_target_timeline =
'latest'`` follows the highest-numbered history file, so one test copy that archived would
silently become what every later restore returns. Lifeboat decides instead:

* **Live timeline**: among the timelines whose history holds a base backup, the one whose
  WAL most recently reached the repository (ties: the higher number) — the timeline the
  source cluster is archiving on now. A timeline without archived segments (a copy that
  archived only its history file, a server just promoted) is not live while another has WAL.
* **Timelines not followed** are named when they matter: one with a higher number (what
  PostgreSQL would have followed), or one that kept receiving WAL that is not on the live
  timeline's history after the live timeline branched off (production still running while
  the live timeline is a copy's).

Arrival times are the storage's modification times of the archived objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from lifeboat.core.wal import DEFAULT_SEGMENT_SIZE, Lsn, TimelineHistory, WalSegment


@dataclass(frozen=True)
class ArchivedTimeline:
    """What a repository holds of one timeline."""

    timeline: int
    history: TimelineHistory  # as PostgreSQL reads it: no parents when no history file is archived
    history_file: bool = False  # its .history file is archived
    born: float | None = None  # when the history file reached the repository
    arrivals: Mapping[int, float] = field(default_factory=dict)  # segment number -> when it reached the repository

    @property
    def newest_arrival(self) -> float | None:
        return max(self.arrivals.values()) if self.arrivals else None

    def last_segment(self, size: int = DEFAULT_SEGMENT_SIZE) -> WalSegment | None:
        return WalSegment(self.timeline, max(self.arrivals), size) if self.arrivals else None


@dataclass(frozen=True)
class OtherTimeline:
    """A timeline a restore does not follow, and why it deserves a mention."""

    timeline: int
    parent: int | None
    switchpoint: Lsn | None
    newer_numbered: bool  # PostgreSQL's own 'latest' would prefer it
    wal_after_branch: bool  # it kept receiving WAL off the followed history after that one branched off
    last_wal: str | None
    last_arrival: float | None

    def to_json(self) -> dict[str, object]:
        return {
            "timeline": self.timeline,
            "parent": self.parent,
            "switchpoint": None if self.switchpoint is None else str(self.switchpoint),
            "newer_numbered": self.newer_numbered,
            "wal_after_branch": self.wal_after_branch,
            "last_wal": self.last_wal,
            "last_arrival": None
            if self.last_arrival is None
            else datetime.fromtimestamp(self.last_arrival, UTC).isoformat(timespec="seconds"),
        }


def live_timeline(timelines: Mapping[int, ArchivedTimeline], eligible: Iterable[int]) -> int | None:
    """Of ``eligible``, the timeline whose WAL most recently reached the repository (ties: the
    higher number); None when none of them has archived segments."""
    best: tuple[float, int] | None = None
    for number in eligible:
        entry = timelines.get(number)
        newest = entry.newest_arrival if entry is not None else None
        if newest is not None and (best is None or (newest, number) > best):
            best = (newest, number)
    return None if best is None else best[1]


def _off_history(other: ArchivedTimeline, followed: TimelineHistory, size: int) -> list[int]:
    """The segments of ``other`` whose WAL lies past the point where ``followed`` leaves it (or
    all of them, if ``followed`` takes nothing from it)."""
    span = followed.span(other.timeline)
    if span is None:
        return sorted(other.arrivals)
    end = span[1]
    if end is None:
        return []
    return sorted(n for n in other.arrivals if n * size >= end)


def not_followed(
    timelines: Mapping[int, ArchivedTimeline], followed: ArchivedTimeline, size: int = DEFAULT_SEGMENT_SIZE
) -> list[OtherTimeline]:
    """The timelines worth naming beside ``followed``: newer-numbered ones, and ones that kept
    receiving WAL not on ``followed``'s history after ``followed`` branched off."""
    found: list[OtherTimeline] = []
    for number in sorted(timelines):
        if number == followed.timeline:
            continue
        other = timelines[number]
        newer = number > followed.timeline
        after_branch = False
        if followed.born is not None and followed.history.switches:
            late = [n for n in _off_history(other, followed.history, size) if other.arrivals[n] > followed.born]
            after_branch = bool(late)
        if not (newer or after_branch):
            continue
        last = other.last_segment(size)
        found.append(
            OtherTimeline(
                timeline=number,
                parent=other.history.parent,
                switchpoint=other.history.switchpoint,
                newer_numbered=newer,
                wal_after_branch=after_branch,
                last_wal=last.name if last else None,
                last_arrival=other.newest_arrival,
            )
        )
    return found
