"""Restore a PostgreSQL cluster to a point in time: choose a base backup, prove the WAL is
there, lay the files down, write the recovery settings, and optionally start it.

The timeline is resolved here, never left to PostgreSQL: ``latest`` (the default) is the
*live* timeline — the one whose WAL most recently reached the repository among those
descending from a base backup (:mod:`lifeboat.core.timelines`) — and the recovery settings
name its number, so a copy that archived a newer-numbered timeline cannot silently become
what a restore returns; the other timelines that matter are named in warnings. The base
backup is chosen for the target (:func:`choose_base_backup`) on that timeline's history.
Before any file is written, the archive is checked for every segment recovery will need up
to the target (for latest: to the end of the archive), and each of them is read back and
verified; a missing or damaged one fails the restore with its name, and so does a missing
first segment of a timeline that PostgreSQL would replace with an older timeline's file.
Targets known only by time, xid or name are checked up to consistency; the fetcher stops
recovery if it meets a gap later. Restored copies do not archive unless asked
(``archive``). Restores never write into a running cluster or a non-empty directory unless
forced (option ``force`` empties it first).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lifeboat.core.basebackup import BaseBackup, RestoreTarget, base_backups, choose_base_backup, on_history
from lifeboat.core.progress import NoticeSink, Progress
from lifeboat.core.timelines import ArchivedTimeline, OtherTimeline, live_timeline, not_followed
from lifeboat.core.wal import (
    DEFAULT_SEGMENT_SIZE,
    TimelineHistory,
    TimelinePeriod,
    WalFileKind,
    WalSegment,
    history_file_name,
    last_archived_on_path,
    segment_recovery_reads,
    segments_needed,
    timeline_for_segment,
)
from lifeboat.errors import (
    IntegrityError,
    ObjectNotFound,
    UsageError,
    WalMissing,
    config_key,
    option,
    spell_options,
)
from lifeboat.operations.read_lock import read_lock
from lifeboat.repository.repo import Repository
from lifeboat.repository.wal import WalArchive, archived_systems
from lifeboat.repository.wallisting import ArchivedFile
from lifeboat.repository.walverify import verify_recovery_wal
from lifeboat.sources.files.restorer import FileRestorer, RestoreOptions, RestoreResult
from lifeboat.sources.postgres import datadir, recoveryconf
from lifeboat.sources.postgres.recovery import RecoveryOutcome, start_and_wait
from lifeboat.sources.postgres.treeparts import DATA, TABLESPACES


@dataclass(frozen=True)
class PgRestoreRequest:
    target_dir: str
    restore_command: str  # what the restored server runs to fetch WAL
    target: RestoreTarget = field(default_factory=RestoreTarget)
    timeline: str = "latest"  # latest | current | <number>
    snapshot: str | None = None
    system_id: str | None = None
    source: str | None = None
    tablespace_map: Mapping[str, str] = field(default_factory=dict)  # oid or name → directory
    force: bool = False
    workers: int = 2
    target_action: str = "promote"  # promote | pause | shutdown
    archive: bool = False  # keep archive_mode: the promoted copy archives its new timeline here
    port: int | None = None
    start: bool = False
    start_timeout: float = 3600.0
    lock_wait: float = 0.0
    # more settings for the restored server, written after the recovery settings (a scratch
    # cluster's private socket, port and log; operations/scratch.py)
    settings: Mapping[str, str] = field(default_factory=dict)


@dataclass
class PgRestoreResult:
    backup: BaseBackup
    target_dir: str
    timeline: int
    restored: RestoreResult
    restore_seconds: float
    wal_checked_until: str
    tablespaces: dict[int, str]
    recovery: RecoveryOutcome | None = None
    warnings: list[str] = field(default_factory=list)  # options named as errors.option markers
    total_seconds: float = 0.0
    timeline_rule: str = "requested"  # live | newest-backup | requested | current
    other_timelines: list[OtherTimeline] = field(default_factory=list)
    archive: bool = False

    def to_json(self, spell: Callable[[str], str] = config_key) -> dict[str, Any]:
        """The JSON form; the options the warnings name are spelled by ``spell``."""
        return {
            "snapshot": self.backup.snapshot_id,
            "backup": self.backup.to_json(),
            "target_dir": self.target_dir,
            "timeline": self.timeline,
            "timeline_rule": self.timeline_rule,
            "other_timelines": [o.to_json() for o in self.other_timelines],
            "archive": self.archive,
            "restored": self.restored.to_json(),
            "restore_seconds": round(self.restore_seconds, 3),
            "wal_checked_until": self.wal_checked_until,
            "tablespaces": {str(k): v for k, v in self.tablespaces.items()},
            "recovery": None
            if self.recovery is None
            else {
                "state": self.recovery.state,
                "seconds": round(self.recovery.seconds, 3),
                "timeline": self.recovery.timeline,
                "stop": self.recovery.stop,
                "log": self.recovery.log_file,
                "port": self.recovery.port,
            },
            "total_seconds": round(self.total_seconds, 3),
            "warnings": [spell_options(w, spell) for w in self.warnings],
        }


# --- choosing ------------------------------------------------------------------------------------


def read_timelines(
    archive: WalArchive, files: Iterable[ArchivedFile], backups: Iterable[BaseBackup], size: int
) -> tuple[dict[int, ArchivedTimeline], dict[int, str]]:
    """Every timeline the archive or a base backup names, and the history files that could not
    be read (timeline → what is wrong; such a timeline is left out)."""
    arrivals: dict[int, dict[int, float]] = {}
    history_files: dict[int, tuple[str, float]] = {}
    for f in files:
        if f.parsed.kind is WalFileKind.SEGMENT:
            arrivals.setdefault(f.parsed.timeline, {})[f.parsed.segment(size).number] = f.mtime
        elif f.parsed.kind is WalFileKind.HISTORY:
            history_files[f.parsed.timeline] = (f.name, f.mtime)
    return timelines_of(archive, arrivals, history_files, backups)


def timelines_of(
    archive: WalArchive,
    arrivals: dict[int, dict[int, float]],
    history_files: dict[int, tuple[str, float]],
    backups: Iterable[BaseBackup],
) -> tuple[dict[int, ArchivedTimeline], dict[int, str]]:
    """:func:`read_timelines` from what the listing gave already: per timeline, when each
    segment arrived (segment number → time) and its history file's name and time."""
    problems: dict[int, str] = {}
    parsed: dict[int, TimelineHistory] = {}
    for timeline, (name, _mtime) in sorted(history_files.items()):
        try:
            parsed[timeline] = TimelineHistory.parse(timeline, archive.fetch(name).decode("utf-8", "replace"))
        except ValueError as exc:
            problems[timeline] = f"archived {name} is malformed: {exc}"
        except IntegrityError as exc:
            problems[timeline] = str(exc)
    numbers = {*arrivals, *history_files, *(b.timeline for b in backups)}
    timelines = {
        n: ArchivedTimeline(
            timeline=n,
            history=parsed.get(n) or TimelineHistory.root(n),
            history_file=n in parsed,
            born=history_files[n][1] if n in parsed else None,
            arrivals=arrivals.get(n, {}),
        )
        for n in sorted(numbers - set(problems))
    }
    return timelines, problems


