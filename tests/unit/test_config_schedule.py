"""The schedule and daemon sections of the configuration: valid files give the jobs a user
expects; every mistake is one line naming its key; each job's command line is a real one."""

from __future__ import annotations

import warnings
from datetime import UTC, timedelta
from zoneinfo import ZoneInfo

import pytest

from lifeboat.config.jobs import ScheduledJob, scheduled_jobs
from lifeboat.config.loader import parse_config
from lifeboat.errors import ConfigError

GOOD = """
repositories:
  main:
    url: /srv/backup/repo
    schedule: {prune: "@weekly", check: {every: 1d, timeout: 3h}}
  offsite:
    url: /srv/backup/offsite
    follows: main
    schedule: {copy: 6h}
default_repository: main
sources:
  db:
    type: postgres
    data_directory: /var/lib/postgresql/16/main
    retention: {keep_daily: 7}
    schedule:
      backup: "0 2 * * *"
      verify: 6h
      retention: {cron: "30 3 * * *", time_zone: Europe/Berlin, jitter: 10min, timeout: 2h,
                  retries: 3, retry_delay: 1min, retry_max_delay: 30min, missed: skip, priority: 45}
    drill: {schedule: "0 4 * * 0"}
  uploads:
    paths: [/srv/uploads]
    repository: offsite
    schedule: {backup: 3600}
daemon:
  time_zone: America/New_York
  listen: "[::1]:7801"
  max_parallel_jobs: 3
"""


def jobs_by_name(text: str = GOOD) -> dict[str, ScheduledJob]:
    return {job.name: job for job in scheduled_jobs(parse_config(text))}


def test_a_good_file_gives_every_job_in_order() -> None:
    jobs = scheduled_jobs(parse_config(GOOD))
    assert [job.name for job in jobs] == [
        "backup:db",
        "verify:db",
        "drill:db",
        "retention:db",
        "backup:uploads",
        "prune:main",
        "check:main",
        "copy:offsite",
    ]


def test_each_job_has_its_timing_zone_priority_and_command_line() -> None:
    jobs = jobs_by_name()
    backup = jobs["backup:db"]
    assert (backup.kind, backup.target, backup.priority) == ("backup", "db", 60)  # postgres first
    assert backup.timing.cron == "0 2 * * *" and backup.timing.zone == ZoneInfo("America/New_York")
    assert backup.argv == ("backup", "--source", "db", "--repo", "main")
    assert jobs["verify:db"].timing.every == timedelta(hours=6)
    assert jobs["verify:db"].priority == 20
    assert jobs["drill:db"].timing.cron == "0 4 * * 0"  # drill.schedule
    assert jobs["drill:db"].priority == 10
    retention = jobs["retention:db"]
    assert retention.argv == ("forget", "--source", "db", "--repo", "main")
    assert retention.time_zone == "Europe/Berlin"
    timing = retention.timing
    assert (timing.jitter, timing.timeout, timing.retries) == (timedelta(minutes=10), timedelta(hours=2), 3)
    assert (timing.retry_delay, timing.retry_max_delay, timing.missed) == (
        timedelta(minutes=1),
        timedelta(minutes=30),
        "skip",
    )
    assert retention.priority == 45
    uploads = jobs["backup:uploads"]
    assert uploads.priority == 50 and uploads.timing.every == timedelta(hours=1)  # a bare number is seconds
    assert uploads.argv == ("backup", "--source", "uploads", "--repo", "offsite")
    copy = jobs["copy:offsite"]
    assert copy.argv == ("copy", "--from", "main", "--to", "offsite", "--all")
    assert (copy.priority, copy.repository) == (30, "offsite")
    assert jobs["prune:main"].argv == ("prune", "--repo", "main") and jobs["prune:main"].priority == 35
    assert jobs["check:main"].timing.timeout == timedelta(hours=3) and jobs["check:main"].priority == 25


def test_the_daemon_section_and_its_defaults() -> None:
    config = parse_config(GOOD)
    assert (config.daemon.listen, config.daemon.max_parallel_jobs) == ("[::1]:7801", 3)
    empty = parse_config("")
    daemon = empty.daemon
    assert (daemon.catalog, daemon.listen, daemon.time_zone, daemon.host) == (None, "127.0.0.1:7800", None, None)
    assert (daemon.max_parallel_jobs, daemon.shutdown_deadline) == (2, "60s")
    assert (daemon.archiving_check, daemon.health_check) == ("1min", "5min")
    assert scheduled_jobs(empty) == []
    catalog = parse_config("daemon: {catalog: 'postgresql://lifeboat:s3cret@db.example/catalog'}")
    assert "s3cret" not in repr(catalog.daemon)


def test_the_zone_of_a_schedule_without_one() -> None:
    text = "sources:\n  a: {paths: [/x], schedule: {backup: '0 1 * * *'}}"
    assert scheduled_jobs(parse_config(text))[0].timing.zone == UTC
    berlin = ZoneInfo("Europe/Berlin")
    assert scheduled_jobs(parse_config(text), local_zone=berlin)[0].timing.zone == berlin
    with_daemon = text + "\ndaemon: {time_zone: Asia/Tokyo}"
    assert scheduled_jobs(parse_config(with_daemon), local_zone=berlin)[0].timing.zone == ZoneInfo("Asia/Tokyo")


