"""``lifeboat schedule install``'s pure part: cron expressions as systemd calendar events (each
one checked against systemd's own reading of it, ``systemd-analyze calendar``, and against
croniter, the daemon's), intervals as cron, the units passing ``systemd-analyze verify``, the
Kubernetes manifests passing the Kubernetes schemas (kubernetes-validate, strict), and the
schedules a target cannot express refused with the job's name."""

from __future__ import annotations

import os
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import kubernetes_validate
import pytest
import yaml
from croniter import croniter

from lifeboat.app.deploy.calendar import (
    Untranslatable,
    interval_as_cron,
    on_calendar,
    time_span,
)
from lifeboat.app.deploy.cron import cron_file
from lifeboat.app.deploy.kubernetes import manifests
from lifeboat.app.deploy.plan import Layout
from lifeboat.app.deploy.systemd import serve_unit, timer_units
from lifeboat.config.jobs import ScheduledJob
from lifeboat.core.jobtiming import Timing, jitter_offset, retryable
from lifeboat.errors import ExitCode, UsageError

KUBERNETES_VERSION = "1.33.0"  # a recent release the CronJob fields used here (timeZone, podFailurePolicy) are GA in


def job(name: str, argv: tuple[str, ...], **timing: object) -> ScheduledJob:
    kind, _, target = name.partition(":")
    return ScheduledJob(
        name=name, kind=kind, target=target, timing=Timing(**timing), priority=50, argv=argv, repository="main"
    )


BERLIN = ZoneInfo("Europe/Berlin")
JOBS = [
    job("backup:db", ("backup", "--source", "db", "--repo", "main"), cron="0 2 * * *", zone=BERLIN),
    job("verify:db", ("verify", "--source", "db", "--repo", "main"), every=timedelta(hours=6)),
    job(
        "retention:db",
        ("forget", "--source", "db", "--repo", "main"),
        cron="30 3 * * 1-5",
        jitter=timedelta(minutes=10),
        timeout=timedelta(hours=2),
        retries=3,
        missed="skip",
    ),
    job("check:main", ("check", "--repo", "main"), cron="15 4 1 * 0"),
    job("drill:db", ("drill", "--source", "db", "--repo", "main"), cron="0 4 * * 0"),
]

TABLE = [
    ("0 2 * * *", ["*-*-* 02:00:00"]),
    ("@daily", ["*-*-* 00:00:00"]),
    ("@hourly", ["*-*-* *:00:00"]),
    ("@weekly", ["Sun *-*-* 00:00:00"]),
    ("@monthly", ["*-*-01 00:00:00"]),
    ("@yearly", ["*-01-01 00:00:00"]),
    ("*/15 * * * *", ["*-*-* *:00/15:00"]),
    ("5,35 */6 * * *", ["*-*-* 00/6:05,35:00"]),
    ("30 3 * * 1-5", ["Mon..Fri *-*-* 03:30:00"]),
    ("0 0 * * sat,sun", ["Sat,Sun *-*-* 00:00:00"]),
    ("0 0 * * 0", ["Sun *-*-* 00:00:00"]),
    ("0 0 * * 7", ["Sun *-*-* 00:00:00"]),
    ("0 12 * jan-mar mon", ["Mon *-01..03-* 12:00:00"]),
    ("0 9-17 * * *", ["*-*-* 09..17:00:00"]),
    ("10-20/5 1 * * *", ["*-*-* 01:10,15,20:00"]),
    ("0 0 1,15 * *", ["*-*-01,15 00:00:00"]),
    # cron's either-day rule: both days restricted match when either does
    ("15 4 1 * 0", ["*-*-01 04:15:00", "Sun *-*-* 04:15:00"]),
    ("0 0 */2 * 1", ["*-*-01/2 00:00:00", "Mon *-*-* 00:00:00"]),  # '*/2' restricts, as the daemon reads it
    ("0 0 * * 1", ["Mon *-*-* 00:00:00"]),
]


@pytest.mark.parametrize(("cron", "events"), TABLE)
def test_cron_as_on_calendar(cron: str, events: list[str]) -> None:
    assert on_calendar(cron) == events


