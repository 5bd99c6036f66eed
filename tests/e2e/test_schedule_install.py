"""``lifeboat schedule install``: what it prints, the files it writes and the ones it refuses
to overwrite, and its one-line errors — run as a user runs it, from a configuration file."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.conftest import CliResult, run_cli

SECRET = "hunter2-do-not-print"

CONFIG = """\
repositories:
  main:
    url: {repo}
    password_file: {password_file}
default_repository: main
sources:
  db:
    type: postgres
    data_directory: /var/lib/postgresql/15/main
    retention: {{keep_daily: 7}}
    schedule:
      backup: "0 2 * * *"
      verify: 6h
      retention: {{cron: "30 3 * * 1-5", timeout: 2h, retries: 2}}
      drill: "0 4 * * 0"
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    password_file = tmp_path / "passphrase"
    password_file.write_text(SECRET + "\n")
    path = tmp_path / "lifeboat.yaml"
    path.write_text(CONFIG.format(repo=tmp_path / "repo", password_file=password_file))
    return path


def lifeboat(config: Path, *args: str) -> CliResult:
    # the host's zone is fixed so that cron's rule (the jobs' zone = the host's) is the same everywhere
    return run_cli("-c", str(config), "schedule", "install", *args, env={"TZ": "UTC", "LIFEBOAT_STATE_DIR": ""})


def test_systemd_service_for_serve_printed(config: Path) -> None:
    result = lifeboat(config, "--systemd", "--password-file", "/etc/lifeboat/passphrase", "--user", "lifeboat")
    assert result.code == 0, result
    assert f"ExecStart=/usr/local/bin/lifeboat -c {config} serve" in result.stdout
    assert "User=lifeboat\nGroup=lifeboat\n" in result.stdout
    assert f"ReadWritePaths={config.parent / 'repo'}" in result.stdout  # the local repository
    assert "LoadCredential=passphrase:/etc/lifeboat/passphrase" in result.stdout
    assert SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize("form", ["{path}", "file://{path}", "file://localhost{path}"])
def test_the_units_may_write_the_local_repository_however_its_url_is_spelled(tmp_path: Path, form: str) -> None:
    repo = tmp_path / "repo"
    config = tmp_path / "lifeboat.yaml"
    config.write_text(CONFIG.format(repo=form.format(path=repo), password_file=tmp_path / "passphrase"))
    result = lifeboat(config, "--systemd")
    assert result.code == 0, result
    assert f"ReadWritePaths={repo}" in result.stdout.splitlines()


def test_timers_written_then_unchanged_then_refused_then_forced(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "units"
    first = lifeboat(config, "--systemd", "--timers", "--output-dir", str(out), "--program", "/bin/true")
    assert first.code == 0, first
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        f"lifeboat-{job}.{ext}"
        for job in ("backup-db", "verify-db", "retention-db", "drill-db")
        for ext in ("service", "timer")
    )
    assert f"written {out / 'lifeboat-backup-db.timer'}" in first.stdout
    assert "User=postgres\nGroup=postgres\n" in (out / "lifeboat-backup-db.service").read_text()  # the default
    assert "systemctl daemon-reload" in first.stdout
    timers = ["lifeboat-backup-db.timer", "lifeboat-verify-db.timer", "lifeboat-drill-db.timer"]
    assert f"systemctl enable --now {' '.join(timers)} lifeboat-retention-db.timer" in first.stdout
    # the drill of a postgres source starts a PostgreSQL server, whose JIT needs W+X memory
    assert "MemoryDenyWriteExecute=yes" not in (out / "lifeboat-drill-db.service").read_text()
    assert "MemoryDenyWriteExecute=yes" in (out / "lifeboat-backup-db.service").read_text()
    verified = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *sorted(str(p) for p in out.iterdir())],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verified.returncode == 0 and not verified.stderr.strip(), verified.stderr

    again = lifeboat(config, "--systemd", "--timers", "--output-dir", str(out), "--program", "/bin/true")
    assert again.code == 0 and f"unchanged {out / 'lifeboat-backup-db.timer'}" in again.stdout, again

    edited = out / "lifeboat-backup-db.timer"
    edited.write_text(edited.read_text() + "# a local change\n")
    before = {p.name: p.read_text() for p in out.iterdir()}
    refused = lifeboat(config, "--systemd", "--timers", "--output-dir", str(out))  # another --program, too
    assert refused.code == 2, refused
    assert "with other content; nothing was written" in refused.stderr
    assert "--force" in refused.stderr
    assert {p.name: p.read_text() for p in out.iterdir()} == before

    forced = lifeboat(config, "--systemd", "--timers", "--output-dir", str(out), "--force")
    assert forced.code == 0, forced
    assert "# a local change" not in edited.read_text()
    assert "ExecStart=/usr/local/bin/lifeboat " in (out / "lifeboat-backup-db.service").read_text()


