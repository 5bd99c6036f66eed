"""Lifeboat's metrics: one set for ``lifeboat health --prometheus FILE`` and the daemon's
``/metrics``, built by one function from one input (docs/metrics.md lists every metric).

:class:`MetricsInput` holds what is known: a health report (every source's restorable
points, its newest backup's counters, PostgreSQL archiving, the last verify and drill, the
repository), the daemon's job statistics (:class:`JobStat`, per job name, from its catalog;
``health`` has none) and optionally the repository's size as the daemon knows it
(:class:`RepositoryStat`; otherwise the report's). :func:`families` turns it into metric
families; :func:`registry` wraps them (or a callable giving a fresh input at each scrape) in
a ``CollectorRegistry`` for ``prometheus_client.generate_latest`` or the text file.

Conventions, checked by tests/unit/test_metrics.py over the whole set: every name starts
with ``lifeboat_`` and ends with its base unit (``_seconds``, ``_bytes``,
``_timestamp_seconds``, ``_ratio``) or is a count or a state; counters end with ``_total``
(``CounterMetricFamily`` adds it); labels are bounded — ``source`` and ``kind`` (the
configured sources), ``job_name``, ``repository`` and a job's ``status`` (a fixed set) — nothing
per snapshot, record or WAL file. A value that is not known is left out rather than written
as a number that would mislead; timestamps rather than ages, so an alert computes the age
when it evaluates (the one age, ``lifeboat_pg_archive_lag_seconds``, is as of the check).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from lifeboat.app.daemon.catalog import STATUSES
from lifeboat.config.jobs import REPOSITORY_KINDS

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.core import Metric

    from lifeboat.operations.health import HealthReport, SourceHealth

SOURCE_LABELS = ("source", "kind")
# "job" and "instance" are the labels Prometheus gives every series of a scrape target: a
# metric's own "job" would be renamed "exported_job". A job's name is "job_name".
JOB_LABELS = ("job_name", "kind", "source", "repository")
ALLOWED_LABELS = frozenset({"source", "kind", "job_name", "repository", "status"})
# A job run's status, as the catalog records it: one series each in lifeboat_job_last_run_status.
JOB_STATUSES = STATUSES


@dataclass(frozen=True)
class JobStat:
    """One scheduled job's runs, as the daemon's catalog knows them."""

    job: str  # "backup:db"
    kind: str  # backup | verify | drill | retention | copy | prune | check
    target: str  # the source, or the repository for copy/prune/check
    runs_total: int = 0  # finished runs (every status but running)
    failures_total: int = 0  # finished runs that did not succeed (failed, timed-out, interrupted; not cancelled)
    last_success: datetime | None = None  # when the last successful run finished
    last_run: datetime | None = None  # when the last run started
    last_status: str | None = None  # one of JOB_STATUSES
    last_duration_seconds: float | None = None  # the last finished run's
    bytes_read: int | None = None  # the last successful run's
    bytes_added: int | None = None


@dataclass(frozen=True)
class RepositoryStat:
    """The repository's size, when the daemon knows it better than the last health check."""

    packs: int | None = None
    data_bytes: int | None = None


@dataclass(frozen=True)
class MetricsInput:
    """What the metrics are made of: the last health report (None: no health metrics), the
    daemon's job statistics (``health --prometheus``: none) and the repository's size when
    the daemon knows it better than the report."""

    health: HealthReport | None = None
    jobs: Sequence[JobStat] = field(default_factory=tuple)
    repository: RepositoryStat | None = None


