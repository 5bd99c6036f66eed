"""Timelines as PostgreSQL reads and follows them, checked against an executable model.

``PgModel`` below transcribes PostgreSQL's C code (timeline.c: readTimeLineHistory,
tliOfPointInHistory, writeTimeLineHistory; xlogrecovery.c: XLogFileReadAnyTLI) with its
"invalid pointer = 0" conventions. Histories are generated the way PostgreSQL writes them:
each new timeline is created by a recovery that follows some timeline P and stops anywhere
on P's history — also before P began, which makes the switch points go backwards.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lifeboat.core.basebackup import RestoreTarget
from lifeboat.core.timelines import ArchivedTimeline, live_timeline, not_followed
from lifeboat.core.wal import (
    Lsn,
    TimelineHistory,
    WalSegment,
    segment_recovery_reads,
    segments_needed,
    timeline_for_segment,
)
from lifeboat.errors import WalMissing, cli_flag, spell_options
from tests.postgres.test_pg_logic import MONDAY, TUESDAY

SEG = 16 * 1024 * 1024


# --- the model: PostgreSQL's code, transcribed -----------------------------------------------------


class PgFatal(Exception):
    """ereport(FATAL) while reading a history file."""


@dataclass(frozen=True)
class Entry:
    """TimeLineHistoryEntry; 0 is InvalidXLogRecPtr."""

    tli: int
    begin: int
    end: int


def pg_read_history(target: int, text: str | None) -> list[Entry]:
    """readTimeLineHistory: the entries, newest first (text None: no history file)."""
    if target == 1 or text is None:
        return [Entry(target, 0, 0)]
    result: list[Entry] = []
    lasttli = 0
    prevend = 0
    for fline in text.splitlines():
        ptr = fline.lstrip()
        if not ptr or ptr.startswith("#"):
            continue
        match = re.match(r"\s*(\d+)(?:\s*([0-9A-Fa-f]+)/([0-9A-Fa-f]+))?", fline)
        if not match:
            raise PgFatal("Expected a numeric timeline ID.")
        if match.group(2) is None:
            raise PgFatal("Expected a write-ahead log switchpoint location.")
        tli = int(match.group(1))
        if result and tli <= lasttli:
            raise PgFatal("Timeline IDs must be in increasing sequence.")
        lasttli = tli
        end = (int(match.group(2), 16) << 32) | int(match.group(3), 16)
        result.insert(0, Entry(tli, prevend, end))
        prevend = end
    if result and target <= lasttli:
        raise PgFatal("Timeline IDs must be less than child timeline's ID.")
    result.insert(0, Entry(target, prevend, 0))
    return result


def pg_tli_of_point(ptr: int, history: list[Entry]) -> int:
    """tliOfPointInHistory."""
    for tle in history:
        if (tle.begin == 0 or tle.begin <= ptr) and (tle.end == 0 or ptr < tle.end):
            return tle.tli
    raise AssertionError("timeline history was not contiguous")


def pg_read_any_tli(segno: int, tles: list[Entry], cur_file_tli: int, present: set[tuple[int, int]]) -> int | None:
    """XLogFileReadAnyTLI over an archive holding ``present`` (tli, segno) files: the tli read."""
    for hent in tles:
        if hent.tli < cur_file_tli:
            break
        if hent.begin != 0 and segno < hent.begin // SEG:
            continue
        if (hent.tli, segno) in present:
            return hent.tli
    return None


def pg_write_history(parent_text: str | None, parent_tli: int, switchpoint: int, reason: str) -> str:
    """writeTimeLineHistory: the parent's file verbatim, then one line (after a newline if copied)."""
    prefix = "" if parent_text is None else parent_text + "\n"
    return f"{prefix}{parent_tli}\t{switchpoint >> 32:X}/{switchpoint & 0xFFFFFFFF:X}\t{reason}\n"


# --- generating timelines as PostgreSQL creates them ------------------------------------------------


