"""``check`` of the archived PostgreSQL WAL: what the archive must hold, and what each file holds.

The archive has no catalog of its own: the listing of ``wal/<system>/`` *is* its catalog,
and what it must hold follows from the other records (docs/format.md, "The WAL archive"):

* every base backup that did not bring its own WAL needs the segments from its start to
  its stop, on its timeline — a missing one makes the backup unrestorable;
* every timeline after the first that has archived WAL or a base backup needs its
  ``.history`` file, or recovery cannot follow it;
* a timeline's segments run without a hole from its first archived segment to its last:
  a hole is an error when recovery must pass it, a warning when only point-in-time
  recovery from older base backups is cut (a newer base backup on that timeline starts
  after it), when no base backup starts before it, or when later segments arrived so
  recently that it may still be on its way;
* each object is a well-named ``wal/<system>/<timeline>/<file>`` of a plausible size.

With ``read_data``, every listed file (or the subset's share) is read back and verified
(:mod:`lifeboat.repository.walverify`); history files are always read, since segments are
judged by them. Problems are collected, never raised.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass, field

import blake3

from lifeboat.core.basebackup import BaseBackup
from lifeboat.core.wal import (
    DEFAULT_SEGMENT_SIZE,
    TimelineHistory,
    WalFileKind,
    WalFileName,
    WalSegment,
    contiguous_ranges,
    history_file_name,
    missing_between,
    parse_wal_file_name,
)
from lifeboat.errors import StorageError, StorageNotFound, WalDamaged
from lifeboat.repository.crypto.aead import OBJECT_HEADER_BYTES, TAG_BYTES
from lifeboat.repository.repo import Repository
from lifeboat.repository.wal import WAL_PREFIX, WalArchive
from lifeboat.repository.walverify import read_files

IN_FLIGHT_SECONDS = 600.0  # a hole whose successor arrived this recently may still be archiving
MIN_OBJECT_BYTES = OBJECT_HEADER_BYTES + TAG_BYTES + 1

Subset = Callable[[list[str], random.Random], list[str]]  # DataSubset.select


@dataclass(frozen=True)
class WalIssue:
    """One problem of the archive, naming the file, its timeline and system."""

    error: bool  # False: a warning
    object: str
    message: str
    details: dict[str, str | int] = field(default_factory=dict)
    storage: bool = False  # the storage would not give the file: not damage


@dataclass
class WalCheckResult:
    files: int = 0
    files_read: int = 0
    bytes_read: int = 0
    issues: list[WalIssue] = field(default_factory=list)


@dataclass(frozen=True)
class _Listed:
    name: str
    size: int
    mtime: float
    parsed: WalFileName


class WalChecker:
    """Checks the WAL of every database system in a repository."""

    def __init__(
        self,
        repo: Repository,
        backups: Sequence[BaseBackup],
        *,
        workers: int = 2,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.repo = repo
        self.backups = list(backups)
        self.workers = workers
        self.result = WalCheckResult()
        self.progress = progress or (lambda _msg: None)

    def run(self, *, read_subset: Subset | None = None, rng: random.Random | None = None) -> WalCheckResult:
        self.progress("checking archived WAL")
        listed = self._list()
        systems = sorted(set(listed) | {b.system_id for b in self.backups})
        for system_id in systems:
            files = listed.get(system_id, {})
            backups = [b for b in self.backups if b.system_id == system_id]
            _System(self, system_id, files, backups).check(read_subset, rng or random.Random())  # noqa: S311 - sampling
        return self.result

    def issue(
        self, error: bool, obj: str, message: str, *, storage: bool = False, details: dict[str, str | int] | None = None
    ) -> None:
        self.result.issues.append(WalIssue(error, obj, message, dict(details or {}), storage))

    def _list(self) -> dict[str, dict[str, _Listed]]:
        found: dict[str, dict[str, _Listed]] = {}
        try:
            listing = list(self.repo.backend.list(WAL_PREFIX))
        except StorageNotFound:
            return found
        for info in listing:
            parts = info.name.split("/")
            parsed = _parse(parts)
            if parsed is None:
                self.issue(False, info.name, "unexpected object in wal/ (not an archived WAL file)")
                continue
            system_id = parts[1]
            self.result.files += 1
            if info.size < MIN_OBJECT_BYTES:
                self.issue(
                    True,
                    _object(system_id, parsed.name),
                    f"is {info.size} bytes, too small for an archived WAL file (truncated)",
                    details=_details(system_id, parsed),
                )
            found.setdefault(system_id, {})[parsed.name] = _Listed(parsed.name, info.size, info.mtime, parsed)
        return found


def _parse(parts: list[str]) -> WalFileName | None:
    if len(parts) != 4 or not parts[1].isdigit() or len(parts[1]) > 20:
        return None
    try:
        parsed = parse_wal_file_name(parts[3])
    except ValueError:
        return None
    return parsed if parts[2] == parts[3][:8] else None


def _object(system_id: str, name: str) -> str:
    return f"WAL file {name} of system {system_id}"


def _details(system_id: str, parsed: WalFileName) -> dict[str, str | int]:
    return {"system_id": system_id, "timeline": parsed.timeline, "file": parsed.name}


class _System:
    """The check of one database system's archive."""

    def __init__(
        self, checker: WalChecker, system_id: str, files: dict[str, _Listed], backups: list[BaseBackup]
    ) -> None:
        self.checker = checker
        self.system_id = system_id
        self.files = files
        self.backups = backups
        self.recorded_size = max(backups, key=lambda b: b.stop_time).wal_segment_size if backups else None
        self.size = self.recorded_size or _inferred_segment_size(files.values())
        self.reported: set[str] = set()

    def issue(self, error: bool, name: str, message: str, *, storage: bool = False, **extra: str | int) -> None:
        self.reported.add(name)
        details = _details(self.system_id, parse_wal_file_name(name))
        self.checker.issue(error, _object(self.system_id, name), message, storage=storage, details={**details, **extra})

    def check(self, read_subset: Subset | None, rng: random.Random) -> None:
        self._backups_have_their_wal()
        self._timelines_have_history()
        self._no_holes()
        if read_subset is not None:
            self._read(read_subset, rng)

    # --- structure ------------------------------------------------------------------------------
    def _backups_have_their_wal(self) -> None:
        for backup in self.backups:
            if backup.wal_included:
                continue
            for number in range(backup.start_segment.number, backup.stop_segment.number + 1):
                segment = WalSegment(backup.timeline, number, backup.wal_segment_size)
                if segment.name not in self.files and segment.name not in self.reported:
                    self.issue(True, segment.name, f"is missing: {self._consequence(segment)[1]}")

    def _timelines_have_history(self) -> None:
        timelines = {f.parsed.timeline for f in self.files.values()} | {b.timeline for b in self.backups}
        for timeline in sorted(t for t in timelines if t > 1):
            name = history_file_name(timeline)
            if name not in self.files:
                self.issue(
                    True,
                    name,
                    f"is missing: timeline {timeline} has archived WAL or a base backup, "
                    "but recovery cannot follow it without its history",
                )

    def _no_holes(self) -> None:
        segments = [f.parsed.segment(self.size) for f in self.files.values() if f.parsed.kind is WalFileKind.SEGMENT]
        holes = [s for s in missing_between(contiguous_ranges(segments)) if s.name not in self.reported]
        for run in _runs(holes):
            first, last = run[0], run[-1]
            what = first.name if len(run) == 1 else f"{first.name}..{last.name} ({len(run)} segments)"
            successor = self.files[last.next().name]
            age = self.checker.repo.clock().timestamp() - successor.mtime
            if age < IN_FLIGHT_SECONDS:
                message = (
                    f"is missing ({what}), but {successor.name} arrived {max(age, 0):.0f}s ago: "
                    "PostgreSQL may still be archiving it"
                )
                error = False
            else:
                error, consequence = self._consequence(first)
                message = f"is missing ({what}) while later WAL of timeline {first.timeline} is archived: {consequence}"
            self.issue(error, first.name, message, last=last.name, segments=len(run))

    def _newer_backup(self, segment: WalSegment) -> BaseBackup | None:
        """The oldest base backup on ``segment``'s timeline that starts after it."""
        later = [b for b in self.backups if b.timeline == segment.timeline and b.start_segment.number > segment.number]
        return min(later, key=lambda b: b.start_segment.number) if later else None

    def _consequence(self, segment: WalSegment) -> tuple[bool, str]:
        """What is lost without ``segment``, in a user's words; True when the newest
        recoverable point is lost (an error), False when a newer base backup bridges it or
        no recovery reads it."""
        for backup in self.backups:
            if (
                not backup.wal_included
                and backup.timeline == segment.timeline
                and backup.start_segment.number <= segment.number <= backup.stop_segment.number
            ):
                return True, f"base backup {backup.snapshot_id[:8]} cannot be restored without it"
        if not any(b.start_segment.number <= segment.number for b in self.backups):
            return False, "no base backup starts before it, so no recovery reads it"
        newer = self._newer_backup(segment)
        if newer is not None:
            return False, (
                "point-in-time recovery from older base backups cannot pass it "
                f"(base backup {newer.snapshot_id[:8]} and later are not affected)"
            )
        return True, "recovery cannot pass it: the WAL archived after it is unusable"

    # --- read-data -------------------------------------------------------------------------------
    def _read(self, read_subset: Subset, rng: random.Random) -> None:
        names = sorted(self.files)
        history_names = [n for n in names if self.files[n].parsed.kind is WalFileKind.HISTORY]
        by_key = {blake3.blake3(n.encode()).hexdigest(): n for n in names if n not in history_names}
        chosen = sorted(by_key[k] for k in read_subset(list(by_key), rng))
        self.checker.progress(f"reading {len(history_names) + len(chosen)} archived WAL files of {self.system_id}")
        histories: dict[int, TimelineHistory] = {}
        for name, content in self._read_files(history_names, lambda _t: None):
            timeline = parse_wal_file_name(name).timeline
            try:  # verified above: it parses
                histories[timeline] = TimelineHistory.parse(timeline, content.decode("utf-8", errors="replace"))
            except ValueError:
                continue
        for _ in self._read_files(chosen, histories.get):
            pass

    def _read_files(
        self, names: list[str], history_of: Callable[[int], TimelineHistory | None]
    ) -> Iterable[tuple[str, bytes]]:
        """Read and verify ``names``, reporting what is wrong; yields (name, first bytes) of the good ones."""
        archive = WalArchive(self.checker.repo, self.system_id)
        result = self.checker.result
        outcomes = read_files(
            archive, names, segment_size=self.recorded_size, history_of=history_of, workers=self.checker.workers
        )
        with closing(outcomes):
            for name, outcome in outcomes:
                if isinstance(outcome, WalDamaged):
                    result.files_read += 1
                    reason = outcome.message.removeprefix(f"archived WAL file {name}: ")
                    self.issue(True, name, f"is damaged: {reason}{self._loss(name)}")
                elif isinstance(outcome, StorageNotFound):
                    self.issue(False, name, "disappeared during the check (removed by 'pg prune-wal'?)")
                elif isinstance(outcome, StorageError):
                    self.issue(True, name, f"cannot be read: {outcome}", storage=True)
                else:
                    result.files_read += 1
                    result.bytes_read += outcome.stored_bytes
                    yield name, outcome.head

    def _loss(self, name: str) -> str:
        parsed = parse_wal_file_name(name)
        if parsed.kind is WalFileKind.SEGMENT:
            return f"; {self._consequence(parsed.segment(self.size))[1]}"
        if parsed.kind is WalFileKind.HISTORY:
            return f"; recovery cannot follow timeline {parsed.timeline}"
        return ""


