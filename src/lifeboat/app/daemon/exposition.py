"""The daemon's /metrics: its jobs' counters, the archiving watch and the last health report,
in Prometheus text format (prometheus-client).

Names carry the ``lifeboat_`` prefix and their unit; labels are bounded by the configuration
(``job``, ``kind``, ``target``, ``source``). The health report's families are the ones
``health --prometheus`` writes (app/observability/prometheus.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from lifeboat.app.daemon.archiving import ArchivingState
from lifeboat.app.daemon.recorder import JobCounters

JOB_LABELS = ["job", "kind", "target"]


@dataclass(frozen=True)
class DaemonFigures:
    """What /metrics shows, read at scrape time."""

    started: float  # the daemon's start, seconds since the epoch
    jobs: list[JobCounters]
    archiving: list[ArchivingState]
    health: Any = None  # the last operations.health.HealthReport, if one was made


def _families(figures: DaemonFigures) -> Iterator[object]:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    start = GaugeMetricFamily("lifeboat_daemon_start_time_seconds", "When the daemon started.")
    start.add_metric([], figures.started)
    yield start

    runs = CounterMetricFamily("lifeboat_job_runs", "Runs of a job since the daemon started.", labels=JOB_LABELS)
    failures = CounterMetricFamily(
        "lifeboat_job_failures", "Failed or timed-out runs of a job since the daemon started.", labels=JOB_LABELS
    )
    running = GaugeMetricFamily("lifeboat_job_running", "1 while a run of the job is in progress.", labels=JOB_LABELS)
    last_run = GaugeMetricFamily(
        "lifeboat_job_last_run_timestamp_seconds", "When the job's last run ended.", labels=JOB_LABELS
    )
    last_success = GaugeMetricFamily(
        "lifeboat_job_last_success_timestamp_seconds", "When the job last succeeded.", labels=JOB_LABELS
    )
    duration = GaugeMetricFamily(
        "lifeboat_job_last_duration_seconds", "How long the job's last run took.", labels=JOB_LABELS
    )
    read = GaugeMetricFamily(
        "lifeboat_job_last_read_bytes", "Bytes the job's last successful run read.", labels=JOB_LABELS
    )
    added = GaugeMetricFamily(
        "lifeboat_job_last_added_bytes", "Bytes the job's last successful run added to the repository.",
        labels=JOB_LABELS,
    )  # fmt: skip
    for job in figures.jobs:
        labels = [job.name, job.kind, job.target]
        runs.add_metric(labels, job.runs_total)
        failures.add_metric(labels, job.failures_total)
        running.add_metric(labels, 1 if job.running else 0)
        if job.last_run is not None:
            last_run.add_metric(labels, job.last_run.timestamp())
        if job.last_success is not None:
            last_success.add_metric(labels, job.last_success.timestamp())
        if job.last_duration is not None:
            duration.add_metric(labels, job.last_duration)
        if job.last_bytes_read is not None:
            read.add_metric(labels, job.last_bytes_read)
        if job.last_bytes_added is not None:
            added.add_metric(labels, job.last_bytes_added)
    yield from (runs, failures, running, last_run, last_success, duration, read, added)

    state = GaugeMetricFamily(
        "lifeboat_archiving_state", "WAL archiving of a source: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
        labels=["source"],
    )  # fmt: skip
    ready = GaugeMetricFamily(
        "lifeboat_archiving_ready_files", "WAL files PostgreSQL has ready and not yet archived.", labels=["source"]
    )
    for watched in figures.archiving:
        state.add_metric([watched.source], int(watched.state))
        if watched.ready is not None:
            ready.add_metric([watched.source], watched.ready)
    yield from (state, ready)

    if figures.health is not None:
        from lifeboat.app.observability.prometheus import _families as health_families

        yield from health_families(figures.health)


class _Collector:
    def __init__(self, figures: Callable[[], DaemonFigures]) -> None:
        self._figures = figures

    def collect(self) -> Iterator[object]:
        yield from _families(self._figures())


def exposition(figures: Callable[[], DaemonFigures]) -> bytes:
    """The Prometheus text of the figures ``figures()`` gives now."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(figures))  # type: ignore[arg-type]
    return generate_latest(registry)
