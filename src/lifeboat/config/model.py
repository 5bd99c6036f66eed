"""The configuration schema (docs/configuration.md is its reference)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from lifeboat.core.defaults import ARCHIVE_WAIT, LOCK_WAIT
from lifeboat.core.patterns import Pattern
from lifeboat.core.retention import RetentionPolicy
from lifeboat.core.units import parse_duration, parse_size

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)]


def _as_text(value: Any) -> Any:
    """YAML reads ``lock_wait: 30`` as a number: a bare number is seconds (or bytes), as on the command line."""
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


def _duration_text(value: str) -> str:
    parse_duration(value)
    return value


def _size_text(value: str) -> str:
    parse_size(value)
    return value


def _absolute_text(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"path {value!r} must be absolute")
    return value


def _variable_names(env: dict[str, str]) -> dict[str, str]:
    for key in env:
        if not key or "=" in key or "\0" in key:
            raise ValueError(f"{key!r} is not an environment variable name")
    return env


# A path on this host, which must be absolute; variables added to the programs' environment.
AbsolutePath = Annotated[str, AfterValidator(_absolute_text)]
Environment = Annotated[dict[str, str], AfterValidator(_variable_names)]

# A duration (``30s``, ``5min``, ``120``) or a size (``8MiB``, ``1048576``), kept as written.
Duration = Annotated[str, BeforeValidator(_as_text), AfterValidator(_duration_text)]
Size = Annotated[str, BeforeValidator(_as_text), AfterValidator(_size_text)]


class _Strict(BaseModel):
    # defer_build: a model's validator is built when first used, not when this module is
    # imported; every command imports the whole configuration model and uses a few of its
    # classes (0.52 against 0.68 s for 'snapshots' of an empty repository, farm-bench, 10 runs).
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


# --- schedules (docs/configuration.md#schedules, docs/daemon.md#schedules) -------------------


def _time_zone(value: str | None) -> str | None:
    """An IANA time zone name that this host's zone database knows."""
    if value is None:
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}: give an IANA name such as Europe/Berlin or UTC") from None
    return value


def _cron_text(value: str | None) -> str | None:
    if value is not None:
        from lifeboat.core.jobtiming import check_cron

        check_cron(value)
    return value


TimeZone = Annotated[str | None, AfterValidator(_time_zone)]
CronExpression = Annotated[str, AfterValidator(_cron_text)]


def _looks_like_cron(text: str) -> bool:
    return any(c.isspace() for c in text.strip()) or text.strip().startswith("@")


class JobTiming(_Strict):
    """When a scheduled job runs and how it is retried. In YAML also a string: a cron
    expression (it has spaces, or starts with ``@``) or an interval (``6h``)."""

    cron: CronExpression | None = None  # five fields or an @-name, in time_zone
    every: Duration | None = None  # an interval, counted from the last run
    time_zone: TimeZone = None  # default: daemon.time_zone, else the host's zone
    jitter: Duration = "0"  # a fixed offset per host and job in [0, jitter)
    timeout: Duration | None = None
    retries: int = Field(default=0, ge=0, le=20)
    retry_delay: Duration = "1min"  # before the first retry; doubled for each next one
    retry_max_delay: Duration = "30min"
    missed: Literal["once", "skip"] = "once"  # after downtime: one catch-up run, or wait for the next time
    priority: int | None = Field(default=None, ge=0, le=100)  # default: by the job's kind

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(_TIMING_SHAPE)
        if isinstance(value, int | float):
            return {"every": str(value)}
        if isinstance(value, str):
            if _looks_like_cron(value):
                return {"cron": value}
            try:
                parse_duration(value)
            except ValueError:
                raise ValueError(
                    f"{value!r} is neither a cron expression (5 fields or @daily) nor an interval (30min, 6h, 1d)"
                ) from None
            return {"every": value}
        if value is None or isinstance(value, dict | BaseModel):
            return value
        raise ValueError(_TIMING_SHAPE)

    @model_validator(mode="after")
    def _one_way(self) -> JobTiming:
        if self.cron is not None and self.every is not None:
            raise ValueError("give cron or every, not both")
        if self.cron is None and self.every is None:
            raise ValueError("give cron (a cron expression) or every (an interval such as 6h)")
        if self.every is not None and parse_duration(self.every) <= timedelta(0):
            raise ValueError("every must be longer than 0")
        if parse_duration(self.retry_max_delay) < parse_duration(self.retry_delay):
            raise ValueError(f"retry_max_delay {self.retry_max_delay} is shorter than retry_delay {self.retry_delay}")
        if self.timeout is not None and parse_duration(self.timeout) <= timedelta(0):
            raise ValueError("timeout must be longer than 0 (leave it out for none)")
        return self