def _systemd_elapses(events: list[str], count: int) -> list[datetime]:
    """When systemd fires an OnCalendar= set: each event's next ``count`` times, merged."""
    found: set[datetime] = set()
    for event in events:
        out = subprocess.run(
            ["systemd-analyze", "calendar", f"--iterations={count}", event],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "TZ": "UTC"},
        ).stdout
        for stamp in re.findall(r"(?:Next elapse|Iter\. #\d+): \w{3} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC", out):
            found.add(datetime.fromisoformat(stamp).replace(tzinfo=UTC))
        assert found, out
    return sorted(found)[:count]


@pytest.mark.parametrize(
    ("cron", "zone"), [(c, z) for c, _ in TABLE for z in ("UTC",)] + [("30 2 * * *", "Europe/Berlin")]
)
def test_systemd_fires_when_cron_does(cron: str, zone: str) -> None:
    """systemd's own reading of the translation fires at the times croniter (the daemon's
    reading of the cron expression) gives, the next 12 of them."""
    count = 12
    fired = _systemd_elapses(on_calendar(cron, zone), count)
    it = croniter(cron, (fired[0] - timedelta(seconds=1)).astimezone(ZoneInfo(zone)))
    expected = [it.get_next(datetime).astimezone(UTC) for _ in range(count)]
    assert fired == expected


@pytest.mark.parametrize("cron", ["0 0 L * *", "0 0 * * 1#2", "0 0 ? * *", "0 0 15W * *", "0 25 * * *", "0 0 * * 8"])
def test_what_systemd_cannot_express_is_refused(cron: str) -> None:
    with pytest.raises(Untranslatable):
        on_calendar(cron)


def test_a_refused_expression_names_the_job() -> None:
    # croniter accepts 'L' (last day of the month); systemd's '~01' is not the same for every field
    bad = job("drill:db", ("drill", "--source", "db"), cron="0 4 L * *")
    with pytest.raises(UsageError, match=r"job drill:db: systemd cannot express the cron expression '0 4 L \* \*'"):
        timer_units([bad], Layout())
    with pytest.raises(UsageError, match="job drill:db: cron cannot express 'L'"):
        cron_file([bad], Layout(host_zone="UTC"))


@pytest.mark.parametrize(
    ("every", "cron"),
    [
        (timedelta(minutes=1), "* * * * *"),
        (timedelta(minutes=15), "*/15 * * * *"),
        (timedelta(hours=1), "0 * * * *"),
        (timedelta(hours=6), "0 */6 * * *"),
        (timedelta(days=1), "0 0 * * *"),
        (timedelta(days=7), "0 0 * * 0"),
    ],
)
def test_intervals_cron_can_repeat(every: timedelta, cron: str) -> None:
    assert interval_as_cron(every) == cron


@pytest.mark.parametrize("every", [timedelta(minutes=7), timedelta(hours=5), timedelta(seconds=90), timedelta(days=2)])
def test_intervals_cron_cannot_repeat(every: timedelta) -> None:
    with pytest.raises(Untranslatable, match=re.escape(time_span(every))):
        interval_as_cron(every)


def test_time_spans_read_as_systemd_writes_them() -> None:
    assert time_span(timedelta(days=1, hours=6)) == "1d 6h"
    assert time_span(timedelta(seconds=90)) == "1min 30s"
    assert time_span(timedelta(0)) == "0"


def test_cron_sleeps_the_daemons_jitter_offset() -> None:
    """The cron line waits the same fixed offset the daemon would add on this host."""
    retention = JOBS[2]
    text = cron_file([retention], Layout(host="db1", host_zone="UTC"))["lifeboat"]
    offset = int(jitter_offset(retention.timing, host="db1", job="retention:db").total_seconds())
    assert 0 < offset < 600
    assert f"postgres sleep {offset}; flock -n " in text
    other = cron_file([retention], Layout(host="db2", host_zone="UTC"))["lifeboat"]
    assert other != text  # another host, another offset


def _verify(files: dict[str, str], directory: Path) -> None:
    for name, text in files.items():
        (directory / name).write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *sorted(str(directory / n) for n in files)],
        capture_output=True,
        text=True,
        check=False,
    )
    # an unknown key is only a warning: any output is a failure here
    assert result.returncode == 0 and not result.stderr.strip() and not result.stdout.strip(), result.stderr


