"""WAL names, LSNs, timelines and ranges, checked against what PostgreSQL itself prints."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lifeboat.core.wal import (
    Lsn,
    SegmentRange,
    TimelineHistory,
    WalFileKind,
    WalSegment,
    contiguous_ranges,
    first_missing,
    missing_between,
    parse_backup_label,
    parse_wal_file_name,
    segments_needed,
    timeline_for_segment,
)

MIB = 1024 * 1024


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0/0", 0),
        ("0/16B3748", 0x16B3748),
        ("16/B374D848", (0x16 << 32) | 0xB374D848),
        ("FFFFFFFF/FFFFFFFF", (1 << 64) - 1),
        ("a/1", (0xA << 32) | 1),
    ],
)
def test_lsn_parses_and_prints_like_postgresql(text: str, value: int) -> None:
    lsn = Lsn.parse(text)
    assert lsn == value
    assert str(lsn) == text.upper()


@pytest.mark.parametrize("text", ["", "0", "0/", "/1", "1/2/3", "G/0", "123456789/0", "0x1/0"])
def test_lsn_rejects_malformed_text(text: str) -> None:
    with pytest.raises(ValueError):
        Lsn.parse(text)


@given(st.integers(min_value=0, max_value=(1 << 64) - 1))
def test_lsn_text_round_trips(value: int) -> None:
    assert Lsn.parse(str(Lsn(value))) == value


# (LSN, timeline, segment size) -> the name pg_walfile_name() prints
SEGMENT_NAMES = [
    ("0/16B3748", 1, 16 * MIB, "000000010000000000000001"),
    ("0/FFFFFFF", 1, 16 * MIB, "00000001000000000000000F"),
    ("0/10000000", 1, 16 * MIB, "000000010000000000000010"),
    ("1/0", 1, 16 * MIB, "000000010000000100000000"),
    ("1/FF000000", 3, 16 * MIB, "0000000300000001000000FF"),
    ("16/B374D848", 2, 16 * MIB, "0000000200000016000000B3"),
    ("0/40000000", 1, 64 * MIB, "000000010000000000000010"),
    ("5/C0000000", 1, 1024 * MIB, "000000010000000500000003"),
    ("0/300000", 0xA, 1 * MIB, "0000000A0000000000000003"),
]


@pytest.mark.parametrize(("lsn", "timeline", "size", "name"), SEGMENT_NAMES)
def test_segment_names_match_pg_walfile_name(lsn: str, timeline: int, size: int, name: str) -> None:
    segment = WalSegment.containing(Lsn.parse(lsn), timeline, size)
    assert segment.name == name
    assert WalSegment.parse(name, size) == segment
    assert segment.start_lsn <= Lsn.parse(lsn) < segment.end_lsn


def test_next_segment_crosses_the_log_boundary() -> None:
    last = WalSegment.parse("0000000100000000000000FF")
    assert last.next().name == "000000010000000100000000"


@pytest.mark.parametrize("name", ["00000001000000000000001", "0000000100000000000000GG", "000000010000000000000100"])
def test_segment_parse_rejects_impossible_names(name: str) -> None:
    with pytest.raises(ValueError):
        WalSegment.parse(name)


@pytest.mark.parametrize(
    ("name", "kind", "timeline"),
    [
        ("000000010000000000000002", WalFileKind.SEGMENT, 1),
        ("00000002.history", WalFileKind.HISTORY, 2),
        ("000000010000000000000002.00000028.backup", WalFileKind.BACKUP, 1),
        ("000000030000000000000009.partial", WalFileKind.PARTIAL, 3),
    ],
)
def test_archived_file_names_are_classified(name: str, kind: WalFileKind, timeline: int) -> None:
    parsed = parse_wal_file_name(name)
    assert (parsed.kind, parsed.timeline) == (kind, timeline)


@pytest.mark.parametrize(
    "name", ["RECOVERYXLOG", "00000000.history", "000000000000000000000001", "x00000001.history", "../etc/passwd"]
)
def test_other_names_are_not_wal_files(name: str) -> None:
    with pytest.raises(ValueError):
        parse_wal_file_name(name)


HISTORY_3 = """1\t0/3000198\tno recovery target specified

