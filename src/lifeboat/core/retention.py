"""Retention: which snapshots a policy keeps, and why (pure).

Grandfather-father-son rules keep the newest snapshot of each of the last *n* hours,
days, weeks (ISO weeks), months and years; ``keep_last`` keeps the newest *n*;
``keep_within`` keeps everything younger than a duration; ``keep_tags`` keeps every
snapshot carrying one of the tags. A count of -1 means "every period". Rules are
applied per group (by default: source and host), and a snapshot is kept if any rule
keeps it. Every decision carries its reasons, so ``forget --dry-run`` can explain.

A **recovery window** promises that any point of the last *duration* is restorable. For
PostgreSQL base backups (point-in-time recovery) it keeps every base backup taken inside
the window *and* the newest base backup that was consistent by the window's start — the
one recovery starts from to reach that start; without it the oldest part of the window
would be a hole. On a PostgreSQL base backup ``keep_within`` implies a recovery window of
the same length: "keep everything of the last 5 minutes" must not leave the first minutes
unrestorable. For snapshots of other kinds (no point-in-time recovery) the window keeps
the snapshots inside it and the newest one before it: the state at the window's start.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo

from lifeboat.core.basebackup import KIND as POSTGRES_KIND
from lifeboat.core.basebackup import BaseBackup
from lifeboat.core.snapshot import Snapshot
from lifeboat.errors import IntegrityError


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
    recovery_window: timedelta | None = None

    @property
    def point_in_time_window(self) -> timedelta | None:
        """The recovery window PostgreSQL base backups get: ``recovery_window``, or
        ``keep_within`` (on a source with point-in-time recovery it means "any point of that
        time is restorable"), the longer of both; None without either."""
        spans = [span for span in (self.recovery_window, self.keep_within) if span is not None]
        return max(spans) if spans else None

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
            or self.recovery_window is not None
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
            parts.append(f"within {describe_span(self.keep_within)}")
        if self.keep_tags:
            parts.append("tags " + ",".join(self.keep_tags))
        described = "keep " + ", ".join(parts) if parts else ""
        if self.recovery_window is not None:
            window = f"recovery window {describe_span(self.recovery_window)}"
            described = f"{described}; {window}" if described else window
        return described or "no rules"


def describe_span(span: timedelta) -> str:
    """A duration the way it is written in the configuration: ``14d``, ``1d12h``, ``5min``, ``90s``."""
    seconds = int(span.total_seconds())
    if seconds == 0 or span.total_seconds() != seconds:
        return f"{span.total_seconds():g}s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


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
            decision.reasons.append(f"within {describe_span(policy.keep_within)}")
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
    window = policy.point_in_time_window
    if window is not None:
        say_inside = policy.recovery_window is not None and window == policy.recovery_window
        _keep_point_in_time_window(decisions, window, now, tz, say_inside=say_inside)
    if policy.recovery_window is not None:
        _keep_state_window([d for d in decisions if _base_backup(d.snapshot) is None], policy.recovery_window, now)
    for decision in decisions:
        decision.keep = bool(decision.reasons)
    return decisions


def _base_backup(snapshot: Snapshot) -> BaseBackup | None:
    """The PostgreSQL base backup a snapshot records (None for other kinds, or a record that
    cannot be read: such a backup cannot be restored from, so it covers nothing)."""
    if snapshot.kind != POSTGRES_KIND or not isinstance(snapshot.extra.get("postgres"), dict):
        return None
    try:
        return BaseBackup.of(snapshot)
    except IntegrityError:
        return None


def window_start(window: timedelta, now: datetime) -> datetime:
    return now - window


def covering_backups(backups: Iterable[BaseBackup], start: datetime) -> list[BaseBackup]:
    """The base backups recovery to the window's ``start`` starts from: per database system,
    the newest one consistent by ``start`` (recovery to a time starts from a backup whose
    consistency point — its stop — is not after it). A system counts when it is still in
    the window: one of its backups is consistent after ``start``, or it holds the newest
    backup of all (the system archiving now)."""
    by_system: dict[str, list[BaseBackup]] = {}
    for backup in backups:
        by_system.setdefault(backup.system_id, []).append(backup)
    if not by_system:
        return []
    newest = max((b for group in by_system.values() for b in group), key=lambda b: (b.stop_time, b.stop_lsn))
    covering = []
    for system, members in sorted(by_system.items()):
        alive = system == newest.system_id or any(b.stop_time > start for b in members)
        before = [b for b in members if b.stop_time <= start]
        if alive and before:
            covering.append(max(before, key=lambda b: (b.stop_time, b.stop_lsn)))
    return covering


def _keep_point_in_time_window(
    decisions: list[Decision], window: timedelta, now: datetime, tz: tzinfo, *, say_inside: bool
) -> None:
    start = window_start(window, now)
    backups = [(d, b) for d in decisions if (b := _base_backup(d.snapshot)) is not None]
    if not backups:
        return
    label = f"needed by the recovery window ({describe_span(window)})"
    if say_inside:  # otherwise keep_within already keeps (and says so) what is inside
        for decision, _backup in backups:
            if decision.snapshot.time >= start:
                decision.reasons.append(f"{label}: inside it")
    covering = {id(b) for b in covering_backups([b for _d, b in backups], start)}
    when = start.astimezone(tz).isoformat(timespec="seconds")
    for decision, backup in backups:
        if id(backup) in covering:
            decision.reasons.append(f"{label}: the newest base backup consistent by its start {when}")


def _keep_state_window(decisions: list[Decision], window: timedelta, now: datetime) -> None:
    """A recovery window over snapshots without point-in-time recovery: those inside it, and
    the newest before it (the state at its start), per group."""
    start = window_start(window, now)
    label = f"recovery window ({describe_span(window)})"
    older = [d for d in decisions if d.snapshot.time < start]  # newest first, as decisions are
    for decision in decisions:
        if decision.snapshot.time >= start:
            decision.reasons.append(f"inside the {label}")
    if older:
        older[0].reasons.append(f"the state at the start of the {label}")