def test_schedule_drill_is_the_drills_timing() -> None:
    text = "sources:\n  a: {paths: [/x], schedule: {drill: {cron: '0 5 1 * *', retries: 1}}}"
    job = jobs_by_name(text)["drill:a"]
    assert (job.timing.cron, job.timing.retries, job.argv) == ("0 5 1 * *", 1, ("drill", "--source", "a"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "sources:\n  a: {paths: [/x], schedule: {backup: daily}}",
            "sources.a.schedule.backup: 'daily' is neither a cron expression (5 fields or @daily) "
            "nor an interval (30min, 6h, 1d)",
        ),
        (
            "sources:\n  a: {paths: [/x], schedule: {backup: '0 25 * * *'}}",
            "sources.a.schedule.backup.cron: '0 25 * * *' is not a valid cron expression",
        ),
        (
            "sources:\n  a: {paths: [/x], schedule: {backup: '0 2 * *'}}",
            "sources.a.schedule.backup.cron: '0 2 * *' is not a cron expression: it has 4 fields, cron has 5",
        ),
        (
            "sources:\n  a: {paths: [/x], schedule: {backup: '0 0 * * * *'}}",
            "it has 6 fields, cron has 5",
        ),
        ("sources:\n  a: {paths: [/x], schedule: {backup: '@reboot'}}", "unknown cron name '@reboot'"),
        (
            "sources:\n  a: {paths: [/x], schedule: {backup: '0 0 30 2 *'}}",
            "sources.a.schedule.backup.cron: cron expression '0 0 30 2 *' never matches a date",
        ),
        (
            "sources:\n  a: {paths: [/x], schedule: {backup: {cron: '0 2 * * *', every: 1h}}}",
            "sources.a.schedule.backup: give cron or every, not both",
        ),
        (
            "sources:\n  a: {paths: [/x], schedule: {backup: {jitter: 1h}}}",
            "sources.a.schedule.backup: give cron (a cron expression) or every (an interval such as 6h)",
        ),
        (
            "sources:\n  a: {paths: [/x], schedule: {backup: {every: 1h, time_zone: Europe/Berln}}}",
            "sources.a.schedule.backup.time_zone: unknown time zone 'Europe/Berln': give an IANA name",
        ),
        (
            "sources:\n  a: {paths: [/x], schedule: {backup: {every: 1h, time_zone: ../../etc/passwd}}}",
            "sources.a.schedule.backup.time_zone: unknown time zone",
        ),
        (
            "sources:\n  a: {paths: [/x], schedule: {backup: true}}",
            "sources.a.schedule.backup: a schedule is a cron expression, an interval (6h) or a mapping",
        ),
        ("sources:\n  a: {paths: [/x], schedule: {backup: 0}}", "sources.a.schedule.backup: every must be longer"),
        ("sources:\n  a: {paths: [/x], schedule: {backup: {every: 5x}}}", "sources.a.schedule.backup.every: invalid"),
        (
            "sources:\n  a: {paths: [/x], schedule: {backup: {every: 1h, retries: 30}}}",
            "sources.a.schedule.backup.retries: Input should be less than or equal to 20",
        ),
        (
            "sources:\n  a: {paths: [/x], schedule: {backup: {every: 1h, retry_delay: 1h}}}",
            "sources.a.schedule.backup: retry_max_delay 30min is shorter than retry_delay 1h",
        ),
        (
            "sources:\n  a: {paths: [/x], schedule: {backup: {every: 1h, missed: always}}}",
            "sources.a.schedule.backup.missed: Input should be 'once' or 'skip'",
        ),
        (
            "sources:\n  a: {paths: [/x], schedule: {backup: {every: 1h, priority: 101}}}",
            "sources.a.schedule.backup.priority: Input should be less than or equal to 100",
        ),
        ("sources:\n  a: {paths: [/x], schedule: {backups: 1h}}", "sources.a.schedule.backups: unknown key"),
        (
            "sources:\n  a: {paths: [/x], schedule: {drill: 1d}, drill: {schedule: '0 1 * * *'}}",
            "sources.a: give the drill's schedule as schedule.drill or as drill.schedule, not both",
        ),
        (
            "sources:\n  a: {paths: [/x], drill: {schedule: weekly}}",
            "sources.a.drill.schedule: 'weekly' is not a cron expression: it has 1 field,",
        ),
        (
            "sources:\n  a: {paths: [/x], schedule: {retention: 1d}}",
            "sources.a.schedule.retention: no retention policy applies to 'a': add retention:",
        ),
        (
            "repositories:\n  m: {url: /r, schedule: {copy: 1d}}",
            "repositories.m: schedule.copy copies from the repository this one follows, and it follows none: "
            "add follows: NAME",
        ),
        ("repositories:\n  m: {url: /r, schedule: {copy_: 1d}}", "repositories.m.schedule.copy_: unknown key"),
        ("daemon: {listen: 7800}", "daemon.listen: listen '7800' is not HOST:PORT"),
        ("daemon: {listen: 'localhost:http'}", "is not HOST:PORT"),
        ("daemon: {time_zone: Mars/Olympus}", "daemon.time_zone: unknown time zone 'Mars/Olympus'"),
        ("daemon: {catalog: 'mysql://u:pw@h/db'}", "daemon.catalog: the scheme mysql:// is not a catalog"),
        ("daemon: {catalog: cat.sqlite}", "daemon.catalog: a SQLite file's path must be absolute"),
        ("daemon: {max_parallel_jobs: 0}", "daemon.max_parallel_jobs: Input should be greater than or equal to 1"),
        ("daemon: {shutdown_deadline: soon}", "daemon.shutdown_deadline: invalid duration 'soon'"),
        ("daemon: {host: 'two words'}", "daemon.host: String should match pattern"),
        ("daemon: {bogus: 1}", "daemon.bogus: unknown key"),
    ],
)
def test_a_mistake_is_one_line_naming_its_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    error = caught.value
    assert message in error.message
    assert "\n" not in error.message
    assert "pw@" not in error.message