@dataclass
class Genealogy:
    """Timeline 1 and the ones later recoveries created: parent, switch point, how far each wrote."""

    parent: dict[int, int] = field(default_factory=dict)
    switchpoint: dict[int, int] = field(default_factory=dict)
    wrote_until: dict[int, int] = field(default_factory=dict)
    text: dict[int, str] = field(default_factory=dict)

    def owner(self, timeline: int, lsn: int) -> int:
        """Whose WAL ``timeline``'s history holds at ``lsn``: its own from its switch point on,
        before that its parent's history (the definition, independent of PostgreSQL's code)."""
        while timeline in self.parent and lsn < self.switchpoint[timeline]:
            timeline = self.parent[timeline]
        return timeline

    def segment_owner(self, timeline: int, number: int) -> int:
        """Whose file holds segment ``number`` on ``timeline``'s history: a timeline's first segment
        (the one with its switch point) is its own copy, earlier ones come from the parent's history."""
        while timeline in self.parent and number < self.switchpoint[timeline] // SEG:
            timeline = self.parent[timeline]
        return timeline


@st.composite
def genealogies(draw: st.DrawFn) -> Genealogy:
    g = Genealogy()
    g.wrote_until[1] = draw(st.integers(1, 12 * SEG))
    for child in range(2, draw(st.integers(2, 9)) + 1):
        parent = draw(st.integers(1, child - 1))
        # a recovery following ``parent`` stops anywhere it can reach on parent's history
        point = draw(st.integers(1, g.wrote_until[parent]))
        g.parent[child], g.switchpoint[child] = parent, point
        g.wrote_until[child] = point + draw(st.integers(0, 4 * SEG))
        reason = draw(st.sampled_from(["no recovery target specified", "before 2026-05-01 12:00:00+00", ""]))
        g.text[child] = pg_write_history(g.text.get(parent), parent, point, reason)
    return g


lsns = st.integers(0, 16 * SEG)


@given(genealogies(), st.lists(lsns, min_size=1, max_size=20))
def test_every_history_postgresql_writes_parses_and_owns_each_lsn_as_postgresql_does(
    g: Genealogy, points: list[int]
) -> None:
    for timeline, text in g.text.items():
        history = TimelineHistory.parse(timeline, text)  # never "malformed"
        assert (history.parent, history.switchpoint) == (g.parent[timeline], g.switchpoint[timeline])
        pg = pg_read_history(timeline, text)
        for lsn in points:
            expected = pg_tli_of_point(lsn, pg)
            assert history.timeline_at(lsn) == expected == g.owner(timeline, lsn)
            for candidate in {e.tli for e in pg}:
                span = history.span(candidate)
                inside = span is not None and span[0] <= lsn and (span[1] is None or lsn < span[1])
                assert inside == (expected == candidate) == history.contains(candidate, lsn)
        assert history.branch_timeline() == g.owner(g.parent[timeline], g.switchpoint[timeline] - 1)


@given(genealogies(), st.integers(0, 16))
def test_recovery_reads_each_segment_from_the_timeline_postgresql_picks(g: Genealogy, number: int) -> None:
    everything = {(t, n) for t in range(1, len(g.wrote_until) + 1) for n in range(0, 17)}
    for timeline in range(1, len(g.wrote_until) + 1):
        history = TimelineHistory.parse(timeline, g.text[timeline]) if timeline > 1 else TimelineHistory.root()
        expected = pg_read_any_tli(number, pg_read_history(timeline, g.text.get(timeline)), 0, everything)
        assert timeline_for_segment(history.path(), number, SEG) == expected == g.segment_owner(timeline, number)