def pick_system(repo: Repository, backups: list[BaseBackup], wanted: str | None) -> str:
    systems = sorted({b.system_id for b in backups} | set(archived_systems(repo)))
    if wanted:
        if wanted not in systems:
            raise ObjectNotFound(f"the repository holds nothing of database system {wanted}")
        return wanted
    with_backups = sorted({b.system_id for b in backups})
    if not with_backups:
        raise ObjectNotFound(
            "the repository holds no PostgreSQL base backup", hint="take one: lifeboat backup postgres"
        )
    if len(with_backups) > 1:
        raise UsageError(
            f"the repository holds backups of {len(with_backups)} database systems: {', '.join(with_backups)}",
            hint=f"pick one with {option('system_id')} (or {option('source')})",
        )
    return with_backups[0]


@dataclass(frozen=True)
class TimelinePlan:
    """The timeline a restore follows, how it was chosen, and the others worth naming."""

    history: TimelineHistory
    rule: str  # live | newest-backup | requested | current
    others: tuple[OtherTimeline, ...] = ()
    skipped: tuple[str, ...] = ()  # history files that could not be read


def plan_timeline(
    requested: str,
    backups: Sequence[BaseBackup],
    timelines: Mapping[int, ArchivedTimeline],
    chosen: BaseBackup | None,
    *,
    problems: Mapping[int, str] | None = None,
    size: int = DEFAULT_SEGMENT_SIZE,
) -> TimelinePlan:
    """Resolve ``--timeline`` (latest, current or a number) to one timeline's history."""
    problems = problems or {}
    if chosen is None and not backups:
        raise ObjectNotFound(
            "the repository holds no PostgreSQL base backup of this system", hint="take one: lifeboat backup postgres"
        )
    if requested == "latest":
        pool = [chosen] if chosen else list(backups)
        eligible = [n for n, t in timelines.items() if any(on_history(b, t.history) for b in pool)]
        if not eligible:
            raise ObjectNotFound("no timeline in the archive descends from a base backup")
        live = live_timeline(timelines, eligible)
        rule = "live"
        if live is None:  # no segment archived at all: the newest base backup's timeline
            newest = max(pool, key=lambda b: (b.stop_time, b.stop_lsn))
            live = newest.timeline if newest.timeline in eligible else max(eligible)
            rule = "newest-backup"
        followed = timelines[live]
        return TimelinePlan(
            followed.history, rule, tuple(not_followed(timelines, followed, size)), tuple(problems.values())
        )
    if requested == "current":
        timeline = (chosen or max(backups, key=lambda b: b.stop_time)).timeline
        if timeline in problems:
            raise IntegrityError(problems[timeline])
        entry = timelines.get(timeline)
        return TimelinePlan(entry.history if entry else TimelineHistory.root(timeline), "current")
    try:
        timeline = int(requested, 16) if requested.lower().startswith("0x") else int(requested)
    except ValueError:
        raise UsageError(f"{option('timeline')} {requested!r}: give latest, current or a number") from None
    if timeline in problems:
        raise IntegrityError(problems[timeline])
    entry = timelines.get(timeline)
    if timeline != 1 and (entry is None or not entry.history_file):
        raise WalMissing(
            f"timeline {timeline} has no history file ({history_file_name(timeline)}) in the archive",
            hint="'lifeboat pg info' lists the archived timelines; "
            f"{option('timeline')} current follows the base backup's own",
        )
    return TimelinePlan(entry.history if entry else TimelineHistory.root(1), "requested")


