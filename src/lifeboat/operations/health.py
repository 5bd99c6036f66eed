"""``lifeboat health``: is every source restorable within its objectives, right now?

Per source — each configured one, and each one the repository holds backups of without a
configuration ("unconfigured") — the newest restorable point against ``rpo``: a snapshot's
time, or for PostgreSQL the end of the archived WAL that recovery from a usable base backup
reaches (the window: its oldest restorable point, and segments missing inside it). For a
PostgreSQL cluster that can be reached: the archiver, the ``.ready`` backlog and Lifeboat's
spool (:mod:`lifeboat.operations.health_pg`). For the repository: reachable, free space
where it can be known, stale locks. The last verify and drill of each source, from the
results recorded in the repository. Each fact is judged by the rules of
:mod:`lifeboat.core.health`; the report's state is the worst.

It must answer in about a second on a repository with 5,000 snapshots and 100,000 WAL
objects: snapshot records come from the local metadata cache
(:mod:`lifeboat.operations.metacache`, checked against one listing), and WAL is judged from
one listing of *names* (:func:`lifeboat.storage.base.list_names`) with a ``stat`` only of
the few objects whose time matters (:mod:`lifeboat.core.walwindow`).

Nothing here prints or reads the environment: the front end passes the configuration, how
to open the repository, the recorded results and the state directory.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from lifeboat.core.basebackup import KIND as POSTGRES_KIND
from lifeboat.core.basebackup import BaseBackup, base_backups
from lifeboat.core.health import (
    VERIFY_MAX_AGE,
    Check,
    RecordedResult,
    State,
    drill_max_age,
    judge_archiver,
    judge_free_space,
    judge_ready,
    judge_recorded,
    judge_rpo,
    worst,
)
from lifeboat.core.snapshot import Snapshot
from lifeboat.core.timelines import ArchivedTimeline
from lifeboat.core.units import parse_duration
from lifeboat.core.wal import DEFAULT_SEGMENT_SIZE, TimelineHistory, WalSegment, segments_per_log
from lifeboat.core.walwindow import WalWindow, wal_window
from lifeboat.errors import LifeboatError, StorageNotFound
from lifeboat.operations.health_pg import ClusterProbe
from lifeboat.operations.metacache import CacheStats, MetadataCache
from lifeboat.operations.walcatalog import WalCatalogue
from lifeboat.repository.repo import Repository
from lifeboat.repository.wal import WAL_PREFIX, WalArchive, archived_systems
from lifeboat.repository.wallisting import WalListing
from lifeboat.storage.base import list_names, lists_names_cheaply, space_report

REPOSITORY = "repository"
_SEGMENT_NAME = re.compile(r"^[0-9A-F]{24}$")
_HISTORY_NAME = re.compile(r"^[0-9A-F]{8}\.history$")
_TIMELINE_DIR = re.compile(r"^[0-9A-F]{8}$")

# What a front end gives to read the recorded verify and drill results: (kind, source) → result.
RecordedResults = Callable[[Repository], Mapping[tuple[str, str], RecordedResult]]
ClusterProber = Callable[[Any], ClusterProbe]  # a postgres source's configuration → its probe


@dataclass
class SourceHealth:
    """One source's checks and the facts behind them."""

    name: str
    kind: str
    configured: bool
    rpo: timedelta | None = None
    newest_restorable: datetime | None = None
    oldest_restorable: datetime | None = None
    snapshots: int = 0
    checks: list[Check] = field(default_factory=list)
    wal: dict[str, Any] | None = None  # PostgreSQL: the window on the repository's WAL
    cluster: ClusterProbe | None = None  # PostgreSQL: the live cluster, when probed
    last_backup: Snapshot | None = None  # the newest snapshot: its summary has the backup's counters
    wal_arrived: datetime | None = None  # PostgreSQL: when the live timeline's newest segment was stored
    recorded: dict[str, RecordedResult] = field(default_factory=dict)  # "verify"/"drill" → the newest record

    @property
    def state(self) -> State:
        return worst(c.state for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.name,
            "kind": self.kind,
            "configured": self.configured,
            "state": self.state.name,
            "rpo_seconds": self.rpo.total_seconds() if self.rpo is not None else None,
            "newest_restorable": self.newest_restorable.isoformat() if self.newest_restorable else None,
            "oldest_restorable": self.oldest_restorable.isoformat() if self.oldest_restorable else None,
            "snapshots": self.snapshots,
            "wal": self.wal,
            "cluster": self.cluster.to_json() if self.cluster else None,
            "checks": [c.to_json() for c in self.checks],
        }