@given(genealogies(), st.data())
def test_with_files_missing_recovery_falls_back_exactly_as_postgresql_does(g: Genealogy, data: st.DataObject) -> None:
    timeline = data.draw(st.integers(1, len(g.wrote_until)))
    history = TimelineHistory.parse(timeline, g.text[timeline]) if timeline > 1 else TimelineHistory.root()
    tles = pg_read_history(timeline, g.text.get(timeline))
    present = data.draw(st.sets(st.tuples(st.integers(1, len(g.wrote_until)), st.integers(0, 16)), max_size=40))
    names = {WalSegment(t, n, SEG).name for t, n in present}
    number = data.draw(st.integers(0, 16))
    previous = data.draw(st.integers(0, len(g.wrote_until)))
    found = segment_recovery_reads(history.path(), number, names, previous=previous, size=SEG)
    assert (found.timeline if found else None) == pg_read_any_tli(number, tles, previous, present)


@given(genealogies(), st.integers(0, 16 * SEG), st.integers(0, 8 * SEG))
def test_segments_needed_are_the_files_a_replay_opens_one_after_the_other(
    g: Genealogy, start: int, length: int
) -> None:
    everything = {(t, n) for t in range(1, len(g.wrote_until) + 1) for n in range(0, 30)}
    for timeline in range(1, len(g.wrote_until) + 1):
        history = TimelineHistory.parse(timeline, g.text[timeline]) if timeline > 1 else TimelineHistory.root()
        tles = pg_read_history(timeline, g.text.get(timeline))
        opened: list[tuple[int, int]] = []
        current = 0
        for number in range(start // SEG, (start + length) // SEG + 1):
            tli = pg_read_any_tli(number, tles, current, everything)
            assert tli is not None
            opened.append((tli, number))
            current = tli
        needed = segments_needed(history.path(), start, start + length, SEG)
        assert [(s.timeline, s.number) for s in needed] == opened


# --- parsing: what PostgreSQL accepts and refuses -----------------------------------------------------


REPRODUCED_3 = "1\t0/5000000\tno recovery target specified\n\n2\t0/3000000\tbefore 2026-05-01 12:00:00+00\n"


@pytest.mark.parametrize(
    ("timeline", "text", "parent", "switchpoint"),
    [
        (3, REPRODUCED_3, 2, "0/3000000"),  # switch points out of order: PostgreSQL wrote it
        (2, "1\t0/50000A0\treason", 1, "0/50000A0"),  # no final newline
        (4, "# comment\n\n  1\t0/3000000\n2 0/2000000 spaces\n\t\n3\t0/1000000\n", 3, "0/1000000"),
        (5, "1\t0/3000000\n4\t0/3000000\n", 4, "0/3000000"),  # equal switch points, skipped ids
        (2, "1\t1/0 tail\n", 1, "1/0"),
        (7, "", None, None),
    ],
)
def test_histories_postgresql_accepts_are_read(
    timeline: int, text: str, parent: int | None, switchpoint: str | None
) -> None:
    history = TimelineHistory.parse(timeline, text)
    pg_read_history(timeline, text)  # the model agrees they are valid
    assert history.parent == parent
    assert (str(history.switchpoint) if history.switchpoint else None) == switchpoint


@pytest.mark.parametrize(
    "text",
    [
        "2\t0/1\n1\t0/2\n",  # timeline ids going down
        "1\t0/1\n1\t0/2\n",  # repeated
        "1\tzz\n",
        "x\t0/1\n",
        "3\t0/1\n",  # not older than the timeline itself
        "1\n",  # no switch point
        "1\t0/0\n",  # PostgreSQL never writes a switch at 0/0
    ],
)
def test_histories_postgresql_refuses_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        TimelineHistory.parse(3, text)


def test_a_history_with_an_earlier_switch_point_owns_lsns_newest_entry_first() -> None:
    history = TimelineHistory.parse(3, REPRODUCED_3)
    assert [(p.timeline, str(p.begin), str(p.end) if p.end else None) for p in history.path()] == [
        (1, "0/0", "0/5000000"),
        (2, "0/5000000", "0/3000000"),  # inverted: timeline 2 owns nothing here
        (3, "0/3000000", None),
    ]
    assert history.timeline_at(Lsn.parse("0/2FFFFFF")) == 1
    assert history.timeline_at(Lsn.parse("0/4000000")) == 3  # not 1: the entry for 1 ends at 0/5000000
    assert history.timeline_at(Lsn.parse("0/6000000")) == 3
    assert history.span(1) == (Lsn(0), Lsn.parse("0/3000000"))
    assert history.span(2) is None
    assert history.branch_timeline() == 1
    assert [s.name for s in segments_needed(history.path(), Lsn.parse("0/2000000"), Lsn.parse("0/5000000"))] == [
        "000000010000000000000002",
        "000000030000000000000003",
        "000000030000000000000004",
        "000000030000000000000005",
    ]


# --- the WAL check refuses what PostgreSQL would silently replace --------------------------------------


def _names(*numbers: int, timeline: int = 1) -> set[str]:
    return {WalSegment(timeline, n).name for n in numbers}


def test_a_timeline_whose_first_segment_is_not_archived_is_refused_not_replaced_by_its_parent() -> None:
    from lifeboat.operations.pitr import check_wal

    branch = TimelineHistory.parse(2, "1\t0/5000100\tbefore the accident\n")
    archived = _names(2, 3, 4, 5, 6, 7)  # timeline 1 went on; the branch archived only its history
    with pytest.raises(WalMissing, match="000000020000000000000005 is not in the archive but 000000010000000000000005"):
        check_wal(MONDAY, branch, RestoreTarget(), archived)
    with pytest.raises(WalMissing) as refused:
        check_wal(MONDAY, branch, RestoreTarget(time=MONDAY.stop_time), archived)
    assert "restore timeline 1 (--timeline 1)" in refused.value.spelled(cli_flag)[1]
    # once the branch's own segment is there, recovery follows it and stops where it ends
    assert check_wal(MONDAY, branch, RestoreTarget(), archived | _names(5, timeline=2))[0] == (
        "000000020000000000000005"
    )
    # timeline 1 itself, read to its end, never falls back
    assert check_wal(MONDAY, TimelineHistory.root(), RestoreTarget(), archived)[0] == "000000010000000000000007"


def test_the_wal_check_follows_a_history_with_an_earlier_switch_point() -> None:
    from lifeboat.operations.pitr import check_wal

    history = TimelineHistory.parse(3, REPRODUCED_3)
    archived = _names(2, 3, 4, 5, 6, 7) | _names(5, 6, timeline=2) | _names(3, 4, timeline=3)
    # timeline 1's and 2's later WAL is not on this history: recovery ends with timeline 3's segment 4
    assert check_wal(MONDAY, history, RestoreTarget(), archived)[0] == "000000030000000000000004"
    with pytest.raises(WalMissing, match="000000030000000000000003"):
        check_wal(MONDAY, history, RestoreTarget(), archived - _names(3, timeline=3))
    assert check_wal(TUESDAY, TimelineHistory.parse(2, "1\t0/8000000\n"), RestoreTarget(), _names(6, 7))[1] == []


# --- which timeline a restore follows ----------------------------------------------------------------


def timeline(number: int, text: str = "", *, born: float | None = None, **arrivals: float) -> ArchivedTimeline:
    history = TimelineHistory.parse(number, text) if text else TimelineHistory.root(number)
    return ArchivedTimeline(number, history, bool(text), born, {int(k.lstrip("s"), 16): v for k, v in arrivals.items()})


PRODUCTION = timeline(1, s2=100, s3=110, s4=120, s5=130, s6=140)


@pytest.mark.parametrize(
    ("timelines", "live", "others"),
    [
        # production keeps archiving; an old test copy archived timeline 2 before that
        ({1: PRODUCTION, 2: timeline(2, "1\t0/3000100\n", born=112, s3=113)}, 1, [(2, True, False)]),
        # the test copy archived last: it is followed, and production's later WAL is named
        ({1: PRODUCTION, 2: timeline(2, "1\t0/3000100\n", born=112, s3=113, s4=150)}, 2, [(1, False, True)]),
        # a disaster restore to an earlier point: the old timeline's later WAL came before it was born
        ({1: PRODUCTION, 2: timeline(2, "1\t0/3000100\n", born=141, s3=142)}, 2, []),
        # a promoted server that has archived only its history file is named, not followed
        ({1: PRODUCTION, 2: timeline(2, "1\t0/6000100\n", born=150)}, 1, [(2, True, False)]),
        # equal arrival: the higher number
        ({1: PRODUCTION, 2: timeline(2, "1\t0/6000100\n", born=139, s6=140)}, 2, []),
    ],
)
def test_the_live_timeline_is_the_one_whose_wal_arrived_last(
    timelines: dict[int, ArchivedTimeline], live: int, others: list[tuple[int, bool, bool]]
) -> None:
    chosen = live_timeline(timelines, timelines)
    assert chosen == live
    named = not_followed(timelines, timelines[live])
    assert [(o.timeline, o.newer_numbered, o.wal_after_branch) for o in named] == others


def test_no_timeline_is_live_without_wal() -> None:
    assert live_timeline({1: timeline(1), 2: timeline(2, "1\t0/3000000\n", born=5)}, [1, 2]) is None
    assert live_timeline({1: PRODUCTION}, []) is None


def test_plan_names_the_timelines_it_does_not_follow_and_writes_a_number() -> None:
    from lifeboat.operations.pitr import plan_timeline, recovery_timeline_setting, timeline_warnings

    timelines = {1: PRODUCTION, 2: timeline(2, "1\t0/3000100\n", born=112, s3=113)}
    plan = plan_timeline("latest", [MONDAY, TUESDAY], timelines, None)
    assert (plan.history.timeline, plan.rule) == (1, "live")
    assert recovery_timeline_setting(plan.history, timelines) == "1"
    (warning,) = timeline_warnings(plan)
    assert warning.startswith("timeline 2 (from timeline 1 at 0/3000100) is newer-numbered than timeline 1")
    assert spell_options(warning, cli_flag).endswith("to restore it give --timeline 2")
    explicit = plan_timeline("2", [MONDAY], timelines, None)
    assert (explicit.history.timeline, explicit.others) == (2, ())
    with pytest.raises(WalMissing, match="timeline 3 has no history file"):
        plan_timeline("3", [MONDAY], timelines, None)


def test_an_unreadable_history_file_is_skipped_for_latest_and_refused_when_asked_for() -> None:
    from lifeboat.errors import IntegrityError
    from lifeboat.operations.pitr import plan_timeline, timeline_warnings

    problems = {3: "archived 00000003.history is malformed: history of timeline 3, line 1: timeline ids must increase"}
    plan = plan_timeline("latest", [MONDAY], {1: PRODUCTION}, None, problems=problems)
    assert plan.history.timeline == 1
    assert timeline_warnings(plan) == [f"{problems[3]}; that timeline was not considered"]
    with pytest.raises(IntegrityError, match=r"00000003\.history is malformed"):
        plan_timeline("3", [MONDAY], {1: PRODUCTION}, None, problems=problems)


@pytest.mark.parametrize(
    ("text", "on"),
    [
        ("1\t0/2000100\tafter an immediate recovery\n", True),  # branched exactly at the backup's end
        ("1\t0/20000FF\n", False),  # before its end: the backup cannot become consistent there
        ("1\t0/2000028\n", False),
        ("1\t0/5000000\n\n2\t0/2000100\n", True),  # an earlier switch point, still after the backup
        ("1\t0/5000000\n\n2\t0/2000050\n", False),
    ],
)
def test_a_backup_is_on_a_history_that_holds_its_timeline_from_start_to_consistency(text: str, on: bool) -> None:
    from lifeboat.core.basebackup import on_history

    timeline = int(text.strip().splitlines()[-1].split()[0]) + 1
    assert on_history(MONDAY, TimelineHistory.parse(timeline, text)) is on  # MONDAY: 0/2000028 .. 0/2000100
