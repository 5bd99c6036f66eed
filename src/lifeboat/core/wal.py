"""PostgreSQL write-ahead log arithmetic: LSNs, segment and file names, timelines (pure).

Terms (as PostgreSQL uses them):

* **LSN** — a 64-bit byte position in the WAL stream, printed ``16/B374D848``.
* **Segment** — a WAL file of ``segment_size`` bytes (16 MiB by default), named
  ``TTTTTTTTXXXXXXXXYYYYYYYY``: timeline, then the segment number split into a "log" part
  and a "seg" part (``segno = log * (2**32 / segment_size) + seg``).
* **Timeline** — a history branch. Each promotion after a point-in-time recovery starts a
  new timeline; ``0000000N.history`` lists its ancestors and where each one ended.
* Other archived files: ``<segment>.<offset>.backup`` (a backup's start/stop record),
  ``<segment>.partial`` (the last, incomplete segment of a timeline that was left).

Recovery reads each segment from the newest timeline of its history path that had begun
by then; :func:`timeline_for_segment` applies the same rule, so gaps are judged exactly as
PostgreSQL will meet them.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

DEFAULT_SEGMENT_SIZE = 16 * 1024 * 1024
MIN_SEGMENT_SIZE = 1024 * 1024
MAX_SEGMENT_SIZE = 1024 * 1024 * 1024
_LSN_RE = re.compile(r"^([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})$")
_SEGMENT_RE = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$")
_HISTORY_RE = re.compile(r"^([0-9A-F]{8})\.history$")
_BACKUP_RE = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})\.([0-9A-F]{8})\.backup$")
_PARTIAL_RE = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})\.partial$")


def check_segment_size(size: int) -> int:
    """A valid WAL segment size: a power of two from 1 MiB to 1 GiB."""
    if not MIN_SEGMENT_SIZE <= size <= MAX_SEGMENT_SIZE or size & (size - 1):
        raise ValueError(f"invalid WAL segment size {size}: must be a power of two from 1 MiB to 1 GiB")
    return size


class Lsn(int):
    """A WAL position (log sequence number)."""

    def __new__(cls, value: int) -> Lsn:
        if not 0 <= value < 1 << 64:
            raise ValueError(f"LSN out of range: {value}")
        return super().__new__(cls, value)

    @classmethod
    def parse(cls, text: str) -> Lsn:
        """``'16/B374D848'`` → Lsn."""
        match = _LSN_RE.match(text.strip())
        if not match:
            raise ValueError(f"invalid LSN {text!r}: expected the form 16/B374D848")
        return cls((int(match.group(1), 16) << 32) | int(match.group(2), 16))

    def __str__(self) -> str:
        return f"{int(self) >> 32:X}/{int(self) & 0xFFFFFFFF:X}"

    def __repr__(self) -> str:
        return f"Lsn('{self}')"


def segments_per_log(segment_size: int) -> int:
    return 0x1_0000_0000 // check_segment_size(segment_size)


@dataclass(frozen=True, order=True)
class WalSegment:
    """One WAL segment file: a timeline and a segment number."""

    timeline: int
    number: int
    size: int = DEFAULT_SEGMENT_SIZE

    def __post_init__(self) -> None:
        if not 1 <= self.timeline <= 0xFFFFFFFF:
            raise ValueError(f"invalid timeline {self.timeline}")
        if self.number < 0:
            raise ValueError(f"invalid segment number {self.number}")
        check_segment_size(self.size)

    @classmethod
    def parse(cls, name: str, size: int = DEFAULT_SEGMENT_SIZE) -> WalSegment:
        match = _SEGMENT_RE.match(name)
        if not match:
            raise ValueError(f"{name!r} is not a WAL segment name")
        per_log = segments_per_log(size)
        seg = int(match.group(3), 16)
        if seg >= per_log:
            raise ValueError(f"{name!r} is not a valid name for {size // (1024 * 1024)} MiB segments")
        return cls(int(match.group(1), 16), int(match.group(2), 16) * per_log + seg, size)

    @classmethod
    def containing(cls, lsn: int, timeline: int, size: int = DEFAULT_SEGMENT_SIZE) -> WalSegment:
        """The segment that holds the byte at ``lsn``."""
        return cls(timeline, lsn // check_segment_size(size), size)

    @property
    def name(self) -> str:
        per_log = segments_per_log(self.size)
        return f"{self.timeline:08X}{self.number // per_log:08X}{self.number % per_log:08X}"

    @property
    def start_lsn(self) -> Lsn:
        return Lsn(self.number * self.size)

    @property
    def end_lsn(self) -> Lsn:
        """The first LSN after this segment."""
        return Lsn((self.number + 1) * self.size)

    def next(self) -> WalSegment:
        return WalSegment(self.timeline, self.number + 1, self.size)

    def on_timeline(self, timeline: int) -> WalSegment:
        return WalSegment(timeline, self.number, self.size)

    def __str__(self) -> str:
        return self.name


class WalFileKind(StrEnum):
    SEGMENT = "segment"
    HISTORY = "history"
    BACKUP = "backup"
    PARTIAL = "partial"


@dataclass(frozen=True)
class WalFileName:
    """A parsed name of a file PostgreSQL archives."""

    name: str
    kind: WalFileKind
    timeline: int
    log: int = 0
    seg: int = 0

    def segment(self, size: int = DEFAULT_SEGMENT_SIZE) -> WalSegment:
        """The segment a segment, partial or backup file belongs to."""
        if self.kind is WalFileKind.HISTORY:
            raise ValueError(f"{self.name} is a timeline history file, not a segment")
        return WalSegment(self.timeline, self.log * segments_per_log(size) + self.seg, size)


def parse_wal_file_name(name: str) -> WalFileName:
    """Classify a WAL archive file name; :class:`ValueError` for anything else."""
    if match := _SEGMENT_RE.match(name):
        kind = WalFileKind.SEGMENT
    elif match := _PARTIAL_RE.match(name):
        kind = WalFileKind.PARTIAL
    elif match := _BACKUP_RE.match(name):
        kind = WalFileKind.BACKUP
    elif match := _HISTORY_RE.match(name):
        timeline = int(match.group(1), 16)
        if timeline < 1:
            raise ValueError(f"{name!r}: timeline 0 does not exist")
        return WalFileName(name, WalFileKind.HISTORY, timeline)
    else:
        raise ValueError(f"{name!r} is not the name of a WAL file")
    timeline = int(match.group(1), 16)
    if timeline < 1:
        raise ValueError(f"{name!r}: timeline 0 does not exist")
    return WalFileName(name, kind, timeline, int(match.group(2), 16), int(match.group(3), 16))


def is_wal_file_name(name: str) -> bool:
    try:
        parse_wal_file_name(name)
    except ValueError:
        return False
    return True


def history_file_name(timeline: int) -> str:
    return f"{timeline:08X}.history"


# --- timelines ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineSwitch:
    """One line of a history file: ``timeline`` ended at ``switchpoint``."""

    timeline: int
    switchpoint: Lsn
    reason: str = ""


@dataclass(frozen=True)
class TimelineHistory:
    """The ancestry of ``timeline`` as its ``.history`` file records it."""

    timeline: int
    switches: tuple[TimelineSwitch, ...] = ()

    @classmethod
    def parse(cls, timeline: int, text: str) -> TimelineHistory:
        """Parse ``0000000N.history`` content (``parent<TAB>switchpoint<TAB>reason`` lines)."""
        switches: list[TimelineSwitch] = []
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            fields = line.split(None, 2)
            if len(fields) < 2:
                raise ValueError(f"history of timeline {timeline}, line {number}: expected 'timeline switchpoint'")
            try:
                parent = int(fields[0])
                point = Lsn.parse(fields[1])
            except ValueError as exc:
                raise ValueError(f"history of timeline {timeline}, line {number}: {exc}") from None
            if parent >= timeline or (switches and parent <= switches[-1].timeline):
                raise ValueError(f"history of timeline {timeline}, line {number}: timelines out of order")
            if switches and point < switches[-1].switchpoint:
                raise ValueError(f"history of timeline {timeline}, line {number}: switchpoints out of order")
            switches.append(TimelineSwitch(parent, point, fields[2] if len(fields) > 2 else ""))
        return cls(timeline, tuple(switches))

    @classmethod
    def root(cls, timeline: int = 1) -> TimelineHistory:
        """A timeline without a history file (the first one)."""
        return cls(timeline, ())

    def path(self) -> list[TimelinePeriod]:
        """Every timeline on the way to this one, oldest first, with the LSNs each covers."""
        periods: list[TimelinePeriod] = []
        begin = Lsn(0)
        for switch in self.switches:
            periods.append(TimelinePeriod(switch.timeline, begin, switch.switchpoint))
            begin = switch.switchpoint
        periods.append(TimelinePeriod(self.timeline, begin, None))
        return periods

    def timeline_at(self, lsn: int) -> int:
        """The timeline this history was on at ``lsn``."""
        for period in self.path():
            if period.end is None or lsn < period.end:
                return period.timeline
        return self.timeline

    def contains(self, timeline: int, lsn: int) -> bool:
        """Whether position ``lsn`` of ``timeline`` lies on this history's path."""
        return any(p.timeline == timeline and p.begin <= lsn and (p.end is None or lsn <= p.end) for p in self.path())


