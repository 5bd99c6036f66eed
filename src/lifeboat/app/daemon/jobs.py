"""What each kind of scheduled job does: exactly what its CLI command calls (the job's
``argv`` names that command), with the same requests built by config/resolve.py and the
passphrase found the same way (app/access.py) in the environment ``lifeboat serve`` got.

| kind      | the command                | the operations                                           |
|-----------|----------------------------|----------------------------------------------------------|
| backup    | backup --source S          | resolve.backup_job + snapshots.run_backup                |
| verify    | verify --source S          | verify.verify_and_record                                 |
| drill     | drill --source S           | drill.drill_source + drill.record_drill                  |
| retention | forget --source S          | resolve.retention_for + maintenance.forget (WAL expiry)  |
| copy      | copy (follower R)          | copy.copy_snapshots from R's leader                      |
| prune     | prune (repository R)       | maintenance.prune                                        |
| check     | check (repository R)       | maintenance.check                                        |

A job raises what its operation raises (a LifeboatError with its exit code); the runner
turns that into a failed run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lifeboat.app.daemon.runner import JobResult, RunRequest
from lifeboat.core.events import Events
from lifeboat.errors import ExitCode, UsageError

if TYPE_CHECKING:
    from lifeboat.config.model import LifeboatConfig, RepositoryConfig
    from lifeboat.repository.repo import Repository

ENV_PASSWORD = "LIFEBOAT_PASSWORD"  # noqa: S105 - the name of a variable
ENV_FROM_PASSWORD = "LIFEBOAT_FROM_PASSWORD"  # noqa: S105 - the name of a variable


@dataclass(frozen=True)
class JobContext:
    """What every job is given: the configuration (and its file), the environment ``serve`` was
    started with, and this host's state directory."""

    config: LifeboatConfig
    config_path: str
    environment: Mapping[str, str]
    state_dir: str

    def passphrase(self, variable: str = ENV_PASSWORD) -> Callable[[RepositoryConfig | None], bytes]:
        from lifeboat.app.access import passphrase

        what = "repository passphrase" if variable == ENV_PASSWORD else "source repository passphrase"
        return lambda repo_config: passphrase(variable, what, repo_config, self.environment)

    def repository(self, ref: str | None, *, variable: str = ENV_PASSWORD) -> tuple[Repository, float]:
        """The repository ``ref`` (a configured name; None: the default one), opened, and its lock wait."""
        from lifeboat.app.access import open_repository
        from lifeboat.config.resolve import lock_wait, named_repository, repository_target

        if ref is None:
            found = repository_target(self.config, None)
            if found is None:
                raise UsageError("no repository to use", hint="name a default_repository in the configuration file")
            url, repo_config = found
        else:
            url, repo_config = named_repository(self.config, ref)
        repo = open_repository(url, repo_config, self.passphrase(variable), environment=self.environment)
        return repo, lock_wait(None, repo_config)


def run_job(context: JobContext, request: RunRequest, events: Events) -> JobResult:
    """Run the job of ``request`` (its kind and target) and say what it did."""
    job = request.job
    kind = _KINDS.get(job.kind)
    if kind is None:
        raise UsageError(f"unknown kind of job {job.kind!r}")
    return kind(context, job.target, events)


def _backup(context: JobContext, source: str, events: Events) -> JobResult:
    from dataclasses import replace

    from lifeboat.config.resolve import backup_job, source_repository
    from lifeboat.operations.snapshots import run_backup
    from lifeboat.sources.base import BackupOptions

    options = BackupOptions(source=source, environment=context.environment)  # the configured source alone
    repo, wait = context.repository(source_repository(context.config, source))
    job = replace(backup_job(context.config, options), lock_wait=wait)
    job.kind.check(job.request)
    result = run_backup(repo, job, events=events)
    summary = result.to_json()
    return JobResult(
        summary=summary,
        bytes_read=_int(summary.get("bytes_total", summary.get("bytes_read"))),
        bytes_added=_int(summary.get("bytes_stored")),
        exit_code=int(ExitCode.PARTIAL) if result.incomplete is not None else 0,
        error=result.incomplete.message if result.incomplete is not None else None,
    )


def _verify(context: JobContext, source: str, events: Events) -> JobResult:
    from lifeboat.config.resolve import source_repository
    from lifeboat.core.snapshot import SnapshotFilter
    from lifeboat.operations.records import record_cache
    from lifeboat.operations.verify import SPOT_CHECK_FILES, VerifyOptions, verify_and_record

    repo, _ = context.repository(source_repository(context.config, source))
    report = verify_and_record(
        repo,
        selection=SnapshotFilter(sources=(source,)),
        configs=dict(context.config.sources),
        environment=context.environment,
        options=VerifyOptions(spot_check=SPOT_CHECK_FILES),
        cache=record_cache(context.state_dir, repo),
        events=events,
    )
    failed = not report.ok
    return JobResult(
        summary=report.to_json(),
        exit_code=int(ExitCode.INTEGRITY) if failed else 0,
        error=f"{len(report.failed) + len(report.unreadable)} snapshots failed verification" if failed else None,
    )


