"""``lifeboat serve`` as an operator meets it: scheduled jobs run into a real repository and
are recorded, failures are retried and never stop the daemon, timeouts, /healthz and
/metrics, reload on SIGHUP, the log carries no secret, and it idles cheaply."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import PASSPHRASE
from tests.daemon.conftest import World


def files_source(world: World, timing: str, *, path: Path | None = None) -> str:
    data = path or world.root / "data"
    if path is None:
        data.mkdir(exist_ok=True)
        (data / "a.txt").write_text("hello\n")
    return f"""  files:
    type: files
    paths: [{data}]
    schedule:
      backup: {timing}
"""


def test_a_scheduled_backup_runs_is_recorded_and_makes_a_snapshot(world: World) -> None:
    world.write_config(files_source(world, "{every: 3s}"))
    served = world.serve()
    served.wait_logged("run finished", count=2, job="backup:files", status="succeeded")
    runs = world.runs("backup:files")
    first = runs[0]
    assert (first.kind, first.target, first.trigger, first.attempt) == ("backup", "files", "schedule", 1)
    assert (first.status, first.exit_code, first.error) == ("succeeded", 0, None)
    assert first.finished is not None and first.finished >= first.started
    assert first.bytes_read == len("hello\n") and first.summary["snapshot"]["source"] == "files"
    catalog = world.catalog()
    try:
        events = [event.message for event in catalog.events(first.id)]
    finally:
        catalog.close()
    assert "backup: saving the snapshot" in events
    snapshots = world.cli("snapshots", "--json")
    assert snapshots.code == 0, snapshots
    assert first.summary["snapshot"]["id"] in snapshots.stdout
    # a run's second time came 3 s after the first's: an interval counts from the last run
    second = runs[1]
    assert 2.5 <= (second.started - first.started).total_seconds() <= 10

    code, kind, body = served.get("/healthz")
    assert code == 200 and '"status":"ok"' in body
    code, kind, body = served.get("/metrics")
    assert code == 200 and kind.startswith("text/plain")
    assert 'lifeboat_job_runs_total{job_name="backup:files",kind="backup",repository="",source="files"}' in body
    assert 'lifeboat_job_last_success_timestamp_seconds{job_name="backup:files"' in body
    assert "lifeboat_repository_up 1.0" in body  # the health report's metrics, as 'health --prometheus'

    served.signal(signal.SIGTERM)
    assert served.wait_exit() == 0
    served.wait_logged("daemon stopped")


def test_a_failing_job_is_recorded_retried_with_backoff_and_the_daemon_goes_on(world: World) -> None:
    missing = world.root / "gone"
    world.write_config(
        files_source(world, "{every: 1h, retries: 2, retry_delay: 1s}", path=missing)
        + """  other:
    type: files
    paths: [%s]
    schedule:
      backup: {every: 2s}
"""
        % (world.root / "data2")
    )
    (world.root / "data2").mkdir()
    (world.root / "data2" / "b.txt").write_text("b")
    served = world.serve()
    served.wait_for(lambda: len(world.runs("backup:files")) == 3 and world.runs("backup:files")[-1].finished,
                    "three attempts of backup:files")  # fmt: skip
    runs = world.runs("backup:files")
    assert [(r.trigger, r.attempt, r.status, r.exit_code) for r in runs] == [
        ("schedule", 1, "failed", 16),
        ("retry", 2, "failed", 16),
        ("retry", 3, "failed", 16),
    ]
    assert "does not exist" in (runs[0].error or "") and "\n" not in (runs[0].error or "")
    first_gap = (runs[1].started - runs[0].finished).total_seconds()  # type: ignore[operator]
    second_gap = (runs[2].started - runs[1].finished).total_seconds()  # type: ignore[operator]
    assert 0.9 <= first_gap < 5 and 1.9 <= second_gap < 8  # 1 s, then doubled
    retries = served.logged("retry scheduled", job="backup:files")
    assert [r["attempt"] for r in retries] == [2, 3]
    # no fourth attempt, and the other job keeps running beside it
    served.wait_logged("run finished", count=3, job="backup:other", status="succeeded")
    assert len(world.runs("backup:files")) == 3
    assert served.get("/healthz")[0] == 200
    served.signal(signal.SIGTERM)
    assert served.wait_exit() == 0


def test_a_run_over_its_timeout_is_timed_out_and_due_runs_meanwhile_are_coalesced(world: World) -> None:
    world.write_config(
        """  slow:
    type: command
    command: [sh, -c, "while true; do head -c 65536 /dev/zero; sleep 0.05; done"]
    schedule:
      backup: {every: 1s, timeout: 3s}
