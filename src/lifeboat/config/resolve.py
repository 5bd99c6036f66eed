"""Configuration resolved once: the configuration file and the options a front end was given
turned into typed requests and policies, with one set of defaults.

The command line and (later) the daemon and the API call these; neither builds a request
from the configuration itself. Nothing here reads the environment or prints: the front end
passes in what it read (the configuration, the options, its environment). The defaults
are the configuration model's, which take theirs from :mod:`lifeboat.core.defaults`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from lifeboat.core.defaults import LOCK_WAIT
from lifeboat.core.host import this_host
from lifeboat.errors import UsageError, option

if TYPE_CHECKING:
    from lifeboat.config.model import LifeboatConfig, RepositoryConfig
    from lifeboat.core.retention import RetentionPolicy
    from lifeboat.core.snapshot import Snapshot
    from lifeboat.operations.snapshots import SourceBackup
    from lifeboat.sources.base import BackupOptions, SourceKind


# --- sources -------------------------------------------------------------------------------


def configured_source(config: LifeboatConfig | None, name: str | None) -> Any:
    """The configured source called ``name``, or None."""
    if config is None or not name:
        return None
    return config.sources.get(name)


def source_kind(config: LifeboatConfig | None, name: str | None, *, default: str = "files") -> SourceKind:
    """The kind of the configured source ``name``; ``default`` when no such source is configured."""
    from lifeboat.sources.registry import source_kind as registered

    entry = configured_source(config, name)
    if entry is None:
        return registered(default)
    return registered(entry.type, key=f"sources.{name}.type")


def expect_kind(config: LifeboatConfig | None, name: str | None, kind: str) -> Any:
    """The configured source ``name`` if it is of ``kind``; None when none is configured;
    a usage error naming its kind when it is another kind."""
    entry = configured_source(config, name)
    if entry is not None and entry.type != kind:
        raise UsageError(
            f"source {name!r} is a {entry.type} source, not a {kind} source",
            hint=f"run 'lifeboat backup --source {name}', which backs up any configured source",
        )
    return entry


def source_repository(config: LifeboatConfig | None, name: str | None) -> str | None:
    """The repository the configured source ``name`` names, if it names one."""
    entry = configured_source(config, name)
    return entry.repository if entry is not None else None


def backup_job(
    config: LifeboatConfig | None,
    options: BackupOptions,
    *,
    kind: str | None = None,
    lock_wait: float = 0.0,
) -> SourceBackup:
    """The backup of the configured source ``options.source`` — or, when none of that name is
    configured, of a source of ``kind`` given by the options alone (``files`` by default).

    Tags are the configured ones and the options'; workers the options', else the
    configured source's, else the number of cores; the host the options', else this host.
    """
    from lifeboat.operations.snapshots import SourceBackup, default_workers

    entry = expect_kind(config, options.source, kind) if kind else configured_source(config, options.source)
    chosen = source_kind(config, options.source if entry is not None else None, default=kind or "files")
    request = chosen.request(entry, options)
    configured_tags = tuple(entry.tags) if entry is not None else ()
    workers = options.workers or (getattr(entry, "workers", None) if entry is not None else None)
    return SourceBackup(
        chosen,
        request,
        tags=configured_tags + tuple(options.tags),
        hostname=options.hostname or this_host(),
        lock_wait=lock_wait,
        workers=workers or default_workers(),
        label=chosen.label(request),
    )


# --- repositories --------------------------------------------------------------------------


def repository_target(config: LifeboatConfig | None, ref: str | None) -> tuple[str, RepositoryConfig | None] | None:
    """The repository ``ref`` names (a configured name, else a URL), else the configured default
    (or the only one); its URL and configuration. None: no repository is named or configured."""
    if config is not None:
        found = config.repository(ref)
        if found is not None:
            return found[1].url, found[1]
    if ref:
        return ref, None
    return None


def named_repository(config: LifeboatConfig | None, ref: str) -> tuple[str, RepositoryConfig | None]:
    """A repository by configured name, else ``ref`` itself as a URL or path."""
    if config is not None and ref in config.repositories:
        return config.repositories[ref].url, config.repositories[ref]
    return ref, None


def lock_wait(given: str | None, repo_config: RepositoryConfig | None) -> float:
    """Seconds to wait for a conflicting lock: the option given, else the repository's
    configured ``lock_wait``, else the default (do not wait)."""
    from lifeboat.core.units import parse_duration

    if given:
        try:
            return parse_duration(given).total_seconds()
        except ValueError as exc:
            raise UsageError(f"{option('lock_wait')}: {exc}") from None
    return parse_duration(repo_config.lock_wait if repo_config is not None else LOCK_WAIT).total_seconds()


def followers(config: LifeboatConfig | None) -> list[tuple[str, str]]:
    """(follower, leader) for each configured repository that ``follows`` another."""
    if config is None:
        return []
    return [(name, repo.follows) for name, repo in config.repositories.items() if repo.follows]


def leader_of(config: LifeboatConfig | None, destination: str) -> str | None:
    """The repository the configured repository ``destination`` follows, if any."""
    if config is not None and destination in config.repositories:
        return config.repositories[destination].follows
    return None


def repository_name(config: LifeboatConfig | None, url: str, repo_config: RepositoryConfig | None) -> str:
    """The configured name of a repository (its URL when it is not configured)."""
    if config is not None and repo_config is not None:
        for name, candidate in config.repositories.items():
            if candidate is repo_config:
                return name
    return url


# --- retention -----------------------------------------------------------------------------


def retention_given(
    *,
    keep_last: int = 0,
    keep_hourly: int = 0,
    keep_daily: int = 0,
    keep_weekly: int = 0,
    keep_monthly: int = 0,
    keep_yearly: int = 0,
    keep_within: str | None = None,
    keep_tags: tuple[str, ...] = (),
    recovery_window: str | None = None,
) -> RetentionPolicy:
    """A retention policy from explicit options (``keep_within`` and ``recovery_window``
    durations like ``7d``)."""
    from lifeboat.core.retention import RetentionPolicy
    from lifeboat.core.units import parse_duration

    within: timedelta | None = None
    if keep_within:
        try:
            within = parse_duration(keep_within)
        except ValueError as exc:
            raise UsageError(f"{option('keep_within')}: {exc}") from None
    window: timedelta | None = None
    if recovery_window:
        try:
            window = parse_duration(recovery_window)
        except ValueError as exc:
            raise UsageError(f"{option('recovery_window')}: {exc}") from None
    return RetentionPolicy(
        keep_last,
        keep_hourly,
        keep_daily,
        keep_weekly,
        keep_monthly,
        keep_yearly,
        within,
        tuple(keep_tags),
        recovery_window=window,
    )


def retention_for(
    config: LifeboatConfig | None, given: RetentionPolicy
) -> Callable[[Snapshot], RetentionPolicy | None]:
    """Which policy applies to a snapshot: the one given, else its source's configured
    retention, else the configuration's. Raises when there is none at all."""
    if given.is_empty and config is None:
        raise UsageError(
            "no retention policy given",
            hint=f"pass {option('keep_daily')} 7 (etc.), or configure retention in the configuration file",
        )

    def policy_for(snapshot: Snapshot) -> RetentionPolicy | None:
        if not given.is_empty:
            return given
        return config.retention_for(snapshot.source) if config is not None else None

    return policy_for


__all__ = [
    "backup_job",
    "configured_source",
    "expect_kind",
    "followers",
    "leader_of",
    "lock_wait",
    "named_repository",
    "repository_name",
    "repository_target",
    "retention_for",
    "retention_given",
    "source_kind",
    "source_repository",
]
