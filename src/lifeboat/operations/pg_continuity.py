"""``verify`` of a PostgreSQL base backup: the WAL it needs is archived, without a hole.

A base backup is restorable only with every WAL segment from its start to its consistency
point (its stop LSN), and point-in-time recovery from it reaches the newest archived WAL only
if no segment is missing on the way. The check follows the timeline a default restore
follows (the live one, :func:`~lifeboat.operations.pitr.plan_timeline`) and reads segment
names the way recovery does (:func:`~lifeboat.core.wal.segments_needed`), so WAL another
timeline wrote past the point where this history leaves it is never taken for a hole.

For the base backup verified, and for the older kept base backups of the same system that
this run does not verify themselves:

* a segment missing before consistency: the backup cannot be restored (a problem);
* a segment missing after it, with no newer base backup starting after the hole: recovery
  stops there and the WAL archived after it can no longer be reached (a problem);
* a hole a newer base backup bridges only cuts point-in-time recovery from the older one
  (a note: retention that expires WAL before a kept backup leaves such holes on purpose).

With ``read_data`` the WAL the verified backup needs (its segments through the newest on its
history, and the history files) is read back and proved (:mod:`lifeboat.repository.walverify`).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lifeboat.core.basebackup import BaseBackup, on_history
from lifeboat.core.wal import (
    TimelineHistory,
    TimelinePeriod,
    WalSegment,
    first_missing,
    history_file_name,
    last_archived_on_path,
    segments_needed,
)
from lifeboat.errors import LifeboatError, StorageError, StorageNotFound, WalDamaged
from lifeboat.operations.pitr import plan_timeline, read_timelines
from lifeboat.repository.check import DataSubset
from lifeboat.repository.repo import Repository
from lifeboat.repository.wal import WalArchive
from lifeboat.repository.walcheck import IN_FLIGHT_SECONDS
from lifeboat.repository.wallisting import ArchivedFile
from lifeboat.repository.walverify import read_files


@dataclass
class WalContinuity:
    """What the WAL check of one base backup found."""

    checked: str = ""
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    needed: int = 0  # segments recovery from the backup reads through the newest archived WAL
    newest: str | None = None  # the newest archived segment on the followed history
    files_read: int = 0
    bytes_read: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "segments_needed": self.needed,
            "newest_segment": self.newest,
            "notes": self.notes,
            "files_read": self.files_read,
            "bytes_read": self.bytes_read,
        }


def first_lsn(backup: BaseBackup) -> int:
    """Where recovery from ``backup`` starts reading archived WAL."""
    return backup.stop_segment.next().start_lsn if backup.wal_included else backup.start_lsn


def consistency_lsn(backup: BaseBackup) -> int:
    """The last byte of WAL recovery must replay before the backup is consistent (-1: none archived)."""
    return -1 if backup.wal_included else max(backup.stop_lsn - 1, backup.start_lsn)


class _Archive:
    """One system's archive as listed once, with the history a default restore follows."""

    def __init__(self, repo: Repository, backup: BaseBackup, backups: Sequence[BaseBackup]) -> None:
        self.archive = WalArchive(repo, backup.system_id)
        self.files: dict[str, ArchivedFile] = {f.name: f for f in self.archive.files()}
        self.names = set(self.files)
        self.size = backup.wal_segment_size
        self.now = repo.clock().timestamp()
        known, _unreadable = read_timelines(self.archive, self.files.values(), backups, self.size)
        self.known = known
        self.history: TimelineHistory | None = None
        self.problem = ""
        try:
            self.history = plan_timeline("latest", backups, known, None, size=self.size).history
        except LifeboatError as exc:
            self.problem = str(exc)

    def history_of(self, backup: BaseBackup) -> TimelineHistory:
        """The followed history when it holds ``backup``, else the backup's own timeline's."""
        if self.history is not None and on_history(backup, self.history):
            return self.history
        entry = self.known.get(backup.timeline)
        return entry.history if entry is not None else TimelineHistory.root(backup.timeline)

    def arrived(self, segment: WalSegment) -> str:
        found = self.files.get(segment.name)
        if found is None:
            return ""
        return f" (archived {datetime.fromtimestamp(found.mtime, UTC).isoformat(timespec='seconds')})"


