"""``pg info``: the base backups, the archived WAL per timeline (parent, switch point, ranges
and gaps), and the recoverable window of every PostgreSQL cluster in a repository.

The window is computed on the *live* timeline — the one a default restore follows
(:mod:`lifeboat.core.timelines`) — along that timeline's history only: WAL another timeline
wrote past the point where this history leaves it is never a gap of this one. It runs from
the oldest base backup whose WAL up to consistency is archived (earliest point) to the end
of the WAL archived without a gap after the newest usable backup (latest point). A segment
that recovery from the *newest* base backup would need before the end of the archived WAL
on that history and that is missing is the cluster's ``gap``: its status is then ``gap``,
and the command exits with the integrity code. Times of WAL are when the segment reached
the repository — an upper bound of the commits it holds.

Next to the window that exists stands the window retention *guarantees*: the recovery
window of the retention policy of the cluster's sources (``recovery_window``, or
``keep_within``, which on PostgreSQL implies one), "recoverable from now minus the window
to now". When the existing window begins later than the guaranteed one, a warning says so.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from lifeboat.core.basebackup import KIND as POSTGRES_KIND
from lifeboat.core.basebackup import BaseBackup, base_backups, on_history
from lifeboat.core.retention import RetentionPolicy, describe_span
from lifeboat.core.snapshot import Snapshot
from lifeboat.core.timelines import ArchivedTimeline
from lifeboat.core.wal import (
    DEFAULT_SEGMENT_SIZE,
    SegmentRange,
    TimelineHistory,
    WalFileKind,
    WalSegment,
    first_missing,
    last_archived_on_path,
    missing_between,
    parse_wal_file_name,
    ranges_of,
    segments_needed,
    segments_per_log,
    timeline_for_segment,
)
from lifeboat.errors import LifeboatError, ObjectNotFound, config_key, spell_options
from lifeboat.operations.pitr import TimelinePlan, plan_timeline, timeline_warnings, timelines_of
from lifeboat.repository.repo import Repository
from lifeboat.repository.wal import WalArchive, archived_systems
from lifeboat.repository.wallisting import WalListing


@dataclass
class TimelineArchive:
    timeline: int
    ranges: list[SegmentRange] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)
    parent: int | None = None
    switchpoint: str | None = None
    partial: list[str] = field(default_factory=list)
    branched_from: int | None = None  # whose WAL it continues (the parent, unless it began before the parent)
    history_file: bool = False
    live: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "timeline": self.timeline,
            "parent": self.parent,
            "switchpoint": self.switchpoint,
            "branched_from": self.branched_from,
            "history_file": self.history_file,
            "live": self.live,
            "ranges": [
                {"first": r.first_segment.name, "last": r.last_segment.name, "segments": r.count} for r in self.ranges
            ],
            "gaps": self.gaps,
            "partial": self.partial,
        }


@dataclass
class RecoverableWindow:
    timeline: int
    earliest_time: datetime
    earliest_lsn: str
    earliest_backup: str
    latest_wal: str
    latest_lsn: str
    latest_archived_at: datetime | None
    blocked_by: str | None = None  # the first missing segment after the newest backup, if any

    def to_json(self) -> dict[str, Any]:
        return {
            "timeline": self.timeline,
            "earliest_time": self.earliest_time.isoformat(),
            "earliest_lsn": self.earliest_lsn,
            "earliest_backup": self.earliest_backup,
            "latest_wal": self.latest_wal,
            "latest_lsn": self.latest_lsn,
            "latest_archived_at": self.latest_archived_at.isoformat() if self.latest_archived_at else None,
            "blocked_by": self.blocked_by,
        }


@dataclass
class GuaranteedWindow:
    """What the retention policy of the cluster's sources promises: any point from ``start``
    (now minus the window) to now is restorable."""

    span: timedelta
    start: datetime
    sources: list[str]
    policy: str

    def to_json(self) -> dict[str, Any]:
        return {
            "recovery_window": describe_span(self.span),
            "recovery_window_seconds": int(self.span.total_seconds()),
            "from": self.start.isoformat(),
            "to": "now",
            "sources": self.sources,
            "policy": self.policy,
        }


def guaranteed_window(
    sources: list[str], retention: Callable[[str], RetentionPolicy | None], now: datetime
) -> GuaranteedWindow | None:
    """The longest recovery window the policies of ``sources`` give (None without one)."""
    best: tuple[timedelta, str, RetentionPolicy] | None = None
    for source in sources:
        policy = retention(source)
        span = policy.point_in_time_window if policy is not None else None
        if policy is not None and span is not None and (best is None or span > best[0]):
            best = (span, source, policy)
    if best is None:
        return None
    span, _source, policy = best
    return GuaranteedWindow(span, now - span, sources, policy.describe())


def window_warnings(window: RecoverableWindow | None, guaranteed: GuaranteedWindow | None) -> list[str]:
    """Where the window that exists falls short of the one retention guarantees."""
    if guaranteed is None:
        return []
    promised = f"the {describe_span(guaranteed.span)} recovery window retention guarantees"
    if window is None:
        return [f"nothing is recoverable, short of {promised} (from {guaranteed.start.isoformat(timespec='seconds')})"]
    if window.earliest_time > guaranteed.start:
        return [
            f"the existing window begins {window.earliest_time.isoformat(timespec='seconds')}, later than "
            f"{promised} (from {guaranteed.start.isoformat(timespec='seconds')}): there is no older base backup "
            "(new source, or backups removed by hand)"
        ]
    return []


@dataclass
class ClusterInfo:
    system_id: str
    backups: list[BaseBackup]
    timelines: list[TimelineArchive]
    window: RecoverableWindow | None
    wal_files: int
    wal_bytes: int
    history_files: list[str]
    problems: list[str] = field(default_factory=list)
    gap: str | None = None  # the first segment recovery from the newest base backup lacks
    notes: list[str] = field(default_factory=list)  # options named as errors.option markers
    sources: list[str] = field(default_factory=list)  # the sources whose snapshots hold its base backups
    guaranteed: GuaranteedWindow | None = None  # what the sources' retention promises
    warnings: list[str] = field(default_factory=list)  # the existing window falls short of the guaranteed

    @property
    def status(self) -> str:
        """``ok``; ``gap`` (recovery from the newest base backup cannot reach the end of the
        archived WAL); ``unrestorable`` (base backups, but no timeline to restore them on);
        ``no-backup`` (nothing to restore from)."""
        if self.gap is not None:
            return "gap"
        if self.window is not None:
            return "ok"
        return "unrestorable" if self.backups else "no-backup"

    @property
    def damaged(self) -> bool:
        """Whether ``pg info`` exits with the integrity code for this cluster."""
        return self.status in ("gap", "unrestorable")

    def to_json(self, spell: Callable[[str], str] = config_key) -> dict[str, Any]:
        """The JSON form; the options the notes name are spelled by ``spell``."""
        return {
            "system_id": self.system_id,
            "status": self.status,
            "gap": self.gap,
            "backups": [{"snapshot": b.snapshot_id, **b.to_json()} for b in self.backups],
            "wal": {
                "files": self.wal_files,
                "stored_bytes": self.wal_bytes,
                "history_files": self.history_files,
                "timelines": [t.to_json() for t in self.timelines],
            },
            "recoverable": self.window.to_json() if self.window else None,
            "sources": self.sources,
            "guaranteed": self.guaranteed.to_json() if self.guaranteed else None,
            "existing": (
                {
                    "from": self.window.earliest_time.isoformat(),
                    "to": self.window.latest_archived_at.isoformat() if self.window.latest_archived_at else None,
                    "to_wal": self.window.latest_wal,
                }
                if self.window
                else None
            ),
            "warnings": self.warnings,
            "problems": self.problems,
            "notes": [spell_options(n, spell) for n in self.notes],
        }


def _segment_size(backups: list[BaseBackup]) -> int:
    return backups[-1].wal_segment_size if backups else DEFAULT_SEGMENT_SIZE


def _first_lsn(backup: BaseBackup) -> int:
    """Where recovery from ``backup`` starts reading archived WAL."""
    return backup.stop_segment.next().start_lsn if backup.wal_included else backup.start_lsn


def _missing(backup: BaseBackup, history: TimelineHistory, names: set[str], end: int) -> WalSegment | None:
    """The first segment recovery from ``backup`` along ``history`` lacks up to ``end`` (and at
    least up to consistency)."""
    size = backup.wal_segment_size
    consistent = -1 if backup.wal_included else max(backup.stop_lsn - 1, backup.start_lsn)
    needed = segments_needed(history.path(), _first_lsn(backup), max(end, consistent), size)
    return first_missing(needed, names)


@dataclass
class _Archived:
    """One cluster's archived files sorted out from its listing in one pass (no object per
    file): segment numbers and arrival times per timeline, partial and history files."""

    arrivals: dict[int, dict[int, float]] = field(default_factory=dict)  # timeline → segment → time
    partial: dict[int, list[str]] = field(default_factory=dict)  # timeline → .partial names
    history: dict[int, tuple[str, float]] = field(default_factory=dict)  # timeline → (name, time)

    @classmethod
    def of(cls, listing: WalListing, size: int) -> _Archived:
        found = cls()
        per_log = segments_per_log(size)
        paths, mtimes = listing.paths, listing.mtimes
        start = 0
        while start < len(paths):  # one timeline directory at a time (the paths are sorted)
            directory = paths[start][:9]
            end = bisect_left(paths, directory + "\x7f", start)  # past every name (hex digits and dots)
            timeline = int(directory[:8], 16)
            # "<timeline>/<24 hex digits>" is a segment (archived_path checked every path)
            segments = [i for i in range(start, end) if len(paths[i]) == 33]
            if segments:
                numbers = [int(paths[i][17:25], 16) * per_log + int(paths[i][25:], 16) for i in segments]
                found.arrivals[timeline] = dict(zip(numbers, [mtimes[i] for i in segments], strict=True))
            if len(segments) < end - start:
                found._others(paths, mtimes, (i for i in range(start, end) if len(paths[i]) != 33))
            start = end
        return found

    def _others(self, paths: list[str], mtimes: Sequence[float], positions: Iterable[int]) -> None:
        for i in positions:
            parsed = parse_wal_file_name(paths[i][9:])
            if parsed.kind is WalFileKind.PARTIAL:
                self.partial.setdefault(parsed.timeline, []).append(parsed.name)
            elif parsed.kind is WalFileKind.HISTORY:
                self.history[parsed.timeline] = (parsed.name, mtimes[i])


def cluster_info(repo: Repository, system_id: str, backups: list[BaseBackup]) -> ClusterInfo:
    archive = WalArchive(repo, system_id)
    listing = archive.listing()
    size = _segment_size(backups)
    names = set(listing.names)
    archived = _Archived.of(listing, size)
    known, unreadable = timelines_of(archive, archived.arrivals, archived.history, backups)
    problems = list(unreadable.values())
    plan: TimelinePlan | None
    try:
        plan = plan_timeline("latest", backups, known, None, size=size)
    except ObjectNotFound:
        plan = None
    except LifeboatError as exc:
        plan = None
        problems.append(str(exc))
    live = plan.history.timeline if plan else None
    timelines: dict[int, TimelineArchive] = {}
    ranges = [r for t, a in sorted(archived.arrivals.items()) for r in ranges_of(t, sorted(a), size)]
    for r in ranges:
        timelines.setdefault(r.timeline, TimelineArchive(r.timeline)).ranges.append(r)
    for gap in missing_between(ranges):
        timelines[gap.timeline].gaps.append(gap.name)
    for timeline, partial in sorted(archived.partial.items()):
        timelines.setdefault(timeline, TimelineArchive(timeline)).partial.extend(partial)
    for number, entry in known.items():
        if not (entry.history_file or entry.arrivals or number in timelines):
            continue  # named only by a backup record
        archived_timeline = timelines.setdefault(number, TimelineArchive(number))
        _describe(archived_timeline, entry)
    if live is not None:
        timelines.setdefault(live, TimelineArchive(live)).live = True
    window, window_gap = _window(backups, plan.history, names, listing.mtime, size) if plan else (None, None)
    for archived_timeline in timelines.values():
        if archived_timeline.gaps:
            gaps = archived_timeline.gaps
            shown = ", ".join(gaps[:5]) + (" …" if len(gaps) > 5 else "")
            problems.append(f"timeline {archived_timeline.timeline}: {len(gaps)} WAL segments missing: {shown}")
    return ClusterInfo(
        system_id=system_id,
        backups=backups,
        timelines=[timelines[t] for t in sorted(timelines)],
        window=window,
        wal_files=len(listing),
        wal_bytes=listing.stored_bytes,
        history_files=sorted(name for name, _mtime in archived.history.values()),
        problems=problems,
        gap=window_gap,
        notes=timeline_warnings(plan) if plan else [],
    )


def _describe(archived: TimelineArchive, entry: ArchivedTimeline) -> None:
    history = entry.history
    archived.history_file = entry.history_file
    if history.switchpoint is not None:
        archived.parent = history.parent
        archived.switchpoint = str(history.switchpoint)
        archived.branched_from = history.branch_timeline()


def _window(
    backups: list[BaseBackup],
    history: TimelineHistory,
    names: set[str],
    mtime: Callable[[str], float | None],
    size: int,
) -> tuple[RecoverableWindow | None, str | None]:
    """The recoverable window on ``history``'s timeline, and the gap after its newest base backup."""
    on_path = [b for b in backups if on_history(b, history)]
    if not on_path:
        return None, None
    path = history.path()
    last = last_archived_on_path(path, names, -1, size)
    end = last.end_lsn - 1 if last else -1
    newest = max(on_path, key=lambda b: (b.stop_lsn, b.stop_time))
    gap = _missing(newest, history, names, end)
    usable = [b for b in on_path if _missing(b, history, names, -1) is None]
    if not usable:
        return None, gap.name if gap else None
    earliest = min(usable, key=lambda b: b.stop_lsn)
    newest_usable = max(usable, key=lambda b: (b.stop_lsn, b.stop_time))
    first = _first_lsn(newest_usable)
    blocked = _missing(newest_usable, history, names, end)
    reached = last
    if blocked is not None:
        before = blocked.number - 1
        reached = WalSegment(timeline_for_segment(path, before, size), before, size) if before >= 0 else None
    if reached is not None and (reached.end_lsn <= first or reached.name not in names):
        reached = None
    if reached is None:
        latest_wal, latest_lsn, archived_at = newest_usable.stop_segment.name, str(newest_usable.stop_lsn), None
    else:
        latest_wal, latest_lsn = reached.name, str(reached.end_lsn)
        stamp = mtime(reached.name)
        archived_at = datetime.fromtimestamp(stamp, UTC) if stamp is not None else None
    window = RecoverableWindow(
        timeline=history.timeline,
        earliest_time=earliest.stop_time,
        earliest_lsn=str(earliest.stop_lsn),
        earliest_backup=earliest.snapshot_id,
        latest_wal=latest_wal,
        latest_lsn=latest_lsn,
        latest_archived_at=archived_at,
        blocked_by=blocked.name if blocked else None,
    )
    return window, gap.name if gap else None