def recovery_timeline_setting(history: TimelineHistory, timelines: Mapping[int, ArchivedTimeline]) -> str:
    """``recovery_target_timeline``: the number, so PostgreSQL cannot pick another; 'current'
    for a timeline without a history file (PostgreSQL refuses such a number)."""
    entry = timelines.get(history.timeline)
    if history.timeline == 1 or (entry is not None and entry.history_file):
        return str(history.timeline)
    return "current"


def timeline_warnings(plan: TimelinePlan) -> list[str]:
    """What a restore to the live timeline (and ``pg info``) says about the timelines it does not follow."""
    warnings = [f"{problem}; that timeline was not considered" for problem in plan.skipped]
    live = plan.history.timeline
    for other in plan.others:
        origin = f" (from timeline {other.parent} at {other.switchpoint})" if other.parent else ""
        if other.last_wal:
            newest = f"newest WAL {other.last_wal}, archived {_when(other.last_arrival)}"
            pick = f"to restore it give {option('timeline')} {other.timeline}"
        else:
            newest = "none of its WAL is archived yet"
            pick = f"once its WAL is archived, {option('timeline')} {other.timeline} restores it"
        if other.newer_numbered:
            text = (
                f"timeline {other.timeline}{origin} is newer-numbered than timeline {live}, which a default "
                f"restore follows because its WAL reached the repository most recently ({newest})"
            )
            if other.wal_after_branch:
                text += f"; it kept receiving WAL after timeline {live} began"
            warnings.append(f"{text}; {pick}")
        else:
            warnings.append(
                f"timeline {other.timeline}{origin} kept receiving WAL that is not on timeline {live}'s history "
                f"after timeline {live} began ({newest}); if timeline {live} is a copy rather than the "
                f"production server, {pick}"
            )
    return warnings


def _when(epoch: float | None) -> str:
    return "?" if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def recovery_segments(
    backup: BaseBackup, history: TimelineHistory, target: RestoreTarget, archived: set[str]
) -> list[WalSegment]:
    """The segments recovery from ``backup`` must read, as far as the target is known by
    position: to the target LSN, to the end of the archive (latest), else to consistency."""
    size = backup.wal_segment_size
    path = history.path()
    first = backup.stop_segment.next().start_lsn if backup.wal_included else backup.start_lsn
    consistent = -1 if backup.wal_included else max(backup.stop_lsn - 1, backup.start_lsn)
    if target.kind == "lsn" and target.lsn is not None:
        end = max(target.lsn, consistent)
    elif target.kind == "latest":
        end = max(_archive_end(path, archived, size, first), consistent)
    else:
        end = consistent
    return segments_needed(path, first, end, size) if end >= first else []