def test_a_catalog_password_is_never_in_an_error() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("daemon: {catalog: 'mysql://lifeboat:hunter2@h/db', max_parallel_jobs: 0}")
    assert "hunter2" not in caught.value.message


# --- the command lines are real ones --------------------------------------------------------


def _parse(argv: list[str]) -> dict[str, object]:
    """Parse a routed command line with the real CLI, without running it: the options it sets."""
    from lifeboat.app.cli.main import app, route

    cli = app.build()
    routed = route(["--config", "/etc/lifeboat/config.yaml", *argv])
    ctx = cli.make_context("lifeboat", list(routed))
    with warnings.catch_warnings():  # click 8.2 deprecates protected_args, where a group leaves the command
        warnings.simplefilter("ignore", DeprecationWarning)
        name, command, rest = cli.resolve_command(ctx, [*ctx.protected_args, *ctx.args])
    assert command is not None, name
    sub = command.make_context(name or "", rest, parent=ctx)
    return {"command": name, "globals": dict(ctx.params), **sub.params}


def test_every_jobs_command_line_parses_with_the_real_cli() -> None:
    jobs = jobs_by_name()
    assert len(jobs) == 8
    for job in jobs.values():
        parsed = _parse(list(job.argv))
        assert parsed["command"] == job.argv[0], job.name
    backup = _parse(list(jobs["backup:db"].argv))
    assert backup["source"] == "db" and backup["globals"]["repo"] == "main"  # type: ignore[index]
    forget = _parse(list(jobs["retention:db"].argv))
    assert list(forget["source"]) == ["db"]  # type: ignore[call-overload] and forget["keep_daily"] == 0  # the configured policy applies
    copy = _parse(list(jobs["copy:offsite"].argv))
    assert (copy["from_repo"], copy["to_repo"], copy["all_snapshots"]) == ("main", "offsite", True)
    prune = _parse(list(jobs["prune:main"].argv))
    assert prune["globals"]["repo"] == "main"  # type: ignore[index]
    check = _parse(list(jobs["check:main"].argv))
    assert check["globals"]["repo"] == "main" and check["read_data"] is False  # type: ignore[index]
    drill = _parse(list(jobs["drill:db"].argv))
    assert list(drill["source"]) == ["db"]  # type: ignore[call-overload]


def test_an_unknown_option_would_be_caught() -> None:
    from click.exceptions import NoSuchOption

    with pytest.raises(NoSuchOption):
        _parse(["copy", "--leader", "main"])


def test_a_job_run_on_demand_scheduled_or_not() -> None:
    from lifeboat.config.jobs import UnknownJob, on_demand_job

    config = parse_config(GOOD)
    scheduled = jobs_by_name()
    for name, job in scheduled.items():  # a scheduled job: its own priority and command line
        asked = on_demand_job(config, name)
        assert (asked.kind, asked.target, asked.priority, asked.argv) == (job.kind, job.target, job.priority, job.argv)
    drill = on_demand_job(config, "drill:uploads")  # no drill schedule: the kind's default priority
    assert (drill.priority, drill.argv, drill.repository) == (10, ("drill", "--source", "uploads", "--repo", "offsite"),
                                                              "offsite")  # fmt: skip
    assert on_demand_job(config, "check:offsite").argv == ("check", "--repo", "offsite")
    assert on_demand_job(config, "backup:db").priority == 60  # a postgres backup's default
    for name, message in (
        ("backup:nope", "no source 'nope'"),
        ("prune:nope", "no repository 'nope'"),
        ("copy:main", "follows no other repository"),
        ("explode:db", "the kind one of backup"),
        ("backup", "a job is <kind>:<target>"),
    ):
        with pytest.raises(UnknownJob, match=message) as raised:
            on_demand_job(config, name)
        assert raised.value.exit_code == 2 and raised.value.hint