"""
    )
    served = world.serve()
    finished = served.wait_logged("run finished", count=2, job="backup:slow")
    assert [(f["status"], f["error"]) for f in finished[:2]] == [("timed-out", "timed out after 3 s")] * 2
    skipped = served.logged("run skipped", job="backup:slow")
    assert skipped and skipped[0]["reason"] == "the previous run of this job is still running"
    served.signal(signal.SIGTERM)
    assert served.wait_exit() == 0
    runs = world.runs("backup:slow")
    assert [(r.status, r.exit_code) for r in runs[:2]] == [("timed-out", 130)] * 2
    assert 3 <= (runs[0].finished - runs[0].started).total_seconds() < 30  # type: ignore[operator]
    for earlier, later in itertools.pairwise(runs):  # never two at once: each starts after the last ended
        assert earlier.finished is not None and later.started >= earlier.finished
    assert world.cli("snapshots", "--json").stdout.strip() in ("[]", "")
    assert world.cli("check").code == 0


def test_sighup_reloads_a_valid_configuration_and_keeps_the_old_one_when_invalid(world: World) -> None:
    world.write_config(files_source(world, '"0 3 1 1 *"'))
    served = world.serve()
    assert served.wait_logged("job scheduled", job="backup:files")[0]["next_run"].startswith("2027-01-01")
    world.write_config(files_source(world, "{every: 2s}"))
    served.signal(signal.SIGHUP)
    reloaded = served.wait_logged("configuration reloaded")[0]
    assert reloaded["rescheduled"] == ["backup:files"]
    served.wait_logged("run finished", job="backup:files", status="succeeded")

    good = world.config.read_text()
    world.config.write_text(good.replace("type: files", "type: filez"))
    served.signal(signal.SIGHUP)
    failed = served.wait_logged("reload failed")[0]
    assert "filez" in failed["error"] or "type" in failed["error"]
    assert failed["kept"] == "the previous configuration"
    count = len(served.logged("run finished", job="backup:files"))
    served.wait_logged("run finished", count=count + 1, job="backup:files", status="succeeded")  # still scheduled
    assert served.process.poll() is None
    served.signal(signal.SIGTERM)
    assert served.wait_exit() == 0


def test_the_log_never_carries_the_passphrase_nor_a_storage_credential(world: World) -> None:
    world.write_config(
        files_source(world, "{every: 2s}"),
        repositories="""  offsite:
    url: s3://lifeboat-test/db?endpoint=http://127.0.0.1:1&addressing=path
    password_file: %s
    schedule: {check: 2s}
"""
        % (world.root / "passphrase"),
    )
    secret_key = "AwsSecretKeyThatMustNotLeak"
    served = world.serve(
        env={
            "LIFEBOAT_PASSWORD": PASSPHRASE.decode(),
            "AWS_ACCESS_KEY_ID": "lifeboat",
            "AWS_SECRET_ACCESS_KEY": secret_key,
        }
    )
    served.wait_logged("run finished", job="backup:files", status="succeeded")
    failed = served.wait_logged("run finished", job="check:offsite")[0]
    assert failed["status"] == "failed" and failed["exit_code"] == 14  # storage unreachable
    served.signal(signal.SIGTERM)
    assert served.wait_exit() == 0
    text = "\n".join(served.raw)
    assert PASSPHRASE.decode() not in text
    assert secret_key not in text


def test_a_catalog_url_with_a_password_is_never_shown(world: World) -> None:
    world.write_config(
        files_source(world, "{every: 2s}"), daemon="  catalog: postgresql://lifeboat:CatalogPw@127.0.0.1:1/lifeboat"
    )
    done = subprocess.run(
        [sys.executable, "-m", "lifeboat", "-c", str(world.config), "serve"],
        env={**os.environ, **world.env}, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    output = (done.stdout + done.stderr).decode()
    assert done.returncode != 0 and "catalog" in output, output
    assert "CatalogPw" not in output


def test_the_daemon_idles_under_80_mib_and_uses_almost_no_cpu(world: World) -> None:
    world.write_config(files_source(world, '"0 3 1 1 *"'))
    served = world.serve()
    pid = served.process.pid
    served.wait_for(lambda: served.get("/metrics")[2].count("lifeboat_repository_up") > 0, "the first health check")

    def cpu_seconds() -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / 100  # utime + stime in clock ticks (USER_HZ = 100)

    def rss_mib() -> float:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS")

    before = cpu_seconds()
    time.sleep(10)  # the measurement itself: ten seconds of idling
    used = cpu_seconds() - before
    rss = rss_mib()
    print(f"idle: {used:.2f} s CPU over 10 s, RSS {rss:.1f} MiB")
    assert used < 0.1
    assert rss < 80
    served.signal(signal.SIGTERM)
    assert served.wait_exit() == 0


def test_serve_without_a_configuration_twice_or_on_a_taken_address_says_so_in_one_line(world: World) -> None:
    from tests.conftest import run_cli

    bare = run_cli("serve", env=world.env)
    assert bare.code == 2 and "pass --config FILE" in bare.stderr, bare
    world.write_config(files_source(world, '"0 3 1 1 *"'))
    served = world.serve()
    again = world.cli("serve", "--listen", "127.0.0.1:0")  # the same state directory, another port
    assert again.code == 1 and f"another 'lifeboat serve' (pid {served.process.pid}) runs" in again.stderr, again
    elsewhere = {**world.env, "LIFEBOAT_STATE_DIR": str(world.root / "state2")}
    taken = run_cli("-c", str(world.config), "serve", env=elsewhere)
    assert taken.code == 1 and f"cannot listen on 127.0.0.1:{world.port}" in taken.stderr, taken
    assert len(taken.stderr.strip().splitlines()) == 2  # the error and its hint
    assert served.process.poll() is None and not served.logged("run interrupted")
    served.signal(signal.SIGTERM)
    assert served.wait_exit() == 0


def test_runs_older_than_keep_history_leave_the_catalog(world: World) -> None:
    from datetime import UTC, datetime, timedelta

    data = world.root / "data"
    data.mkdir()
    world.write_config(f"  files:\n    type: files\n    paths: [{data}]\n", daemon="  keep_history: 30d\n")
    catalog = world.catalog()
    now = datetime.now(UTC)
    for age in (timedelta(days=45), timedelta(days=2)):
        run = catalog.start_run(job="backup:files", kind="backup", target="files", trigger="schedule", attempt=1,
                                started=now - age)  # fmt: skip
        catalog.finish_run(run.id, status="succeeded", finished=now - age + timedelta(minutes=1), exit_code=0)
    catalog.close()

    served = world.serve()
    (pruned,) = served.wait_logged("history pruned")
    assert pruned["runs"] == 1
    served.signal(signal.SIGTERM)
    assert served.wait_exit() == 0
    left = world.runs("backup:files")
    assert [round((now - r.started).total_seconds() / 86400) for r in left] == [2]
