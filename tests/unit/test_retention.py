"""Retention decisions, table-tested: which snapshots a policy keeps and why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lifeboat.core.retention import RetentionPolicy, apply_policy
from lifeboat.core.snapshot import Snapshot

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def snap(hours_ago: float, source: str = "web", host: str = "h1", tags: tuple[str, ...] = ()) -> Snapshot:
    time = NOW - timedelta(hours=hours_ago)
    return Snapshot(
        time=time, source=source, kind="files", tree=b"t" * 32, hostname=host, tags=tags, id=f"{hours_ago:08.1f}"
    )


def kept(policy: RetentionPolicy, snapshots: list[Snapshot]) -> list[str]:
    decisions = [d for group in apply_policy(snapshots, policy, NOW).values() for d in group]
    return sorted(d.snapshot.id for d in decisions if d.keep)


def daily_series(days: int) -> list[Snapshot]:
    # Two snapshots a day (at 10:00 and 04:00 UTC) for `days` days.
    return [snap(h) for d in range(days) for h in (d * 24 + 2, d * 24 + 8)]


@pytest.mark.parametrize(
    ("policy", "expected_count"),
    [
        (RetentionPolicy(keep_last=3), 3),
        (RetentionPolicy(keep_last=-1), 40),
        (RetentionPolicy(keep_daily=7), 7),
        (RetentionPolicy(keep_daily=-1), 20),
        (RetentionPolicy(keep_weekly=2), 2),
        (RetentionPolicy(keep_monthly=12), 1),
        (RetentionPolicy(keep_last=2, keep_daily=3), 4),
        (RetentionPolicy(keep_within=timedelta(days=2)), 4),
    ],
)
def test_policy_keeps_the_expected_number(policy: RetentionPolicy, expected_count: int) -> None:
    series = daily_series(20)
    assert len(kept(policy, series)) == expected_count


def test_daily_keeps_the_newest_snapshot_of_each_day() -> None:
    series = daily_series(3)
    decisions = apply_policy(series, RetentionPolicy(keep_daily=3), NOW)[("web", "h1")]
    kept_times = [d.snapshot.time for d in decisions if d.keep]
    days = [t.date() for t in kept_times]
    assert len(set(days)) == 3
    for decision in decisions:
        if decision.keep:
            same_day = [s.time for s in series if s.time.date() == decision.snapshot.time.date()]
            assert decision.snapshot.time == max(same_day)
            assert decision.reasons == ["daily snapshot"]


def test_reasons_explain_every_kept_snapshot() -> None:
    series = [snap(1, tags=("release",)), snap(30), snap(24 * 40)]
    decisions = apply_policy(series, RetentionPolicy(keep_last=1, keep_tags=("release",), keep_monthly=2), NOW)
    by_id = {d.snapshot.id: d for d in decisions[("web", "h1")]}
    assert by_id["000001.0"].reasons == ["last snapshot", "tagged release", "monthly snapshot"]
    assert by_id["000030.0"].keep is False
    assert by_id["000960.0"].reasons == ["monthly snapshot"]


def test_groups_are_decided_independently() -> None:
    series = [snap(1, "web"), snap(2, "web"), snap(1, "db"), snap(2, "db"), snap(1, "web", host="h2")]
    groups = apply_policy(series, RetentionPolicy(keep_last=1), NOW)
    assert set(groups) == {("db", "h1"), ("web", "h1"), ("web", "h2")}
    assert all(sum(d.keep for d in g) == 1 for g in groups.values())


def test_an_empty_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="every snapshot"):
        apply_policy([snap(1)], RetentionPolicy(), NOW)


def test_yearly_and_hourly_buckets() -> None:
    series = [snap(h) for h in (0.5, 0.7, 1.5, 2.5, 24 * 400, 24 * 800)]
    assert len(kept(RetentionPolicy(keep_hourly=2), series)) == 2
    assert len(kept(RetentionPolicy(keep_yearly=5), series)) == 3
