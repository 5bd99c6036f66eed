"""``pg info``: the base backups, the archived WAL per timeline (ranges and gaps), and the
recoverable window of every PostgreSQL cluster in a repository.

The window runs from the oldest base backup whose WAL up to consistency is archived
(earliest point) to the end of the WAL archived without a gap after the newest usable
backup, on the newest timeline that descends from one (latest point). Times of WAL are
when the segment reached the repository — an upper bound of the commits it holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lifeboat.core.basebackup import BaseBackup, base_backups, on_history
from lifeboat.core.wal import (
    DEFAULT_SEGMENT_SIZE,
    SegmentRange,
    TimelineHistory,
    WalFileKind,
    WalSegment,
    contiguous_ranges,
    missing_between,
    segments_needed,
    timeline_for_segment,
)
from lifeboat.errors import LifeboatError
from lifeboat.operations.pitr import histories
from lifeboat.repository.repo import Repository
from lifeboat.repository.wal import ArchivedFile, WalArchive, archived_systems


@dataclass
class TimelineArchive:
    timeline: int
    ranges: list[SegmentRange] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)
    parent: int | None = None
    switchpoint: str | None = None
    partial: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "timeline": self.timeline,
            "parent": self.parent,
            "switchpoint": self.switchpoint,
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
class ClusterInfo:
    system_id: str
    backups: list[BaseBackup]
    timelines: list[TimelineArchive]
    window: RecoverableWindow | None
    wal_files: int
    wal_bytes: int
    history_files: list[str]
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "system_id": self.system_id,
            "backups": [{"snapshot": b.snapshot_id, **b.to_json()} for b in self.backups],
            "wal": {
                "files": self.wal_files,
                "stored_bytes": self.wal_bytes,
                "history_files": self.history_files,
                "timelines": [t.to_json() for t in self.timelines],
            },
            "recoverable": self.window.to_json() if self.window else None,
            "problems": self.problems,
        }


def _segment_size(backups: list[BaseBackup]) -> int:
    return backups[-1].wal_segment_size if backups else DEFAULT_SEGMENT_SIZE


def _wal_complete(backup: BaseBackup, history: TimelineHistory, names: set[str]) -> bool:
    if backup.wal_included:
        return True
    end = max(backup.stop_lsn - 1, backup.start_lsn)
    needed = segments_needed(history.path(), backup.start_lsn, end, backup.wal_segment_size)
    return all(s.name in names for s in needed)


def cluster_info(repo: Repository, system_id: str, backups: list[BaseBackup]) -> ClusterInfo:
    archive = WalArchive(repo, system_id)
    files = list(archive.files())
    size = _segment_size(backups)
    by_name: dict[str, ArchivedFile] = {f.name: f for f in files}
    names = set(by_name)
    segments = [f.parsed.segment(size) for f in files if f.parsed.kind is WalFileKind.SEGMENT]
    problems: list[str] = []
    try:
        known = histories(archive, {n for n in names if n.endswith(".history")})
    except LifeboatError as exc:
        known = {}
        problems.append(str(exc))
    timelines: dict[int, TimelineArchive] = {}
    for r in contiguous_ranges(segments):
        timelines.setdefault(r.timeline, TimelineArchive(r.timeline)).ranges.append(r)
    for gap in missing_between(contiguous_ranges(segments)):
        timelines[gap.timeline].gaps.append(gap.name)
    for f in files:
        if f.parsed.kind is WalFileKind.PARTIAL:
            timelines.setdefault(f.parsed.timeline, TimelineArchive(f.parsed.timeline)).partial.append(f.name)
    for timeline, history in known.items():
        entry = timelines.setdefault(timeline, TimelineArchive(timeline))
        if history.switches:
            entry.parent = history.switches[-1].timeline
            entry.switchpoint = str(history.switches[-1].switchpoint)
    window = _window(backups, known, names, by_name, size)
    for archived in timelines.values():
        if archived.gaps:
            shown = ", ".join(archived.gaps[:5]) + (" …" if len(archived.gaps) > 5 else "")
            problems.append(f"timeline {archived.timeline}: {len(archived.gaps)} WAL segments missing: {shown}")
    return ClusterInfo(
        system_id=system_id,
        backups=backups,
        timelines=[timelines[t] for t in sorted(timelines)],
        window=window,
        wal_files=len(files),
        wal_bytes=sum(f.stored_bytes for f in files),
        history_files=sorted(n for n in names if n.endswith(".history")),
        problems=problems,
    )


def _history(timeline: int, known: dict[int, TimelineHistory]) -> TimelineHistory | None:
    if timeline in known:
        return known[timeline]
    return TimelineHistory.root(timeline) if timeline == 1 else None


def _window(
    backups: list[BaseBackup],
    known: dict[int, TimelineHistory],
    names: set[str],
    by_name: dict[str, ArchivedFile],
    size: int,
) -> RecoverableWindow | None:
    candidates = sorted({*known, *(b.timeline for b in backups)}, reverse=True)
    for timeline in candidates:
        history = _history(timeline, known)
        if history is None:
            continue
        usable = [b for b in backups if on_history(b, history) and _wal_complete(b, history, names)]
        if not usable:
            continue
        earliest = min(usable, key=lambda b: b.stop_lsn)
        newest = max(usable, key=lambda b: b.stop_lsn)
        path = history.path()
        segment: WalSegment = (
            newest.stop_segment.next()
            if newest.wal_included
            else WalSegment.containing(newest.start_lsn, newest.timeline, size)
        )
        last: WalSegment | None = None
        while True:
            on_path = WalSegment(timeline_for_segment(path, segment.number, size), segment.number, size)
            if on_path.name not in names:
                break
            last = on_path
            segment = on_path.next()
        later = [
            n
            for n in names
            if len(n) == 24
            and any(p.timeline == int(n[:8], 16) for p in path)
            and WalSegment.parse(n, size).number > segment.number
        ]
        blocked = WalSegment(timeline_for_segment(path, segment.number, size), segment.number, size).name
        if last is None:
            latest_wal, latest_lsn, archived_at = newest.stop_segment.name, str(newest.stop_lsn), None
        else:
            latest_wal, latest_lsn = last.name, str(last.end_lsn)
            archived_at = datetime.fromtimestamp(by_name[last.name].mtime, UTC)
        return RecoverableWindow(
            timeline=timeline,
            earliest_time=earliest.stop_time,
            earliest_lsn=str(earliest.stop_lsn),
            earliest_backup=earliest.snapshot_id,
            latest_wal=latest_wal,
            latest_lsn=latest_lsn,
            latest_archived_at=archived_at,
            blocked_by=blocked if later else None,
        )
    return None


def pg_info(repo: Repository, *, system_id: str | None = None, source: str | None = None) -> list[ClusterInfo]:
    """What the repository holds for each PostgreSQL cluster (or the one asked for)."""
    snapshots = repo.snapshots()
    if source:
        snapshots = [s for s in snapshots if s.source == source]
    backups = base_backups(snapshots)
    systems = sorted({b.system_id for b in backups} | (set() if source else set(archived_systems(repo))))
    if system_id:
        systems = [s for s in systems if s == system_id]
    return [cluster_info(repo, s, [b for b in backups if b.system_id == s]) for s in systems]