_TIMING_SHAPE = "a schedule is a cron expression, an interval (6h) or a mapping with cron or every"


class SourceSchedule(_Strict):
    """The jobs the daemon runs for a source (``lifeboat serve``, docs/daemon.md)."""

    backup: JobTiming | None = None
    verify: JobTiming | None = None
    drill: JobTiming | None = None  # default: drill.schedule (a cron expression)
    retention: JobTiming | None = None  # 'lifeboat forget --source NAME' by its retention policy


class RepositorySchedule(_Strict):
    """The jobs the daemon runs for a repository."""

    copy_: JobTiming | None = Field(
        default=None, alias="copy"
    )  # only a follower: copies from the repository it follows
    prune: JobTiming | None = None
    check: JobTiming | None = None


def _listen_address(value: str) -> str:
    host, colon, port = value.rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"listen {value!r} is not HOST:PORT (e.g. 127.0.0.1:7800, [::1]:7800)")
    if host.startswith("[") != host.endswith("]"):
        raise ValueError(f"listen {value!r}: an IPv6 address goes in brackets ([::1]:7800)")
    return value


def _catalog_location(value: str | None) -> str | None:
    if value is None:
        return None
    scheme = value.partition("://")[0].lower() if "://" in value else ""
    if scheme in ("postgresql", "postgres"):
        return value
    if scheme:
        raise ValueError(f"the scheme {scheme}:// is not a catalog (a path for SQLite, or postgresql://…)")
    if not value.startswith("/"):
        raise ValueError("a SQLite file's path must be absolute (or give a postgresql:// URL)")
    return value


def _absolute_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError("give an absolute path")
    return value


class TlsConfig(_Strict):
    """HTTPS for the daemon's API (docs/api.md#tls): PEM files, the key unencrypted."""

    certificate: Annotated[str, AfterValidator(_absolute_path)]  # the certificate chain, server's first
    key: Annotated[str, AfterValidator(_absolute_path)]


class DaemonConfig(_Strict):
    """``lifeboat serve`` (docs/daemon.md)."""

    catalog: Annotated[str | None, AfterValidator(_catalog_location)] = Field(default=None, repr=False)
    listen: Annotated[str, BeforeValidator(_as_text), AfterValidator(_listen_address)] = (
        "127.0.0.1:7800"  # /metrics and /healthz
    )
    time_zone: TimeZone = None  # the schedules' default zone; default: the host's
    max_parallel_jobs: int = Field(default=2, ge=1, le=64)
    shutdown_deadline: Duration = "60s"  # SIGTERM: running jobs are cancelled within this
    archiving_check: Duration = "1min"  # how often WAL archiving of each postgres source is checked
    health_check: Duration = "5min"
    host: Name | None = None  # this host's name in the catalog; default: the host name
    keep_history: Duration | None = "180d"  # runs older than this leave the catalog (daily); null: kept forever
    tls: TlsConfig | None = None  # serve HTTPS with this certificate and key (docs/api.md#tls)


class RepositoryConfig(_Strict):
    """Where a repository lives and how to unlock it (never the passphrase itself)."""

    url: str = Field(min_length=1)
    password_file: str | None = None
    password_command: str | None = None
    lock_wait: Duration = LOCK_WAIT
    # Storage options (docs/storage.md), merged over the URL's ?key=value options.
    options: dict[str, str | int | float | bool] = Field(default_factory=dict)
    # A secondary repository: 'lifeboat copy' brings over the snapshots of the one it follows.
    follows: Name | None = None
    schedule: RepositorySchedule | None = None  # the daemon's copy, prune and check of this repository

    @model_validator(mode="after")
    def _one_password_source(self) -> RepositoryConfig:
        if self.password_file and self.password_command:
            raise ValueError("give password_file or password_command, not both")
        return self

    @model_validator(mode="after")
    def _copy_follows(self) -> RepositoryConfig:
        if self.schedule is not None and self.schedule.copy_ is not None and self.follows is None:
            raise ValueError(
                "schedule.copy copies from the repository this one follows, and it follows none: "
                "add follows: NAME, or schedule the copy on the follower"
            )
        return self

    @model_validator(mode="after")
    def _storage(self) -> RepositoryConfig:
        from lifeboat.errors import UsageError
        from lifeboat.storage.registry import check_url

        try:
            check_url(self.url, self.options)  # URL grammar and storage options (docs/storage.md)
        except UsageError as exc:
            raise ValueError(exc.message) from None
        return self