@dataclass
class RepositoryHealth:
    location: str = ""
    reachable: bool = False
    snapshots: int = 0
    free_bytes: int | None = None
    size_bytes: int | None = None
    packs: int | None = None  # the packs the index lists, and their bytes (None: not known)
    data_bytes: int | None = None
    locks: int = 0
    stale_locks: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    @property
    def state(self) -> State:
        return worst(c.state for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {
            "location": self.location,
            "reachable": self.reachable,
            "state": self.state.name,
            "snapshots": self.snapshots,
            "free_bytes": self.free_bytes,
            "size_bytes": self.size_bytes,
            "packs": self.packs,
            "data_bytes": self.data_bytes,
            "locks": self.locks,
            "stale_locks": self.stale_locks,
            "checks": [c.to_json() for c in self.checks],
        }


@dataclass
class HealthReport:
    """Everything ``health`` found; ``state`` is the worst of its checks."""

    time: datetime
    repository: RepositoryHealth
    sources: list[SourceHealth] = field(default_factory=list)
    cache: CacheStats = field(default_factory=CacheStats)
    seconds: float = 0.0

    @property
    def checks(self) -> list[Check]:
        return [*self.repository.checks, *(c for s in self.sources for c in s.checks)]

    @property
    def state(self) -> State:
        return worst(c.state for c in self.checks)

    def problems(self) -> list[Check]:
        """The checks at the report's state (none when OK), worst first."""
        state = self.state
        return [] if state is State.OK else [c for c in self.checks if c.state is state]

    def headline(self) -> str:
        """One line: what makes the state what it is."""
        problems = self.problems()
        if not problems:
            fresh = sum(1 for s in self.sources if s.newest_restorable is not None)
            return f"{len(self.sources)} sources, {fresh} with a restorable point, all within their objectives"
        shown = [f"{c.subject}: {c.summary}" for c in problems[:3]]
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        return "; ".join(shown) + more

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state.name,
            "exit_code": int(self.state),
            "headline": self.headline(),
            "time": self.time.isoformat(),
            "repository": self.repository.to_json(),
            "sources": [s.to_json() for s in self.sources],
            "cache": self.cache.to_json(),
            "seconds": round(self.seconds, 3),
        }


@dataclass
class HealthRequest:
    """What to check: the configured sources (name → configuration), which of them, and how."""

    configs: Mapping[str, Any] = field(default_factory=dict)
    selected: Sequence[str] = ()  # empty: every source
    state_directory: str | None = None  # where the metadata cache lives (None: no cache)
    probe: ClusterProber | None = None  # how to ask a postgres source's live cluster (None: don't)
    results: RecordedResults | None = None  # the recorded verify/drill results (None: none known)
    now: datetime | None = None


def _rpo(config: Any) -> timedelta | None:
    text = getattr(config, "rpo", None)
    return parse_duration(text) if text else None


def _drill_schedule(config: Any) -> str | timedelta | None:
    """When the daemon drills a source: ``schedule.drill`` (a cron expression or an interval),
    else ``drill.schedule``; None when it is not scheduled."""
    timing = config.drill_timing() if hasattr(config, "drill_timing") else None
    if timing is None:
        return None
    return timing.cron if timing.cron is not None else parse_duration(timing.every)