def test_cron_file_printed(config: Path) -> None:
    result = lifeboat(config, "--cron", "--password-file", "/etc/lifeboat/passphrase")
    assert result.code == 0, result
    assert "LIFEBOAT_PASSWORD_FILE=/etc/lifeboat/passphrase" in result.stdout
    assert (
        f"0 2 * * * postgres flock -n /run/lock/lifeboat-backup-db.lock /usr/local/bin/lifeboat -c {config} "
        "backup --source db --repo main"
    ) in result.stdout
    assert "timeout --kill-after=60 7200 " in result.stdout


def test_cron_refuses_a_job_in_another_zone(config: Path) -> None:
    config.write_text(
        config.read_text().replace('backup: "0 2 * * *"', "backup: {cron: '0 2 * * *', time_zone: Asia/Tokyo}")
    )
    result = lifeboat(config, "--cron")
    assert result.code == 2, result
    assert result.stderr.startswith("lifeboat: error: job backup:db runs in Asia/Tokyo, cron in the host's zone UTC")
    assert "--systemd" in result.stderr  # the hint names the way out


def test_kubernetes_manifests_printed_validated_and_without_the_secret(config: Path) -> None:
    result = lifeboat(config, "--kubernetes", "--image", "registry.example/lifeboat:0.1.0", "--namespace", "backup")
    assert result.code == 0, result
    documents = list(yaml.safe_load_all(result.stdout))
    assert [d["kind"] for d in documents] == ["ConfigMap", "Secret", "CronJob", "CronJob", "CronJob", "CronJob"]
    for document in documents:
        kubernetes_validate.validate(document, "1.33.0", strict=True)
    assert documents[0]["data"]["lifeboat.yaml"] == config.read_text()
    assert SECRET not in result.stdout
    assert "kubectl create secret generic lifeboat --namespace backup --from-file=passphrase=" in result.stdout


def test_json_output_of_a_written_directory(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "k8s"
    result = run_cli(
        "--json",
        "-c",
        str(config),
        "schedule",
        "install",
        "--kubernetes",
        "--image",
        "x",
        "-o",
        str(out),
        env={"TZ": "UTC"},
    )
    assert result.code == 0, result
    document = json.loads(result.stdout)
    assert sorted(Path(p).name for p in document["files"]) == [
        "configmap.yaml",
        "cronjob-backup-db.yaml",
        "cronjob-drill-db.yaml",
        "cronjob-retention-db.yaml",
        "cronjob-verify-db.yaml",
        "secret.yaml",
    ]
    assert set(document["files"].values()) == {"written"}
    assert document["next"][-1] == f"kubectl apply -f {out}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "lifeboat: error: say which files to write"),
        (("--systemd", "--cron"), "lifeboat: error: systemd and cron cannot be written at once"),
        (("--cron", "--timers"), "lifeboat: error: --timers belongs to --systemd"),
        (("--kubernetes",), "lifeboat: error: Kubernetes manifests need the container image the jobs run"),
        (("--systemd", "--program", "lifeboat"), "lifeboat: error: the program must be an absolute path"),
    ],
)
def test_usage_errors(config: Path, args: tuple[str, ...], message: str) -> None:
    result = lifeboat(config, *args)
    assert result.code == 2, result
    assert result.stderr.startswith(message), result.stderr
    assert "Traceback" not in result.stderr


def test_without_a_configuration() -> None:
    result = run_cli("schedule", "install", "--systemd", env={"LIFEBOAT_CONFIG": ""})
    assert result.code == 2, result
    assert "the schedule comes from the configuration file" in result.stderr
    assert "--config" in result.stderr


def test_a_configuration_without_schedules(tmp_path: Path) -> None:
    path = tmp_path / "lifeboat.yaml"
    path.write_text(f"repositories: {{main: {{url: {tmp_path / 'repo'}}}}}\n")
    result = lifeboat(path, "--cron")
    assert result.code == 2, result
    assert "the configuration schedules no jobs" in result.stderr
