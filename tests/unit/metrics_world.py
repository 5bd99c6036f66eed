"""A metrics input with every optional part present — a PostgreSQL source with its cluster,
archiver, spool, WAL window, newest base backup and recorded verify and drill; a files source;
the repository's size and file system; a job of every kind — and the exported names it gives.
Shared by test_metrics.py and test_deploy_assets.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families

from lifeboat.app.observability.metrics import JobStat, MetricsInput, RepositoryStat, exposition
from lifeboat.core.health import ArchiverStats, RecordedResult, judge_rpo
from lifeboat.core.snapshot import Snapshot
from lifeboat.operations.health import HealthReport, RepositoryHealth, SourceHealth
from lifeboat.operations.health_pg import ClusterProbe, SpoolQueue

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
BACKUP_SUMMARY = {
    "bytes_total": 10_000,
    "bytes_new": 4_000,
    "bytes_deduplicated": 6_000,
    "bytes_stored": 1_000,
    "duration_seconds": 12.5,
}


def _snapshot(source: str, kind: str, when: datetime, summary: dict[str, float]) -> Snapshot:
    return Snapshot(time=when, source=source, kind=kind, tree=bytes(32), summary=dict(summary), id="ab" * 32)


def full_report() -> HealthReport:
    db = SourceHealth(
        "main-db",
        "postgres",
        True,
        timedelta(minutes=15),
        newest_restorable=NOW - timedelta(minutes=5),
        oldest_restorable=NOW - timedelta(days=7),
        snapshots=8,
    )
    db.checks.append(judge_rpo("main-db", db.newest_restorable, db.rpo, NOW))
    db.wal = {"missing_segments": 2}
    db.wal_arrived = NOW - timedelta(minutes=3)
    db.last_backup = _snapshot("main-db", "postgres", NOW - timedelta(hours=6), BACKUP_SUMMARY)
    db.cluster = ClusterProbe(
        archiver=ArchiverStats(
            archived_count=120,
            last_archived_wal="000000010000000000000009",
            last_archived_time=NOW - timedelta(minutes=2),
            failed_count=4,
            last_failed_wal="00000001000000000000000A",
            last_failed_time=NOW - timedelta(minutes=1),
        ),
        ready=3,
        spool=SpoolQueue(queued=2, queued_bytes=32 * 1024 * 1024, failed=["00000001000000000000000A"]),
    )
    db.recorded = {
        "verify": RecordedResult(NOW - timedelta(days=1), True),
        "drill": RecordedResult(
            NOW - timedelta(hours=20),
            False,
            "RTO over the objective",
            {
                "rto_seconds": 900.0,
                "rto_objective_seconds": 600.0,
                "achieved_rpo_seconds": 30.0,
                "rpo_objective_seconds": 900.0,
            },
        ),
    }
    web = SourceHealth("web", "files", True, timedelta(days=1), newest_restorable=NOW - timedelta(hours=3))
    web.snapshots = 4
    web.last_backup = _snapshot("web", "files", NOW - timedelta(hours=3), {**BACKUP_SUMMARY, "bytes_new": 0})
    web.checks.append(judge_rpo("web", web.newest_restorable, web.rpo, NOW))
    repository = RepositoryHealth(
        location="/srv/repo",
        reachable=True,
        snapshots=12,
        free_bytes=1_000,
        size_bytes=4_000,
        packs=7,
        data_bytes=123_456,
        stale_locks=["lock 1"],
    )
    return HealthReport(time=NOW, repository=repository, sources=[db, web], seconds=0.25)


JOBS = [
    JobStat(
        job=f"{kind}:{target}",
        kind=kind,
        target=target,
        runs_total=10,
        failures_total=2,
        last_success=NOW - timedelta(hours=1),
        last_run=NOW - timedelta(minutes=30),
        last_status="failed",
        last_duration_seconds=42.0,
        bytes_read=1_000,
        bytes_added=100,
    )
    for kind, target in (
        ("backup", "main-db"),
        ("verify", "main-db"),
        ("drill", "main-db"),
        ("retention", "web"),
        ("copy", "offsite"),
        ("prune", "main"),
        ("check", "main"),
    )
]


def full_input() -> MetricsInput:
    return MetricsInput(health=full_report(), jobs=JOBS, repository=RepositoryStat(packs=9, data_bytes=654_321))


def sample_names(text: str) -> set[str]:
    """Every sample name of an exposition (with its _total / _created suffix)."""
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


def family_names(text: str) -> set[str]:
    """Every family of an exposition, with or without samples."""
    return {f.name for f in text_string_to_metric_families(text)}


def exported_names() -> set[str]:
    """Every series name a PromQL expression may use: the samples' names (a counter's with its
    ``_total``, never its bare family name), of an input where every family has samples."""
    return sample_names(exposition(full_input()))