def check_health(open_repository: Callable[[], Repository], request: HealthRequest) -> HealthReport:
    """Gather and judge; never raises for what it can report as a check."""
    started = time.monotonic()
    now = request.now or datetime.now(UTC)
    report = HealthReport(time=now, repository=RepositoryHealth())
    repo: Repository | None = None
    snapshots: list[Snapshot] = []
    results: Mapping[tuple[str, str], RecordedResult] = {}
    wal = _ArchivedWal()
    cache = MetadataCache(None)
    try:
        repo = open_repository()
    except LifeboatError as exc:
        report.repository.checks.append(
            Check(REPOSITORY, "reachable", State.UNKNOWN, f"cannot open the repository: {exc.message}", exc.hint)
        )
    if repo is not None:
        cache = MetadataCache.load(request.state_directory, repo)
        report.cache = cache.stats
        try:
            snapshots = _repository_checks(repo, cache, report.repository, now)
            wal = _ArchivedWal.list(repo, request.state_directory)
        except LifeboatError as exc:
            report.repository.reachable = False
            report.repository.checks = [c for c in report.repository.checks if c.name != "reachable"]
            report.repository.checks.insert(
                0,
                Check(REPOSITORY, "reachable", State.UNKNOWN, f"cannot read the repository: {exc.message}", exc.hint),
            )
            repo, snapshots = None, []
    if repo is not None and request.results is not None:
        try:
            results = request.results(repo)
        except LifeboatError as exc:
            report.repository.checks.append(
                Check(REPOSITORY, "records", State.UNKNOWN, f"the recorded results cannot be read: {exc.message}", "")
            )
    by_source: dict[str, list[Snapshot]] = {}
    for snapshot in snapshots:
        by_source.setdefault(snapshot.source, []).append(snapshot)
    names = list(request.configs)
    names += sorted(n for n in by_source if n not in request.configs)
    if request.selected:
        names = [n for n in names if n in set(request.selected)]
        names += [n for n in request.selected if n not in names]
    for name in names:
        config = request.configs.get(name)
        mine = by_source.get(name, [])
        kind = str(getattr(config, "type", "") or (mine[-1].kind if mine else "unknown"))
        source = SourceHealth(name, kind, config is not None, _rpo(config), snapshots=len(mine))
        source.last_backup = mine[-1] if mine else None
        if config is None and not mine and repo is not None:
            source.checks.append(
                Check(name, "rpo", State.UNKNOWN, "no such source: not configured, no backups", "check the name")
            )
        elif repo is None:
            source.checks.append(
                Check(name, "rpo", State.UNKNOWN, "not known: the repository cannot be read", "see the repository")
            )
        elif kind == POSTGRES_KIND:
            _postgres_source(source, repo, mine, wal, now, cache)
        else:
            source.newest_restorable = mine[-1].time if mine else None
            source.checks.append(
                judge_rpo(name, source.newest_restorable, source.rpo, now, configured=source.configured)
            )
        if kind == POSTGRES_KIND and config is not None and request.probe is not None:
            _cluster_checks(source, request.probe(config), now)
        if repo is not None:
            drill = getattr(config, "drill", None)
            drill_schedule = _drill_schedule(config)
            source.recorded = {k: r for k in ("verify", "drill") if (r := results.get((k, name))) is not None}
            for kind_name, max_age, failed, expected in (
                ("verify", VERIFY_MAX_AGE, State.CRITICAL, False),
                (
                    "drill",
                    drill_max_age(drill_schedule),
                    State.WARNING,
                    drill is not None or drill_schedule is not None,
                ),
            ):
                judged = judge_recorded(
                    name,
                    kind_name,
                    results.get((kind_name, name)),
                    now,
                    max_age=max_age,
                    failed=failed,
                    expected=expected,
                )
                if judged is not None:
                    source.checks.append(judged)
        report.sources.append(source)
    if repo is not None:
        cache.save()
    report.seconds = time.monotonic() - started
    return report