class RetentionConfig(_Strict):
    keep_last: int = Field(0, ge=-1)
    keep_hourly: int = Field(0, ge=-1)
    keep_daily: int = Field(0, ge=-1)
    keep_weekly: int = Field(0, ge=-1)
    keep_monthly: int = Field(0, ge=-1)
    keep_yearly: int = Field(0, ge=-1)
    keep_within: Duration | None = None
    keep_tags: list[str] = Field(default_factory=list)
    recovery_window: Duration | None = None  # any point this far back is restorable (docs/postgres.md)

    def policy(self) -> RetentionPolicy:
        within: timedelta | None = parse_duration(self.keep_within) if self.keep_within else None
        window: timedelta | None = parse_duration(self.recovery_window) if self.recovery_window else None
        return RetentionPolicy(
            keep_last=self.keep_last,
            keep_hourly=self.keep_hourly,
            keep_daily=self.keep_daily,
            keep_weekly=self.keep_weekly,
            keep_monthly=self.keep_monthly,
            keep_yearly=self.keep_yearly,
            keep_within=within,
            keep_tags=tuple(self.keep_tags),
            recovery_window=window,
        )


class ValidationQuery(_Strict):
    """A query a drill runs on the restored instance; it fails the drill unless its first
    column of its first row is within ``min``..``max`` (numbers) or equals ``equals``."""

    name: Name
    sql: str = Field(min_length=1)
    database: str | None = None  # default: the source's own (postgres: dbname)
    min: float | None = None
    max: float | None = None
    equals: str | None = None


class FreshnessQuery(_Strict):
    """A query returning the newest row's time on the restored instance: the drill's
    *achieved* RPO is the recovery target minus that time."""

    sql: str = Field(min_length=1)
    database: str | None = None


class DrillConfig(_Strict):
    """How ``lifeboat drill`` proves this source restorable (docs/drills.md)."""

    target: str = "latest"  # latest | random | a time (ISO 8601)
    queries: list[ValidationQuery] = Field(default_factory=list)  # the validation queries
    freshness: FreshnessQuery | None = None
    scratch_dir: str | None = None  # where scratch instances go; default: a temporary directory
    time_limit: Duration = "1h"  # the whole drill, restore to validation
    space_limit: Size | None = None  # refuse a drill that would write more than this
    schedule: CronExpression | None = None  # when the daemon runs it; schedule.drill says more (docs/configuration.md)


class _SourceBase(_Strict):
    """What every configured source has, whatever its kind: where it goes, how long it is
    kept, and the objectives it is held to (``rpo``: the newest restorable point may be at
    most this old; ``rto``: a restore, start to serving, may take at most this long)."""

    repository: Name | None = None
    tags: list[str] = Field(default_factory=list)
    retention: RetentionConfig | None = None
    rpo: Duration | None = None
    rto: Duration | None = None
    drill: DrillConfig | None = None
    schedule: SourceSchedule | None = None  # the daemon's jobs for this source

    @model_validator(mode="after")
    def _one_drill_schedule(self) -> _SourceBase:
        if self.drill is not None and self.drill.schedule and self.schedule is not None and self.schedule.drill:
            raise ValueError("give the drill's schedule as schedule.drill or as drill.schedule, not both")
        return self

    def drill_timing(self) -> JobTiming | None:
        """When the daemon drills this source: ``schedule.drill``, else ``drill.schedule``."""
        if self.schedule is not None and self.schedule.drill is not None:
            return self.schedule.drill
        if self.drill is not None and self.drill.schedule:
            return JobTiming(cron=self.drill.schedule)
        return None