def test_the_serve_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    program = str(Path(os.__file__).parents[2] / "bin" / "python3")  # any executable file
    layout = Layout(program=program, password_file="/etc/lifeboat/passphrase", writable=("/srv/backup",))
    files = serve_unit(layout)
    text = files["lifeboat.service"]
    assert f"ExecStart={program} -c /etc/lifeboat/lifeboat.yaml serve" in text
    assert "LoadCredential=passphrase:/etc/lifeboat/passphrase" in text
    assert "Environment=LIFEBOAT_PASSWORD_FILE=%d/passphrase" in text
    assert "ReadWritePaths=/srv/backup" in text
    assert "ProtectSystem=strict" in text
    assert "TimeoutStopSec=90s" in text  # the 60 s shutdown deadline and a margin
    assert "MemoryDenyWriteExecute=yes" in text
    _verify(files, tmp_path)


def test_no_memory_deny_write_execute_where_a_drill_starts_postgres(tmp_path: Path) -> None:
    """A scratch PostgreSQL server's JIT compiler needs memory it writes and then executes (a
    JIT-compiled query fails under the rule, measured): the units running such a drill go
    without it and say why; the others keep it."""
    layout = Layout(starts_postgres=frozenset({"drill:db"}))
    serve = serve_unit(layout, JOBS)["lifeboat.service"]
    assert "MemoryDenyWriteExecute" not in serve.replace("# No MemoryDenyWriteExecute", "")
    assert "# No MemoryDenyWriteExecute: the drills (drill:db) start PostgreSQL servers" in serve
    timers = timer_units(JOBS, layout)
    assert "MemoryDenyWriteExecute=yes" not in timers["lifeboat-drill-db.service"]
    assert "MemoryDenyWriteExecute=yes" in timers["lifeboat-backup-db.service"]


def test_the_timers_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    program = str(Path(os.__file__).parents[2] / "bin" / "python3")
    files = timer_units(JOBS, Layout(program=program))
    assert sorted(files) == sorted(
        f"lifeboat-{n}.{ext}"
        for n in ("backup-db", "verify-db", "retention-db", "check-main", "drill-db")
        for ext in ("service", "timer")
    )
    backup = files["lifeboat-backup-db.timer"]
    assert "OnCalendar=*-*-* 02:00:00 Europe/Berlin" in backup
    assert "Persistent=true" in backup
    retention = files["lifeboat-retention-db.timer"]
    assert "Persistent=false" in retention  # missed: skip
    assert "RandomizedDelaySec=10min" in retention and "FixedRandomDelay=true" in retention
    service = files["lifeboat-retention-db.service"]
    assert "TimeoutStartSec=2h" in service
    assert "RestartPreventExitStatus=2 3 10 12 13 15 17 130" in service and "StartLimitBurst=4" in service
    assert "ExecStart=" + program + " -c /etc/lifeboat/lifeboat.yaml forget --source db --repo main" in service
    verify = files["lifeboat-verify-db.timer"]
    assert "OnUnitActiveSec=6h" in verify and "OnCalendar" not in verify
    check = files["lifeboat-check-main.timer"]
    assert check.count("OnCalendar=") == 2
    _verify(files, tmp_path)


#: the failures the daemon does not retry (core/jobtiming.py): every exit code but 0 and the retryable ones
NOT_RETRIED = [int(code) for code in ExitCode if code != ExitCode.OK and not retryable(code)]


def test_systemd_restarts_a_job_after_the_failures_the_daemon_retries_and_no_other() -> None:
    service = timer_units(JOBS, Layout())["lifeboat-retention-db.service"]  # retries=3
    (prevent,) = [line for line in service.splitlines() if line.startswith("RestartPreventExitStatus=")]
    assert [int(code) for code in prevent.partition("=")[2].split()] == NOT_RETRIED
    assert {3, 10, 15} <= set(NOT_RETRIED)  # partial, no repository, missing program: final in the daemon


