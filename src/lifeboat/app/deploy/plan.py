"""What every generator needs besides the jobs: where the program, the configuration, the
passphrase and the state live, who runs it (docs/install.md, the production layout)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lifeboat.config.jobs import ScheduledJob
from lifeboat.errors import UsageError

PROGRAM = "/usr/local/bin/lifeboat"
CONFIG = "/etc/lifeboat/lifeboat.yaml"
STATE_DIR = "/var/lib/lifeboat"


@dataclass(frozen=True)
class Layout:
    """The production layout the generated files refer to."""

    program: str = PROGRAM
    config: str = CONFIG
    user: str = "postgres"
    group: str = "postgres"
    state_dir: str = STATE_DIR
    password_file: str | None = None  # handed to the job as a file (systemd credential, cron variable)
    writable: tuple[str, ...] = ()  # local repositories and other paths the jobs write
    host: str = "localhost"  # the cron file's fixed jitter offsets depend on it
    host_zone: str = "UTC"  # the zone cron runs in
    listen: str | None = None
    shutdown_deadline_seconds: int = 60
    image: str | None = None
    namespace: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    # Jobs that start PostgreSQL servers (drills of postgres and pg_dump sources): a server's JIT
    # compiler needs memory it writes and then executes.
    starts_postgres: frozenset[str] = frozenset()


def slug(job: ScheduledJob, *, lower: bool = False) -> str:
    """A unit or object name for a job: ``backup:db`` → ``lifeboat-backup-db``."""
    text = f"lifeboat-{job.kind}-{job.target}"
    if lower:
        text = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text)


def unique_slugs(jobs: list[ScheduledJob], *, lower: bool = False) -> dict[str, ScheduledJob]:
    """Each job by its name; two jobs that would share a name are an error naming both."""
    found: dict[str, ScheduledJob] = {}
    for job in jobs:
        name = slug(job, lower=lower)
        if name in found:
            raise UsageError(
                f"jobs {found[name].name} and {job.name} would both be named {name}",
                hint="rename one of the sources or repositories in the configuration",
            )
        found[name] = job
    return found


def no_jobs(target: str) -> UsageError:
    return UsageError(
        f"the configuration schedules no jobs: there is nothing to write for {target}",
        hint="add 'schedule:' to a source or repository (docs/configuration.md), 'lifeboat schedule list' shows them",
    )
