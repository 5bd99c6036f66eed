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
from collections.abc import Container, Iterable, Sequence
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

# PostgreSQL reads a line with sscanf("%u\t%X/%X"): a decimal timeline, whitespace, the
# switch point; whatever follows (the reason) is ignored.
_HISTORY_LINE_RE = re.compile(r"\s*([0-9]+)\s*(?:0[xX])?([0-9A-Fa-f]+)/\s*(?:0[xX])?([0-9A-Fa-f]+)(.*)$")


@dataclass(frozen=True)
class TimelineSwitch:
    """One line of a history file: ``timeline`` was left at ``switchpoint`` for the next one."""

    timeline: int
    switchpoint: Lsn
    reason: str = ""


@dataclass(frozen=True)
class TimelinePeriod:
    """One entry of a history (PostgreSQL's ``TimeLineHistoryEntry``): ``timeline`` from
    ``begin`` (the previous line's switch point) to ``end`` (its own; None for the tip).

    Switch points need not increase: a recovery that follows a timeline but stops before
    that timeline began writes a history whose last line has an earlier switch point. An
    entry can then be empty or inverted (``end <= begin``); such a timeline owns nothing.
    """

    timeline: int
    begin: Lsn
    end: Lsn | None

    def holds(self, lsn: int) -> bool:
        """Whether ``lsn`` lies in ``[begin, end)`` (PostgreSQL's test in tliOfPointInHistory)."""
        return self.begin <= lsn and (self.end is None or lsn < self.end)


@dataclass(frozen=True)
class TimelineHistory:
    """The ancestry of ``timeline`` as its ``.history`` file records it, read as PostgreSQL does.

    Rules (timeline.c): lines are ``parent<TAB>switchpoint<TAB>reason``; empty lines and
    lines starting with ``#`` are skipped; timeline ids must increase and stay below
    ``timeline``; switch points may go backwards. The LSN ``x`` belongs to the newest entry
    whose ``[begin, end)`` holds it (tliOfPointInHistory), and recovery reads segment ``n``
    from the newest entry whose ``begin`` lies in segment ``n`` or before
    (XLogFileReadAnyTLI).
    """

    timeline: int
    switches: tuple[TimelineSwitch, ...] = ()

    @classmethod
    def parse(cls, timeline: int, text: str) -> TimelineHistory:
        """Parse ``0000000N.history`` content; :class:`ValueError` for what PostgreSQL refuses.

        A switch point of 0/0, which PostgreSQL never writes, is refused too.
        """
        switches: list[TimelineSwitch] = []
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.lstrip()
            if not line or line.startswith("#"):
                continue
            where = f"history of timeline {timeline}, line {number}"
            match = _HISTORY_LINE_RE.match(line)
            if not match:
                raise ValueError(f"{where}: expected 'timeline<TAB>switchpoint', got {line[:60]!r}")
            parent, high, low = int(match.group(1)), int(match.group(2), 16), int(match.group(3), 16)
            if parent < 1 or parent > 0xFFFFFFFF or high > 0xFFFFFFFF or low > 0xFFFFFFFF:
                raise ValueError(f"{where}: value out of range")
            if switches and parent <= switches[-1].timeline:
                raise ValueError(f"{where}: timeline ids must increase")
            point = Lsn((high << 32) | low)
            if point == 0:
                raise ValueError(f"{where}: switch point 0/0 is impossible")
            switches.append(TimelineSwitch(parent, point, match.group(4).strip()))
        if switches and switches[-1].timeline >= timeline:
            raise ValueError(f"history of timeline {timeline}: names timeline {switches[-1].timeline}, not older")
        return cls(timeline, tuple(switches))

    @classmethod
    def root(cls, timeline: int = 1) -> TimelineHistory:
        """A timeline without a history file: PostgreSQL assumes it has no parents."""
        return cls(timeline, ())

    @property
    def parent(self) -> int | None:
        """The timeline this one was created from (the recovery's target timeline then)."""
        return self.switches[-1].timeline if self.switches else None

    @property
    def switchpoint(self) -> Lsn | None:
        """Where this timeline begins: the end of the WAL its creating recovery replayed."""
        return self.switches[-1].switchpoint if self.switches else None

    def path(self) -> list[TimelinePeriod]:
        """Every entry, oldest first, each beginning at the previous line's switch point."""
        periods: list[TimelinePeriod] = []
        begin = Lsn(0)
        for switch in self.switches:
            periods.append(TimelinePeriod(switch.timeline, begin, switch.switchpoint))
            begin = switch.switchpoint
        periods.append(TimelinePeriod(self.timeline, begin, None))
        return periods

    def timeline_at(self, lsn: int) -> int:
        """The timeline whose WAL this history holds at ``lsn`` (newest entry first)."""
        for period in reversed(self.path()):
            if period.holds(lsn):
                return period.timeline
        raise AssertionError("unreachable: the entries of a history cover every LSN")

    def contains(self, timeline: int, lsn: int) -> bool:
        """Whether this history holds ``timeline``'s WAL at ``lsn``."""
        return self.timeline_at(lsn) == timeline

    def span(self, timeline: int) -> tuple[Lsn, Lsn | None] | None:
        """The LSNs ``[begin, end)`` this history takes from ``timeline`` (end None: open);
        None when it takes none (not on the path, or an entry a later switch point hides)."""
        path = self.path()
        for index, period in enumerate(path):
            if period.timeline != timeline:
                continue
            later = [p.end for p in path[index:] if p.end is not None]
            end = min(later) if later else None
            return (period.begin, end) if end is None or period.begin < end else None
        return None

    def branch_timeline(self) -> int | None:
        """The timeline whose WAL this one continues: usually the parent, but when the
        creating recovery stopped before the parent began, the ancestor that held that point."""
        if not self.switches:
            return None
        parent = TimelineHistory(self.switches[-1].timeline, self.switches[:-1])
        return parent.timeline_at(self.switches[-1].switchpoint - 1)


