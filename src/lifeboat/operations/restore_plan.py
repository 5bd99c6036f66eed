"""Restore plans as use cases: what ``restore … --plan`` shows before anything is written.

A PostgreSQL plan (:func:`plan_postgres`) makes the restore's own choice
(:func:`lifeboat.operations.pitr.choose_recovery`): the base backup, the timeline, the WAL
range recovery reads and whether every segment of it is archived, the tablespaces and where
they go, the target's state and free space, and the time it should take. Every other kind's
plan comes from its ``plan`` verb (:func:`lifeboat.operations.restore.plan_source`).

The estimate comes from the last drill's measured rates (:func:`measured_rates`); without
a drill it is "unknown". Plans hold only the shared read lock and write nothing.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lifeboat.core.basebackup import BaseBackup, RestoreTarget
from lifeboat.core.tree import Node
from lifeboat.core.units import format_bytes
from lifeboat.core.wal import TimelineHistory, WalSegment, history_file_name, last_archived_on_path, segments_needed
from lifeboat.errors import IntegrityError, LifeboatError, WalMissing
from lifeboat.operations.pitr import (
    PgRestoreRequest,
    check_target_action,
    check_wal,
    choose_recovery,
    recovery_segments,
    tablespace_locations,
    timeline_warnings,
)
from lifeboat.operations.read_lock import read_lock
from lifeboat.operations.records import RecordCache
from lifeboat.repository.repo import Repository
from lifeboat.sources.plan import UNKNOWN, Estimate, PlannedWrite, RestorePlan, count_tree, judge_space, path_state
from lifeboat.sources.postgres import datadir
from lifeboat.sources.postgres.treeparts import DATA, TABLESPACES

# PostgreSQL keeps at most about max_wal_size (1 GiB by default) of WAL in pg_wal while it
# replays: fetched segments are recycled at each restartpoint.
REPLAY_WAL_PEAK = 1 << 30


# --- measured rates ----------------------------------------------------------------------------


@dataclass(frozen=True)
class MeasuredRates:
    """What the last drill of a source measured, as rates a plan scales."""

    drill_time: str
    snapshot: str
    restore_bytes_per_second: float | None  # the restore phase: bytes written per second
    replay_seconds: float | None  # WAL replay, as long as it took then
    start_seconds: float | None  # starting the server until it served


def rates_from_drill(result: Mapping[str, Any]) -> MeasuredRates | None:
    """The rates in a drill's result (its JSON form: ``phases`` [{name, seconds}],
    ``restored_bytes``, ``started``, ``snapshot``); None when it restored nothing measurable."""
    phases: dict[str, float] = {}
    for phase in result.get("phases") or ():
        try:
            phases[str(phase["name"])] = phases.get(str(phase["name"]), 0.0) + float(phase["seconds"])
        except (KeyError, TypeError, ValueError):
            continue
    restored = int(result.get("restored_bytes") or 0)
    seconds = phases.get("restore", 0.0) + phases.get("fetch", 0.0) + phases.get("write", 0.0)
    if restored <= 0 or seconds <= 0:
        return None
    return MeasuredRates(
        drill_time=str(result.get("started", "")),
        snapshot=str(result.get("snapshot", "")),
        restore_bytes_per_second=restored / seconds,
        replay_seconds=phases.get("replay"),
        start_seconds=phases.get("start"),
    )


def measured_rates(repo: Repository, source: str | None, cache: RecordCache | None = None) -> MeasuredRates | None:
    """The rates of the newest drill of ``source`` that measured a restore (None: no drill has
    run). Drill results are records of kind "drill" in the repository (``lifeboat drill``
    saves them; :mod:`lifeboat.operations.records` lists them, through the local cache)."""
    from lifeboat.core.records import DRILL
    from lifeboat.operations.records import list_records

    if not source:
        return None
    for record in list_records(repo, kind=DRILL, source=source, cache=cache).records:  # newest first
        rates = rates_from_drill(record.result)
        if rates is not None:
            return rates
    return None


def estimate(plan_bytes: int, rates: MeasuredRates | None, *, replays: bool = False) -> Estimate:
    """The time to restore ``plan_bytes`` at the measured rate (and, for a recovery, to
    replay and start as long as the drill took)."""
    if rates is None or not rates.restore_bytes_per_second:
        return UNKNOWN
    seconds = plan_bytes / rates.restore_bytes_per_second
    basis = f"the drill of {rates.drill_time}: restore at {format_bytes(rates.restore_bytes_per_second)}/s"
    if replays:
        seconds += (rates.replay_seconds or 0.0) + (rates.start_seconds or 0.0)
        basis += "; WAL replay and start as long as they took then"
    return Estimate(seconds, basis)


# --- PostgreSQL ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class WalRange:
    """The WAL a recovery reads: every segment on the path, which are missing, and how sure."""

    segments: tuple[WalSegment, ...]
    missing: tuple[str, ...]
    required: int  # how many of ``segments`` the restore itself proves present before writing
    reach: str  # how far the range goes, in words
    history_files: tuple[tuple[str, bool], ...]  # (name, archived)

    @property
    def timelines(self) -> list[int]:
        return sorted({s.timeline for s in self.segments})

    @property
    def bytes(self) -> int:
        return sum(s.size for s in self.segments)

    def to_json(self) -> dict[str, Any]:
        return {
            "first": self.segments[0].name if self.segments else None,
            "last": self.segments[-1].name if self.segments else None,
            "segments": len(self.segments),
            "bytes": self.bytes,
            "timelines": self.timelines,
            "history_files": [{"name": n, "archived": a} for n, a in self.history_files],
            "all_present": not self.missing,
            "missing": list(self.missing),
            "reach": self.reach,
        }


def wal_range(
    backup: BaseBackup,
    history: TimelineHistory,
    target: RestoreTarget,
    archived: set[str],
    arrivals: Mapping[str, float],
) -> WalRange:
    """The segments recovery from ``backup`` to ``target`` reads. Known by position for an
    LSN and for latest (the restore's own range). For a time, an estimate from arrival times:
    through the first segment that reached the archive at or after that time (WAL written at
    the target time is archived after it); for an xid or a name, to the end of the archive."""
    size = backup.wal_segment_size
    path = history.path()
    required = recovery_segments(backup, history, target, archived)
    segments = list(required)
    reach = {"lsn": "to the target LSN", "latest": "to the end of the archive"}.get(target.kind, "to consistency")
    if target.kind in ("time", "xid", "name"):
        after = segments[-1].next() if segments else backup.stop_segment.next()
        last = last_archived_on_path(path, archived, after.start_lsn, size)
        if last is not None and last.start_lsn >= after.start_lsn:
            beyond = segments_needed(path, after.start_lsn, last.start_lsn, size)
            if target.kind == "time" and target.time is not None:
                moment = target.time.timestamp()
                for number, segment in enumerate(beyond):
                    if arrivals.get(segment.name, 0.0) >= moment:
                        beyond = beyond[: number + 1]
                        reach = "to the first segment archived after the target time"
                        break
                else:
                    reach = "to the end of the archive (no WAL archived after the target time yet)"
            else:
                reach = f"to the end of the archive (where the {target.kind} lies is known only by replaying)"
            segments += beyond
    missing = tuple(s.name for s in segments if s.name not in archived)
    histories = tuple((history_file_name(t), history_file_name(t) in archived) for t in [history.timeline] if t > 1)
    return WalRange(tuple(segments), missing, len(required), reach, histories)


def plan_postgres(repo: Repository, request: PgRestoreRequest, *, records: RecordCache | None = None) -> RestorePlan:
    """What ``restore postgres`` would do for ``request``, refused where it would fail, with
    nothing written. Raised: what makes any plan impossible (no base backup reaches the
    target, a wrong option); recorded as refusals: what the restore would stop at."""
    check_target_action(request)
    with read_lock(repo, use_lock=True, wait=request.lock_wait):
        chosen = choose_recovery(repo, request)
        backup, history = chosen.backup, chosen.history
        snapshot = repo.load_snapshot(backup.snapshot_id)
        arrivals = {f.name: f.mtime for f in chosen.files}
        wal = wal_range(backup, history, request.target, chosen.archived, arrivals)
        locations = tablespace_locations(backup, request.tablespace_map)
        root = repo.load_tree(snapshot.tree)
        data_node = root.get(DATA)
        if data_node is None or data_node.subtree is None:
            raise IntegrityError(f"snapshot {snapshot.short_id} has no data directory")
        spaces = root.get(TABLESPACES)
        space_tree = repo.load_tree(spaces.subtree) if spaces is not None and spaces.subtree else None
        data = count_tree(repo, data_node.subtree)
        space_nodes: dict[int, Node | None] = {
            oid: space_tree.get(str(oid)) if space_tree else None for oid in locations
        }
        plan = RestorePlan(
            kind="postgres",
            snapshot=backup.snapshot_id,
            snapshot_time=snapshot.time.isoformat(timespec="seconds"),
            destination=f"data directory {os.path.abspath(request.target_dir)}",
        )
        target_dir = os.path.abspath(request.target_dir)
        plan.writes.append(
            PlannedWrite("data directory", target_dir, data.bytes, data.files, state=path_state(target_dir))
        )
        names = {t.oid: t.name for t in backup.tablespaces}
        for oid, location in locations.items():
            node = space_nodes[oid]
            if node is None or node.subtree is None:
                plan.refuse(IntegrityError(f"snapshot {snapshot.short_id} lacks tablespace {oid}"))
                continue
            counted = count_tree(repo, node.subtree)
            plan.writes.append(
                PlannedWrite(
                    f"tablespace {oid} ({names.get(oid, '?')})",
                    location,
                    counted.bytes,
                    counted.files,
                    state=path_state(location),
                )
            )
        plan.writes.append(
            PlannedWrite(
                "WAL to replay (fetched into pg_wal, recycled as replayed)",
                os.path.join(target_dir, "pg_wal"),
                wal.bytes,
                len(wal.segments),
                state="",
                peak=REPLAY_WAL_PEAK,
            )
        )
        _judge_wal(plan, backup, chosen.history, request.target, chosen.archived, wal)
        plan.warnings.extend(timeline_warnings(chosen.timeline))
        plan.warnings.extend(f"{bad.describe()}; it was not considered" for bad in chosen.unreadable)
        plan.attempt(
            lambda: datadir.check_take_over(target_dir, force=request.force, what="target directory"),
            "the target directory can be written",
        )
        for location in locations.values():
            plan.attempt(
                functools.partial(datadir.check_take_over, location, force=request.force, what="tablespace directory"),
                f"tablespace directory {location} can be written",
            )
        judge_space(plan, force=request.force)
    plan.details = {
        "base_backup": {
            "snapshot": backup.snapshot_id,
            "start_time": backup.start_time.isoformat(),
            "stop_time": backup.stop_time.isoformat(),
            "timeline": backup.timeline,
            "start_lsn": str(backup.start_lsn),
            "stop_lsn": str(backup.stop_lsn),
            "method": backup.method,
            "version": backup.version,
        },
        "target": request.target.describe(),
        "timeline": history.timeline,
        "timeline_rule": chosen.timeline.rule,
        "wal": wal.to_json(),
        "tablespaces": [
            {"oid": t.oid, "name": t.name, "recorded": t.location, "restore_to": locations.get(t.oid, t.location)}
            for t in backup.tablespaces
        ],
    }
    plan.lines = _postgres_lines(backup, request, history.timeline, wal, locations)
    plan.unchecked.append("the WAL's content (read back and verified when the restore runs)")
    plan.estimate = estimate(
        plan.bytes - wal.bytes, measured_rates(repo, request.source or snapshot.source, records), replays=True
    )
    return plan


def _judge_wal(
    plan: RestorePlan,
    backup: BaseBackup,
    history: TimelineHistory,
    target: RestoreTarget,
    archived: set[str],
    wal: WalRange,
) -> None:
    """Missing segments the recovery must pass make the target unreachable (exit 13, as the
    restore's own WAL check); otherwise that check runs as the restore runs it (without
    reading the segments back)."""
    for name, present in wal.history_files:
        if not present:
            plan.refuse(WalMissing(f"history file {name} of timeline {history.timeline} is missing from the archive"))
    if wal.missing:
        shown = ", ".join(wal.missing[:10]) + (f" and {len(wal.missing) - 10} more" if len(wal.missing) > 10 else "")
        plan.refuse(
            WalMissing(
                f"cannot reach {target.describe()}: {len(wal.missing)} WAL segment(s) recovery from base backup "
                f"{backup.snapshot_id[:8]} must pass are missing from the archive: {shown}",
                hint="choose a target before the gap ('lifeboat pg info' shows the archived ranges), "
                "or put the segments back",
            )
        )
        return
    try:
        _, warnings = check_wal(backup, history, target, archived)
    except LifeboatError as exc:
        plan.refuse(exc)
        return
    plan.warnings.extend(warnings)
    plan.checks.append(f"all {len(wal.segments)} WAL segments of the range are in the archive")


def _postgres_lines(
    backup: BaseBackup, request: PgRestoreRequest, timeline: int, wal: WalRange, locations: Mapping[int, str]
) -> list[str]:
    lines = [
        f"base backup: {backup.snapshot_id[:8]}, consistent at {backup.stop_time.isoformat(timespec='seconds')} "
        f"(started {backup.start_time.isoformat(timespec='seconds')}), timeline {backup.timeline}, "
        f"LSN {backup.start_lsn}..{backup.stop_lsn}",
        f"recovery target: {request.target.describe()} on timeline {timeline}",
    ]
    if wal.segments:
        on = ", ".join(str(t) for t in wal.timelines)
        histories = ", ".join(n for n, _ in wal.history_files)
        lines.append(
            f"WAL: {wal.segments[0].name}..{wal.segments[-1].name} ({len(wal.segments)} segments, "
            f"{format_bytes(wal.bytes)}) on timeline(s) {on}"
            + (f" through {histories}" if histories else "")
            + f", {wal.reach}: "
            + ("all present" if not wal.missing else f"{len(wal.missing)} missing")
        )
    else:
        lines.append("WAL: none needed beyond the base backup's own")
    for oid, location in locations.items():
        recorded = next((t.location for t in backup.tablespaces if t.oid == oid), "")
        moved = "" if location == recorded else f" (recorded at {recorded})"
        lines.append(f"tablespace {oid}: to {location}{moved}")
    return lines