def check_wal_continuity(
    repo: Repository,
    backup: BaseBackup,
    backups: Sequence[BaseBackup],
    *,
    also: Sequence[BaseBackup] = (),
    read_data: DataSubset | None = None,
    rng: random.Random | None = None,
    workers: int = 2,
    check: Callable[[], None] = lambda: None,
) -> WalContinuity:
    """The WAL check of ``backup`` (and of the older kept backups ``also``), against every kept
    base backup of its system (``backups``, which bridge holes)."""
    result = WalContinuity()
    archive = _Archive(repo, backup, backups)
    history = archive.history_of(backup)
    path = history.path()
    size = archive.size
    newest = last_archived_on_path(path, archive.names, -1, size)
    end = newest.end_lsn - 1 if newest is not None else -1
    result.newest = newest.name if newest is not None else None
    needed = segments_needed(path, first_lsn(backup), max(end, consistency_lsn(backup)), size)
    result.needed = len(needed)
    result.checked = (
        f"its WAL from {backup.start_segment.name} to consistency (LSN {backup.stop_lsn}) and on through "
        f"{result.newest or 'the end of the archive'} on timeline {history.timeline}"
    )
    if archive.problem:
        result.notes.append(f"the archive's timelines: {archive.problem}")
    for checked in sorted([backup, *also], key=lambda b: b.start_lsn):
        _one(archive, checked, backups, path, newest, result, verified=checked is backup)
    if read_data is not None:
        _read(archive, [s.name for s in needed if s.name in archive.names], history, read_data, rng, workers, result)
    check()
    return result


def _one(
    archive: _Archive,
    backup: BaseBackup,
    backups: Sequence[BaseBackup],
    path: list[TimelinePeriod],
    newest: WalSegment | None,
    result: WalContinuity,
    *,
    verified: bool,
) -> None:
    size = archive.size
    end = newest.end_lsn - 1 if newest is not None else -1
    who = f"base backup {backup.snapshot_id[:8]} ({backup.stop_time.isoformat(timespec='seconds')})"
    own_path = archive.history_of(backup).path()
    to_consistency = segments_needed(own_path, first_lsn(backup), consistency_lsn(backup), size)
    missing = first_missing(to_consistency, archive.names)
    if missing is not None:
        result.problems.append(
            f"WAL segment {missing.name} (timeline {missing.timeline}) is missing: {who} cannot be restored, "
            f"recovery needs it to reach the backup's consistency point (LSN {backup.stop_lsn})"
        )
        return
    if own_path != path:
        if verified:
            result.notes.append(f"{who} is not on the timeline a restore follows: checked to consistency only")
        return
    gap = first_missing(segments_needed(path, first_lsn(backup), end, size), archive.names)
    if gap is None:
        return
    bridge = [b for b in backups if b.system_id == backup.system_id and on_history(b, archive.history_of(b))]
    bridge = [b for b in bridge if archive.history_of(b).path() == path and first_lsn(b) >= gap.end_lsn]
    if bridge:
        newer = min(bridge, key=first_lsn)
        result.notes.append(
            f"WAL segment {gap.name} is missing: point-in-time recovery from {who} cannot pass LSN {gap.start_lsn}; "
            f"base backup {newer.snapshot_id[:8]} and later are not affected"
        )
        return
    if not verified:
        return  # the same hole blocks the verified (newer) backup: reported there
    after = archive.files.get(gap.next().name)
    if after is not None and archive.now - after.mtime < IN_FLIGHT_SECONDS:
        result.notes.append(
            f"WAL segment {gap.name} is missing, but {after.name} arrived {archive.now - after.mtime:.0f}s ago: "
            "PostgreSQL may still be archiving it"
        )
        return
    reached = f", up to {newest.name}{archive.arrived(newest)}," if newest is not None else ""
    result.problems.append(
        f"WAL segment {gap.name} (timeline {gap.timeline}) is missing: recovery from {who} stops at LSN "
        f"{gap.start_lsn}; the WAL archived after it{reached} can no longer be reached"
    )


def _read(
    archive: _Archive,
    names: list[str],
    history: TimelineHistory,
    subset: DataSubset,
    rng: random.Random | None,
    workers: int,
    result: WalContinuity,
) -> None:
    """Read back the history files of the followed timelines and the (chosen) segments."""
    histories = [history_file_name(p.timeline) for p in history.path() if p.timeline > 1]
    chosen = sorted(subset.select(names, rng or random.Random()))  # noqa: S311 - sampling, not crypto
    wanted = [n for n in histories if n in archive.names] + chosen
    outcomes = read_files(
        archive.archive, wanted, segment_size=archive.size, history_of=lambda _t: history, workers=workers
    )
    with closing(outcomes):
        for name, outcome in outcomes:
            if isinstance(outcome, WalDamaged):
                result.files_read += 1
                reason = outcome.message.removeprefix(f"archived WAL file {name}: ")
                result.problems.append(f"WAL file {name} is damaged and recovery needs it: {reason}")
            elif isinstance(outcome, StorageNotFound):
                result.notes.append(f"WAL file {name} disappeared while it was read (removed by retention?)")
            elif isinstance(outcome, StorageError):
                result.problems.append(f"WAL file {name} cannot be read: {outcome}")
            else:
                result.files_read += 1
                result.bytes_read += outcome.stored_bytes


__all__ = ["WalContinuity", "check_wal_continuity", "consistency_lsn", "first_lsn"]
