"""The scheduled jobs a configuration describes: what the daemon runs, when, and the command
line that does the same job by hand (docs/daemon.md#schedules).

Nothing here reads the clock or the environment: the front end passes the host's time zone
(``lifeboat.app.timezone.host_zone``), the default for a schedule that names none when
``daemon.time_zone`` is not set either.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, tzinfo
from typing import TYPE_CHECKING

from lifeboat.core.jobtiming import Timing, priority_for
from lifeboat.core.units import parse_duration
from lifeboat.errors import UsageError

if TYPE_CHECKING:
    from lifeboat.config.model import JobTiming, LifeboatConfig

# The kinds of job, in the order a source's and then a repository's are listed.
SOURCE_KINDS = ("backup", "verify", "drill", "retention")
REPOSITORY_KINDS = ("copy", "prune", "check")
KINDS = SOURCE_KINDS + REPOSITORY_KINDS


class UnknownJob(UsageError):
    """A job name that names no job of the configuration."""


@dataclass(frozen=True)
class ScheduledJob:
    """One job of the schedule.

    ``argv`` is the command line that does the same job, without the program name and without
    the global options the caller adds (``--config FILE``); a ``--repo NAME`` written after the
    command is hoisted in front of it by ``lifeboat.app.cli.main.route``, as on a shell.
    """

    name: str  # "backup:db", "copy:offsite", "prune:main"
    kind: str  # backup | verify | drill | retention | copy | prune | check
    target: str  # the source or repository name
    timing: Timing
    priority: int
    argv: tuple[str, ...]
    repository: str | None  # the configured repository the job writes or reads (copy: the destination)

    @property
    def time_zone(self) -> str:
        return self.timing.zone_name


def resolve_timing(timing: JobTiming, *, default_zone: tzinfo) -> Timing:
    """The pure :class:`Timing` of a configured timing (durations parsed, the zone looked up)."""
    from zoneinfo import ZoneInfo

    return Timing(
        cron=timing.cron,
        every=parse_duration(timing.every) if timing.every is not None else None,
        zone=ZoneInfo(timing.time_zone) if timing.time_zone else default_zone,
        jitter=parse_duration(timing.jitter),
        timeout=parse_duration(timing.timeout) if timing.timeout is not None else None,
        retries=timing.retries,
        retry_delay=parse_duration(timing.retry_delay),
        retry_max_delay=parse_duration(timing.retry_max_delay),
        missed=timing.missed,
    )


def scheduled_jobs(config: LifeboatConfig, *, local_zone: tzinfo | None = None) -> list[ScheduledJob]:
    """Every scheduled job of ``config``: each source's (backup, verify, drill, retention), then
    each repository's (copy, prune, check), in the order of the file.

    A schedule without ``time_zone`` is in ``daemon.time_zone``, else ``local_zone`` (the host's;
    UTC when not given)."""
    from zoneinfo import ZoneInfo

    zone: tzinfo = ZoneInfo(config.daemon.time_zone) if config.daemon.time_zone else (local_zone or UTC)
    jobs: list[ScheduledJob] = []

    def add(
        kind: str, target: str, timing: JobTiming, argv: tuple[str, ...], repository: str | None, typ: str | None
    ) -> None:
        priority = timing.priority if timing.priority is not None else priority_for(kind, typ)
        jobs.append(
            ScheduledJob(
                name=f"{kind}:{target}",
                kind=kind,
                target=target,
                timing=resolve_timing(timing, default_zone=zone),
                priority=priority,
                argv=argv,
                repository=repository,
            )
        )

    for name, source in config.sources.items():
        schedule = source.schedule
        timings: dict[str, JobTiming | None] = {
            "backup": schedule.backup if schedule else None,
            "verify": schedule.verify if schedule else None,
            "drill": source.drill_timing(),
            "retention": schedule.retention if schedule else None,
        }
        for kind in SOURCE_KINDS:
            timing = timings[kind]
            if timing is not None:
                argv, repository = _command(config, kind, name)
                add(kind, name, timing, argv, repository, source.type)
    for name, repo_config in config.repositories.items():
        repo_schedule = repo_config.schedule
        if repo_schedule is None:
            continue
        if repo_schedule.copy_ is not None and repo_config.follows is not None:
            add("copy", name, repo_schedule.copy_, _command(config, "copy", name)[0], name, None)
        if repo_schedule.prune is not None:
            add("prune", name, repo_schedule.prune, _command(config, "prune", name)[0], name, None)
        if repo_schedule.check is not None:
            add("check", name, repo_schedule.check, _command(config, "check", name)[0], name, None)
    return jobs


_VERBS = {"backup": "backup", "verify": "verify", "drill": "drill", "retention": "forget"}


def _command(config: LifeboatConfig, kind: str, target: str) -> tuple[tuple[str, ...], str | None]:
    """The command line of the job ``kind:target`` and the configured repository it uses."""
    if kind in SOURCE_KINDS:
        found = config.repository(config.sources[target].repository)
        repository = found[0] if found is not None else None
        on_repo = ("--repo", repository) if repository is not None else ()
        return (_VERBS[kind], "--source", target, *on_repo), repository
    if kind == "copy":
        # Every snapshot of the leader that the follower lacks (copy_cmd.py: --from, --to, --all).
        return ("copy", "--from", str(config.repositories[target].follows), "--to", target, "--all"), target
    return (kind, "--repo", target), target


@dataclass(frozen=True)
class OnDemandJob:
    """A job run when asked (through the API), whether the configuration schedules it or not:
    what the runner needs (name, kind, target, priority) and the command that does the same job."""

    name: str
    kind: str
    target: str
    priority: int
    argv: tuple[str, ...]
    repository: str | None


def on_demand_job(config: LifeboatConfig, name: str) -> OnDemandJob:
    """The job ``name`` (``<kind>:<target>``: ``drill:db``, ``prune:main``) of ``config``, with
    the priority its schedule gives it, else its kind's default. Raises UnknownJob (exit code 2)
    when the kind is not one of :data:`KINDS` or the target is not a configured source (backup,
    verify, drill, retention) or repository (copy: one that follows another; prune, check)."""
    kind, _, target = name.partition(":")
    if kind not in KINDS or not target:
        raise UnknownJob(
            f"no job {name!r}: a job is <kind>:<target>, the kind one of {', '.join(KINDS)}",
            hint="'lifeboat schedule list' shows the scheduled jobs; any source's backup, verify, drill or "
            "retention and any repository's prune or check may be run",
        )
    if kind in SOURCE_KINDS:
        source = config.sources.get(target)
        if source is None:
            raise UnknownJob(f"no job {name!r}: no source {target!r} in the configuration",
                             hint=f"the sources: {', '.join(sorted(config.sources)) or 'none'}")  # fmt: skip
        source_type: str | None = source.type
    else:
        repo_config = config.repositories.get(target)
        if repo_config is None:
            raise UnknownJob(f"no job {name!r}: no repository {target!r} in the configuration",
                             hint=f"the repositories: {', '.join(sorted(config.repositories)) or 'none'}")  # fmt: skip
        if kind == "copy" and repo_config.follows is None:
            raise UnknownJob(f"no job {name!r}: repository {target!r} follows no other repository",
                             hint="a copy job copies into a repository with 'follows: LEADER'")  # fmt: skip
        source_type = None
    scheduled = {job.name: job for job in scheduled_jobs(config)}
    priority = scheduled[name].priority if name in scheduled else priority_for(kind, source_type)
    argv, repository = _command(config, kind, target)
    return OnDemandJob(name=name, kind=kind, target=target, priority=priority, argv=argv, repository=repository)


__all__ = [
    "KINDS",
    "REPOSITORY_KINDS",
    "SOURCE_KINDS",
    "OnDemandJob",
    "ScheduledJob",
    "UnknownJob",
    "on_demand_job",
    "resolve_timing",
    "scheduled_jobs",
]