def check_wal(
    backup: BaseBackup,
    history: TimelineHistory,
    target: RestoreTarget,
    archived: set[str],
    verify: Callable[[list[WalSegment]], object] | None = None,
) -> tuple[str, list[str]]:
    """Prove the archive holds the WAL recovery will read, and with ``verify``, that each
    of those segments reads back whole; returns (last segment checked, warnings)."""
    size = backup.wal_segment_size
    path = history.path()
    warnings: list[str] = []
    needed = recovery_segments(backup, history, target, archived)
    for segment in needed:
        if segment.name not in archived:
            raise WalMissing(
                f"WAL segment {segment.name} is missing from the archive: recovery from base backup "
                f"{backup.snapshot_id[:8]} to {target.describe()} would have to pass it",
                hint="choose a target before the gap ('lifeboat pg info' shows the archived ranges), "
                "or put the segment back",
            )
    after = needed[-1].next() if needed else backup.stop_segment.next()
    if target.kind in ("latest", "time", "xid", "name"):
        _refuse_fallback(path, archived, size, after.number)
    if verify is not None:
        verify(needed)
    if target.kind in ("time", "xid", "name"):
        gap = _next_gap(path, archived, size, after)
        if gap is not None:
            warnings.append(
                f"the archive lacks WAL segment {gap.name}: if the {target.kind} target lies beyond it, "
                "recovery will stop there with an error naming it"
            )
    return (needed[-1].name if needed else backup.stop_segment.name), warnings


def _refuse_fallback(path: Sequence[TimelinePeriod], archived: set[str], size: int, number: int) -> None:
    """Refuse when recovery, at the first segment from ``number`` on that the archive lacks,
    would open an older timeline's file of that number instead (PostgreSQL's fallback) and
    replay WAL that is not on this history as if it were."""
    while WalSegment(timeline_for_segment(path, number, size), number, size).name in archived:
        number += 1
    expected = WalSegment(timeline_for_segment(path, number, size), number, size)
    previous = timeline_for_segment(path, number - 1, size) if number > 0 else 0
    read = segment_recovery_reads(path, number, archived, previous=previous, size=size)
    if read is None:
        return
    raise WalMissing(
        f"timeline {expected.timeline}'s WAL segment {expected.name} is not in the archive but "
        f"{read.name} of timeline {read.timeline} is: PostgreSQL would replay that one in its place and go on "
        f"with timeline {read.timeline}'s WAL past the point where timeline {expected.timeline} branched off",
        hint=f"restore timeline {read.timeline} ({option('timeline')} {read.timeline}), whose WAL is the same up to "
        f"that point, or first archive {expected.name} from the server on timeline {expected.timeline} "
        "(SELECT pg_switch_wal() there)",
    )


def _archive_end(path: Sequence[TimelinePeriod], archived: set[str], size: int, first: int) -> int:
    """The last LSN recovery to 'latest' can reach: the end of the last archived segment on the path.

    A missing segment before later archived ones is a gap: the returned end lies past it,
    so the check names it.
    """
    last = last_archived_on_path(path, archived, first, size)
    if last is None:
        return -1  # nothing archived after ``first``: recovery ends at consistency
    return last.start_lsn


def _next_gap(path: Sequence[TimelinePeriod], archived: set[str], size: int, after: WalSegment) -> WalSegment | None:
    end = _archive_end(path, archived, size, after.start_lsn)
    if end < after.start_lsn:
        return None
    for segment in segments_needed(path, after.start_lsn, end, size):
        if segment.name not in archived:
            return segment
    return None


# --- laying the files down -------------------------------------------------------------------------


def tablespace_locations(backup: BaseBackup, mapping: Mapping[str, str]) -> dict[int, str]:
    known = {str(t.oid) for t in backup.tablespaces} | {t.name for t in backup.tablespaces}
    unknown = sorted(set(mapping) - known)
    if unknown:
        names = ", ".join(f"{t.name} ({t.oid})" for t in backup.tablespaces) or "none"
        raise UsageError(f"{option('tablespace')} names {', '.join(unknown)}, not in the backup (it has: {names})")
    locations: dict[int, str] = {}
    for space in backup.tablespaces:
        chosen = mapping.get(str(space.oid)) or mapping.get(space.name) or space.location
        if not os.path.isabs(chosen):
            raise UsageError(f"tablespace {space.name}: {chosen!r} must be an absolute path")
        locations[space.oid] = chosen
    return locations