2\t0/50000A0\tbefore 2026-05-01 12:00:00+00
"""


def test_history_file_gives_the_path_of_a_timeline() -> None:
    history = TimelineHistory.parse(3, HISTORY_3)
    path = history.path()
    assert [(p.timeline, str(p.begin), None if p.end is None else str(p.end)) for p in path] == [
        (1, "0/0", "0/3000198"),
        (2, "0/3000198", "0/50000A0"),
        (3, "0/50000A0", None),
    ]
    assert history.timeline_at(Lsn.parse("0/2000000")) == 1
    assert history.timeline_at(Lsn.parse("0/4000000")) == 2
    assert history.timeline_at(Lsn.parse("0/9000000")) == 3
    assert history.contains(1, Lsn.parse("0/3000197"))
    assert not history.contains(1, Lsn.parse("0/3000198"))  # the switch point is the child's (tliOfPointInHistory)
    assert history.contains(2, Lsn.parse("0/3000198"))
    assert history.contains(3, Lsn.parse("7/0"))


@pytest.mark.parametrize("text", ["2\t0/1\n1\t0/2\n", "1\tzz\n", "3\t0/1\n", "1\n"])
def test_malformed_history_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        TimelineHistory.parse(3, text)


def test_recovery_reads_the_switch_segment_from_the_new_timeline() -> None:
    path = TimelineHistory.parse(2, "1\t0/50000A0\treason\n").path()
    assert timeline_for_segment(path, 4) == 1
    assert timeline_for_segment(path, 5) == 2  # the segment holding the switchpoint
    needed = segments_needed(path, Lsn.parse("0/3000028"), Lsn.parse("0/6000010"))
    assert [s.name for s in needed] == [
        "000000010000000000000003",
        "000000010000000000000004",
        "000000020000000000000005",
        "000000020000000000000006",
    ]


def test_ranges_and_gaps_per_timeline() -> None:
    names = ["000000010000000000000001", "000000010000000000000002", "000000010000000000000004"]
    names += ["000000020000000000000004", "000000020000000000000005"]
    ranges = contiguous_ranges(WalSegment.parse(n) for n in names)
    assert ranges == [SegmentRange(1, 1, 2), SegmentRange(1, 4, 4), SegmentRange(2, 4, 5)]
    assert [s.name for s in missing_between(ranges)] == ["000000010000000000000003"]
    needed = segments_needed(TimelineHistory.root().path(), 0x1000000, 0x4FFFFFF)
    assert first_missing(needed, set(names)) == WalSegment(1, 3)


LABEL = """START WAL LOCATION: 0/5000028 (file 000000010000000000000005)
CHECKPOINT LOCATION: 0/5000060
BACKUP METHOD: streamed
BACKUP FROM: primary
START TIME: 2026-11-22 01:00:46 UTC
LABEL: lifeboat 2026-11-22T01:00:46Z
START TIMELINE: 1
"""


def test_backup_label_is_parsed() -> None:
    label = parse_backup_label(LABEL)
    assert str(label.start_lsn) == "0/5000028"
    assert label.start_wal == "000000010000000000000005"
    assert str(label.checkpoint_lsn) == "0/5000060"
    assert label.start_timeline == 1
    assert label.label == "lifeboat 2026-11-22T01:00:46Z"
    assert label.stop_lsn is None
    stopped = parse_backup_label(LABEL + "STOP WAL LOCATION: 0/5000100 (file 000000010000000000000005)\n")
    assert str(stopped.stop_lsn) == "0/5000100"


def test_backup_label_without_start_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_backup_label("LABEL: x\n")


@pytest.mark.parametrize(
    "rel",
    [
        "PG_VERSION", "base", "base/5/16384", "base/5/16384.1", "base/5/pg_internal.init", "base/pgsql_tmp",
        "base/pgsql_tmp/pgsql_tmp123.0", "pg_wal", "pg_wal/000000010000000000000001", "pg_wal/archive_status",
        "pg_replslot", "pg_replslot/slot/state", "postmaster.pid", "postmaster.opts", "backup_label",
        "tablespace_map", "recovery.signal", "lifeboat_spool", "lifeboat_spool/x/out/a.ok", "global/pg_control",
        "global/pg_internal.init", "pg_stat_tmp/global.stat", "pg_subtrans/0000", "log/postgresql.log",
        "pg_tblspc/16400", "sub/postmaster.pid",
    ],
)  # fmt: skip
def test_the_fast_base_backup_filter_agrees_with_the_patterns(rel: str) -> None:
    from lifeboat.core.patterns import PathFilter
    from lifeboat.sources.postgres.layout import backup_filter, exclude_patterns

    data_dir = "/var/lib/postgresql/15/main"
    path = tuple(f"{data_dir}/{rel}".strip("/").split("/"))
    slow = PathFilter.build((), exclude_patterns(data_dir))
    fast = backup_filter(data_dir)
    assert (fast.excluded(path), fast.selects(path), fast.descend(path)) == (
        slow.excluded(path),
        slow.selects(path),
        slow.descend(path),
    )