class _Run(Protocol):
    """What :func:`job_stats` reads of a catalog run (app/daemon/catalog.py ``JobRun``, frozen)."""

    @property
    def job(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def target(self) -> str: ...
    @property
    def started(self) -> datetime: ...
    @property
    def finished(self) -> datetime | None: ...
    @property
    def status(self) -> str: ...
    @property
    def bytes_read(self) -> int | None: ...
    @property
    def bytes_added(self) -> int | None: ...


FAILED_STATUSES = frozenset({"failed", "timed-out", "interrupted"})


def job_stats(runs: Iterable[_Run]) -> list[JobStat]:
    """Per job name, from its catalog runs (any order): counts, the last run and the last success.

    ``runs_total`` and ``failures_total`` are counters: pass every run the catalog keeps of
    each job (not a page of the newest), or a scrape sees them go down."""
    by_job: dict[str, list[_Run]] = {}
    for run in runs:
        by_job.setdefault(run.job, []).append(run)
    stats: list[JobStat] = []
    for job, mine in sorted(by_job.items()):
        mine.sort(key=lambda r: r.started)
        finished = [r for r in mine if r.status != "running" and r.finished is not None]
        successes = [r for r in finished if r.status == "succeeded"]
        last, done = mine[-1], (finished[-1] if finished else None)
        success = successes[-1] if successes else None
        stats.append(
            JobStat(
                job=job,
                kind=last.kind,
                target=last.target,
                runs_total=len(finished),
                failures_total=sum(1 for r in finished if r.status in FAILED_STATUSES),
                last_success=success.finished if success else None,
                last_run=last.started,
                last_status=last.status,
                last_duration_seconds=(done.finished - done.started).total_seconds()
                if done is not None and done.finished is not None
                else None,
                bytes_read=success.bytes_read if success else None,
                bytes_added=success.bytes_added if success else None,
            )
        )
    return stats


def _gauge(name: str, doc: str, labels: Sequence[str] = SOURCE_LABELS) -> Any:
    from prometheus_client.core import GaugeMetricFamily

    return GaugeMetricFamily(name, doc, labels=list(labels))


def _counter(name: str, doc: str, labels: Sequence[str] = SOURCE_LABELS) -> Any:
    from prometheus_client.core import CounterMetricFamily

    return CounterMetricFamily(name, doc, labels=list(labels))


def families(given: MetricsInput) -> list[Metric]:
    """Every metric family of ``given``; a family is present (with its HELP) even when no
    sample is known, so the names never depend on the data."""
    found: list[Metric] = []
    found += _health_families(given.health, given.repository)
    found += _job_families(given.jobs)
    return found


def _ts(when: datetime | None) -> float | None:
    return when.timestamp() if when is not None else None


def _health_families(report: HealthReport | None, stat: RepositoryStat | None) -> list[Metric]:
    if report is None:
        return []
    state = _gauge("lifeboat_health_state", "Overall health: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.", ())
    state.add_metric([], int(report.state))
    checked = _gauge("lifeboat_health_check_timestamp_seconds", "When the health check ran.", ())
    checked.add_metric([], report.time.timestamp())
    duration = _gauge("lifeboat_health_check_duration_seconds", "How long the health check took.", ())
    duration.add_metric([], report.seconds)
    return [state, checked, duration, *_source_families(report), *_repository_families(report, stat)]


Reader = Callable[["SourceHealth"], float | None]


def _source_gauges(now: datetime) -> list[tuple[str, str, Reader]]:
    """(name, help, how to read it off a source) of each gauge per source; ``now`` is the check's time."""

    def backup(key: str) -> Reader:
        return lambda s: _summary_number(s, key)

    def probe(read: Callable[[Any], float | None]) -> Reader:
        return lambda s: read(s.cluster) if s.cluster is not None and s.cluster.reachable else None

    def archiver(attr: str) -> Reader:
        return probe(lambda c: _ts(getattr(c.archiver, attr)) if c.archiver is not None else None)

    def recorded(kind: str, figure: str) -> Reader:
        def read(source: SourceHealth) -> float | None:
            result = source.recorded.get(kind)
            if result is None:
                return None
            if figure == "timestamp":
                return result.time.timestamp()
            if figure == "success":
                return 1.0 if result.ok else 0.0
            return result.figures.get(figure)

        return read

    def lag(source: SourceHealth) -> float | None:
        return (now - source.wal_arrived).total_seconds() if source.wal_arrived is not None else None

    return [
        ("lifeboat_source_health_state", "A source's health: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
         lambda s: int(s.state)),
        ("lifeboat_source_newest_restorable_timestamp_seconds",
         "The newest point a restore reaches: the newest snapshot, or for PostgreSQL the end of the archived "
         "WAL recovery reaches (the window's end).", lambda s: _ts(s.newest_restorable)),
        ("lifeboat_source_oldest_restorable_timestamp_seconds",
         "PostgreSQL: the oldest restorable point (the window's start).", lambda s: _ts(s.oldest_restorable)),
        ("lifeboat_source_rpo_seconds", "The source's recovery point objective.",
         lambda s: s.rpo.total_seconds() if s.rpo is not None else None),
        ("lifeboat_source_snapshots", "Snapshots of the source in the repository.", lambda s: s.snapshots),
        ("lifeboat_backup_last_success_timestamp_seconds", "When the newest snapshot of the source was taken.",
         lambda s: _ts(s.last_backup.time) if s.last_backup is not None else None),
        ("lifeboat_backup_last_duration_seconds", "How long the backup that made the newest snapshot took.",
         backup("duration_seconds")),
        ("lifeboat_backup_last_read_bytes", "Bytes the newest snapshot's backup read from the source.",
         backup("bytes_total")),
        ("lifeboat_backup_last_added_bytes",
         "New data the newest snapshot's backup added to the repository (before compression).",
         backup("bytes_new")),
        ("lifeboat_backup_last_stored_bytes",
         "Bytes the newest snapshot's backup uploaded (packs: compressed and encrypted).",
         backup("bytes_stored")),
        ("lifeboat_backup_last_dedup_ratio",
         "Share of the newest backup's data the repository already had (deduplicated / (new + deduplicated)).",
         _dedup_ratio),
        ("lifeboat_backup_last_compression_ratio",
         "Stored bytes per byte of new data in the newest backup (below 1: compression saved space).",
         _compression_ratio),
        ("lifeboat_pg_wal_missing_segments", "PostgreSQL: WAL segments missing inside the recoverable window.",
         lambda s: s.wal["missing_segments"] if s.wal is not None else None),
        ("lifeboat_pg_wal_newest_timestamp_seconds",
         "PostgreSQL: when the newest WAL segment of the live timeline reached the repository.",
         lambda s: _ts(s.wal_arrived)),
        ("lifeboat_pg_archive_lag_seconds",
         "PostgreSQL: how old the newest WAL segment in the repository was when the health check ran.",
         lag),
        ("lifeboat_pg_up", "PostgreSQL: whether the cluster could be reached (1) or not (0).",
         lambda s: (1 if s.cluster.reachable else 0) if s.cluster is not None else None),
        ("lifeboat_pg_archiver_last_archived_timestamp_seconds", "PostgreSQL: pg_stat_archiver.last_archived_time.",
         archiver("last_archived_time")),
        ("lifeboat_pg_archiver_last_failed_timestamp_seconds", "PostgreSQL: pg_stat_archiver.last_failed_time.",
         archiver("last_failed_time")),
        ("lifeboat_pg_archive_ready_files", "PostgreSQL: WAL files the server has ready and not yet archived.",
         probe(lambda c: c.ready)),
        ("lifeboat_pg_spool_queued_files", "PostgreSQL: ready WAL files Lifeboat's spool has not stored yet.",
         probe(lambda c: c.spool.queued if c.spool is not None else None)),
        ("lifeboat_pg_spool_queued_bytes", "PostgreSQL: the bytes of those queued WAL files.",
         probe(lambda c: c.spool.queued_bytes if c.spool is not None else None)),
        ("lifeboat_pg_spool_failed_files", "PostgreSQL: ready WAL files whose last push to the repository failed.",
         probe(lambda c: len(c.spool.failed) if c.spool is not None else None)),
        ("lifeboat_last_verify_timestamp_seconds", "When the last recorded verify finished.",
         recorded("verify", "timestamp")),
        ("lifeboat_last_verify_success", "Whether the last recorded verify passed (1) or failed (0).",
         recorded("verify", "success")),
        ("lifeboat_last_drill_timestamp_seconds", "When the last recorded drill finished.",
         recorded("drill", "timestamp")),
        ("lifeboat_last_drill_success", "Whether the last recorded drill passed (1) or failed or missed (0).",
         recorded("drill", "success")),
        ("lifeboat_last_drill_rto_seconds",
         "The last drill's recovery time: from its start to a serving instance (absent: it never served).",
         recorded("drill", "rto_seconds")),
        ("lifeboat_last_drill_rto_objective_seconds", "The RTO objective the last drill was judged against.",
         recorded("drill", "rto_objective_seconds")),
        ("lifeboat_last_drill_achieved_rpo_seconds",
         "The last drill's achieved recovery point: how far behind its start the restored data ended.",
         recorded("drill", "achieved_rpo_seconds")),
        ("lifeboat_last_drill_rpo_objective_seconds", "The RPO objective the last drill was judged against.",
         recorded("drill", "rpo_objective_seconds")),
    ]  # fmt: skip


def _summary_number(source: SourceHealth, key: str) -> float | None:
    if source.last_backup is None:
        return None
    value = source.last_backup.summary.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _dedup_ratio(source: SourceHealth) -> float | None:
    new, dedup = _summary_number(source, "bytes_new"), _summary_number(source, "bytes_deduplicated")
    if new is None or dedup is None or new + dedup <= 0:
        return None
    return dedup / (new + dedup)


def _compression_ratio(source: SourceHealth) -> float | None:
    new, stored = _summary_number(source, "bytes_new"), _summary_number(source, "bytes_stored")
    if new is None or stored is None or new <= 0:
        return None
    return stored / new


def _source_families(report: HealthReport) -> list[Metric]:
    gauges = [(_gauge(name, doc), read) for name, doc, read in _source_gauges(report.time)]
    archived = _counter("lifeboat_pg_archiver_archived", "PostgreSQL: pg_stat_archiver.archived_count.")
    failed = _counter("lifeboat_pg_archiver_failed", "PostgreSQL: pg_stat_archiver.failed_count.")
    for source in report.sources:
        labels = [source.name, source.kind]
        for family, read in gauges:
            value = read(source)
            if value is not None:
                family.add_metric(labels, value)
        probe = source.cluster
        if probe is not None and probe.reachable and probe.archiver is not None:
            archived.add_metric(labels, probe.archiver.archived_count)
            failed.add_metric(labels, probe.archiver.failed_count)
    return [*(family for family, _ in gauges), archived, failed]


def _repository_families(report: HealthReport, stat: RepositoryStat | None) -> list[Metric]:
    repository = report.repository
    up = _gauge("lifeboat_repository_up", "Whether the repository could be opened and listed (1) or not (0).", ())
    up.add_metric([], 1 if repository.reachable else 0)
    snapshots = _gauge("lifeboat_repository_snapshots", "Snapshots in the repository.", ())
    locks = _gauge("lifeboat_repository_stale_locks", "Stale locks in the repository.", ())
    if repository.reachable:
        snapshots.add_metric([], repository.snapshots)
        locks.add_metric([], len(repository.stale_locks))
    packs = _gauge("lifeboat_repository_packs", "Packs the repository's index lists.", ())
    data = _gauge("lifeboat_repository_data_bytes", "The repository's size: bytes of the packs its index lists.", ())
    count = stat.packs if stat is not None and stat.packs is not None else repository.packs
    size = stat.data_bytes if stat is not None and stat.data_bytes is not None else repository.data_bytes
    if count is not None:
        packs.add_metric([], count)
    if size is not None:
        data.add_metric([], size)
    free = _gauge("lifeboat_repository_filesystem_free_bytes", "A local repository: its file system's free bytes.", ())
    total = _gauge("lifeboat_repository_filesystem_size_bytes", "A local repository: its file system's size.", ())
    if repository.free_bytes is not None and repository.size_bytes is not None:
        free.add_metric([], repository.free_bytes)
        total.add_metric([], repository.size_bytes)
    return [up, snapshots, locks, packs, data, free, total]


def _job_families(jobs: Sequence[JobStat]) -> list[Metric]:
    if not jobs:
        return []
    runs = _counter("lifeboat_job_runs", "Finished runs of the job (any result).", JOB_LABELS)
    failures = _counter(
        "lifeboat_job_failures", "Runs of the job that failed, timed out or were interrupted.", JOB_LABELS
    )
    last_run = _gauge("lifeboat_job_last_run_timestamp_seconds", "When the job's last run started.", JOB_LABELS)
    last_success = _gauge(
        "lifeboat_job_last_success_timestamp_seconds", "When the job's last successful run finished.", JOB_LABELS
    )
    duration = _gauge(
        "lifeboat_job_last_run_duration_seconds", "How long the job's last finished run took.", JOB_LABELS
    )
    status = _gauge(
        "lifeboat_job_last_run_status",
        "The job's last run: 1 for its status, 0 for the others (" + ", ".join(JOB_STATUSES) + ").",
        (*JOB_LABELS, "status"),
    )
    read = _gauge("lifeboat_job_last_read_bytes", "Bytes the job's last successful run read.", JOB_LABELS)
    added = _gauge("lifeboat_job_last_added_bytes", "Bytes the job's last successful run added.", JOB_LABELS)
    for job in jobs:
        on_repository = job.kind in REPOSITORY_KINDS  # the rest target a source
        labels = [job.job, job.kind, "" if on_repository else job.target, job.target if on_repository else ""]
        runs.add_metric(labels, job.runs_total)
        failures.add_metric(labels, job.failures_total)
        for family, value in (
            (last_run, _ts(job.last_run)),
            (last_success, _ts(job.last_success)),
            (duration, job.last_duration_seconds),
            (read, job.bytes_read),
            (added, job.bytes_added),
        ):
            if value is not None:
                family.add_metric(labels, value)
        if job.last_status is not None:
            for name in JOB_STATUSES:
                status.add_metric([*labels, name], 1 if job.last_status == name else 0)
    return [runs, failures, last_run, last_success, duration, status, read, added]


class LifeboatCollector:
    """A ``prometheus_client`` collector: the families of a fresh input at each collection."""

    def __init__(self, provide: Callable[[], MetricsInput]) -> None:
        self._provide = provide

    def collect(self) -> Iterator[Metric]:
        return iter(families(self._provide()))


def registry(given: MetricsInput | Callable[[], MetricsInput]) -> CollectorRegistry:
    """A registry holding Lifeboat's metrics: of ``given``, or of what ``given()`` returns at each
    scrape (the daemon: the last health report and the catalog's job statistics)."""
    from prometheus_client import CollectorRegistry

    provide = given if callable(given) else (lambda: given)
    found = CollectorRegistry(auto_describe=False)
    found.register(LifeboatCollector(provide))
    return found


def exposition(given: MetricsInput) -> str:
    """The metrics in the Prometheus text format."""
    from prometheus_client import generate_latest

    return generate_latest(registry(given)).decode("utf-8")


def write_textfile(given: MetricsInput, path: str | os.PathLike[str]) -> None:
    """Write the metrics to ``path`` atomically (a temporary file beside it, then renamed), for
    node exporter's textfile collector.

    Only a regular file is ever replaced: renaming over ``/dev/zero`` (or a symbolic link, a
    directory, a socket) as root would destroy it, so anything else is refused (OSError)."""
    import errno
    import stat

    from prometheus_client import write_to_textfile

    try:
        found = os.lstat(path)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISREG(found.st_mode):
            raise OSError(errno.EEXIST, "it exists and is not a regular file; give a file's path")
    write_to_textfile(os.fspath(path), registry(given))


__all__ = [
    "ALLOWED_LABELS",
    "JOB_STATUSES",
    "JobStat",
    "LifeboatCollector",
    "MetricsInput",
    "RepositoryStat",
    "exposition",
    "families",
    "job_stats",
    "registry",
    "write_textfile",
]