@dataclass(frozen=True)
class TimelinePeriod:
    """A stretch of WAL ``[begin, end)`` written on ``timeline`` (``end`` None: still open)."""

    timeline: int
    begin: Lsn
    end: Lsn | None


def timeline_for_segment(path: Sequence[TimelinePeriod], number: int, size: int = DEFAULT_SEGMENT_SIZE) -> int:
    """The timeline whose file recovery reads for segment ``number``.

    PostgreSQL takes the newest timeline of the path whose first segment is at or before
    the segment asked for (so the segment holding a switchpoint comes from the new one).
    """
    for period in reversed(path):
        if period.begin // size <= number:
            return period.timeline
    return path[0].timeline


def segments_needed(
    path: Sequence[TimelinePeriod], start: int, end: int, size: int = DEFAULT_SEGMENT_SIZE
) -> list[WalSegment]:
    """The segment files recovery reads to replay WAL from ``start`` to ``end`` (inclusive)."""
    if end < start:
        return []
    return [
        WalSegment(timeline_for_segment(path, number, size), number, size)
        for number in range(start // size, end // size + 1)
    ]


# --- archived ranges ------------------------------------------------------------------------


@dataclass(frozen=True)
class SegmentRange:
    """Consecutive archived segments ``first..last`` of one timeline."""

    timeline: int
    first: int
    last: int
    size: int = DEFAULT_SEGMENT_SIZE

    @property
    def count(self) -> int:
        return self.last - self.first + 1

    @property
    def first_segment(self) -> WalSegment:
        return WalSegment(self.timeline, self.first, self.size)

    @property
    def last_segment(self) -> WalSegment:
        return WalSegment(self.timeline, self.last, self.size)


def contiguous_ranges(segments: Iterable[WalSegment]) -> list[SegmentRange]:
    """Group segments into runs without holes, per timeline, ordered by timeline then number."""
    by_timeline: dict[tuple[int, int], list[int]] = {}
    for segment in segments:
        by_timeline.setdefault((segment.timeline, segment.size), []).append(segment.number)
    ranges: list[SegmentRange] = []
    for (timeline, size), numbers in sorted(by_timeline.items()):
        ordered = sorted(set(numbers))
        first = last = ordered[0]
        for number in ordered[1:]:
            if number == last + 1:
                last = number
                continue
            ranges.append(SegmentRange(timeline, first, last, size))
            first = last = number
        ranges.append(SegmentRange(timeline, first, last, size))
    return ranges


def missing_between(ranges: Sequence[SegmentRange]) -> list[WalSegment]:
    """The holes inside each timeline's archive (between its first and last segment)."""
    missing: list[WalSegment] = []
    by_timeline: dict[int, list[SegmentRange]] = {}
    for r in ranges:
        by_timeline.setdefault(r.timeline, []).append(r)
    for timeline, runs in sorted(by_timeline.items()):
        runs.sort(key=lambda r: r.first)
        for before, after in itertools.pairwise(runs):
            missing.extend(WalSegment(timeline, n, before.size) for n in range(before.last + 1, after.first))
    return missing


def first_missing(needed: Iterable[WalSegment], present: set[str]) -> WalSegment | None:
    """The first segment of ``needed`` whose name is not in ``present``."""
    for segment in needed:
        if segment.name not in present:
            return segment
    return None


# --- backup labels ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BackupLabel:
    """What ``backup_label`` (or an archived ``.backup`` file) says about a base backup."""

    start_lsn: Lsn
    start_wal: str
    checkpoint_lsn: Lsn | None = None
    method: str = ""
    backup_from: str = ""
    start_time: str = ""
    label: str = ""
    start_timeline: int | None = None
    stop_lsn: Lsn | None = None
    stop_wal: str = ""
    stop_time: str = ""


_LABEL_WAL_RE = re.compile(r"^(\S+) \(file ([0-9A-F]{24})\)$")


def parse_backup_label(text: str) -> BackupLabel:
    """Parse the ``KEY: value`` lines of a backup label or ``.backup`` history file."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            fields[key.strip()] = value.strip()

    def location(key: str) -> tuple[Lsn, str] | None:
        value = fields.get(key)
        if value is None:
            return None
        match = _LABEL_WAL_RE.match(value)
        if not match:
            raise ValueError(f"backup label: malformed {key}: {value!r}")
        return Lsn.parse(match.group(1)), match.group(2)

    start = location("START WAL LOCATION")
    if start is None:
        raise ValueError("backup label has no START WAL LOCATION")
    stop = location("STOP WAL LOCATION")
    checkpoint = fields.get("CHECKPOINT LOCATION")
    timeline = fields.get("START TIMELINE")
    return BackupLabel(
        start_lsn=start[0],
        start_wal=start[1],
        checkpoint_lsn=Lsn.parse(checkpoint) if checkpoint else None,
        method=fields.get("BACKUP METHOD", ""),
        backup_from=fields.get("BACKUP FROM", ""),
        start_time=fields.get("START TIME", ""),
        label=fields.get("LABEL", ""),
        start_timeline=int(timeline) if timeline else None,
        stop_lsn=stop[0] if stop else None,
        stop_wal=stop[1] if stop else "",
        stop_time=fields.get("STOP TIME", ""),
    )