def _repository_checks(
    repo: Repository, cache: MetadataCache, health: RepositoryHealth, now: datetime
) -> list[Snapshot]:
    health.location = repo.backend.location
    snapshots, unreadable = cache.snapshots_of(repo)
    health.reachable = True
    health.snapshots = len(snapshots)
    health.checks.append(
        Check(REPOSITORY, "reachable", State.OK, f"{len(snapshots)} snapshots at {health.location}", "")
    )
    if unreadable:
        shown = ", ".join(u.id[:8] for u in unreadable[:5])
        health.checks.append(
            Check(
                REPOSITORY,
                "snapshots",
                State.WARNING,
                f"{len(unreadable)} snapshots cannot be read: {shown}",
                "'lifeboat check' says what is damaged",
                {"unreadable": float(len(unreadable))},
            )
        )
    with contextlib.suppress(LifeboatError):  # the size is a metric, not a check: unknown is left out
        health.packs, health.data_bytes = cache.packed(repo)
    space = space_report(repo.backend)
    if space is not None:
        try:
            free, total = space.space()
        except LifeboatError:
            pass
        else:
            health.free_bytes, health.size_bytes = free, total
            health.checks.append(judge_free_space(free, total))
    stale: list[str] = []
    try:
        records = list(repo.locks.records())
    except LifeboatError as exc:
        health.checks.append(Check(REPOSITORY, "locks", State.WARNING, f"the locks cannot be read: {exc.message}", ""))
        return snapshots
    health.locks = len(records)
    for record in records:
        if record.is_stale(now, repo.locks.hostname):
            stale.append(record.describe())
    health.stale_locks = stale
    if stale:
        health.checks.append(
            Check(
                REPOSITORY,
                "locks",
                State.WARNING,
                f"{len(stale)} stale locks: {stale[0]}" + (" …" if len(stale) > 1 else ""),
                "'lifeboat unlock' removes stale locks",
                {"stale": float(len(stale)), "locks": float(len(records))},
            )
        )
    else:
        health.checks.append(
            Check(REPOSITORY, "locks", State.OK, f"{len(records)} locks held, none stale", "", {"stale": 0.0})
        )
    return snapshots


@dataclass
class _ArchivedWal:
    """The repository's WAL by cluster, from one listing of names: segment names by timeline,
    and the history files."""

    segments: dict[str, dict[int, list[str]]] = field(default_factory=dict)  # system → timeline → names
    history: dict[str, set[str]] = field(default_factory=dict)  # system → history file names

    @classmethod
    def list(cls, repo: Repository, state_directory: str | os.PathLike[str] | None = None) -> _ArchivedWal:
        """From the WAL catalogue in ``state_directory`` (on a local disk, unchanged directories
        are not even listed), else from one listing of names."""
        if state_directory is not None and lists_names_cheaply(repo.backend):
            catalogue = WalCatalogue(state_directory)
            return cls._of({system: catalogue.listing(repo, system) for system in archived_systems(repo)})
        return cls._from_names(repo)

    @classmethod
    def _of(cls, listings: dict[str, WalListing]) -> _ArchivedWal:
        found = cls()
        for system, listing in listings.items():
            timelines = found.segments.setdefault(system, {})
            paths = listing.paths  # sorted "<timeline>/<file>", each an archived file's place (archived_path)
            start = 0
            while start < len(paths):  # one timeline directory at a time
                directory = paths[start][:9]
                end = bisect_left(paths, directory + "\x7f", start)  # past every name (hex digits and dots)
                within = paths[start:end]
                timelines[int(directory[:8], 16)] = [p[9:] for p in within if len(p) == 33]  # segments
                history = [p[9:] for p in within if p.endswith(".history")]
                if history:
                    found.history.setdefault(system, set()).update(history)
                start = end
        return found

    @classmethod
    def _from_names(cls, repo: Repository) -> _ArchivedWal:
        found = cls()
        try:
            names = list(list_names(repo.backend, WAL_PREFIX))
        except StorageNotFound:
            return found
        here = ""  # the directory "wal/<system>/<timeline>/" of the names being read (listings are sorted)
        segments: list[str] = []
        system = ""
        for name in names:
            if not (here and name.startswith(here)):
                parts = name.split("/")
                if len(parts) != 4 or not parts[1].isdigit() or not _TIMELINE_DIR.match(parts[2]):
                    here = ""
                    continue
                system, here = parts[1], f"{WAL_PREFIX}{parts[1]}/{parts[2]}/"
                segments = found.segments.setdefault(system, {}).setdefault(int(parts[2], 16), [])
            file = name[len(here) :]
            if _SEGMENT_NAME.match(file) and file.startswith(here[-9:-1]):
                segments.append(file)
            elif _HISTORY_NAME.match(file) and file.startswith(here[-9:-1]):
                found.history.setdefault(system, set()).add(file)
        return found

    def numbers(self, system: str, size: int) -> dict[int, set[int]]:
        per_log = segments_per_log(size)
        present: dict[int, set[int]] = {}
        for timeline, names in self.segments.get(system, {}).items():
            present[timeline] = {
                int(name[8:16], 16) * per_log + seg for name in names if (seg := int(name[16:], 16)) < per_log
            }
        return present


