"""'lifeboat schedule list': the jobs of the configuration and when each runs next, as a user
reads them (a table, JSON), computed from another instant with --at; its errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import Cli

CONFIG = """
repositories:
  main:
    url: {repo}
    schedule: {{prune: "@weekly", check: {{every: 1d, timeout: 3h, retries: 2}}}}
  offsite:
    url: {offsite}
    follows: main
    schedule: {{copy: 6h}}
default_repository: main
sources:
  db:
    type: postgres
    data_directory: /var/lib/postgresql/16/main
    retention: {{keep_daily: 7}}
    schedule:
      backup: "0 2 * * *"
      verify: {{every: 6h, jitter: 10min}}
      retention: {{cron: "30 2 * * *", time_zone: America/New_York, retries: 3, timeout: 2h}}
  uploads:
    paths: [/srv/uploads]
    schedule: {{backup: "0 * * * *"}}
daemon: {{time_zone: Europe/Berlin, host: db1}}
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "lifeboat.yaml"
    path.write_text(CONFIG.format(repo=tmp_path / "repo", offsite=tmp_path / "offsite"), encoding="utf-8")
    return path


def test_the_table_across_the_spring_change(cli: Cli, config: Path) -> None:
    done = cli("--config", str(config), "schedule", "list", "--at", "2026-03-29 01:30")  # Berlin, CET
    assert done.code == 0, done
    lines = done.stdout.splitlines()
    assert lines[0].split() == [
        "Job", "Kind", "Target", "Schedule", "Zone", "Next", "run", "(local)", "Next", "run", "(UTC)", "Priority",
        "Timeout", "Retries",
    ]  # fmt: skip
    rows = {line.split()[0]: line for line in lines[2:] if ":" in line.split()[0]}
    assert set(rows) == {"backup:db", "verify:db", "retention:db", "backup:uploads", "prune:main", "check:main",
                         "copy:offsite"}  # fmt: skip
    # 02:00 does not exist that night: the backup runs at 03:00 CEST, which is 01:00 UTC
    assert rows["backup:db"].split()[1:] == [
        "backup", "db", "0", "2", "*", "*", "*", "Europe/Berlin", "2026-03-29", "03:00:00", "CEST", "2026-03-29",
        "01:00:00Z", "60", "-", "0",
    ]  # fmt: skip
    # every hour: the next real hour after 01:30 CET is 03:00 CEST
    assert "2026-03-29 03:00:00 CEST  2026-03-29 01:00:00Z" in rows["backup:uploads"]
    assert (
        "America/New_York  2026-03-29 02:30:00 EDT   2026-03-29 06:30:00Z  40        2h       3" in rows["retention:db"]
    )
    assert "2026-04-05 00:00:00 CEST  2026-04-04 22:00:00Z  35" in rows["prune:main"]
    assert "every 1d" in rows["check:main"] and rows["check:main"].split()[-3:] == ["25", "3h", "2"]
    assert "every 6h, jitter 10min" in rows["verify:db"]
    # sorted by the next run
    order = [line.split()[0] for line in lines[2:] if ":" in line.split()[0]]
    assert order[-1] == "prune:main" and order.index("backup:db") < order.index("retention:db")
    assert "an interval counts from the job's last run" in done.stdout


def test_json_names_every_field_and_the_utc_and_local_times(cli: Cli, config: Path) -> None:
    done = cli("--config", str(config), "--json", "schedule", "list", "--at", "2026-10-25T00:30:00Z")
    assert done.code == 0, done
    document = json.loads(done.stdout)
    assert (document["host"], document["at"]) == ("db1", "2026-10-25T00:30:00Z")
    jobs = {job["name"]: job for job in document["jobs"]}
    backup = jobs["backup:db"]
    # 00:30 UTC is 02:30 CEST on the night the clocks go back: 02:00 already ran once, not again at 02:00 CET
    assert backup["next_run"] == "2026-10-26T01:00:00Z"
    assert backup["next_run_local"] == "2026-10-26T02:00:00+01:00"
    assert backup["argv"] == ["backup", "--source", "db", "--repo", "main"]
    assert (backup["kind"], backup["target"], backup["priority"], backup["missed"]) == ("backup", "db", 60, "once")
    # every hour fires at each real hour: 02:00 CET is the next one
    assert jobs["backup:uploads"]["next_run_local"] == "2026-10-25T02:00:00+01:00"
    verify = jobs["verify:db"]
    assert (verify["cron"], verify["every_seconds"], verify["next_run_from"]) == (None, 21600.0, "start")
    assert verify["jitter_seconds"] == 600 and 0 <= verify["jitter_offset_seconds"] < 600
    # an interval job's first run: a daemon started then, plus this host's offset
    started = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    first = started + timedelta(seconds=verify["jitter_offset_seconds"])
    assert verify["next_run"] == first.isoformat().replace("+00:00", "Z")
    retention = jobs["retention:db"]
    assert (retention["time_zone"], retention["retries"], retention["timeout_seconds"]) == ("America/New_York", 3, 7200)
    assert (retention["retry_delay_seconds"], retention["retry_max_delay_seconds"]) == (60, 1800)
    assert jobs["copy:offsite"]["argv"] == ["copy", "--from", "main", "--to", "offsite", "--all"]
    assert [job["next_run"] for job in document["jobs"]] == sorted(job["next_run"] for job in document["jobs"])


