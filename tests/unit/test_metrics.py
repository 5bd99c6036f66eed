"""The metric set: Prometheus conventions checked over every exported family (prefix, units,
``_total`` counters, bounded labels, HELP), the values read off a health report and the
daemon's job statistics, one set for ``health --prometheus`` and ``/metrics``."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families

from lifeboat.app.observability.metrics import (
    ALLOWED_LABELS,
    JOB_STATUSES,
    JobStat,
    MetricsInput,
    exposition,
    families,
    job_stats,
    registry,
)
from lifeboat.operations.health import HealthReport, RepositoryHealth, SourceHealth
from lifeboat.repository.repo import Repository
from tests.unit.metrics_world import BACKUP_SUMMARY, JOBS, NOW, family_names, full_input, full_report, sample_names

UNITS = ("_seconds", "_bytes", "_ratio")
# Gauges without a unit: a state or a 0/1 verdict, or a count of things named in the name.
UNITLESS = ("_state", "_success", "_up", "_status", "_snapshots", "_files", "_segments", "_packs", "_locks")


def _samples(given: MetricsInput) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(exposition(given))
        for s in f.samples
    }


def _problems(family: Metric) -> list[str]:
    """What is wrong with a family by the conventions (empty: nothing)."""
    name, found = family.name, []
    if not name.startswith("lifeboat_") or not re.fullmatch(r"[a-z_]+", name):
        found.append("not a lifeboat_ snake_case name")
    if not family.documentation.strip().endswith("."):
        found.append("no HELP sentence")
    if family.type == "counter":
        if not all(s.name == f"{name}_total" for s in family.samples):
            found.append("a counter sample without _total")
    elif family.type != "gauge":
        found.append(f"type {family.type}")
    elif name.endswith("_total"):
        found.append("a gauge named like a counter")
    elif not name.endswith(UNITS + UNITLESS):
        found.append("no unit in the name")
    elif ("timestamp" in name and not name.endswith("_timestamp_seconds")) or (
        "bytes" in name and not name.endswith("_bytes")
    ):
        found.append("the unit is not the suffix")
    for sample in family.samples:
        if not set(sample.labels) <= ALLOWED_LABELS:
            found.append(f"labels {sorted(set(sample.labels) - ALLOWED_LABELS)}")
        if name.endswith("_ratio") and sample.value < 0:
            found.append("a negative ratio")
    return found


def test_every_family_follows_the_conventions() -> None:
    found = families(full_input())
    assert len(found) > 40
    names = [f.name for f in found]
    assert len(names) == len(set(names))
    for family in found:
        assert family.samples, f"{family.name} has no sample in the full input: the tests would not see it"
        assert _problems(family) == [], family.name


def _bad(kind: str, name: str, labels: dict[str, str] | None = None) -> Metric:
    family = (GaugeMetricFamily if kind == "gauge" else CounterMetricFamily)(
        name, "A metric.", labels=list(labels or {})
    )
    family.add_metric(list((labels or {}).values()), 1)
    return family


@pytest.mark.parametrize(
    ("family", "problem"),
    [
        (_bad("gauge", "backup_duration_seconds"), "not a lifeboat_ snake_case name"),
        (_bad("gauge", "lifeboat_backup_last_duration"), "no unit in the name"),
        (_bad("gauge", "lifeboat_backup_runs_total"), "a gauge named like a counter"),
        (_bad("gauge", "lifeboat_backup_timestamp"), "no unit in the name"),
        (_bad("gauge", "lifeboat_backup_timestamp_bytes"), "the unit is not the suffix"),
        (_bad("gauge", "lifeboat_backup_seconds", {"snapshot": "ab12"}), "labels ['snapshot']"),
    ],
)
def test_the_convention_check_catches(family: Metric, problem: str) -> None:
    assert _problems(family) == [problem]


def test_label_values_are_bounded_by_configuration() -> None:
    """No label value per snapshot, record or WAL file: only source, kind, job, repository
    names and the fixed job statuses."""
    given = full_input()
    assert given.health is not None
    sources = {s.name for s in given.health.sources}
    kinds = {s.kind for s in given.health.sources} | {j.kind for j in JOBS}
    allowed = {
        "source": sources | {j.target for j in JOBS} | {""},
        "kind": kinds,
        "job_name": {j.job for j in JOBS},
        "repository": {j.target for j in JOBS} | {""},
        "status": set(JOB_STATUSES),
    }
    for (_name, labels), _value in _samples(given).items():
        for key, value in labels:
            assert value in allowed[key], (key, value)


def test_the_exposition_has_help_and_type_for_every_name() -> None:
    text = exposition(full_input())
    helped = set(re.findall(r"^# HELP (\S+) ", text, re.M))
    typed = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
    assert helped == typed
    families = text_string_to_metric_families(text)
    assert {f.name + ("_total" if f.type == "counter" else "") for f in families} == helped
    assert "lifeboat_job_failures_total" in sample_names(text)
    assert "lifeboat_job_runs_total" in sample_names(text)
    assert "lifeboat_pg_archiver_failed_total" in sample_names(text)


def test_values_from_the_health_report() -> None:
    samples = _samples(full_input())
    db = (("kind", "postgres"), ("source", "main-db"))
    web = (("kind", "files"), ("source", "web"))
    assert samples[("lifeboat_health_state", ())] == int(full_report().state)
    assert samples[("lifeboat_health_check_timestamp_seconds", ())] == NOW.timestamp()
    assert samples[("lifeboat_source_rpo_seconds", db)] == 900
    assert (
        samples[("lifeboat_source_newest_restorable_timestamp_seconds", db)] == (NOW - timedelta(minutes=5)).timestamp()
    )
    assert samples[("lifeboat_source_oldest_restorable_timestamp_seconds", db)] == (NOW - timedelta(days=7)).timestamp()
    assert samples[("lifeboat_backup_last_success_timestamp_seconds", db)] == (NOW - timedelta(hours=6)).timestamp()
    assert samples[("lifeboat_backup_last_duration_seconds", db)] == BACKUP_SUMMARY["duration_seconds"]
    assert samples[("lifeboat_backup_last_read_bytes", db)] == 10_000
    assert samples[("lifeboat_backup_last_added_bytes", db)] == 4_000
    assert samples[("lifeboat_backup_last_stored_bytes", db)] == 1_000
    assert samples[("lifeboat_backup_last_dedup_ratio", db)] == pytest.approx(0.6)
    assert samples[("lifeboat_backup_last_compression_ratio", db)] == pytest.approx(0.25)
    assert samples[("lifeboat_backup_last_dedup_ratio", web)] == 1.0  # nothing new: all deduplicated
    assert ("lifeboat_backup_last_compression_ratio", web) not in samples  # no new bytes: no ratio
    assert samples[("lifeboat_pg_wal_missing_segments", db)] == 2
    assert samples[("lifeboat_pg_wal_newest_timestamp_seconds", db)] == (NOW - timedelta(minutes=3)).timestamp()
    assert samples[("lifeboat_pg_archive_lag_seconds", db)] == 180
    assert samples[("lifeboat_pg_up", db)] == 1
    assert samples[("lifeboat_pg_archiver_archived_total", db)] == 120
    assert samples[("lifeboat_pg_archiver_failed_total", db)] == 4
    assert samples[("lifeboat_pg_archive_ready_files", db)] == 3
    assert samples[("lifeboat_pg_spool_queued_files", db)] == 2
    assert samples[("lifeboat_pg_spool_queued_bytes", db)] == 32 * 1024 * 1024
    assert samples[("lifeboat_pg_spool_failed_files", db)] == 1
    assert samples[("lifeboat_last_verify_success", db)] == 1
    assert samples[("lifeboat_last_drill_success", db)] == 0
    assert samples[("lifeboat_last_drill_timestamp_seconds", db)] == (NOW - timedelta(hours=20)).timestamp()
    assert samples[("lifeboat_last_drill_rto_seconds", db)] == 900
    assert samples[("lifeboat_last_drill_rto_objective_seconds", db)] == 600
    assert samples[("lifeboat_last_drill_achieved_rpo_seconds", db)] == 30
    assert samples[("lifeboat_last_drill_rpo_objective_seconds", db)] == 900
    for name in ("lifeboat_pg_up", "lifeboat_pg_wal_missing_segments", "lifeboat_last_drill_success"):
        assert (name, web) not in samples  # not known for a files source: absent, never 0
    assert samples[("lifeboat_repository_up", ())] == 1
    assert samples[("lifeboat_repository_snapshots", ())] == 12
    assert samples[("lifeboat_repository_stale_locks", ())] == 1
    assert samples[("lifeboat_repository_filesystem_free_bytes", ())] == 1_000
    assert samples[("lifeboat_repository_filesystem_size_bytes", ())] == 4_000
    # the daemon's RepositoryStat is newer than the last health check's numbers
    assert samples[("lifeboat_repository_data_bytes", ())] == 654_321
    assert samples[("lifeboat_repository_packs", ())] == 9
    only_health = _samples(MetricsInput(health=full_report()))
    assert only_health[("lifeboat_repository_data_bytes", ())] == 123_456


def test_job_metrics() -> None:
    samples = _samples(full_input())
    backup = (("job_name", "backup:main-db"), ("kind", "backup"), ("repository", ""), ("source", "main-db"))
    prune = (("job_name", "prune:main"), ("kind", "prune"), ("repository", "main"), ("source", ""))
    for labels in (backup, prune):
        assert samples[("lifeboat_job_runs_total", labels)] == 10
        assert samples[("lifeboat_job_failures_total", labels)] == 2
        assert samples[("lifeboat_job_last_run_duration_seconds", labels)] == 42
        assert (
            samples[("lifeboat_job_last_success_timestamp_seconds", labels)] == (NOW - timedelta(hours=1)).timestamp()
        )
        assert samples[("lifeboat_job_last_run_timestamp_seconds", labels)] == (NOW - timedelta(minutes=30)).timestamp()
    states = {
        dict(labels)["status"]: value
        for (name, labels), value in samples.items()
        if name == "lifeboat_job_last_run_status" and dict(labels)["job_name"] == "backup:main-db"
    }
    assert states == {status: (1 if status == "failed" else 0) for status in JOB_STATUSES}
    assert samples[("lifeboat_job_last_added_bytes", backup)] == 100


def test_health_and_the_daemon_export_one_set() -> None:
    """``health --prometheus`` (a report, no jobs) exports the daemon's set minus the job
    metrics; and which names appear never depends on what the report holds."""
    daemon = family_names(exposition(full_input()))
    health = family_names(exposition(MetricsInput(health=full_report())))
    jobs = {n for n in daemon if n.startswith("lifeboat_job_")}
    assert jobs and health == daemon - jobs
    empty = HealthReport(time=NOW, repository=RepositoryHealth())  # repository unreachable, no source
    assert family_names(exposition(MetricsInput(health=empty))) == health
    bare = HealthReport(time=NOW, repository=RepositoryHealth(), sources=[SourceHealth("x", "files", True)])
    assert family_names(exposition(MetricsInput(health=bare))) == health


def test_a_registry_reads_a_fresh_input_at_each_scrape() -> None:
    given = [MetricsInput(health=full_report())]
    reg = registry(lambda: given[-1])
    first = generate_latest(reg).decode()
    assert "lifeboat_job_runs_total" not in first
    given.append(full_input())
    assert "lifeboat_job_runs_total" in generate_latest(reg).decode()


@dataclass(frozen=True)
class _Run:
    job: str
    kind: str
    target: str
    started: datetime
    finished: datetime | None
    status: str
    bytes_read: int | None = None
    bytes_added: int | None = None


def test_job_stats_from_catalog_runs() -> None:
    def run(minutes: int, status: str, seconds: int = 60, added: int | None = None) -> _Run:
        started = NOW + timedelta(minutes=minutes)
        finished = None if status == "running" else started + timedelta(seconds=seconds)
        return _Run("backup:db", "backup", "db", started, finished, status, 10, added)

    runs = [
        run(0, "succeeded", added=5),
        run(10, "failed"),
        run(20, "succeeded", seconds=30, added=7),
        run(30, "timed-out", seconds=90),
        run(40, "cancelled"),
        run(50, "running"),
        _Run("copy:offsite", "copy", "offsite", NOW, NOW + timedelta(seconds=5), "succeeded"),
    ]
    backup, copy = job_stats(reversed(runs))  # by job name
    assert backup == JobStat(
        job="backup:db",
        kind="backup",
        target="db",
        runs_total=5,
        failures_total=2,  # failed and timed out; a cancelled run is not a failure
        last_success=NOW + timedelta(minutes=20, seconds=30),
        last_run=NOW + timedelta(minutes=50),
        last_status="running",
        last_duration_seconds=60.0,  # the cancelled run, the last that finished
        bytes_read=10,
        bytes_added=7,
    )
    assert (copy.job, copy.runs_total, copy.failures_total, copy.last_status) == ("copy:offsite", 1, 0, "succeeded")
    assert job_stats([]) == []


def test_drill_metrics_from_a_recorded_drill(memory_repo: Repository) -> None:
    """The figures the drill metrics show are the ones a drill record keeps (the keys cannot drift apart)."""
    from lifeboat.core.drill import DrillResult
    from lifeboat.operations.drill.records import drill_record
    from lifeboat.operations.health_records import latest_results
    from lifeboat.operations.records import save_record

    result = DrillResult(
        source="db", kind="postgres", target="latest", started=NOW, finished=NOW + timedelta(minutes=5)
    )
    for phase, seconds in (("restore", 100.0), ("replay", 20.0), ("start", 3.0), ("validate", 2.0)):
        result.add_phase(phase, seconds)
    result.achieved_rpo, result.rto_objective, result.rpo_objective = 42.0, 60.0, 900.0
    result.judge_objectives(latest=True)  # RTO 123 s over 60 s: missed
    save_record(memory_repo, drill_record(result, time=NOW + timedelta(minutes=5)))
    recorded = latest_results(memory_repo, None)[("drill", "db")]
    source = SourceHealth("db", "postgres", True, recorded={"drill": recorded})
    report = HealthReport(time=NOW, repository=RepositoryHealth(), sources=[source])
    samples = _samples(MetricsInput(health=report))
    db = (("kind", "postgres"), ("source", "db"))
    assert samples[("lifeboat_last_drill_success", db)] == 0
    assert samples[("lifeboat_last_drill_rto_seconds", db)] == 123
    assert samples[("lifeboat_last_drill_rto_objective_seconds", db)] == 60
    assert samples[("lifeboat_last_drill_achieved_rpo_seconds", db)] == 42
    assert samples[("lifeboat_last_drill_rpo_objective_seconds", db)] == 900
    assert samples[("lifeboat_last_drill_timestamp_seconds", db)] == (NOW + timedelta(minutes=5)).timestamp()


def test_the_repository_size_from_the_index(memory_repo: Repository, tmp_path: Path) -> None:
    """Packs of index files another supersedes are not counted; a new run reads only new index
    files; a removed index file stops counting; a damaged cache entry discards the cache."""
    from lifeboat.operations.metacache import MetadataCache, cache_key, open_sealed, seal_body
    from lifeboat.repository.index import IndexedPack, IndexFile
    from lifeboat.repository.layout import index_name

    def pack(size: int) -> IndexedPack:
        return IndexedPack(os.urandom(32), os.urandom(16), size, [])

    first = memory_repo.save_index_file(IndexFile([pack(100), pack(200)]))
    second = memory_repo.save_index_file(IndexFile([pack(1000)]))
    identifier = memory_repo.header.repository_id
    cache = MetadataCache.load(tmp_path, memory_repo)
    assert cache.packed(memory_repo) == (3, 1300) and cache.stats.index_fetched == 2
    cache.save()
    # prune's rewrite: a new index file supersedes the first (written before the old is deleted)
    memory_repo.save_index_file(IndexFile([pack(250)], supersedes=[bytes.fromhex(first)]))
    again = MetadataCache.load(tmp_path, memory_repo)
    assert again.packed(memory_repo) == (2, 1250) and again.stats.index_fetched == 1
    memory_repo.backend.delete(index_name(first))
    memory_repo.backend.delete(index_name(second))
    assert again.packed(memory_repo) == (1, 250)
    again.save()
    path = tmp_path / "metadata" / f"{identifier}.json"
    key = cache_key(memory_repo)
    doc = json.loads(open_sealed(key, path.read_bytes()))
    doc["index"][next(iter(doc["index"]))]["bytes"] = "a lot"  # sealed, yet not what the code wrote
    path.write_bytes(seal_body(key, json.dumps(doc).encode()))
    damaged = MetadataCache.load(tmp_path, memory_repo)
    assert damaged.stats.discarded and damaged.packed(memory_repo) == (1, 250)