def _runs(segments: list[WalSegment]) -> list[list[WalSegment]]:
    """Consecutive segments of one timeline, grouped."""
    runs: list[list[WalSegment]] = []
    for segment in segments:
        if runs and runs[-1][-1].timeline == segment.timeline and runs[-1][-1].number + 1 == segment.number:
            runs[-1].append(segment)
        else:
            runs.append([segment])
    return runs


def _inferred_segment_size(files: Iterable[_Listed]) -> int:
    """The segment size of a system no base backup records, from its segment names.

    Within one "log" (the middle 8 hex digits) numbering does not depend on the size, so
    only a log followed by a later one tells: its highest segment fixes segments per log.
    """
    top: dict[tuple[int, int], int] = {}
    for f in files:
        if f.parsed.kind is WalFileKind.SEGMENT:
            key = (f.parsed.timeline, f.parsed.log)
            top[key] = max(top.get(key, 0), f.parsed.seg)
    last_log = {timeline: log for timeline, log in sorted(top)}
    complete = [seg + 1 for (timeline, log), seg in top.items() if log < last_log[timeline]]
    if not complete:
        return DEFAULT_SEGMENT_SIZE
    per_log = min(max(1 << (max(complete) - 1).bit_length(), 4), 4096)
    return 0x1_0000_0000 // per_log
