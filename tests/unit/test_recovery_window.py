"""The recovery window in retention (pure logic): the base backups it keeps and why, and the
WAL horizon that follows — table-driven, and across a month of simulated daily backups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lifeboat.core.basebackup import BaseBackup, RestoreTarget, choose_base_backup
from lifeboat.core.retention import Decision, RetentionPolicy, apply_policy, describe_span
from lifeboat.core.snapshot import Snapshot
from lifeboat.core.wal import DEFAULT_SEGMENT_SIZE, Lsn, TimelineHistory, WalSegment, segments_needed
from lifeboat.core.wal_expiry import plan_wal_expiry

SEG = DEFAULT_SEGMENT_SIZE
T0 = datetime(2026, 10, 1, tzinfo=UTC)
SYSTEM = "7300000000000000001"
# WAL grows by one segment every 3 hours in this simulated cluster.
SEGMENT_SECONDS = 3 * 3600


def lsn_at(when: datetime) -> Lsn:
    """The WAL position the simulated cluster had reached at ``when``."""
    return Lsn(int((when - T0).total_seconds() * SEG / SEGMENT_SECONDS) + 40)


def base_backup(
    taken: datetime,
    *,
    source: str = "db",
    system: str = SYSTEM,
    timeline: int = 1,
    lasting: timedelta = timedelta(minutes=20),
) -> Snapshot:
    stop = taken + lasting
    backup = BaseBackup(
        method="local",
        system_id=system,
        version="15.8",
        version_num=150008,
        timeline=timeline,
        start_lsn=lsn_at(taken),
        stop_lsn=lsn_at(stop),
        start_time=taken,
        stop_time=stop,
        label=f"lifeboat {taken.isoformat()}",
        data_directory="/srv/pg",
    )
    return Snapshot(
        time=taken,
        source=source,
        kind="postgres",
        tree=b"t" * 32,
        hostname="h1",
        extra={"postgres": backup.to_json()},
        id=f"{system[-2:]}{taken:%m%d%H%M%S}".ljust(16, "0"),
    )


def decisions(snapshots: list[Snapshot], policy: RetentionPolicy, now: datetime) -> list[Decision]:
    return [d for group in apply_policy(snapshots, policy, now).values() for d in group]


def kept_backups(snapshots: list[Snapshot], policy: RetentionPolicy, now: datetime) -> list[Snapshot]:
    return [d.snapshot for d in decisions(snapshots, policy, now) if d.keep]


def restorable(backups: list[BaseBackup], archived: set[str], when: datetime) -> bool:
    """Whether recovery to ``when`` finds a base backup and every segment from its start on."""
    history = TimelineHistory.root()
    chosen = choose_base_backup(backups, RestoreTarget(time=when), history)
    if chosen is None:
        return False
    needed = segments_needed(history.path(), chosen.start_lsn, max(lsn_at(when), chosen.stop_lsn - 1), SEG)
    return all(segment.name in archived for segment in needed)


# --- the hole: keep_within on PostgreSQL implies a recovery window ---------------------------------


def test_keep_within_keeps_the_base_backup_that_reaches_the_start_of_the_window() -> None:
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    # Base backups taken 10, 4 and 1 minutes ago, each consistent 20 seconds later.
    snaps = [base_backup(now - timedelta(minutes=m), lasting=timedelta(seconds=20)) for m in (10, 4, 1)]
    result = {d.snapshot.time: d for d in decisions(snaps, RetentionPolicy(keep_within=timedelta(minutes=5)), now)}
    oldest = result[now - timedelta(minutes=10)]
    assert oldest.keep, "the only base backup that can reach three minutes ago was removed"
    assert oldest.reasons == [
        "needed by the recovery window (5min): the newest base backup consistent by its start 2026-11-30T11:55:00+00:00"
    ]
    assert result[now - timedelta(minutes=4)].reasons == ["within 5min"]
    backups = [BaseBackup.of(s) for s in snaps if result[s.time].keep]
    three_ago = now - timedelta(minutes=3)
    assert choose_base_backup(backups, RestoreTarget(time=three_ago), TimelineHistory.root()) is not None


def test_keep_within_alone_does_not_reach_back_for_other_kinds() -> None:
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    files = [
        Snapshot(time=now - timedelta(minutes=m), source="web", kind="files", tree=b"t" * 32, id=f"f{m}")
        for m in (10, 4)
    ]
    assert [s.id for s in kept_backups(files, RetentionPolicy(keep_within=timedelta(minutes=5)), now)] == ["f4"]
    # An explicit recovery window keeps the state at its start for them too.
    window = RetentionPolicy(recovery_window=timedelta(minutes=5))
    by_id = {d.snapshot.id: d for d in decisions(files, window, now)}
    assert by_id["f10"].reasons == ["the state at the start of the recovery window (5min)"]
    assert by_id["f4"].reasons == ["inside the recovery window (5min)"]


@pytest.mark.parametrize(
    ("policy", "ages_in_days", "expected_kept"),
    [
        # A recovery window of 3 days over daily backups: the three inside and the one before.
        (RetentionPolicy(recovery_window=timedelta(days=3)), [0, 1, 2, 3, 4, 5], [0, 1, 2, 3]),
        # Backups only every 5 days: the window's start is reached from 5 days back.
        (RetentionPolicy(recovery_window=timedelta(days=3)), [0, 5, 10], [0, 5]),
        # Nothing inside the window: the newest backup still covers it.
        (RetentionPolicy(recovery_window=timedelta(days=1)), [4, 9], [4]),
        # keep_within implies the window; GFS rules add to it.
        (RetentionPolicy(keep_within=timedelta(days=2), keep_weekly=3), [0, 1, 2, 3, 8, 9], [0, 1, 2, 8]),
        # The longer of keep_within and recovery_window wins.
        (RetentionPolicy(keep_within=timedelta(days=1), recovery_window=timedelta(days=4)), [0, 2, 4, 6], [0, 2, 4]),
        # Only a GFS rule: no window, nothing reaches back.
        (RetentionPolicy(keep_last=2), [0, 1, 2, 3], [0, 1]),
    ],
)
def test_which_base_backups_a_window_keeps(
    policy: RetentionPolicy, ages_in_days: list[int], expected_kept: list[int]
) -> None:
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    snaps = {age: base_backup(now - timedelta(days=age, hours=1)) for age in ages_in_days}
    kept = {s.id for s in kept_backups(list(snaps.values()), policy, now)}
    assert sorted(age for age, s in snaps.items() if s.id in kept) == expected_kept


def test_the_window_is_judged_per_database_system() -> None:
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    old_system = "7300000000000000002"
    snaps = [
        base_backup(now - timedelta(days=20), system=old_system),  # a cluster replaced long ago
        base_backup(now - timedelta(days=12), system=old_system),
        base_backup(now - timedelta(days=9)),
        base_backup(now - timedelta(days=2)),
    ]
    policy = RetentionPolicy(recovery_window=timedelta(days=7))
    kept = kept_backups(snaps, policy, now)
    # The replaced system has no backup in the window and is not the newest: nothing of it is needed.
    assert [s.time for s in kept] == [now - timedelta(days=2), now - timedelta(days=9)]


def test_the_policy_describes_the_window() -> None:
    policy = RetentionPolicy(keep_daily=7, recovery_window=timedelta(days=14))
    assert policy.describe() == "keep daily 7; recovery window 14d"
    assert RetentionPolicy(recovery_window=timedelta(hours=36)).describe() == "recovery window 1d12h"
    assert describe_span(timedelta(minutes=5)) == "5min"
    assert not RetentionPolicy(recovery_window=timedelta(days=1)).is_empty


# --- the WAL horizon -------------------------------------------------------------------------------


def test_wal_before_the_oldest_kept_backup_goes_on_every_timeline_history_files_stay() -> None:
    kept = BaseBackup.of(base_backup(T0 + timedelta(hours=30)))  # starts in segment 10
    assert kept.start_segment.number == 10
    names = [WalSegment(1, n).name for n in range(3, 14)]
    names += [WalSegment(2, n).name for n in range(6, 12)]  # a timeline branched at segment 6
    names += ["00000002.history", WalSegment(1, 9).name + ".partial", WalSegment(1, 4).name + ".00000028.backup"]
    names += [WalSegment(1, 10).name + ".00000028.backup"]
    plan = plan_wal_expiry(SYSTEM, [kept], [(n, 100) for n in names])
    removed = {name for name, _size in plan.remove}
    assert "00000002.history" not in removed
    assert all(parse_number(n) < 10 for n in removed)
    assert {n for n in names if n != "00000002.history" and parse_number(n) < 10} == removed
    assert plan.reason == (
        f"before {kept.start_segment.name}, the start of the oldest kept base backup {kept.snapshot_id[:8]}"
    )
    spans = {(r.timeline, r.first, r.last, r.files) for r in plan.ranges}
    assert spans == {
        (1, WalSegment(1, 3).name, WalSegment(1, 9).name + ".partial", 9),
        (2, WalSegment(2, 6).name, WalSegment(2, 9).name, 4),
    }
    assert plan.kept == len(names) - len(removed)


def test_without_a_kept_backup_no_wal_goes() -> None:
    plan = plan_wal_expiry(SYSTEM, [], [(WalSegment(1, 3).name, 1)])
    assert plan.remove == [] and plan.horizon is None
    other = BaseBackup.of(base_backup(T0 + timedelta(hours=30), system="7300000000000000009"))
    assert plan_wal_expiry(SYSTEM, [other], [(WalSegment(1, 3).name, 1)]).remove == []


def parse_number(name: str) -> int:
    return WalSegment.parse(name[:24]).number


# --- a month of daily backups ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "policy",
    [
        RetentionPolicy(recovery_window=timedelta(days=14), keep_daily=7),
        RetentionPolicy(keep_within=timedelta(days=5)),
        RetentionPolicy(recovery_window=timedelta(days=3), keep_weekly=2),
        RetentionPolicy(recovery_window=timedelta(days=10)),
        RetentionPolicy(recovery_window=timedelta(hours=36), keep_last=1),
        RetentionPolicy(keep_within=timedelta(days=2), recovery_window=timedelta(days=4), keep_monthly=1),
    ],
    ids=lambda p: p.describe(),
)
def test_a_window_is_kept_across_a_month_of_daily_backups(policy: RetentionPolicy) -> None:
    window = policy.point_in_time_window
    assert window is not None
    repository: list[Snapshot] = []
    archived: set[str] = set()
    archived_up_to = -1
    first_consistent: datetime | None = None
    for day in range(31):
        taken = T0 + timedelta(days=day, hours=1)
        repository.append(base_backup(taken))
        first_consistent = first_consistent or taken + timedelta(minutes=20)
        now = T0 + timedelta(days=day, hours=2)
        newest = lsn_at(now) // SEG
        archived |= {WalSegment(1, n).name for n in range(archived_up_to + 1, newest + 1)}
        archived_up_to = newest

        repository = kept_backups(repository, policy, now)  # forget
        backups = [BaseBackup.of(s) for s in repository]
        plan = plan_wal_expiry(SYSTEM, backups, [(n, 1) for n in archived])  # the WAL half of forget
        archived -= {name for name, _size in plan.remove}

        start = now - window
        covering = [b for b in backups if b.stop_time <= start]
        if first_consistent <= start:
            assert covering, f"day {day}: no kept base backup reaches the window's start {start}"
            assert plan.horizon is not None
            assert plan.horizon.number <= max(covering, key=lambda b: b.stop_time).start_segment.number
        # Every point of the window (from the first backup on) is restorable with what is left.
        when = max(start, first_consistent)
        while when <= now:
            assert restorable(backups, archived, when), f"day {day}: {when} is not restorable"
            when += timedelta(hours=5)
        assert restorable(backups, archived, now)
    # And retention still removes: neither snapshots nor WAL grow without bound.
    assert len(repository) < 31
    assert min(parse_number(n) for n in archived) > 0