def timeline_for_segment(path: Sequence[TimelinePeriod], number: int, size: int = DEFAULT_SEGMENT_SIZE) -> int:
    """The timeline whose file recovery reads for segment ``number`` when every file is there.

    PostgreSQL tries the entries newest first, skipping those that begin after the segment
    (so the segment holding a switch point comes from the new timeline).
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


def segment_recovery_reads(
    path: Sequence[TimelinePeriod],
    number: int,
    archived: Container[str],
    *,
    previous: int = 0,
    size: int = DEFAULT_SEGMENT_SIZE,
) -> WalSegment | None:
    """The file recovery actually opens for segment ``number`` from an archive holding ``archived``.

    PostgreSQL's XLogFileReadAnyTLI: entries newest first, skipping those that begin after
    the segment, never older than ``previous`` (the timeline of the file read before); the
    first file that exists wins. When the file :func:`timeline_for_segment` names is missing
    it may thus *fall back* to an older timeline's file of the same number — whose WAL past
    the newer timeline's switch point is not on this history.
    """
    for period in reversed(path):
        if period.timeline < previous:
            break
        if number < period.begin // size:
            continue
        segment = WalSegment(period.timeline, number, size)
        if segment.name in archived:
            return segment
    return None


def last_archived_on_path(
    path: Sequence[TimelinePeriod], archived: Iterable[str], after: int, size: int = DEFAULT_SEGMENT_SIZE
) -> WalSegment | None:
    """The newest archived segment recovery along ``path`` would read that ends after ``after``.

    Only a segment of the timeline the path reads it from counts: WAL another timeline
    wrote past the point where this path left it is not on this history.
    """
    on_path = {f"{p.timeline:08X}" for p in path}
    # A segment name is fixed-width upper-case hex, timeline first: within one timeline, name
    # order is segment order. So each timeline's candidates are tried newest first and only
    # parsed until the first that counts (not all of a year's archive).
    candidates = sorted((n for n in archived if len(n) == 24 and n[:8] in on_path), reverse=True)
    best: WalSegment | None = None
    done: set[str] = set()  # the timelines (their 8 digits) settled: the rest of their names is skipped unparsed
    for name in candidates:
        if name[:8] in done:
            continue
        try:
            segment = WalSegment.parse(name, size)
        except ValueError:
            continue
        if segment.end_lsn <= after:
            done.add(name[:8])  # older ones of this timeline end earlier still
            continue
        if timeline_for_segment(path, segment.number, size) == segment.timeline:
            done.add(name[:8])
            if best is None or segment.number > best.number:
                best = segment
    return best


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
        ranges += ranges_of(timeline, sorted(set(numbers)), size)
    return ranges


def ranges_of(timeline: int, ordered: Sequence[int], size: int = DEFAULT_SEGMENT_SIZE) -> list[SegmentRange]:
    """The runs without holes of ``timeline``'s segment numbers ``ordered`` (ascending, distinct)."""
    if not ordered:
        return []
    # Where a run breaks, found by one comprehension (a year of WAL is a hundred thousand numbers).
    breaks = [i for i, (a, b) in enumerate(itertools.pairwise(ordered), 1) if b != a + 1]
    starts, ends = [0, *breaks], [*breaks, len(ordered)]
    return [SegmentRange(timeline, ordered[s], ordered[e - 1], size) for s, e in zip(starts, ends, strict=True)]


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
