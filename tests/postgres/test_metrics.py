"""``lifeboat health --prometheus FILE`` on a real archiving cluster: the base backup's numbers,
the archiver's counts, the newest archived WAL and the archive lag, the recovery window — as
a Prometheus server would read them from node exporter's textfile collector."""

from __future__ import annotations

import json
import time
from datetime import datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families

from lifeboat.app.observability.metrics import exposition
from tests.postgres.conftest import WorldFactory
from tests.postgres.test_health import _configured
from tests.unit.metrics_world import family_names, full_input

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("postgres-metrics")]


def test_postgres_metrics_from_a_real_cluster(worlds: WorldFactory) -> None:
    world = worlds()
    env = _configured(world)
    backed_up = world.lifeboat("backup", "--source", "db", env=env)
    assert backed_up.code == 0, backed_up
    switched = world.switch_wal()
    world.wait_archived(switched)
    snapshots = json.loads(world.lifeboat("--json", "snapshots", env=env).stdout)
    summary = max(snapshots, key=lambda s: s["time"])["summary"]

    target = world.base / "lifeboat.prom"
    done = world.lifeboat("--json", "health", "--prometheus", str(target), env=env)
    assert done.code == 0, done
    doc = json.loads(done.stdout)
    text = target.read_text()
    samples = {
        (s.name, s.labels.get("source", "")): s.value for f in text_string_to_metric_families(text) for s in f.samples
    }
    labels = {s.labels.get("kind") for f in text_string_to_metric_families(text) for s in f.samples if s.labels}
    assert labels == {"postgres"}

    # the base backup: the snapshot's own numbers
    assert samples[("lifeboat_backup_last_duration_seconds", "db")] == summary["duration_seconds"] > 0
    assert samples[("lifeboat_backup_last_added_bytes", "db")] == summary["bytes_new"] > 0
    assert samples[("lifeboat_backup_last_read_bytes", "db")] == summary["bytes_total"] > 0
    assert samples[("lifeboat_backup_last_stored_bytes", "db")] == summary["bytes_stored"] > 0
    assert 0 < samples[("lifeboat_backup_last_compression_ratio", "db")] < 1  # a fresh cluster compresses well

    # archiving: the server's counts, the newest WAL in the repository and how old it was
    (db,) = doc["sources"]
    archiver = db["cluster"]["archiver"]
    assert samples[("lifeboat_pg_up", "db")] == 1
    assert samples[("lifeboat_pg_archiver_archived_total", "db")] == archiver["archived_count"] >= 2
    assert samples[("lifeboat_pg_archiver_failed_total", "db")] == 0
    last_archived = datetime.fromisoformat(archiver["last_archived_time"]).timestamp()
    assert samples[("lifeboat_pg_archiver_last_archived_timestamp_seconds", "db")] == last_archived
    newest_wal = samples[("lifeboat_pg_wal_newest_timestamp_seconds", "db")]
    checked = samples[("lifeboat_health_check_timestamp_seconds", "")]
    assert abs(newest_wal - last_archived) < 30 and time.time() - newest_wal < 120
    assert samples[("lifeboat_pg_archive_lag_seconds", "db")] == pytest.approx(checked - newest_wal)
    assert samples[("lifeboat_pg_archive_ready_files", "db")] == 0

    # the window: from the base backup to the end of the archived WAL, nothing missing
    start = samples[("lifeboat_source_oldest_restorable_timestamp_seconds", "db")]
    end = samples[("lifeboat_source_newest_restorable_timestamp_seconds", "db")]
    assert start <= end <= checked
    assert start == datetime.fromisoformat(db["oldest_restorable"]).timestamp()
    assert samples[("lifeboat_pg_wal_missing_segments", "db")] == 0
    assert samples[("lifeboat_source_rpo_seconds", "db")] == 3600

    daemon = family_names(exposition(full_input()))
    assert family_names(text) == {n for n in daemon if not n.startswith("lifeboat_job_")}