def _mtime(repo: Repository, system: str, segment: WalSegment) -> datetime | None:
    try:
        info = repo.backend.stat(WalArchive(repo, system).object_name(segment.name))
    except LifeboatError:
        return None
    return datetime.fromtimestamp(info.mtime, UTC)


def _postgres_source(
    source: SourceHealth,
    repo: Repository,
    snapshots: list[Snapshot],
    wal: _ArchivedWal,
    now: datetime,
    cache: MetadataCache,
) -> None:
    """The window the repository holds for a PostgreSQL source, and its freshness."""
    try:
        backups = base_backups(snapshots)
    except LifeboatError as exc:
        source.checks.append(Check(source.name, "wal", State.WARNING, exc.message, "'lifeboat verify' checks it"))
        backups = []
    if not backups:
        source.checks.append(judge_rpo(source.name, None, source.rpo, now, configured=source.configured))
        return
    system = backups[-1].system_id
    mine = [b for b in backups if b.system_id == system]
    size = mine[-1].wal_segment_size or DEFAULT_SEGMENT_SIZE
    try:
        window, source.wal_arrived = _window(repo, system, mine, wal, size, cache)
    except LifeboatError as exc:
        source.checks.append(Check(source.name, "wal", State.UNKNOWN, f"the WAL cannot be judged: {exc.message}", ""))
        source.checks.append(judge_rpo(source.name, None, source.rpo, now, configured=source.configured))
        return
    newest: datetime | None = None
    what = "newest restorable point"
    if window.newest_usable is not None:
        if window.reached is not None:
            newest = _mtime(repo, system, window.reached)
            what = "archived WAL ends"
        if newest is None:
            newest = window.newest_usable.stop_time
            what = "newest restorable point (a base backup's end)"
    source.newest_restorable = newest
    source.oldest_restorable = window.earliest.stop_time if window.earliest else None
    source.wal = _window_json(system, window)
    source.checks.append(judge_rpo(source.name, newest, source.rpo, now, what=what, configured=source.configured))
    source.checks.append(_judge_window(source.name, window))


def _window(
    repo: Repository, system: str, backups: list[BaseBackup], wal: _ArchivedWal, size: int, cache: MetadataCache
) -> tuple[WalWindow, datetime | None]:
    """The window, and when the newest segment of its timeline reached the repository."""
    from lifeboat.operations.pitr import plan_timeline

    present = wal.numbers(system, size)
    archive = WalArchive(repo, system)
    names = wal.history.get(system, set())
    cache.keep_history(system, names)
    known: dict[int, ArchivedTimeline] = {}
    tops: dict[int, datetime] = {}
    for timeline in sorted({*present, *(b.timeline for b in backups), *(int(n[:8], 16) for n in names)}):
        history = TimelineHistory.root(timeline)
        name = f"{timeline:08X}.history"
        has_file = name in names
        if has_file:
            try:
                history = TimelineHistory.parse(timeline, cache.history_file(system, name, archive.fetch))
            except ValueError:
                has_file = False
        numbers = present.get(timeline, set())
        arrivals: dict[int, float] = {}
        if numbers:  # the newest segment of each timeline: when it arrived picks the live one
            top = WalSegment(timeline, max(numbers), size)
            stamp = _mtime(repo, system, top)
            arrivals[top.number] = stamp.timestamp() if stamp else 0.0
            if stamp is not None:
                tops[timeline] = stamp
        known[timeline] = ArchivedTimeline(timeline, history, has_file, None, arrivals)
    plan = plan_timeline("latest", backups, known, None, size=size)
    window = wal_window(backups, plan.history, present, size)
    return window, tops.get(window.timeline)


