"""A health report as Prometheus metrics, for node exporter's textfile collector (and, later,
the daemon's ``/metrics``).

Names carry the ``lifeboat_`` prefix and their unit; labels are bounded: ``source`` and
``kind`` (the configured sources), nothing per snapshot or per WAL file. A value that is not
known is left out rather than written as a number that would mislead. The file is written
by ``prometheus_client.write_to_textfile``: to a temporary file, then renamed, so the
collector never reads half of it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from lifeboat.operations.health import HealthReport

LABELS = ["source", "kind"]


def _families(report: HealthReport) -> Iterator[object]:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    def gauge(name: str, doc: str, labels: list[str] | None = None) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, doc, labels=labels if labels is not None else LABELS)

    state = gauge("lifeboat_health_state", "Overall health: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.", [])
    state.add_metric([], int(report.state))
    checked = gauge("lifeboat_health_check_timestamp_seconds", "When the health check ran.", [])
    checked.add_metric([], report.time.timestamp())
    duration = gauge("lifeboat_health_check_duration_seconds", "How long the health check took.", [])
    duration.add_metric([], report.seconds)
    yield from (state, checked, duration)

    source_state = gauge("lifeboat_source_health_state", "A source's health: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.")
    newest = gauge(
        "lifeboat_source_newest_restorable_timestamp_seconds",
        "The newest point a restore reaches: the newest snapshot, or for PostgreSQL the end of the archived WAL.",
    )
    oldest = gauge("lifeboat_source_oldest_restorable_timestamp_seconds", "The oldest restorable point (PostgreSQL).")
    rpo = gauge("lifeboat_source_rpo_seconds", "The source's recovery point objective.")
    snapshots = gauge("lifeboat_source_snapshots", "Snapshots of the source in the repository.")
    missing = gauge("lifeboat_pg_wal_missing_segments", "WAL segments missing inside the recoverable window.")
    archived = CounterMetricFamily("lifeboat_pg_archiver_archived", "pg_stat_archiver.archived_count.", labels=LABELS)
    failed = CounterMetricFamily("lifeboat_pg_archiver_failed", "pg_stat_archiver.failed_count.", labels=LABELS)
    last_archived = gauge(
        "lifeboat_pg_archiver_last_archived_timestamp_seconds", "pg_stat_archiver.last_archived_time."
    )
    last_failed = gauge("lifeboat_pg_archiver_last_failed_timestamp_seconds", "pg_stat_archiver.last_failed_time.")
    ready = gauge("lifeboat_pg_archive_ready_files", "WAL files PostgreSQL has ready and not yet archived.")
    queued = gauge("lifeboat_pg_spool_queued_files", "Ready WAL files Lifeboat's spool has not stored yet.")
    push_failed = gauge("lifeboat_pg_spool_failed_files", "Ready WAL files whose last push failed.")
    up = gauge("lifeboat_pg_up", "Whether the cluster could be reached.")
    drill_time = gauge("lifeboat_last_drill_timestamp_seconds", "When the last recorded drill finished.")
    drill_ok = gauge("lifeboat_last_drill_success", "Whether the last recorded drill passed (1) or failed (0).")
    verify_time = gauge("lifeboat_last_verify_timestamp_seconds", "When the last recorded verify finished.")
    verify_ok = gauge("lifeboat_last_verify_success", "Whether the last recorded verify passed (1) or failed (0).")
    for source in report.sources:
        labels = [source.name, source.kind]
        source_state.add_metric(labels, int(source.state))
        snapshots.add_metric(labels, source.snapshots)
        if source.newest_restorable is not None:
            newest.add_metric(labels, source.newest_restorable.timestamp())
        if source.oldest_restorable is not None:
            oldest.add_metric(labels, source.oldest_restorable.timestamp())
        if source.rpo is not None:
            rpo.add_metric(labels, source.rpo.total_seconds())
        if source.wal is not None:
            missing.add_metric(labels, source.wal["missing_segments"])
        probe = source.cluster
        if probe is not None:
            up.add_metric(labels, 1 if probe.reachable else 0)
            stats = probe.archiver
            if stats is not None:
                archived.add_metric(labels, stats.archived_count)
                failed.add_metric(labels, stats.failed_count)
                if stats.last_archived_time is not None:
                    last_archived.add_metric(labels, stats.last_archived_time.timestamp())
                if stats.last_failed_time is not None:
                    last_failed.add_metric(labels, stats.last_failed_time.timestamp())
            if probe.ready is not None:
                ready.add_metric(labels, probe.ready)
            if probe.spool is not None:
                queued.add_metric(labels, probe.spool.queued)
                push_failed.add_metric(labels, len(probe.spool.failed))
        for check in source.checks:
            stamp, success = check.metrics.get("timestamp"), check.metrics.get("success")
            if check.name == "drill" and stamp is not None and success is not None:
                drill_time.add_metric(labels, stamp)
                drill_ok.add_metric(labels, success)
            elif check.name == "verify" and stamp is not None and success is not None:
                verify_time.add_metric(labels, stamp)
                verify_ok.add_metric(labels, success)
    yield from (source_state, newest, oldest, rpo, snapshots, missing, up, archived, failed)
    yield from (last_archived, last_failed, ready, queued, push_failed, drill_time, drill_ok, verify_time, verify_ok)

    repository = report.repository
    repo_up = gauge("lifeboat_repository_up", "Whether the repository could be opened and listed.", [])
    repo_up.add_metric([], 1 if repository.reachable else 0)
    yield repo_up
    if repository.free_bytes is not None and repository.size_bytes is not None:
        free = gauge("lifeboat_repository_free_bytes", "Free bytes on the repository's file system.", [])
        free.add_metric([], repository.free_bytes)
        size = gauge("lifeboat_repository_size_bytes", "Size of the repository's file system.", [])
        size.add_metric([], repository.size_bytes)
        yield from (free, size)
    if repository.reachable:
        locks = gauge("lifeboat_repository_stale_locks", "Stale locks in the repository.", [])
        locks.add_metric([], len(repository.stale_locks))
        count = gauge("lifeboat_repository_snapshots", "Snapshots in the repository.", [])
        count.add_metric([], repository.snapshots)
        yield from (locks, count)


class _ReportCollector:
    def __init__(self, report: HealthReport) -> None:
        self._report = report

    def collect(self) -> Iterator[object]:
        return _families(self._report)


def exposition(report: HealthReport) -> str:
    """The metrics in the Prometheus text format."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ReportCollector(report))  # type: ignore[arg-type]
    return generate_latest(registry).decode("utf-8")


def write_textfile(report: HealthReport, path: str | os.PathLike[str]) -> None:
    """Write the metrics to ``path`` atomically (a temporary file beside it, then renamed).

    Only a regular file is ever replaced: renaming over ``/dev/zero`` (or a symbolic link, a
    directory, a socket) as root would destroy it, so anything else is refused (OSError)."""
    import errno
    import stat

    from prometheus_client import CollectorRegistry, write_to_textfile

    try:
        found = os.lstat(path)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISREG(found.st_mode):
            raise OSError(errno.EEXIST, "it exists and is not a regular file; give a file's path")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ReportCollector(report))  # type: ignore[arg-type]
    write_to_textfile(os.fspath(path), registry)


__all__ = ["exposition", "write_textfile"]