class FilesSourceConfig(_SourceBase):
    type: Literal["files"] = "files"
    paths: list[str] = Field(min_length=1)
    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    one_file_system: bool = False

    @field_validator("paths")
    @classmethod
    def _absolute(cls, paths: list[str]) -> list[str]:
        for path in paths:
            if not path.startswith("/"):
                raise ValueError(f"path {path!r} must be absolute")
        return paths

    @field_validator("include", "exclude")
    @classmethod
    def _patterns(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            Pattern.parse(pattern)  # docs/cli.md#patterns
        return patterns


class PostgresSourceConfig(_SourceBase):
    """A PostgreSQL cluster: base backups, WAL archiving and point-in-time recovery (docs/postgres.md)."""

    type: Literal["postgres"]
    data_directory: AbsolutePath | None = None  # required for method "local"
    method: Literal["local", "stream"] = "local"
    host: str | None = None  # connection; unset values come from libpq's PG* variables
    port: int | None = Field(None, ge=1, le=65535)
    user: str | None = None
    dbname: str = "postgres"
    block_size: Size | None = None  # fixed blocks of relation files; default: the repository's
    verify_checksums: bool = False
    workers: int | None = Field(None, ge=1, le=64)
    archive_wait: Duration = ARCHIVE_WAIT  # how long a backup waits for its WAL to be archived
    wal_spool_dir: AbsolutePath | None = None  # default: <data directory>/lifeboat_spool
    archive_queue_max: Size | None = None  # drop WAL (loudly) beyond this much queued
    archive_parallel: int = Field(2, ge=1, le=32)
    fetch_prefetch: int = Field(8, ge=0, le=256)
    fetch_parallel: int = Field(2, ge=1, le=32)

    @model_validator(mode="after")
    def _local_needs_directory(self) -> PostgresSourceConfig:
        if self.method == "local" and not self.data_directory:
            raise ValueError("method 'local' needs data_directory")
        return self


class CommandSourceConfig(_SourceBase):
    """A program whose standard output is the backup, e.g. ``pg_dump -Fc appdb`` (docs/configuration.md)."""

    type: Literal["command"]
    command: list[str] = Field(min_length=1)  # the producer: program and arguments, no shell
    restore_command: list[str] | None = Field(None, min_length=1)  # the consumer 'restore command' runs
    env: Environment = Field(default_factory=dict, repr=False)  # added to the programs' environment
    name: Name | None = None  # the file name in the snapshot; default: the source's name
    allow_empty: bool = False  # keep a snapshot of an empty output

    @field_validator("command", "restore_command")
    @classmethod
    def _program(cls, argv: list[str] | None) -> list[str] | None:
        if argv is not None and not argv[0]:
            raise ValueError("the program (first item) must not be empty")
        return argv


class MariadbSourceConfig(_SourceBase):
    """A MariaDB (or MySQL) server: mariadb-dump per database, or mariabackup (docs/sources.md)."""

    type: Literal["mariadb"]
    method: Literal["logical", "physical"] = "logical"
    host: str | None = None  # unset: the client programs' default (the local socket)
    port: int | None = Field(None, ge=1, le=65535)
    socket: AbsolutePath | None = None
    user: str | None = None
    password_file: AbsolutePath | None = None  # a file holding the password (its first line)
    password_env: str | None = None  # or the environment variable holding it
    databases: list[str] = Field(default_factory=list)  # logical: these; default: every non-system one
    exclude_databases: list[str] = Field(default_factory=list)

    @field_validator("socket")
    @classmethod
    def _socket_length(cls, value: str | None) -> str | None:
        if value is not None and len(value.encode()) > 107:
            raise ValueError(f"socket path {value!r} is longer than 107 bytes, which a socket cannot be")
        return value

    @model_validator(mode="after")
    def _databases_for_logical(self) -> MariadbSourceConfig:
        if self.method == "physical" and (self.databases or self.exclude_databases):
            raise ValueError(
                "method 'physical' backs up the whole server: databases and exclude_databases are for 'logical'"
            )
        return self


class RedisSourceConfig(_SourceBase):
    """A Redis server whose RDB snapshot (``redis-cli --rdb -``) is the backup (docs/sources.md#redis)."""

    type: Literal["redis"]
    host: str | None = None  # default: redis-cli's (127.0.0.1)
    port: int | None = Field(None, ge=1, le=65535)
    socket: str | None = None  # a Unix socket; overrides host and port
    user: str | None = None  # an ACL user (Redis 6+)
    password_file: str | None = None  # else REDISCLI_AUTH from the environment; never on a command line
    tls: bool = False
    cacert: str | None = None  # the CA certificate TLS verifies the server with
    dbfilename: str = "dump.rdb"  # the file name a restore writes (the server's dbfilename)

    @field_validator("dbfilename")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        if not name or "/" in name or name in (".", ".."):
            raise ValueError(f"{name!r} is not a plain file name")
        return name


class SqliteSourceConfig(_SourceBase):
    """SQLite database files, copied online with SQLite's backup API (docs/sources.md#sqlite)."""

    type: Literal["sqlite"]
    paths: list[str] = Field(min_length=1)  # the database files

    @field_validator("paths")
    @classmethod
    def _absolute(cls, paths: list[str]) -> list[str]:
        for path in paths:
            if not path.startswith("/"):
                raise ValueError(f"path {path!r} must be absolute")
        return paths


class LdapSourceConfig(_SourceBase):
    """An OpenLDAP server's databases, dumped by slapcat and loaded back by slapadd (docs/sources.md)."""

    type: Literal["ldap"]
    config_dir: AbsolutePath | None = None  # slapd -F (cn=config); default /etc/ldap/slapd.d
    config_file: AbsolutePath | None = None  # slapd -f (slapd.conf), instead of config_dir
    databases: list[Annotated[int, Field(ge=0)]] | None = Field(None, min_length=1)  # default: 0 and every data one
    run_as: str | None = None  # the OS user slapd runs as; default: the owner of the configuration

    @model_validator(mode="after")
    def _one_configuration(self) -> LdapSourceConfig:
        if self.config_dir and self.config_file:
            raise ValueError("give config_dir or config_file, not both")
        return self


class ConfigSourceConfig(FilesSourceConfig):
    """Configuration files (/etc/…, .env files, TLS keys): stored like files, with an inventory
    of each entry's owner, mode and checksum; ``secrets`` name the paths never shown (docs/sources.md)."""

    type: Literal["config"]  # type: ignore[assignment]
    secrets: list[str] | None = None  # patterns; default: core.defaults SECRET_PATTERNS

    @field_validator("secrets")
    @classmethod
    def _secret_patterns(cls, patterns: list[str] | None) -> list[str] | None:
        for pattern in patterns or ():
            Pattern.parse(pattern)
        return patterns


class PgDumpSourceConfig(_SourceBase):
    """Every database of a PostgreSQL cluster by pg_dump, and its roles and tablespaces by
    pg_dumpall --globals-only, in one snapshot (docs/sources.md, docs/configuration.md)."""

    type: Literal["pg_dump"]
    host: str | None = None  # connection; unset values come from libpq's PG* variables and service file
    port: int | None = Field(None, ge=1, le=65535)
    user: str | None = None
    dbname: str = "postgres"  # the database connected to for listing the others and for the globals
    service: str | None = None  # a libpq service name (PGSERVICE), from pg_service.conf
    passfile: str | None = None  # a libpq password file (PGPASSFILE); passwords never go in argv
    env: Environment = Field(default_factory=dict, repr=False)  # added to the programs' environment
    databases: list[str] | None = Field(None, min_length=1)  # default: every database that allows connections
    exclude_databases: list[str] = Field(default_factory=list)
    role_passwords: bool = True  # false: the roles without their password hashes (no superuser needed)
    jobs: int | None = Field(None, ge=1, le=64)  # parallel pg_dump: directory format via temp_directory
    temp_directory: AbsolutePath | None = None  # where a parallel dump or restore is written first; default: TMPDIR

    @field_validator("databases", "exclude_databases")
    @classmethod
    def _names(cls, names: list[str] | None) -> list[str] | None:
        for name in names or ():
            if not name or "\0" in name:
                raise ValueError(f"{name!r} is not a database name")
        return names


def _source_type(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("type", "files"))
    return str(getattr(value, "type", "files"))


# One member per kind of lifeboat.sources.registry (tests/unit/test_source_registry.py holds them equal).
SourceConfig = Annotated[
    Annotated[FilesSourceConfig, Tag("files")]
    | Annotated[PostgresSourceConfig, Tag("postgres")]
    | Annotated[CommandSourceConfig, Tag("command")]
    | Annotated[RedisSourceConfig, Tag("redis")]
    | Annotated[SqliteSourceConfig, Tag("sqlite")]
    | Annotated[MariadbSourceConfig, Tag("mariadb")]
    | Annotated[LdapSourceConfig, Tag("ldap")]
    | Annotated[ConfigSourceConfig, Tag("config")]
    | Annotated[PgDumpSourceConfig, Tag("pg_dump")],
    Discriminator(_source_type),
]


class AuditConfig(_Strict):
    """The audit log (docs/audit.md)."""

    path: AbsolutePath | None = None  # null: <state dir>/audit.jsonl
    anchor_every: int = Field(100, ge=0)  # anchor the chain's head in the repository every N entries; 0: never
    required: bool = False  # true: a command that cannot write its entry fails (exit 1) before it runs


class LifeboatConfig(_Strict):
    version: Literal[1] = 1
    repositories: dict[Name, RepositoryConfig] = Field(default_factory=dict)
    default_repository: Name | None = None
    sources: dict[Name, SourceConfig] = Field(default_factory=dict)
    retention: RetentionConfig | None = None
    daemon: DaemonConfig = Field(default_factory=DaemonConfig)
    alerts: AlertsConfig | None = None  # notifications (docs/alerts.md)
    audit: AuditConfig = Field(default_factory=lambda: AuditConfig.model_validate({}))

    @model_validator(mode="after")
    def _scheduled_retention(self) -> LifeboatConfig:
        for name, source in self.sources.items():
            if source.schedule and source.schedule.retention and source.retention is None and self.retention is None:
                raise ValueError(
                    f"sources.{name}.schedule.retention: no retention policy applies to {name!r}: "
                    f"add retention: to the source or at the top level"
                )
        return self

    @model_validator(mode="after")
    def _references(self) -> LifeboatConfig:
        if self.default_repository and self.default_repository not in self.repositories:
            raise ValueError(f"default_repository names {self.default_repository!r}, which is not in repositories")
        for name, source in self.sources.items():
            if source.repository and source.repository not in self.repositories:
                raise ValueError(f"sources.{name}.repository names {source.repository!r}, which is not in repositories")
        return self

    @model_validator(mode="after")
    def _followers(self) -> LifeboatConfig:
        for name, repository in self.repositories.items():
            if repository.follows is None:
                continue
            if repository.follows == name:
                raise ValueError(f"repositories.{name}.follows names the repository itself")
            if repository.follows not in self.repositories:
                raise ValueError(
                    f"repositories.{name}.follows names {repository.follows!r}, which is not in repositories"
                )
        return self

    def repository(self, name: str | None) -> tuple[str, RepositoryConfig] | None:
        """The named repository, else the default, else the only one."""
        if name and name in self.repositories:
            return name, self.repositories[name]
        if name:
            return None
        if self.default_repository:
            return self.default_repository, self.repositories[self.default_repository]
        if len(self.repositories) == 1:
            return next(iter(self.repositories.items()))
        return None

    def retention_for(self, source: str) -> RetentionPolicy | None:
        configured = self.sources.get(source)
        if configured is not None and configured.retention is not None:
            return configured.retention.policy()
        return self.retention.policy() if self.retention is not None else None


# --- alerts (docs/alerts.md) ---------------------------------------------------------------
# Channel secrets (webhook URLs, passwords, HMAC secrets, Apprise URLs) are never written in
# the file: each is read from a file (``*_file``) or an environment variable (``*_env``).

AlertEvent = Literal["failure", "recovery", "objective", "drill", "reminder"]
AlertSeverity = Literal["info", "warning", "critical"]
ALERT_EVENTS: tuple[AlertEvent, ...] = ("failure", "recovery", "objective", "drill", "reminder")
ALERT_CHANNEL_TYPES = ("slack", "discord", "email", "webhook", "apprise")


def _variable_name(name: str) -> str:
    if not name or "=" in name or "\0" in name:
        raise ValueError(f"{name!r} is not an environment variable name")
    return name


VariableName = Annotated[str, AfterValidator(_variable_name)]


def _one_secret(model: BaseModel, what: str, *, required: bool, inline: str | None = None) -> None:
    """Exactly one (or, when not ``required``, at most one) of ``<what>_file`` / ``<what>_env`` (/ ``inline``)."""
    keys = [f"{what}_file", f"{what}_env", *([inline] if inline else [])]
    given = [key for key in keys if getattr(model, key) is not None]
    if len(given) > 1:
        raise ValueError(f"give one of {', '.join(keys)}, not {' and '.join(given)}")
    if required and not given:
        raise ValueError(f"give {' or '.join(keys)} (the value is a secret: it is never written in this file)")


class AlertRateLimit(_Strict):
    """At most ``messages`` per channel per ``period``; the excess is dropped and counted in one
    "n alerts suppressed" message when the period ends."""

    messages: int = Field(20, ge=1, le=10000)
    period: Duration = "1h"


class _AlertChannelBase(_Strict):
    events: list[AlertEvent] = Field(default_factory=lambda: list(ALERT_EVENTS), min_length=1)
    min_severity: AlertSeverity = "info"


class SlackChannelConfig(_AlertChannelBase):
    """A Slack incoming webhook; its URL is the secret."""

    type: Literal["slack"]
    url_file: AbsolutePath | None = None
    url_env: VariableName | None = None

    @model_validator(mode="after")
    def _url(self) -> SlackChannelConfig:
        _one_secret(self, "url", required=True)
        return self


class DiscordChannelConfig(_AlertChannelBase):
    """A Discord webhook; its URL is the secret."""

    type: Literal["discord"]
    url_file: AbsolutePath | None = None
    url_env: VariableName | None = None

    @model_validator(mode="after")
    def _url(self) -> DiscordChannelConfig:
        _one_secret(self, "url", required=True)
        return self


class EmailChannelConfig(_AlertChannelBase):
    """E-mail through an SMTP relay: STARTTLS (default) or TLS from the start (``ssl``)."""

    type: Literal["email"]
    host: str = Field(min_length=1)
    port: int | None = Field(None, ge=1, le=65535)  # default: 465 with ssl, else 587 with starttls, else 25
    starttls: bool | None = None  # upgrade a plain connection with STARTTLS; default: true unless ssl
    ssl: bool = False  # TLS from the start (port 465)
    ca_file: AbsolutePath | None = None  # the CA that signed the relay's certificate; default: the system's
    username: str | None = None
    password_file: AbsolutePath | None = None
    password_env: VariableName | None = None
    sender: str = Field(alias="from", min_length=3)
    to: list[Annotated[str, Field(min_length=3)]] = Field(min_length=1)
    timeout: Duration = "30s"

    @model_validator(mode="after")
    def _tls_and_auth(self) -> EmailChannelConfig:
        if self.ssl and self.starttls:
            raise ValueError("give ssl: true (TLS from the start) or starttls: true, not both")
        _one_secret(self, "password", required=False)
        if self.starttls is False and not self.ssl and (self.password_file or self.password_env):
            raise ValueError("a password is never sent without TLS: set starttls: true or ssl: true")
        if (self.password_file or self.password_env) and not self.username:
            raise ValueError("a password needs a username")
        return self


class WebhookChannelConfig(_AlertChannelBase):
    """A JSON POST to any URL, signed with HMAC-SHA256 when a secret is given."""

    type: Literal["webhook"]
    url: str | None = None
    url_file: AbsolutePath | None = None
    url_env: VariableName | None = None
    secret_file: AbsolutePath | None = None
    secret_env: VariableName | None = None

    @model_validator(mode="after")
    def _url_and_secret(self) -> WebhookChannelConfig:
        _one_secret(self, "url", required=True, inline="url")
        _one_secret(self, "secret", required=False)
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        return self


class AppriseChannelConfig(_AlertChannelBase):
    """Apprise URLs (Telegram, Teams, ntfy, PagerDuty, …), which hold tokens: from a file (one
    per line) or an environment variable (separated by spaces or commas)."""

    type: Literal["apprise"]
    urls_file: AbsolutePath | None = None
    urls_env: VariableName | None = None

    @model_validator(mode="after")
    def _urls(self) -> AppriseChannelConfig:
        _one_secret(self, "urls", required=True)
        return self


AlertChannelConfig = Annotated[
    SlackChannelConfig | DiscordChannelConfig | EmailChannelConfig | WebhookChannelConfig | AppriseChannelConfig,
    Field(discriminator="type"),
]


class AlertsConfig(_Strict):
    """Notifications: where they go and how often (docs/alerts.md)."""

    dashboard_url: str | None = None  # a link put in every message
    reminder: Duration | None = "4h"  # while a condition stays unhealthy; null: no reminders
    rate_limit: AlertRateLimit = Field(default_factory=lambda: AlertRateLimit.model_validate({}))
    attempts: int = Field(3, ge=1, le=20)  # deliveries tried per message and channel
    retry_delay: Duration = "10s"  # before the second attempt; doubled before each next one
    channels: dict[Name, AlertChannelConfig] = Field(default_factory=dict)
