"""The health rules (ages against rpo, archiver, recorded results), the Nagios line and
perfdata, the Prometheus text, the WAL window against ``pg info``, and the metadata cache."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from lifeboat.app.observability.metrics import MetricsInput, exposition, write_textfile
from lifeboat.app.observability.nagios import status_line
from lifeboat.core.basebackup import BaseBackup
from lifeboat.core.health import (
    ArchiverStats,
    RecordedResult,
    State,
    judge_archiver,
    judge_recorded,
    judge_rpo,
    span,
    worst,
)
from lifeboat.core.snapshot import Snapshot
from lifeboat.core.wal import Lsn, WalSegment
from lifeboat.operations.health import HealthReport, RepositoryHealth, SourceHealth, _ArchivedWal, _window
from lifeboat.operations.health_pg import ClusterProbe
from lifeboat.operations.metacache import MetadataCache, seal_body
from lifeboat.operations.pg_info import pg_info
from lifeboat.repository.repo import Repository
from lifeboat.repository.wal import WalArchive

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
MIN = 60.0


@pytest.mark.parametrize(
    ("age_s", "rpo_s", "state"),
    [
        (0, 900, State.OK),
        (719, 900, State.OK),  # under 80 %
        (720, 900, State.WARNING),  # 80 % of rpo
        (900, 900, State.WARNING),  # at rpo: not yet breached
        (901, 900, State.CRITICAL),
        (7200, 900, State.CRITICAL),
        (10 * 86400, None, State.OK),  # no rpo: reported, never judged
    ],
)
def test_rpo_states(age_s: float, rpo_s: float | None, state: State) -> None:
    rpo = timedelta(seconds=rpo_s) if rpo_s is not None else None
    check = judge_rpo("db", NOW - timedelta(seconds=age_s), rpo, NOW)
    assert check.state is state
    assert check.metrics["age_seconds"] == age_s


def test_nothing_restorable_is_critical_for_a_configured_source_only() -> None:
    assert judge_rpo("db", None, timedelta(minutes=15), NOW).state is State.CRITICAL
    assert judge_rpo("db", None, None, NOW).state is State.CRITICAL
    assert judge_rpo("old", None, None, NOW, configured=False).state is State.UNKNOWN


@pytest.mark.parametrize(
    ("states", "overall"),
    [
        ([], State.OK),
        ([State.OK, State.OK], State.OK),
        ([State.OK, State.UNKNOWN], State.UNKNOWN),
        ([State.UNKNOWN, State.WARNING], State.WARNING),
        ([State.WARNING, State.CRITICAL, State.UNKNOWN], State.CRITICAL),
    ],
)
def test_overall_is_the_worst(states: list[State], overall: State) -> None:
    assert worst(states) is overall


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(45, "45s"), (119, "119s"), (900, "15min"), (7200, "2h"), (3900 * 2, "2h10m"), (86400 * 3, "3d")],
)
def test_span(seconds: float, text: str) -> None:
    assert span(seconds) == text


def _stats(failed_at: datetime | None, archived_at: datetime | None, failed: int = 3) -> ArchiverStats:
    return ArchiverStats(
        archived_count=10,
        last_archived_wal="000000010000000000000009" if archived_at else None,
        last_archived_time=archived_at,
        failed_count=failed if failed_at else 0,
        last_failed_wal="00000001000000000000000A" if failed_at else None,
        last_failed_time=failed_at,
    )


def test_archiver_failure_since_the_last_success_is_critical_and_named() -> None:
    check = judge_archiver("db", _stats(NOW - timedelta(seconds=30), NOW - timedelta(minutes=5)), NOW)
    assert check.state is State.CRITICAL
    assert "00000001000000000000000A" in check.summary
    assert check.metrics["failed_total"] == 3


def test_archiver_failure_before_the_last_success_is_ok() -> None:
    check = judge_archiver("db", _stats(NOW - timedelta(minutes=10), NOW - timedelta(minutes=1)), NOW)
    assert check.state is State.OK
    assert judge_archiver("db", _stats(None, None), NOW).state is State.OK


@pytest.mark.parametrize(
    ("age_days", "ok", "expected", "state"),
    [
        (None, None, False, None),  # never run, not configured: no check
        (None, None, True, State.WARNING),  # a drill configured but never run
        (1, True, True, State.OK),
        (8, True, True, State.WARNING),  # older than 7 days
        (1, False, True, State.WARNING),  # a failed drill
    ],
)
def test_recorded_drill(age_days: float | None, ok: bool | None, expected: bool, state: State | None) -> None:
    result = None if age_days is None else RecordedResult(NOW - timedelta(days=age_days), bool(ok), "3 queries")
    check = judge_recorded(
        "db", "drill", result, NOW, max_age=timedelta(days=7), failed=State.WARNING, expected=expected
    )
    assert (check.state if check else None) is state


def test_failed_verify_is_critical() -> None:
    result = RecordedResult(NOW - timedelta(hours=1), False, "pack damaged")
    week = timedelta(days=7)
    check = judge_recorded("db", "verify", result, NOW, max_age=week, failed=State.CRITICAL, expected=False)
    assert check is not None and check.state is State.CRITICAL and "FAILED" in check.summary


def _report() -> HealthReport:
    db = SourceHealth("main-db", "postgres", True, timedelta(minutes=15), newest_restorable=NOW - timedelta(hours=2))
    db.checks.append(judge_rpo("main-db", db.newest_restorable, db.rpo, NOW))
    db.cluster = ClusterProbe(archiver=_stats(NOW - timedelta(minutes=1), NOW - timedelta(hours=2)), ready=40)
    db.checks.append(judge_archiver("main-db", db.cluster.archiver, NOW))  # type: ignore[arg-type]
    db.recorded["drill"] = RecordedResult(NOW - timedelta(days=1), True)
    db.checks.append(
        judge_recorded(  # type: ignore[arg-type]
            "main-db",
            "drill",
            db.recorded["drill"],
            NOW,
            max_age=timedelta(days=7),
            failed=State.WARNING,
            expected=True,
        )
    )
    web = SourceHealth("web", "files", True, None, newest_restorable=NOW - timedelta(minutes=3), snapshots=4)
    web.checks.append(judge_rpo("web", web.newest_restorable, None, NOW))
    repository = RepositoryHealth(location="/srv/repo", reachable=True, free_bytes=1000, size_bytes=4000)
    return HealthReport(time=NOW, repository=repository, sources=[db, web], seconds=0.25)


def test_nagios_line_and_perfdata() -> None:
    report = _report()
    line = status_line(report)
    assert report.state is State.CRITICAL
    assert line.startswith("LIFEBOAT CRITICAL - main-db: newest restorable point 2h ago (rpo 15min); main-db: ")
    assert line.count("\n") == 0 and line.count("|") == 1
    perf = line.split(" | ", 1)[1].split(" ")
    assert "'main-db_rpo_age_seconds'=7200;720;900;0" in perf
    assert "'web_rpo_age_seconds'=180;;;0" in perf
    assert "'main-db_archiver_failed'=3;;;0" in perf
    assert "'main-db_ready_files'=40;31;;0" in perf
    assert "'repository_free_bytes'=1000;;;0" in perf


def test_nagios_line_fits_nrpe_v2_with_whole_data_the_worst_sources_first() -> None:
    sources = []
    for i in range(80):  # far more than 1 KiB of performance data
        name = f"tenant-database-number-{i:03}-with-a-long-name"
        age = timedelta(hours=3) if i == 77 else timedelta(minutes=1)
        source = SourceHealth(name, "files", True, timedelta(hours=1), newest_restorable=NOW - age, snapshots=1)
        source.checks.append(judge_rpo(name, source.newest_restorable, source.rpo, NOW))
        sources.append(source)
    repository = RepositoryHealth(location="/srv/repo", reachable=True, free_bytes=1000, size_bytes=4000)
    report = HealthReport(time=NOW, repository=repository, sources=sources, seconds=0.5)

    line = status_line(report)

    assert len(line.encode()) <= 1024 and "\n" not in line
    assert line.startswith("LIFEBOAT CRITICAL - tenant-database-number-077-with-a-long-name: ")
    perf = line.split(" | ", 1)[1].split(" ")
    assert perf[0] == "'tenant-database-number-077-with-a-long-name_rpo_age_seconds'=10800;2880;3600;0"
    assert all(p.count("=") == 1 and p.endswith(";0") for p in perf)  # every datum whole
    assert len(perf) < 80


def test_prometheus_text_parses(tmp_path: Path) -> None:
    report = _report()
    families = {f.name: f for f in text_string_to_metric_families(exposition(MetricsInput(health=report)))}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    db = (("kind", "postgres"), ("source", "main-db"))
    assert samples[("lifeboat_health_state", ())] == 2
    assert samples[("lifeboat_source_rpo_seconds", db)] == 900
    newest = (NOW - timedelta(hours=2)).timestamp()
    assert samples[("lifeboat_source_newest_restorable_timestamp_seconds", db)] == newest
    assert samples[("lifeboat_pg_archiver_failed_total", db)] == 3
    assert samples[("lifeboat_pg_archive_ready_files", db)] == 40
    assert samples[("lifeboat_last_drill_success", db)] == 1
    assert samples[("lifeboat_repository_filesystem_free_bytes", ())] == 1000
    assert ("lifeboat_source_rpo_seconds", (("kind", "files"), ("source", "web"))) not in samples  # not set: absent
    target = tmp_path / "lifeboat.prom"
    write_textfile(MetricsInput(health=report), target)
    assert list(text_string_to_metric_families(target.read_text()))
    assert [p.name for p in tmp_path.iterdir()] == ["lifeboat.prom"]  # the temporary file was renamed


# --- the WAL window, held equal to pg info ----------------------------------------------------------------
SYSTEM = "7301234567890123456"
SEG = 16 * 1024 * 1024


def _backup(repo: Repository, number: int, when: datetime, timeline: int = 1) -> None:
    start = Lsn(number * SEG + 40)
    record = BaseBackup(
        method="local",
        system_id=SYSTEM,
        version="15",
        version_num=150000,
        timeline=timeline,
        start_lsn=start,
        stop_lsn=Lsn(start + 4096),
        start_time=when,
        stop_time=when + timedelta(seconds=1),
        label="t",
        data_directory="/d",
    )
    snap = Snapshot(time=when, source="db", kind="postgres", tree=bytes(32), extra={"postgres": record.to_json()})
    repo.save_snapshot(snap)


def _push(repo: Repository, numbers: list[int], timeline: int = 1) -> None:
    archive = WalArchive(repo, SYSTEM)
    for n in numbers:
        archive.push(WalSegment(timeline, n).name, b"x")


@pytest.mark.parametrize(
    ("backups", "archived", "holes"),
    [
        ([2, 6], range(0, 12), []),  # whole
        ([2, 6], range(0, 12), [9]),  # a hole after the newest backup: recovery is cut short
        ([2, 6], range(0, 12), [4]),  # a hole between the backups: the newest still reaches the end
        ([2, 6], range(0, 12), [6]),  # the newest backup's own WAL missing: the older one is newest usable
        ([5], range(0, 4), []),  # nothing archived past the backup
        ([2, 6], range(3, 12), []),  # the oldest backup's WAL expired
    ],
)
def test_window_equals_pg_info(memory_repo: Repository, backups: list[int], archived: range, holes: list[int]) -> None:
    for i, number in enumerate(backups):
        _backup(memory_repo, number, NOW - timedelta(hours=len(backups) - i))
    _push(memory_repo, [n for n in archived if n not in holes])
    (info,) = pg_info(memory_repo)
    found = [b for b in info.backups]
    window, _ = _window(memory_repo, SYSTEM, found, _ArchivedWal.list(memory_repo), SEG, MetadataCache(None))
    expected = info.window
    if expected is None:
        assert window.earliest is None
        return
    assert window.earliest is not None and window.earliest.snapshot_id == expected.earliest_backup
    assert (window.blocked_by.name if window.blocked_by else None) == expected.blocked_by
    assert (window.gap.name if window.gap else None) == info.gap
    reached = window.reached.name if window.reached else window.newest_usable.stop_segment.name  # type: ignore[union-attr]
    assert reached == expected.latest_wal
    present = [n for n in archived if n not in holes]
    assert window.missing_count == sum(1 for n in range(min(backups), max(present) + 1) if n not in present)


def test_archived_wal_through_the_catalogue_is_the_names_listing(local_repo: Repository, tmp_path: Path) -> None:
    """Health reads the WAL through the catalogue where the state directory holds one: the
    same segments and history files as a listing of names, after WAL came and went too."""
    _push(local_repo, [1, 2, 3, 5, 8])
    _push(local_repo, [8, 9], timeline=2)
    archive = WalArchive(local_repo, SYSTEM)
    archive.push("00000002.history", b"1\t0/3000000\tno reason\n")
    archive.push(WalSegment(1, 9).name + ".partial", b"x")
    names = _ArchivedWal.list(local_repo)
    assert names.segments[SYSTEM][2] == [WalSegment(2, 8).name, WalSegment(2, 9).name]
    assert _ArchivedWal.list(local_repo, tmp_path) == names
    _push(local_repo, [4])
    local_repo.backend.delete(archive.object_name(WalSegment(1, 1).name))
    assert _ArchivedWal.list(local_repo, tmp_path) == _ArchivedWal.list(local_repo)
    assert WalSegment(1, 4).name in _ArchivedWal.list(local_repo, tmp_path).segments[SYSTEM][1]


@pytest.mark.parametrize("holes", [[], [6], [3], [8]])
def test_window_equals_pg_info_across_a_timeline_switch(memory_repo: Repository, holes: list[int]) -> None:
    """Timeline 2 branches off timeline 1 inside segment 5; timeline 1 went on to 7 (off the
    history followed); recovery reads 0–4 from timeline 1 and 5–10 from timeline 2."""
    _backup(memory_repo, 2, NOW - timedelta(hours=3))
    _push(memory_repo, [n for n in range(0, 8) if n not in holes or n > 4])
    time.sleep(0.01)  # timeline 2's WAL arrives later: it is the live one
    WalArchive(memory_repo, SYSTEM).push("00000002.history", f"1\t0/{5 * SEG + 100:X}\tbranch\n".encode())
    _push(memory_repo, [n for n in range(5, 11) if n not in holes or n <= 4], timeline=2)
    (info,) = pg_info(memory_repo)
    window, _ = _window(memory_repo, SYSTEM, info.backups, _ArchivedWal.list(memory_repo), SEG, MetadataCache(None))
    assert window.timeline == 2 and info.window is not None and info.window.timeline == 2
    assert (window.blocked_by.name if window.blocked_by else None) == info.window.blocked_by
    assert (window.gap.name if window.gap else None) == info.gap
    assert window.reached is not None and window.reached.name == info.window.latest_wal
    assert [s.name for s in window.missing] == [WalSegment(1 if h < 5 else 2, h).name for h in holes]


# --- the metadata cache --------------------------------------------------------------------------------
def _files_snapshot(repo: Repository, minutes: int) -> Snapshot:
    snap = Snapshot(time=NOW - timedelta(minutes=minutes), source="web", kind="files", tree=bytes(32))
    return repo.save_snapshot(snap)


def test_cache_fetches_only_new_ids_and_drops_removed_ones(memory_repo: Repository, tmp_path: Path) -> None:
    first = [_files_snapshot(memory_repo, m) for m in (30, 20, 10)]
    rid = memory_repo.header.repository_id
    cache = MetadataCache.load(tmp_path, memory_repo)
    found, _ = cache.snapshots_of(memory_repo)
    cache.save()
    assert [s.id for s in found] == [s.id for s in first] and cache.stats.snapshots_fetched == 3
    path = tmp_path / "metadata" / f"{rid}.json"
    assert path.stat().st_mode & 0o777 == 0o600
    newer = _files_snapshot(memory_repo, 5)
    memory_repo.backend.delete(f"snapshots/{first[0].id}")
    cache = MetadataCache.load(tmp_path, memory_repo)
    found, _ = cache.snapshots_of(memory_repo)
    cache.save()
    assert [s.id for s in found] == [first[1].id, first[2].id, newer.id]
    assert (cache.stats.snapshots_fetched, cache.stats.snapshots_cached, cache.stats.snapshots_dropped) == (1, 2, 1)
    assert first[0].id not in json.loads(path.read_bytes().partition(b"\n")[2])["snapshots"]
    path.write_text("{not json")  # a damaged cache is discarded and rebuilt
    cache = MetadataCache.load(tmp_path, memory_repo)
    found, _ = cache.snapshots_of(memory_repo)
    assert cache.stats.discarded and cache.stats.snapshots_fetched == 3 and len(found) == 3


def test_a_cache_file_the_repository_did_not_seal_is_not_believed(memory_repo: Repository, tmp_path: Path) -> None:
    """An edited record (valid JSON, the same ids) or a file sealed with another key: discarded."""
    snapshot = _files_snapshot(memory_repo, 30)
    cache = MetadataCache.load(tmp_path, memory_repo)
    cache.snapshots_of(memory_repo)
    cache.save()
    path = tmp_path / "metadata" / f"{memory_repo.header.repository_id}.json"
    seal, _, body = path.read_bytes().partition(b"\n")
    doc = json.loads(body)
    doc["snapshots"][snapshot.id]["source"] = "evil"
    path.write_bytes(seal + b"\n" + json.dumps(doc).encode())
    again = MetadataCache.load(tmp_path, memory_repo)
    found, _ = again.snapshots_of(memory_repo)
    assert again.stats.discarded and again.stats.snapshots_fetched == 1 and found[0].source == "web"
    path.write_bytes(seal_body(bytes(32), json.dumps(doc).encode()))  # sealed, but not with this repository's key
    again = MetadataCache.load(tmp_path, memory_repo)
    found, _ = again.snapshots_of(memory_repo)
    assert again.stats.discarded and found[0].source == "web"


def test_every_snapshot_listing_goes_through_the_cache(memory_repo: Repository, tmp_path: Path) -> None:
    from lifeboat.operations.metacache import CachedSnapshots

    made = [_files_snapshot(memory_repo, m) for m in (30, 20, 10)]
    catalog = CachedSnapshots(tmp_path)
    memory_repo.snapshot_catalog = catalog
    assert [s.id for s in memory_repo.snapshots()] == [s.id for s in made]
    assert catalog.stats.snapshots_fetched == 3
    assert [s.id for s in memory_repo.snapshots_and_damage()[0]] == [s.id for s in made]
    assert (catalog.stats.snapshots_fetched, catalog.stats.snapshots_cached) == (0, 3)
    memory_repo.backend.delete(f"snapshots/{made[1].id}")  # forgotten elsewhere: the listing decides
    assert [s.id for s in memory_repo.snapshots()] == [made[0].id, made[2].id]


def test_cluster_facts_judged() -> None:
    from lifeboat.operations.health import _cluster_checks

    other = SourceHealth("db", "postgres", True, wal={"system_id": "111"})
    _cluster_checks(other, ClusterProbe(system_id="222", archiver=_stats(None, NOW), ready=0), NOW)
    assert {c.name: c.state for c in other.checks}["system"] is State.CRITICAL
    down = SourceHealth("db", "postgres", True, wal={"system_id": "111"})
    _cluster_checks(down, ClusterProbe(error="connection refused"), NOW)
    assert [(c.name, c.state) for c in down.checks] == [("cluster", State.UNKNOWN)]
    uncounted = SourceHealth("db", "postgres", True)
    _cluster_checks(uncounted, ClusterProbe(system_id="111", archiver=_stats(None, NOW), ready_how="denied"), NOW)
    states = {c.name: c.state for c in uncounted.checks}
    assert states["archiver"] is State.OK and states["ready"] is State.UNKNOWN


def test_a_repository_that_opens_but_cannot_be_listed_is_unknown(memory_repo: Repository, tmp_path: Path) -> None:
    """A storage failure after the repository opened (a fault real storage produces, injected)."""
    from lifeboat.operations.health import HealthRequest, check_health
    from lifeboat.storage.faulty import FaultPlan, FaultyBackend
    from tests.conftest import PASSPHRASE

    _files_snapshot(memory_repo, 5)
    plan = FaultPlan(rate=1.0, kinds=("io",), operations=("list",), objects=("snapshots/",))
    broken = Repository.open(FaultyBackend(memory_repo.backend, plan), PASSPHRASE)
    config = type("Config", (), {"type": "files", "rpo": "1h"})()
    report = check_health(lambda: broken, HealthRequest(configs={"web": config}, state_directory=str(tmp_path)))
    assert report.state is State.UNKNOWN
    reachable = [c for c in report.repository.checks if c.name == "reachable"]
    assert len(reachable) == 1 and reachable[0].summary.startswith("cannot read the repository: ")
    assert "Input/output error" in reachable[0].summary
    assert [(c.name, c.state) for c in report.sources[0].checks] == [("rpo", State.UNKNOWN)]


@pytest.mark.parametrize(
    ("schedule", "interval"),
    [
        ("0 3 * * *", timedelta(days=1)),
        ("@daily", timedelta(days=1)),
        ("*/15 * * * *", timedelta(minutes=15)),
        ("0 3 * * 1", timedelta(days=7)),
        ("30 2 * * 1-5", timedelta(days=3)),  # Friday to Monday
        ("0 */6 * * *", timedelta(hours=6)),
        ("0 4 1 * *", timedelta(days=31)),
        ("0 4 1,15 * *", timedelta(days=17)),  # the 15th to the 1st of a 31-day month
        ("0 0 1 * 0", timedelta(days=7)),  # day of month OR Sunday
        ("not a schedule", None),
        ("0 3 * * MON", None),  # names are not understood: the default applies
        ("61 * * * *", None),
    ],
)
def test_longest_interval_of_a_schedule(schedule: str, interval: timedelta | None) -> None:
    from lifeboat.core.schedule import longest_interval

    assert longest_interval(schedule) == interval


def test_drill_age_follows_its_schedule() -> None:
    from lifeboat.core.health import drill_max_age

    assert drill_max_age("0 3 * * *") == timedelta(days=2)
    assert drill_max_age("0 3 * * 0") == timedelta(days=14)
    assert drill_max_age(None) == timedelta(days=7) == drill_max_age("whenever")
    assert drill_max_age(timedelta(days=3)) == timedelta(days=6)  # schedule.drill: {every: 3d}


def test_the_drill_schedule_health_reads() -> None:
    from lifeboat.config.loader import parse_config
    from lifeboat.operations.health import _drill_schedule

    config = parse_config(
        "sources:\n"
        "  a: {paths: [/x], drill: {schedule: '0 3 * * 0'}}\n"
        "  b: {paths: [/x], schedule: {drill: 3d}}\n"
        "  c: {paths: [/x], schedule: {drill: '0 4 1 * *'}}\n"
        "  d: {paths: [/x], drill: {target: latest}}\n"
    )
    schedules = {name: _drill_schedule(source) for name, source in config.sources.items()}
    assert schedules == {"a": "0 3 * * 0", "b": timedelta(days=3), "c": "0 4 1 * *", "d": None}
