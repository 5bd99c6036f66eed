"""The long page header of WAL segments: parsed from real segments' first bytes, and judged
against the archived name (core/walpage.py)."""

from __future__ import annotations

import pytest

from lifeboat.core.wal import TimelineHistory, WalSegment
from lifeboat.core.walpage import (
    LONG_HEADER_BYTES,
    first_page_timelines,
    known_magic,
    parse_long_header,
    segment_problem,
)

# The first 40 bytes of real segments, written by PostgreSQL 15.
# pg_wal/000000010000000000000002 of system 7713753370158354007:
REAL_1_2 = bytes.fromhex("10d10600010000000000000200000000000000000000000057ce4229d2c10c6b0000000100200000")
# pg_wal/000000010000000000000003 of the same cluster: a recycled file still holding segment 1.
RECYCLED_1_3 = bytes.fromhex("10d10200010000000000000100000000000000000000000057ce4229d2c10c6b0000000100200000")
SYSTEM = "7713753370158354007"
# The archived 000000020000000000000003 of system 7713750541675174599: timeline 2 began in it
# (at 0/3002138), so its first page was written, and is marked, by timeline 1.
REAL_2_3 = bytes.fromhex("10d106000100000000000003000000000000000000000000c79a869a3fbf0c6b0000000100200000")
SYSTEM_2 = "7713750541675174599"
HISTORY_2 = TimelineHistory.parse(2, "1\t0/3002138\tbefore 2026-11-30 00:11:46.687949+00\n\n")
MIB16 = 16 * 1024 * 1024


def judge(
    head: bytes, name: str, system_id: str = SYSTEM, history: TimelineHistory | None = None, length: int = MIB16
) -> str | None:
    segment = WalSegment.parse(name)
    return segment_problem(
        parse_long_header(head),
        segment,
        system_id=system_id,
        length=length,
        timelines=first_page_timelines(segment, history),
    )


def test_a_real_segment_header_parses_to_its_fields() -> None:
    header = parse_long_header(REAL_1_2)
    assert (header.magic, header.version, header.info, header.timeline) == (0xD110, "15", 0x0006, 1)
    assert header.page_address == 2 * MIB16
    assert (header.system_id, header.segment_size, header.block_size) == (SYSTEM, MIB16, 8192)
    assert LONG_HEADER_BYTES == 40


def test_a_real_segment_is_what_its_name_says() -> None:
    assert judge(REAL_1_2, "000000010000000000000002") is None


def test_a_segment_filed_under_another_name_is_refused() -> None:
    assert "segment 000000010000000000000002" in (judge(REAL_1_2, "000000010000000000000005") or "")
    assert judge(RECYCLED_1_3, "000000010000000000000003") == (
        "the page header is that of segment 000000010000000000000001 (LSN 0/1000000), not 000000010000000000000003"
    )


def test_a_segment_of_another_system_is_refused() -> None:
    assert judge(REAL_1_2, "000000010000000000000002", system_id="42") == (
        f"the segment belongs to database system {SYSTEM}, not 42"
    )


def test_the_first_segment_of_a_timeline_carries_its_parent_timeline() -> None:
    name = "000000020000000000000003"
    assert judge(REAL_2_3, name, SYSTEM_2, HISTORY_2) is None
    assert first_page_timelines(WalSegment.parse(name), HISTORY_2) == {1, 2}
    # Any later segment of timeline 2 must carry timeline 2 itself.
    later = REAL_2_3[:8] + (4 * MIB16).to_bytes(8, "little") + REAL_2_3[16:]
    assert judge(later, "000000020000000000000004", SYSTEM_2, HISTORY_2) == (
        "the page header names timeline 1, expected 2"
    )
    # A timeline that began exactly at a segment boundary wrote that segment's first page itself.
    at_boundary = TimelineHistory.parse(2, "1\t0/3000000\tno recovery target specified\n")
    assert judge(REAL_2_3, name, SYSTEM_2, at_boundary) == "the page header names timeline 1, expected 2"
    # Without the history (reported on its own), any earlier timeline is accepted.
    assert judge(REAL_2_3, name, SYSTEM_2, None) is None


def test_the_size_must_match_the_header() -> None:
    half = judge(REAL_1_2, "000000010000000000000002", length=MIB16 // 2)
    assert half == "8388608 bytes, the page header says 16777216"
    small = WalSegment.parse("000000010000000000000002", MIB16 // 2)
    problem = segment_problem(
        parse_long_header(REAL_1_2), small, system_id=SYSTEM, length=MIB16, timelines=frozenset({1})
    )
    assert problem == "the page header says 16777216-byte segments, the archive 8388608"


@pytest.mark.parametrize(
    ("offset", "value", "expected"),
    [
        (0, b"\x34\x12", "page magic 0x1234 is not PostgreSQL's"),
        (2, b"\x16\x00", "invalid page info bits 0x0016"),
        (32, (3 * 1024 * 1024).to_bytes(4, "little"), "invalid segment size 3145728 in the page header"),
        (36, (3000).to_bytes(4, "little"), "invalid WAL block size 3000"),
    ],
)
def test_a_mangled_header_is_named(offset: int, value: bytes, expected: str) -> None:
    mangled = REAL_1_2[:offset] + value + REAL_1_2[offset + len(value) :]
    assert judge(mangled, "000000010000000000000002") == expected


def test_bytes_that_are_not_a_segment_do_not_parse() -> None:
    with pytest.raises(ValueError, match="too few"):
        parse_long_header(REAL_1_2[:39])
    with pytest.raises(ValueError, match="no long header"):
        parse_long_header(REAL_1_2[:2] + b"\x00\x00" + REAL_1_2[4:])
    with pytest.raises(ValueError, match="no long header"):
        parse_long_header(b"1\t0/3002138\tbefore 2026-11-30 00:11:46+00\n")


def test_page_magic_of_every_release_and_of_newer_ones_is_known() -> None:
    assert all(known_magic(m) for m in (0xD093, 0xD097, 0xD098, 0xD101, 0xD106, 0xD10D, 0xD110, 0xD113, 0xD116))
    assert known_magic(0xD118) and known_magic(0xD121)  # 18, and a later release
    assert not known_magic(0xD0FF) and not known_magic(0xD111) and not known_magic(0x0000)