def test_a_schedule_without_a_zone_is_in_the_hosts(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "plain.yaml"
    path.write_text("sources:\n  a: {paths: [/srv], schedule: {backup: '30 2 * * *'}}\n", encoding="utf-8")
    done = cli("--config", str(path), "--json", "schedule", "list", "--at", "2026-11-01T05:00:00Z",
               env={"TZ": "America/New_York"})  # fmt: skip
    assert done.code == 0, done
    (job,) = json.loads(done.stdout)["jobs"]
    assert job["time_zone"] == "America/New_York"
    assert job["next_run_local"] == "2026-11-01T02:30:00-05:00"


def test_every_jobs_command_line_is_one_the_cli_accepts(cli: Cli, config: Path) -> None:
    done = cli("--config", str(config), "--json", "schedule", "list")
    jobs = json.loads(done.stdout)["jobs"]
    assert len(jobs) == 7
    for job in jobs:
        helped = cli("--config", str(config), *job["argv"], "--help")
        assert helped.code == 0, (job["name"], helped)
        assert helped.stdout.startswith(f"Usage: lifeboat {job['argv'][0]} "), helped


@pytest.mark.parametrize(
    ("args", "file_text", "message", "hint"),
    [
        ((), None, "lifeboat: error: no configuration file given: the schedule is in the configuration",
         "hint: pass --config FILE or set LIFEBOAT_CONFIG"),
        ((), "sources: {}\n", "schedules no jobs", "hint: add schedule: to a source or repository"),
        (("--at", "tomorrow"), "sources:\n  a: {paths: [/x], schedule: {backup: 1h}}\n",
         "lifeboat: error: --at: 'tomorrow' is not a time", "hint: ISO 8601"),
        ((), "sources:\n  a: {paths: [/x], schedule: {backup: '0 2 * *'}}\n",
         "sources.a.schedule.backup.cron: '0 2 * *' is not a cron expression", ""),
    ],
)  # fmt: skip
def test_errors_are_one_line_with_a_hint_and_exit_2(
    cli: Cli, tmp_path: Path, args: tuple[str, ...], file_text: str | None, message: str, hint: str
) -> None:
    config_args: tuple[str, ...] = ()
    if file_text is not None:
        path = tmp_path / "c.yaml"
        path.write_text(file_text, encoding="utf-8")
        config_args = ("--config", str(path))
    done = cli(*config_args, "schedule", "list", *args)
    assert done.code == 2, done
    assert done.stdout == ""
    first, *rest = done.stderr.splitlines()
    assert message in first
    assert hint in "\n".join(rest)


def _block(text: str, after: str, fence: str) -> str:
    start = text.index(fence, text.index(after)) + len(fence)
    return text[start : text.index("```", start)]


def test_the_documented_example_is_what_schedule_list_shows(cli: Cli, tmp_path: Path) -> None:
    docs = Path(__file__).resolve().parents[2] / "docs"
    example = _block((docs / "configuration.md").read_text(encoding="utf-8"), "## Schedules", "```yaml\n")
    assert "daemon:\n  time_zone: Europe/Berlin\n" in example
    path = tmp_path / "example.yaml"
    path.write_text(example.replace("time_zone: Europe/Berlin\n", "time_zone: Europe/Berlin\n  host: db1\n"))
    shown = _block((docs / "daemon.md").read_text(encoding="utf-8"), "## Schedules", "```\n")
    command, *expected = shown.splitlines()
    assert command == '$ lifeboat schedule list --at "2026-03-29 01:30"'
    done = cli("--config", str(path), "schedule", "list", "--at", "2026-03-29 01:30")
    assert done.code == 0, done
    assert done.stdout.splitlines() == expected
