"""``lifeboat health --prometheus FILE`` on a real repository after real backups: the per-source
backup metrics are the newest snapshot's numbers, the repository's size is the bytes of its
pack files on disk, and the names are the daemon's set minus the job metrics (one code path)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Cli
from tests.unit.metrics_world import family_names, full_input

Samples = dict[tuple[str, str], float]


def _metrics(path: Path) -> tuple[Samples, set[str]]:
    text = path.read_text()
    samples = {
        (s.name, s.labels.get("source", "")): s.value for f in text_string_to_metric_families(text) for s in f.samples
    }
    return samples, family_names(text)


def _pack_bytes(repo: Path) -> int:
    return sum(f.stat().st_size for f in (repo / "data").rglob("*") if f.is_file())


def test_backup_metrics_are_the_newest_snapshots(cli: Cli, cli_env: dict[str, str], tmp_path: Path) -> None:
    assert cli("init", "--kdf-memory", "16KiB", "--kdf-iterations", "1").code == 0
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.bin").write_bytes(os.urandom(4_000_000))  # several chunks (512 KiB on average)
    (data / "text.txt").write_text("lifeboat metrics " * 20_000)  # compressible
    config = tmp_path / "lifeboat.yaml"
    config.write_text(f"sources:\n  web:\n    type: files\n    paths: [{data}]\n    rpo: 1h\n")
    env = {"LIFEBOAT_CONFIG": str(config)}
    assert cli("backup", "--source", "web", env=env).code == 0
    copied = (data / "a.bin").read_bytes()
    (data / "b.bin").write_bytes(copied + os.urandom(50_000))  # a copy of a.bin: deduplicated, and 50 kB new
    assert cli("backup", "--source", "web", env=env).code == 0
    snapshots = json.loads(cli("--json", "snapshots", env=env).stdout)
    newest = max(snapshots, key=lambda s: s["time"])
    summary = newest["summary"]

    target = tmp_path / "textfile" / "lifeboat.prom"
    target.parent.mkdir()
    done = cli("health", "--prometheus", str(target), env=env)
    assert done.code == 0, done
    samples, names = _metrics(target)
    assert samples[("lifeboat_backup_last_duration_seconds", "web")] == summary["duration_seconds"] > 0
    assert samples[("lifeboat_backup_last_added_bytes", "web")] == summary["bytes_new"] < 2_000_000
    assert samples[("lifeboat_backup_last_read_bytes", "web")] == summary["bytes_total"] > 8_000_000
    assert samples[("lifeboat_backup_last_stored_bytes", "web")] == summary["bytes_stored"] > 0
    dedup = summary["bytes_deduplicated"] / (summary["bytes_new"] + summary["bytes_deduplicated"])
    assert samples[("lifeboat_backup_last_dedup_ratio", "web")] == dedup > 0.5  # most of b.bin was stored before
    assert samples[("lifeboat_backup_last_compression_ratio", "web")] == summary["bytes_stored"] / summary["bytes_new"]
    stamp = samples[("lifeboat_backup_last_success_timestamp_seconds", "web")]
    assert abs(time.time() - stamp) < 300
    assert samples[("lifeboat_source_snapshots", "web")] == 2
    # the repository's size: every pack file the backups wrote, read from the index
    assert samples[("lifeboat_repository_data_bytes", "")] == _pack_bytes(Path(cli_env["LIFEBOAT_REPO"])) > 4_000_000
    assert samples[("lifeboat_repository_packs", "")] >= 1
    assert ("lifeboat_repository_filesystem_free_bytes", "") in samples

    daemon = family_names_of_the_daemon()
    assert names == {n for n in daemon if not n.startswith("lifeboat_job_")}

    # a third backup: the size follows (one new index file fetched, the rest from the cache)
    (data / "c.bin").write_bytes(os.urandom(40_000))
    assert cli("backup", "--source", "web", env=env).code == 0
    doc = json.loads(cli("--json", "health", "--prometheus", str(target), env=env).stdout)
    assert doc["cache"]["index_fetched"] == 1
    samples, _ = _metrics(target)
    assert samples[("lifeboat_repository_data_bytes", "")] == _pack_bytes(Path(cli_env["LIFEBOAT_REPO"]))
    assert doc["repository"]["data_bytes"] == samples[("lifeboat_repository_data_bytes", "")]


def family_names_of_the_daemon() -> set[str]:
    from lifeboat.app.observability.metrics import exposition

    return family_names(exposition(full_input()))