def _window_json(system: str, window: WalWindow) -> dict[str, Any]:
    return {
        "system_id": system,
        "timeline": window.timeline,
        "end": window.end.name if window.end else None,
        "reached": window.reached.name if window.reached else None,
        "earliest_backup": window.earliest.snapshot_id if window.earliest else None,
        "earliest_time": window.earliest.stop_time.isoformat() if window.earliest else None,
        "newest_backup": window.newest_usable.snapshot_id if window.newest_usable else None,
        "blocked_by": window.blocked_by.name if window.blocked_by else None,
        "gap": window.gap.name if window.gap else None,
        "missing_segments": window.missing_count,
        "missing": [s.name for s in window.missing],
    }


def _judge_window(subject: str, window: WalWindow) -> Check:
    """Holes in the WAL: none usable or recovery cut short is CRITICAL; older holes WARNING."""
    metrics = {"missing_segments": float(window.missing_count)}
    if window.earliest is None:
        return Check(
            subject,
            "wal",
            State.CRITICAL,
            "no base backup can be restored: the WAL up to its consistency point is missing"
            + (f" ({window.gap.name})" if window.gap else ""),
            f"take a base backup: 'lifeboat backup --source {subject}'; 'lifeboat pg info' shows the archive",
            metrics,
        )
    if window.blocked_by is not None:
        return Check(
            subject,
            "wal",
            State.CRITICAL,
            f"recovery stops before {window.blocked_by.name}: it is missing from the archive "
            f"({window.missing_count} segments missing)",
            f"take a new base backup now ('lifeboat backup --source {subject}'); 'lifeboat pg info' shows the gap",
            metrics,
        )
    oldest = window.earliest.stop_time
    if window.missing_count:
        shown = ", ".join(s.name for s in window.missing)
        return Check(
            subject,
            "wal",
            State.WARNING,
            f"{window.missing_count} WAL segments missing inside the window ({shown}): some older points "
            "cannot be reached",
            "'lifeboat pg info' shows the gaps; 'lifeboat verify' follows every kept base backup",
            metrics,
        )
    end = window.reached.name if window.reached else "its base backup"
    return Check(
        subject,
        "wal",
        State.OK,
        f"window from {oldest.isoformat(timespec='seconds')} to {end}, no segment missing",
        "",
        metrics,
    )


def _cluster_checks(source: SourceHealth, probe: ClusterProbe, now: datetime) -> None:
    source.cluster = probe
    name = source.name
    backed_up = source.wal["system_id"] if source.wal else None
    if probe.reachable and backed_up and probe.system_id and probe.system_id != backed_up:
        source.checks.append(
            Check(
                name,
                "system",
                State.CRITICAL,
                f"the cluster is database system {probe.system_id}, but the backups are of {backed_up}: "
                "nothing of this cluster is restorable",
                f"take a base backup of it: 'lifeboat backup --source {name}'",
            )
        )
    if not probe.reachable:
        why = f"cluster not reachable: {probe.error}"
        hint = "is the server running? the connection comes from the source's host/port/user and libpq's PG* variables"
        source.checks.append(Check(name, "cluster", State.UNKNOWN, why, hint))  # archiver, backlog, spool
        return
    if probe.archiver is not None:
        source.checks.append(judge_archiver(name, probe.archiver, now))
    source.checks.append(judge_ready(name, probe.ready, probe.ready_how))
    spool = probe.spool
    if spool is None:
        source.checks.append(Check(name, "spool", State.OK, probe.spool_how, "", {"queued": None}))
        return
    metrics = {
        "queued": float(spool.queued),
        "queued_bytes": float(spool.queued_bytes),
        "failed": float(len(spool.failed)),
    }
    if spool.failed:
        last = spool.last_failure
        said = f": {last.failure.message}" if last is not None else ""
        source.checks.append(
            Check(
                name,
                "spool",
                State.WARNING,
                f"{len(spool.failed)} WAL files failed to push ({', '.join(spool.failed[:3])}){said}",
                "the spool's worker.log says more; PostgreSQL retries them",
                metrics,
            )
        )
        return
    source.checks.append(
        Check(name, "spool", State.OK, f"{spool.queued} WAL files queued for the repository", "", metrics)
    )


__all__ = [
    "REPOSITORY",
    "HealthReport",
    "HealthRequest",
    "RepositoryHealth",
    "SourceHealth",
    "check_health",
]