def _drill(context: JobContext, source: str, events: Events) -> JobResult:
    from lifeboat.config.resolve import source_repository
    from lifeboat.operations.backup import default_workers
    from lifeboat.operations.drill import DrillRequest, drill_and_record
    from lifeboat.operations.records import record_cache

    config = context.config.sources[source]
    commands: dict[str, str] = {}
    if config.type == "postgres":
        commands[source] = _restore_command(context, source, events)
    request = DrillRequest(
        target=None, restore_commands=commands, environment=context.environment, workers=default_workers()
    )
    repo, _ = context.repository(source_repository(context.config, source))
    drilled = drill_and_record(
        repo, source, config, request, cache=record_cache(context.state_dir, repo), events=events
    )
    result = drilled.result
    summary = {**result.to_json(), "record": drilled.record, "not_recorded": drilled.not_recorded}
    error = None if result.ok else f"{result.status}: {'; '.join(result.reasons)}"
    return JobResult(summary=summary, exit_code=0 if result.ok else result.exit_code, error=error, record=result)


def _restore_command(context: JobContext, source: str, events: Events) -> str:
    """The command a drill's scratch PostgreSQL fetches WAL with — the one 'lifeboat drill' writes
    — with its warnings (a passphrase the server cannot read) in the run's log, as the CLI prints them."""
    from lifeboat.app.cli.context import CliContext
    from lifeboat.app.cli.pg_options import server_command

    state = CliContext(config_path=context.config_path, _config=context.config, _config_loaded=True)
    command, warnings = server_command(state, source, "wal-fetch", "%f", "%p")
    for warning in warnings:
        events.step(f"warning: {warning}")
    return command


def _retention(context: JobContext, source: str, events: Events) -> JobResult:
    from lifeboat.config.resolve import retention_for, retention_given, source_repository
    from lifeboat.core.snapshot import SnapshotFilter
    from lifeboat.operations.maintenance import forget

    repo, wait = context.repository(source_repository(context.config, source))
    now = repo.clock()
    result = forget(
        repo,
        retention_for(context.config, retention_given()),
        selection=SnapshotFilter(sources=(source,)),
        now=now,
        tz=now.astimezone().tzinfo or now.tzinfo,  # type: ignore[arg-type]
        lock_wait=wait,
        events=events,
    )
    return JobResult(summary=result.to_json())


def _copy(context: JobContext, destination: str, events: Events) -> JobResult:
    from lifeboat.config.resolve import leader_of
    from lifeboat.core.snapshot import SnapshotFilter
    from lifeboat.operations.copy import copy_snapshots
    from lifeboat.storage.base import connections

    origin = leader_of(context.config, destination)
    if origin is None:
        raise UsageError(f"repository {destination!r} follows no other repository: nothing to copy")
    src, source_wait = context.repository(origin, variable=ENV_FROM_PASSWORD)
    dst, wait = context.repository(destination)
    result = copy_snapshots(
        src,
        dst,
        refs=[],
        selection=SnapshotFilter(),
        wal=True,
        verify=True,
        workers=max(4, connections(dst.backend)),
        lock_wait=wait,
        source_lock_wait=source_wait,
        events=events,
    )
    summary = result.to_json()
    return JobResult(summary=summary, bytes_added=_int(summary.get("bytes_sent")))


def _prune(context: JobContext, repository: str, events: Events) -> JobResult:
    from lifeboat.operations.maintenance import prune

    repo, wait = context.repository(repository)
    result = prune(repo, now=repo.clock(), lock_wait=wait, events=events)
    return JobResult(summary={"dry_run": False, **result.to_json()})


def _check(context: JobContext, repository: str, events: Events) -> JobResult:
    from lifeboat.operations.maintenance import check
    from lifeboat.repository.check import check_failure

    repo, wait = context.repository(repository)
    result = check(repo, lock_wait=wait, events=events)
    failure = check_failure(result)
    if failure is not None:  # what was found stays in the run's summary, as verify's does
        return JobResult(summary=result.to_json(), exit_code=int(failure.exit_code), error=failure.message)
    return JobResult(summary=result.to_json())


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


_KINDS: dict[str, Callable[[JobContext, str, Events], JobResult]] = {
    "backup": _backup,
    "verify": _verify,
    "drill": _drill,
    "retention": _retention,
    "copy": _copy,
    "prune": _prune,
    "check": _check,
}
