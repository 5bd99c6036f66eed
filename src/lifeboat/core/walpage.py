"""The long page header that opens every WAL segment, and what it must say (pure).

PostgreSQL starts each segment file with an ``XLogLongPageHeaderData`` (40 bytes,
little-endian on the platforms Lifeboat runs on)::

    xlp_magic u16 | xlp_info u16 | xlp_tli u32 | xlp_pageaddr u64 | xlp_rem_len u32 | 4 pad |
    xlp_sysid u64 | xlp_seg_size u32 | xlp_xlog_blcksz u32

A segment is what its archived name says when the header carries the long-header flag,
a known page magic, the segment's own start LSN, the database system it is filed under
and its size. The timeline is the file's own, except in the segment in which the
timeline began: PostgreSQL copies that segment's first part from the parent timeline, so
its first page carries the timeline that wrote it (:func:`first_page_timelines`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from lifeboat.core.wal import Lsn, TimelineHistory, WalSegment, check_segment_size

LONG_HEADER = struct.Struct("<HHIQI4xQII")
LONG_HEADER_BYTES = LONG_HEADER.size  # 40
XLP_LONG_HEADER = 0x0002
XLP_ALL_FLAGS = 0x000F  # FIRST_IS_CONTRECORD, LONG_HEADER, BKP_REMOVABLE, FIRST_IS_OVERWRITE_CONTRECORD

# XLOG_PAGE_MAGIC of each PostgreSQL release (src/include/access/xlog_internal.h).
PAGE_MAGIC = {
    0xD093: "9.6",
    0xD097: "10",
    0xD098: "11",
    0xD101: "12",
    0xD106: "13",
    0xD10D: "14",
    0xD110: "15",
    0xD113: "16",
    0xD116: "17",
    0xD118: "18",
}
_NEWEST_MAGIC = max(PAGE_MAGIC)
_MAGIC_FAMILY = 0xD100  # later releases keep counting up from here


@dataclass(frozen=True)
class LongPageHeader:
    """The fields of a segment's first page header."""

    magic: int
    info: int
    timeline: int
    page_address: int
    system_id: str
    segment_size: int
    block_size: int

    @property
    def version(self) -> str:
        """The PostgreSQL release the magic belongs to ('' when newer than those known)."""
        return PAGE_MAGIC.get(self.magic, "")


def parse_long_header(data: bytes | memoryview) -> LongPageHeader:
    """The long header at the start of ``data``; :class:`ValueError` when there is none."""
    if len(data) < LONG_HEADER_BYTES:
        raise ValueError(f"{len(data)} bytes are too few for a WAL page header")
    magic, info, tli, pageaddr, _rem, sysid, seg_size, blcksz = LONG_HEADER.unpack_from(data)
    if not info & XLP_LONG_HEADER:
        raise ValueError(f"the first page has no long header (xlp_info 0x{info:04X})")
    return LongPageHeader(magic, info, tli, pageaddr, str(sysid), seg_size, blcksz)


def known_magic(magic: int) -> bool:
    """A page magic PostgreSQL released, or a later one (newer releases count upwards)."""
    return magic in PAGE_MAGIC or (magic > _NEWEST_MAGIC and magic & 0xFF00 == _MAGIC_FAMILY)


def first_page_timelines(segment: WalSegment, history: TimelineHistory | None) -> frozenset[int]:
    """The timelines the first page of ``segment``'s file may carry.

    Its own timeline; in the segment where that timeline began, the timeline that wrote
    the segment's first bytes (recorded by ``history``). Without the history, any
    timeline up to its own (the missing history file is a problem of its own).
    """
    if history is None:
        return frozenset(range(1, segment.timeline + 1))
    return frozenset({segment.timeline, history.timeline_at(segment.start_lsn)})


def segment_problem(
    header: LongPageHeader,
    segment: WalSegment,
    *,
    system_id: str,
    length: int,
    timelines: frozenset[int],
) -> str | None:
    """Why a file of ``length`` bytes opening with ``header`` is not ``segment`` of
    system ``system_id`` — or None when it is."""
    if not known_magic(header.magic):
        return f"page magic 0x{header.magic:04X} is not PostgreSQL's"
    if header.info & ~XLP_ALL_FLAGS:
        return f"invalid page info bits 0x{header.info:04X}"
    if header.system_id != system_id:
        return f"the segment belongs to database system {header.system_id}, not {system_id}"
    try:
        check_segment_size(header.segment_size)
    except ValueError:
        return f"invalid segment size {header.segment_size} in the page header"
    if header.segment_size != segment.size:
        return f"the page header says {header.segment_size}-byte segments, the archive {segment.size}"
    if length != header.segment_size:
        return f"{length} bytes, the page header says {header.segment_size}"
    if header.block_size < 1024 or header.block_size > 65536 or header.block_size & (header.block_size - 1):
        return f"invalid WAL block size {header.block_size}"
    if header.page_address != segment.start_lsn:
        found = WalSegment.containing(header.page_address, segment.timeline, segment.size)
        return f"the page header is that of segment {found.name} (LSN {Lsn(header.page_address)}), not {segment.name}"
    if header.timeline not in timelines:
        ordered = sorted(timelines)
        expected = " or ".join(map(str, ordered)) if len(ordered) <= 3 else f"at most {ordered[-1]}"
        return f"the page header names timeline {header.timeline}, expected {expected}"
    return None
