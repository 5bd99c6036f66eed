"""Retention: which snapshots a policy keeps, and why (pure).

Grandfather-father-son rules keep the newest snapshot of each of the last *n* hours,
days, weeks (ISO weeks), months and years; ``keep_last`` keeps the newest *n*;
``keep_within`` keeps everything younger than a duration; ``keep_tags`` keeps every
snapshot carrying one of the tags. A count of -1 means "every period". Rules are
applied per group (by default: source and host), and a snapshot is kept if any rule
keeps it. Every decision carries its reasons, so ``forget --dry-run`` can explain.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo

from lifeboat.core.snapshot import Snapshot


@dataclass(frozen=True)
class RetentionPolicy:
    keep_last: int = 0
    keep_hourly: int = 0
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0
    keep_yearly: int = 0
    keep_within: timedelta | None = None
    keep_tags: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not (
            self.keep_last
            or self.keep_hourly
            or self.keep_daily
            or self.keep_weekly
            or self.keep_monthly
            or self.keep_yearly
            or self.keep_within is not None
            or self.keep_tags
        )

    def describe(self) -> str:
        parts = [
            f"{name.removeprefix('keep_')} {value if value >= 0 else 'all'}"
            for name, value in (
                ("keep_last", self.keep_last),
                ("keep_hourly", self.keep_hourly),
                ("keep_daily", self.keep_daily),
                ("keep_weekly", self.keep_weekly),
                ("keep_monthly", self.keep_monthly),
                ("keep_yearly", self.keep_yearly),
            )
            if value
        ]
        if self.keep_within is not None:
            parts.append(f"within {self.keep_within}")
        if self.keep_tags:
            parts.append("tags " + ",".join(self.keep_tags))
        return "keep " + ", ".join(parts) if parts else "no rules"


@dataclass
class Decision:
    snapshot: Snapshot
    keep: bool = False
    reasons: list[str] = field(default_factory=list)


GroupKey = tuple[str, ...]


def group_by_source_and_host(snapshot: Snapshot) -> GroupKey:
    return (snapshot.source, snapshot.hostname)


_BUCKETS: tuple[tuple[str, str, Callable[[datetime], object]], ...] = (
    ("keep_hourly", "hourly", lambda t: (t.year, t.month, t.day, t.hour)),
    ("keep_daily", "daily", lambda t: (t.year, t.month, t.day)),
    ("keep_weekly", "weekly", lambda t: t.isocalendar()[:2]),
    ("keep_monthly", "monthly", lambda t: (t.year, t.month)),
    ("keep_yearly", "yearly", lambda t: t.year),
)


def apply_policy(
    snapshots: Iterable[Snapshot],
    policy: RetentionPolicy,
    now: datetime,
    *,
    tz: tzinfo = UTC,
    group_key: Callable[[Snapshot], GroupKey] = group_by_source_and_host,
) -> dict[GroupKey, list[Decision]]:
    """Decide, per group, which snapshots to keep; newest first within each group."""
    if policy.is_empty:
        raise ValueError("an empty retention policy would remove every snapshot")
    groups: dict[GroupKey, list[Snapshot]] = {}
    for snapshot in snapshots:
        groups.setdefault(group_key(snapshot), []).append(snapshot)
    return {key: _decide(members, policy, now, tz) for key, members in sorted(groups.items())}


def _decide(members: list[Snapshot], policy: RetentionPolicy, now: datetime, tz: tzinfo) -> list[Decision]:
    decisions = [Decision(s) for s in sorted(members, key=lambda s: (s.time, s.id), reverse=True)]
    for i, decision in enumerate(decisions):
        if policy.keep_last < 0 or i < policy.keep_last:
            decision.reasons.append("last snapshot" if i == 0 else f"last {i + 1} snapshots")
        if policy.keep_within is not None and decision.snapshot.time >= now - policy.keep_within:
            decision.reasons.append(f"within {policy.keep_within}")
        tags = set(policy.keep_tags) & set(decision.snapshot.tags)
        if tags:
            decision.reasons.append("tagged " + ",".join(sorted(tags)))
    for attribute, label, bucket_of in _BUCKETS:
        remaining = getattr(policy, attribute)
        if not remaining:
            continue
        last_bucket: object = None
        for decision in decisions:
            bucket = bucket_of(decision.snapshot.time.astimezone(tz))
            if bucket == last_bucket:
                continue
            last_bucket = bucket
            if remaining == 0:
                break
            decision.reasons.append(f"{label} snapshot")
            remaining -= 1
    for decision in decisions:
        decision.keep = bool(decision.reasons)
    return decisions
