"""``lifeboat health`` as a monitoring system runs it: a files source with an rpo on a real
repository — fresh is OK (exit 0), too old is CRITICAL (exit 2) with the Nagios line,
an unreachable repository is UNKNOWN (exit 3) — the Prometheus file, and the metadata
cache (a forgotten snapshot disappears; a second run fetches nothing new)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Cli


def _setup(cli: Cli, tmp_path: Path, rpo: str) -> dict[str, str]:
    done = cli("init", "--kdf-memory", "16KiB", "--kdf-iterations", "1")
    assert done.code == 0, done
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("hello")
    config = tmp_path / "lifeboat.yaml"
    config.write_text(f"sources:\n  web:\n    type: files\n    paths: [{data}]\n    rpo: {rpo}\n")
    return {"LIFEBOAT_CONFIG": str(config), "LIFEBOAT_STATE_DIR": str(tmp_path / "state")}


def test_fresh_backup_is_ok(cli: Cli, tmp_path: Path) -> None:
    env = _setup(cli, tmp_path, "1h")
    assert cli("backup", "--source", "web", env=env).code == 0
    done = cli("health", env=env)
    assert done.code == 0, done
    assert done.stdout.startswith("OK: "), done
    assert [line.split()[:3] for line in done.stdout.splitlines() if line.startswith("web ")] == [["web", "rpo", "OK"]]
    nagios = cli("health", "--nagios", env=env)
    assert nagios.code == 0, nagios
    assert nagios.stdout.startswith("LIFEBOAT OK - 1 sources"), nagios
    assert "'web_rpo_age_seconds'=" in nagios.stdout and ";2880;3600;0" in nagios.stdout
    doc = json.loads(cli("--json", "health", env=env).stdout)
    assert doc["state"] == "OK" and doc["exit_code"] == 0
    (web,) = doc["sources"]
    assert (web["source"], web["kind"], web["rpo_seconds"], web["snapshots"]) == ("web", "files", 3600, 1)


def test_rpo_exceeded_is_critical_with_the_nagios_line(cli: Cli, tmp_path: Path) -> None:
    env = _setup(cli, tmp_path, "2s")
    assert cli("backup", "--source", "web", env=env).code == 0
    time.sleep(2.5)
    done = cli("health", "--nagios", env=env)
    assert done.code == 2, done
    line = done.stdout.strip()
    assert "\n" not in line
    assert line.startswith("LIFEBOAT CRITICAL - web: newest restorable point "), line
    assert "(rpo 2s) | 'web_rpo_age_seconds'=" in line and ";1.600;2;0" in line
    table = cli("health", env=env)
    assert table.code == 2 and "CRITICAL" in table.stdout and "what to do:" in table.stdout


def test_a_source_never_backed_up_is_critical(cli: Cli, tmp_path: Path) -> None:
    env = _setup(cli, tmp_path, "1h")
    done = cli("health", "--nagios", env=env)
    assert done.code == 2, done
    assert done.stdout.startswith("LIFEBOAT CRITICAL - web: nothing restorable: no backup in the repository")


def test_unreachable_repository_is_unknown(cli: Cli, tmp_path: Path) -> None:
    env = _setup(cli, tmp_path, "1h")
    gone = {**env, "LIFEBOAT_REPO": str(tmp_path / "no-such-repo")}
    done = cli("health", "--nagios", env=gone)
    assert done.code == 3, done
    assert done.stdout.startswith("LIFEBOAT UNKNOWN - repository: cannot open the repository: no Lifeboat repository")
    doc = json.loads(cli("--json", "health", env=gone).stdout)
    assert doc["state"] == "UNKNOWN" and doc["repository"]["reachable"] is False
    assert doc["sources"][0]["checks"][0]["state"] == "UNKNOWN"


def test_a_bad_configuration_is_unknown(cli: Cli, tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("sources:\n  web:\n    type: files\n")
    done = cli("health", "--nagios", env={"LIFEBOAT_CONFIG": str(config)})
    assert done.code == 3, done
    assert done.stdout.startswith("LIFEBOAT UNKNOWN - "), done


def test_prometheus_textfile(cli: Cli, tmp_path: Path) -> None:
    env = _setup(cli, tmp_path, "1h")
    assert cli("backup", "--source", "web", env=env).code == 0
    target = tmp_path / "textfile" / "lifeboat.prom"
    target.parent.mkdir()
    done = cli("health", "--prometheus", str(target), env=env)
    assert done.code == 0, done
    samples = {
        (s.name, s.labels.get("source", "")): s.value
        for f in text_string_to_metric_families(target.read_text())
        for s in f.samples
    }
    assert samples[("lifeboat_source_rpo_seconds", "web")] == 3600
    assert samples[("lifeboat_source_health_state", "web")] == 0
    assert samples[("lifeboat_repository_up", "")] == 1
    assert time.time() - samples[("lifeboat_source_newest_restorable_timestamp_seconds", "web")] < 120
    assert sorted(p.name for p in target.parent.iterdir()) == ["lifeboat.prom"]


def test_cache_follows_the_repository(cli: Cli, tmp_path: Path) -> None:
    env = _setup(cli, tmp_path, "1h")
    for _ in range(3):
        assert cli("backup", "--source", "web", env=env).code == 0
    first = json.loads(cli("--json", "health", env=env).stdout)
    assert (first["cache"]["snapshots_fetched"], first["sources"][0]["snapshots"]) == (3, 3)
    second = json.loads(cli("--json", "health", env=env).stdout)
    assert (second["cache"]["snapshots_fetched"], second["cache"]["snapshots_cached"]) == (0, 3)
    assert cli("forget", "--keep-last", "1", env=env).code == 0
    third = json.loads(cli("--json", "health", env=env).stdout)
    assert third["sources"][0]["snapshots"] == 1
    assert (third["cache"]["snapshots_fetched"], third["cache"]["snapshots_dropped"]) == (0, 2)
    assert second["repository"]["snapshots"] == 3 and third["repository"]["snapshots"] == 1


def test_a_source_seen_only_in_the_repository_is_shown_unconfigured(cli: Cli, tmp_path: Path) -> None:
    done = cli("init", "--kdf-memory", "16KiB", "--kdf-iterations", "1")
    assert done.code == 0, done
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "a").write_text("a")
    assert cli("backup", str(tmp_path / "tree")).code == 0
    env = {"LIFEBOAT_STATE_DIR": str(tmp_path / "state")}
    doc = json.loads(cli("--json", "health", env=env).stdout)
    (source,) = doc["sources"]
    assert (source["configured"], source["state"], source["rpo_seconds"]) == (False, "OK", None)
    table = cli("health", env=env)
    assert table.code == 0 and "(unconfigured)  rpo" in table.stdout and "(no rpo set)" in table.stdout
    missing = cli("health", "--source", "nope", env=env)
    assert missing.code == 3 and "no such source" in missing.stdout


def test_recorded_verify_results_are_judged(cli: Cli, cli_env: dict[str, str], tmp_path: Path) -> None:
    from tests.e2e.test_verify import _damage_blob_of

    env = _setup(cli, tmp_path, "1h")
    (tmp_path / "data" / "big.txt").write_bytes(b"precious data " * 1000)
    assert cli("backup", "--source", "web", env=env).code == 0
    assert cli("verify", "--spot-check", "0", env=env).code == 0
    target = tmp_path / "lifeboat.prom"
    doc = json.loads(cli("--json", "health", "--prometheus", str(target), env=env).stdout)
    checks = {c["check"]: c for c in doc["sources"][0]["checks"]}
    assert checks["verify"]["state"] == "OK" and checks["verify"]["summary"].startswith("last verify passed")
    assert "drill" not in checks  # no drill configured, none recorded: not judged
    samples = {s.name: s.value for f in text_string_to_metric_families(target.read_text()) for s in f.samples}
    assert samples["lifeboat_last_verify_success"] == 1

    snapshot_id = json.loads(cli("--json", "snapshots", env=env).stdout)[0]["id"]
    _damage_blob_of(cli_env, snapshot_id, str(tmp_path / "data" / "big.txt").lstrip("/"))
    assert cli("verify", "--read-data", "--spot-check", "0", env=env).code == 13
    done = cli("health", "--nagios", env=env)
    assert done.code == 2, done
    assert done.stdout.startswith("LIFEBOAT CRITICAL - web: last verify FAILED "), done
    assert "big.txt" in done.stdout.split(" | ")[0]


def test_an_unwritable_prometheus_file_is_an_error(cli: Cli, tmp_path: Path) -> None:
    env = _setup(cli, tmp_path, "1h")
    assert cli("backup", "--source", "web", env=env).code == 0
    done = cli("health", "--prometheus", str(tmp_path / "no-such-dir" / "lifeboat.prom"), env=env)
    assert done.code == 3, done
    assert done.stderr.startswith("lifeboat: error: cannot write the metrics to "), done


def test_the_prometheus_file_never_replaces_what_is_not_a_regular_file(cli: Cli, tmp_path: Path) -> None:
    """As root, a rename over /dev/zero replaced the device with a text file (found by the
    hostile-values test): only a regular file (or a new path) is ever written."""
    import os
    import stat

    env = _setup(cli, tmp_path, "1h")
    assert cli("backup", "--source", "web", env=env).code == 0
    fifo = tmp_path / "metrics.fifo"
    os.mkfifo(fifo)
    target = tmp_path / "real.prom"
    link = tmp_path / "link.prom"
    target.write_text("old\n")
    link.symlink_to(target)
    for path in (fifo, link, tmp_path):
        done = cli("health", "--prometheus", str(path), env=env)
        assert done.code == 3, done
        expected = f"lifeboat: error: cannot write the metrics to {path}: it exists and is not a regular file"
        assert done.stderr.startswith(expected), done
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and link.is_symlink() and target.read_text() == "old\n"
    again = cli("health", "--prometheus", str(target), env=env)
    assert again.code == 0, again
    assert "lifeboat_health_state" in target.read_text()