def recovery_settings(request: PgRestoreRequest, timeline: str) -> dict[str, str]:
    """What the restored server is told in ``postgresql.auto.conf``: how to fetch WAL, where to stop."""
    settings = {"restore_command": request.restore_command}
    settings.update(recoveryconf.target_settings(request.target, timeline, request.target_action))
    if request.port:
        settings["port"] = str(request.port)
    if not request.archive:
        settings["archive_mode"] = "off"
    settings.update(request.settings)
    return settings


# --- the use case ------------------------------------------------------------------------------------


def recovery_request(
    ref: str,
    target_dir: str,
    *,
    restore_command: str,
    source: str | None = None,
    force: bool = False,
    workers: int = 2,
    lock_wait: float = 0.0,
) -> PgRestoreRequest:
    """The request of a generic restore (``restore --source NAME REF``) of a kind restored by
    recovery: ``latest`` recovers to the end of the archive on the live timeline from the base
    backup chosen for it; a snapshot id recovers from that base backup; into ``target_dir``."""
    snapshot, sep, _path = ref.partition(":")
    if sep:
        raise UsageError(
            f"{ref!r}: a PostgreSQL base backup is restored whole, not a path of it",
            hint="give 'latest' or a snapshot id; 'lifeboat restore --target DIR ID:/data/PATH' without "
            f"{option('source')} lays files of it down",
        )
    return PgRestoreRequest(
        target_dir=target_dir,
        restore_command=restore_command,
        snapshot=None if snapshot == "latest" else snapshot,
        source=source,
        force=force,
        workers=workers,
        lock_wait=lock_wait,
    )


@dataclass
class RecoveryChoice:
    """What a recovery request resolves to in the repository: the base backup, the timeline
    followed, and the archive it reads WAL from."""

    backup: BaseBackup
    timeline: TimelinePlan
    archive: WalArchive
    files: list[ArchivedFile]
    archived: set[str]  # names of the archived segments and history files
    timelines: dict[int, ArchivedTimeline]
    unreadable: list[Any]  # snapshots that could not be read (passed over)

    @property
    def history(self) -> TimelineHistory:
        return self.timeline.history


def choose_recovery(repo: Repository, request: PgRestoreRequest) -> RecoveryChoice:
    """Resolve ``request`` to a base backup on a timeline (under the caller's read lock):
    the same choice for a restore and for its plan."""
    snapshots, unreadable = repo.snapshots_and_damage()  # a damaged one must not stop a recovery
    if request.source:
        snapshots = [s for s in snapshots if s.source == request.source]
    backups = base_backups(snapshots)
    if request.snapshot:
        wanted = repo.resolve_snapshot(request.snapshot, candidates=None)
        chosen_one = BaseBackup.of(wanted)
        system_id = chosen_one.system_id
        backups = [b for b in base_backups([wanted, *snapshots]) if b.system_id == system_id]
    else:
        chosen_one = None
        system_id = pick_system(repo, backups, request.system_id)
        backups = [b for b in backups if b.system_id == system_id]
    archive = WalArchive(repo, system_id)
    files = list(archive.files())
    archived = {f.name for f in files if f.parsed.kind in (WalFileKind.SEGMENT, WalFileKind.HISTORY)}
    size = (chosen_one or backups[-1]).wal_segment_size if chosen_one or backups else DEFAULT_SEGMENT_SIZE
    timelines, problems = read_timelines(archive, files, backups, size)
    plan = plan_timeline(request.timeline, backups, timelines, chosen_one, problems=problems, size=size)
    history = plan.history
    if chosen_one is not None:
        if not on_history(chosen_one, history):
            raise UsageError(
                f"base backup {chosen_one.snapshot_id[:8]} (timeline {chosen_one.timeline}) is not on the "
                f"path of timeline {history.timeline}",
                hint=f"pick another {option('snapshot')} or {option('timeline')}",
            )
        backup = chosen_one
    else:
        found = choose_base_backup(backups, request.target, history)
        if found is None:
            oldest = min(backups, key=lambda b: b.stop_time) if backups else None
            raise ObjectNotFound(
                f"no base backup can reach {request.target.describe()} on timeline {history.timeline}"
                + (f"; the oldest became consistent at {oldest.stop_time.isoformat()}" if oldest else ""),
                hint="'lifeboat pg info' shows the recoverable window",
            )
        backup = found
    return RecoveryChoice(backup, plan, archive, files, archived, timelines, list(unreadable))


