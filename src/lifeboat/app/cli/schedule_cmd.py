"""The daemon's schedule: which jobs 'lifeboat serve' runs and when (docs/daemon.md#schedules)."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Annotated, Any

from lifeboat.app.cli.context import CliContext
from lifeboat.app.cli.framework import Context, Option
from lifeboat.app.cli.schedule_install import install_command

if TYPE_CHECKING:
    from lifeboat.config.jobs import ScheduledJob

AtOpt = Annotated[
    str | None,
    Option(
        "--at",
        metavar="TIME",
        help="Compute the next runs from this time instead of now (ISO 8601; without an offset, "
        "in the schedules' default zone), e.g. to check a daylight saving change.",
    ),
]


def list_command(ctx: Context, at: AtOpt = None) -> None:
    """List the scheduled jobs and when each runs next (local and UTC), with its priority,
    timeout and retries. An interval job's next run counts from its last run, which only the
    daemon knows: the list shows the first run of a daemon started at --at (default: now)."""
    from datetime import UTC
    from zoneinfo import ZoneInfo

    from lifeboat.app.timezone import host_zone
    from lifeboat.config.jobs import scheduled_jobs
    from lifeboat.core.host import this_host
    from lifeboat.core.jobtiming import first_run
    from lifeboat.errors import ConfigError

    state: CliContext = ctx.obj
    if not state.config_path:
        raise ConfigError(
            "no configuration file given: the schedule is in the configuration",
            hint="pass {option:config} FILE or set LIFEBOAT_CONFIG",
        )
    config = state.config()
    assert config is not None
    local_zone = host_zone(state.environment())
    jobs = scheduled_jobs(config, local_zone=local_zone)
    if not jobs:
        raise ConfigError(
            f"{state.config_path} schedules no jobs",
            hint="add schedule: to a source or repository (docs/configuration.md#schedules)",
        )
    default_zone = ZoneInfo(config.daemon.time_zone) if config.daemon.time_zone else local_zone
    now = _instant(at, default_zone) if at is not None else datetime.now(UTC)
    host = config.daemon.host or this_host()
    planned = sorted(
        ((first_run(job.timing, now, host=host, job=job.name), job) for job in jobs),
        key=lambda item: (item[0], -item[1].priority, item[1].name),
    )
    if state.json:
        state.output.emit_json(
            {"host": host, "at": _utc_text(now), "jobs": [_document(job, when, host) for when, job in planned]}
        )
        return
    state.output.table(
        ["Job", "Kind", "Target", "Schedule", "Zone", "Next run (local)", "Next run (UTC)", "Priority", "Timeout",
         "Retries"],
        [_row(job, when) for when, job in planned],
    )  # fmt: skip
    if any(job.timing.every is not None for job in jobs):
        state.output.line(
            f"(an interval counts from the job's last run: shown is the first run of a daemon started "
            f"{now.astimezone(UTC):%Y-%m-%d %H:%M}Z on {host})"
        )


def _instant(text: str, zone: tzinfo) -> datetime:
    from datetime import UTC

    from lifeboat.errors import UsageError, option

    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"{option('at')}: {text!r} is not a time",
            hint="ISO 8601: 2026-10-25T01:30+02:00, 2026-10-24T23:30Z, or 2026-10-25 01:30 in the schedules' zone",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


def _schedule_text(job: ScheduledJob) -> str:
    from lifeboat.core.jobtiming import format_interval

    text = job.timing.cron if job.timing.cron is not None else job.timing.text
    if job.timing.jitter:
        text += f", jitter {format_interval(job.timing.jitter)}"
    return text or ""


def _row(job: ScheduledJob, when: datetime) -> list[str]:
    from datetime import UTC

    from lifeboat.core.jobtiming import format_interval

    timing = job.timing
    return [
        job.name,
        job.kind,
        job.target,
        _schedule_text(job),
        timing.zone_name,
        when.astimezone(timing.zone).strftime("%Y-%m-%d %H:%M:%S %Z"),
        when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
        str(job.priority),
        format_interval(timing.timeout) if timing.timeout is not None else "-",
        str(timing.retries),
    ]


def _utc_text(moment: datetime) -> str:
    from datetime import UTC

    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _document(job: ScheduledJob, when: datetime, host: str) -> dict[str, Any]:
    from lifeboat.core.jobtiming import jitter_offset

    timing = job.timing

    def seconds(value: Any) -> float | None:
        return value.total_seconds() if value is not None else None

    return {
        "name": job.name,
        "kind": job.kind,
        "target": job.target,
        "cron": timing.cron,
        "every_seconds": seconds(timing.every),
        "time_zone": timing.zone_name,
        "next_run": _utc_text(when),
        "next_run_local": when.astimezone(timing.zone).isoformat(),
        "next_run_from": "schedule" if timing.cron is not None else "start",
        "jitter_seconds": seconds(timing.jitter),
        "jitter_offset_seconds": seconds(jitter_offset(timing, host=host, job=job.name)),  # this host's
        "priority": job.priority,
        "timeout_seconds": seconds(timing.timeout),
        "retries": timing.retries,
        "retry_delay_seconds": seconds(timing.retry_delay),
        "retry_max_delay_seconds": seconds(timing.retry_max_delay),
        "missed": timing.missed,
        "repository": job.repository,
        "argv": list(job.argv),
    }


COMMANDS = {"list": list_command, "install": install_command}