def pg_info(
    repo: Repository,
    *,
    system_id: str | None = None,
    source: str | None = None,
    retention: Callable[[str], RetentionPolicy | None] | None = None,
    now: datetime | None = None,
    snapshots: list[Snapshot] | None = None,
) -> list[ClusterInfo]:
    """What the repository holds for each PostgreSQL cluster (or the one asked for); with
    ``retention`` (a source's configured policy), the window that policy guarantees too.
    ``snapshots``: the repository's snapshots when the caller has them listed already (the
    daemon keeps them), else they are read."""
    if snapshots is None:
        snapshots = repo.snapshots(kind=POSTGRES_KIND)  # base backups are all it reads
    if source:
        snapshots = [s for s in snapshots if s.source == source]
    backups = base_backups(snapshots)
    systems = sorted({b.system_id for b in backups} | (set() if source else set(archived_systems(repo))))
    if system_id:
        systems = [s for s in systems if s == system_id]
    source_of = {s.id: s.source for s in snapshots if s.kind == POSTGRES_KIND}
    clusters = []
    for system in systems:
        mine = [b for b in backups if b.system_id == system]
        info = cluster_info(repo, system, mine)
        info.sources = sorted({source_of[b.snapshot_id] for b in mine if b.snapshot_id in source_of})
        if retention is not None:
            info.guaranteed = guaranteed_window(info.sources, retention, now or datetime.now(UTC))
            info.warnings = window_warnings(info.window, info.guaranteed)
        clusters.append(info)
    return clusters