def test_kubernetes_fails_a_job_at_once_on_the_failures_the_daemon_does_not_retry() -> None:
    files = manifests(JOBS, Layout(image="registry.example/lifeboat:0.1.0"), "")
    cronjob = yaml.safe_load(files["cronjob-retention-db.yaml"])
    (rule,) = cronjob["spec"]["jobTemplate"]["spec"]["podFailurePolicy"]["rules"]
    assert rule["action"] == "FailJob"
    assert rule["onExitCodes"] == {"containerName": "lifeboat", "operator": "In", "values": NOT_RETRIED}


@pytest.mark.parametrize("page", ["install.md", "cli.md"])
def test_the_docs_list_the_codes_the_generated_jobs_do_not_retry(page: str) -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / page).read_text()
    assert ", ".join(str(code) for code in NOT_RETRIED) in text


def test_the_cron_file() -> None:
    text = cron_file(JOBS[1:], Layout(host_zone="Etc/UTC", password_file="/etc/lifeboat/passphrase"))["lifeboat"]
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert "LIFEBOAT_PASSWORD_FILE=/etc/lifeboat/passphrase" in lines
    assert (
        "0 */6 * * * postgres flock -n /run/lock/lifeboat-verify-db.lock "
        "/usr/local/bin/lifeboat -c /etc/lifeboat/lifeboat.yaml verify --source db --repo main"
    ) in lines
    (retention,) = [line for line in lines if "forget" in line]
    assert re.fullmatch(
        r"30 3 \* \* 1-5 postgres sleep \d+; flock -n /run/lock/lifeboat-retention-db.lock "
        r"timeout --kill-after=60 7200 /usr/local/bin/lifeboat .* forget --source db --repo main",
        retention,
    )


def test_cron_refuses_a_job_in_another_zone() -> None:
    with pytest.raises(UsageError, match="job backup:db runs in Europe/Berlin, cron in the host's zone UTC"):
        cron_file(JOBS[:1], Layout(host_zone="UTC"))


def test_cron_refuses_an_interval_it_cannot_repeat() -> None:
    odd = job("verify:db", ("verify", "--source", "db"), every=timedelta(hours=5))
    with pytest.raises(UsageError, match="job verify:db: cron cannot express an interval of 5h"):
        cron_file([odd], Layout())


def test_the_kubernetes_manifests_pass_the_schemas() -> None:
    files = manifests(JOBS, Layout(image="registry.example/lifeboat:0.1.0", namespace="backup"), "sources: {}\n")
    documents = [yaml.safe_load(text) for text in files.values()]
    for document in documents:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    by_name = {d["metadata"]["name"]: d for d in documents}
    backup = by_name["lifeboat-backup-db"]["spec"]
    assert backup["schedule"] == "0 2 * * *" and backup["timeZone"] == "Europe/Berlin"
    assert backup["concurrencyPolicy"] == "Forbid"
    retention = by_name["lifeboat-retention-db"]["spec"]
    assert retention["jobTemplate"]["spec"]["activeDeadlineSeconds"] == 7200
    assert retention["jobTemplate"]["spec"]["backoffLimit"] == 3
    assert retention["startingDeadlineSeconds"] == 300  # missed: skip
    container = retention["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["-c", "/etc/lifeboat/lifeboat.yaml", "forget", "--source", "db", "--repo", "main"]
    assert by_name["lifeboat-verify-db"]["spec"]["schedule"] == "0 */6 * * *"
    assert by_name["lifeboat-config"]["data"] == {"lifeboat.yaml": "sources: {}\n"}
    secret = by_name["lifeboat"]
    assert secret["kind"] == "Secret" and "data" not in secret and "stringData" not in secret
    assert all(d["metadata"]["namespace"] == "backup" for d in documents)


def test_a_kubernetes_manifest_that_breaks_the_schema_is_caught() -> None:
    """The validation in the test above can fail: an unknown field is an error in strict mode."""
    files = manifests(JOBS[:1], Layout(image="x"), "")
    document = yaml.safe_load(files["cronjob-backup-db.yaml"])
    document["spec"]["concurrency"] = "Forbid"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_kubernetes_needs_an_image() -> None:
    with pytest.raises(UsageError, match="container image"):
        manifests(JOBS, Layout(), "")


def test_nothing_scheduled_is_an_error() -> None:
    with pytest.raises(UsageError, match="schedules no jobs"):
        timer_units([], Layout())