def check_target_action(request: PgRestoreRequest) -> None:
    if request.target_action not in ("promote", "pause", "shutdown"):
        raise UsageError(f"{option('target_action')} {request.target_action!r}: use promote, pause or shutdown")


def restore_postgres(
    repo: Repository,
    request: PgRestoreRequest,
    *,
    progress: Progress | None = None,
    notify: NoticeSink | None = None,
    clock: Callable[[], datetime] | None = None,
) -> PgRestoreResult:
    """Restore a base backup and the recovery settings for ``request.target``; optionally start it."""
    clock = clock or (lambda: datetime.now(UTC))
    started = time.monotonic()
    progress = progress or Progress()
    check_target_action(request)
    with read_lock(repo, use_lock=True, wait=request.lock_wait):
        chosen = choose_recovery(repo, request)
        backup, history, plan, archive = chosen.backup, chosen.history, chosen.timeline, chosen.archive
        archived, timelines, unreadable = chosen.archived, chosen.timelines, chosen.unreadable
        checked, wal_warnings = check_wal(
            backup,
            history,
            request.target,
            archived,
            verify=lambda needed: verify_recovery_wal(archive, needed, history, workers=request.workers),
        )
        warnings = [
            *(f"{bad.describe()}; it was not considered" for bad in unreadable),
            *timeline_warnings(plan),
            *wal_warnings,
        ]
        locations = tablespace_locations(backup, request.tablespace_map)
        target = Path(os.path.abspath(request.target_dir))
        datadir.take_over(str(target), force=request.force, what="target directory")
        for location in locations.values():
            datadir.take_over(location, force=request.force, what="tablespace directory")
        snapshot = repo.load_snapshot(backup.snapshot_id)
        root = repo.load_tree(snapshot.tree)
        data_node = root.get(DATA)
        if data_node is None or data_node.subtree is None:
            raise IntegrityError(f"snapshot {snapshot.short_id} has no data directory")
        options = RestoreOptions(target=str(target), workers=request.workers)
        restored = FileRestorer(repo, options, progress=progress, notify=notify).restore(
            repo.load_tree(data_node.subtree)
        )
        spaces = root.get(TABLESPACES)
        space_tree = repo.load_tree(spaces.subtree) if spaces is not None and spaces.subtree else None
        for oid, location in locations.items():
            node = space_tree.get(str(oid)) if space_tree else None
            if node is None or node.subtree is None:
                raise IntegrityError(f"snapshot {snapshot.short_id} lacks tablespace {oid}")
            done = FileRestorer(
                repo, RestoreOptions(target=location, workers=request.workers), progress=progress, notify=notify
            ).restore(repo.load_tree(node.subtree))
            datadir.seal_tablespace(location, node)
            restored.files += done.files
            restored.bytes += done.bytes
            restored.errors += done.errors
            restored.damaged.extend(done.damaged)
            restored.unreadable.extend(done.unreadable)
    failure = restored.failure()
    if failure is not None:  # damaged data 13, unreadable storage 14, anything else 1
        raise type(failure)(f"the restored cluster is incomplete: {failure.message}", hint=failure.hint)
    settings = recovery_settings(request, recovery_timeline_setting(history, timelines))
    datadir.prepare_recovery(target, data_node, locations, settings, when=clock())
    result = PgRestoreResult(
        backup=backup,
        target_dir=str(target),
        timeline=history.timeline,
        restored=restored,
        restore_seconds=time.monotonic() - started,
        wal_checked_until=checked,
        tablespaces=locations,
        warnings=warnings,
        timeline_rule=plan.rule,
        other_timelines=list(plan.others),
        archive=request.archive,
    )
    if request.start:
        result.recovery = start_and_wait(
            str(target),
            port=request.port,
            action=request.target_action,
            timeout=request.start_timeout,
            major=str(backup.version_num // 10000),
        )
        datadir.drop_prefetched_wal(target)
    result.total_seconds = time.monotonic() - started
    return result
