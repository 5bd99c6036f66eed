"""Configuration resolved once (config/resolve.py): one set of defaults, the configured source
and the options merged into one typed request, whoever the front end is."""

from __future__ import annotations

import typing
from datetime import timedelta

import pytest

from lifeboat.app.cli import backup_postgres_cmd
from lifeboat.config.loader import parse_config
from lifeboat.config.model import PostgresSourceConfig, RepositoryConfig
from lifeboat.config.resolve import backup_job, lock_wait, retention_for, retention_given
from lifeboat.core import defaults
from lifeboat.core.units import parse_duration
from lifeboat.errors import ConfigError, UsageError, cli_flag
from lifeboat.sources.base import BackupOptions
from lifeboat.sources.command.kind import CommandRequest
from lifeboat.sources.files.kind import FilesRequest
from lifeboat.sources.postgres.basebackup import PgBackupRequest

CONFIG = """
repositories:
  main: {url: /srv/repo, lock_wait: 2min}
sources:
  db:
    type: postgres
    data_directory: /var/lib/postgresql/15/main
    workers: 3
    tags: [nightly]
  slow:
    type: postgres
    method: stream
    archive_wait: 10min
  uploads:
    paths: [/srv/uploads]
    exclude: ["*.tmp"]
    tags: [app]
  dump:
    type: command
    command: [pg_dump, -Fc, appdb]
    env: {PGHOST: db.internal}
    allow_empty: true
"""


def test_the_archive_wait_default_is_one_value_for_the_config_the_cli_and_the_request() -> None:
    config_default = PostgresSourceConfig.model_fields["archive_wait"].default
    assert config_default is defaults.ARCHIVE_WAIT
    seconds = parse_duration(defaults.ARCHIVE_WAIT).total_seconds()
    assert PgBackupRequest().archive_wait == defaults.ARCHIVE_WAIT_SECONDS == seconds
    # What 'backup postgres' builds without --archive-wait and without a configured source.
    from lifeboat.sources.registry import source_kind

    from_cli = source_kind("postgres").request(None, BackupOptions())
    assert from_cli.archive_wait == seconds
    # ... and with a configured source that leaves archive_wait out.
    configured = parse_config(CONFIG).sources["db"]
    assert source_kind("postgres").request(configured, BackupOptions()).archive_wait == seconds
    # The option's help states the same default.
    hints = typing.get_type_hints(backup_postgres_cmd.command, include_extras=True)
    (option,) = (extra for extra in typing.get_args(hints["archive_wait"])[1:])
    assert f"default {defaults.ARCHIVE_WAIT})" in option.help


def test_the_lock_wait_default_is_one_value_for_the_config_and_the_cli() -> None:
    assert RepositoryConfig.model_fields["lock_wait"].default is defaults.LOCK_WAIT
    assert lock_wait(None, None) == defaults.LOCK_WAIT_SECONDS == 0.0
    assert lock_wait(None, parse_config(CONFIG).repositories["main"]) == 120.0
    assert lock_wait("5s", parse_config(CONFIG).repositories["main"]) == 5.0


def test_a_malformed_lock_wait_names_the_option_as_each_front_end_spells_it() -> None:
    with pytest.raises(UsageError) as caught:
        lock_wait("soon", None)
    assert caught.value.message.startswith("lock_wait: invalid duration 'soon'")
    assert caught.value.spelled(cli_flag)[0].startswith("--lock-wait: invalid duration 'soon'")


def test_a_configured_postgres_source_and_the_options_make_one_request() -> None:
    config = parse_config(CONFIG)
    job = backup_job(config, BackupOptions(source="db", tags=("manual",), settings={"method": "local", "port": 5433}))
    request = job.request
    assert isinstance(request, PgBackupRequest)
    assert (request.data_directory, request.method, request.connection.port) == (
        "/var/lib/postgresql/15/main",
        "local",
        5433,
    )
    assert request.connection.dbname == "postgres"  # the configuration model's default
    assert job.tags == ("nightly", "manual") and job.workers == 3 and job.kind.name == "postgres"
    slow = backup_job(config, BackupOptions(source="slow")).request
    assert slow.archive_wait == 600.0 and slow.method == "stream"
    given = backup_job(config, BackupOptions(source="slow", settings={"archive_wait": "0"})).request
    assert given.archive_wait == 0.0


def test_a_configured_files_source_adds_the_options_patterns() -> None:
    job = backup_job(parse_config(CONFIG), BackupOptions(source="uploads", settings={"exclude": ("*.bak",)}))
    assert job.request == FilesRequest(paths=("/srv/uploads",), source="uploads", excludes=("*.tmp", "*.bak"))
    assert job.tags == ("app",)
    with pytest.raises(UsageError, match="is configured; do not also give paths"):
        backup_job(parse_config(CONFIG), BackupOptions(source="uploads", settings={"paths": ("/etc",)}))


def test_a_configured_command_source_keeps_its_env_but_never_the_passphrase() -> None:
    environment = {"PATH": "/usr/bin", "LIFEBOAT_PASSWORD": "secret", "LIFEBOAT_FROM_PASSWORD_FILE": "/x"}
    job = backup_job(parse_config(CONFIG), BackupOptions(source="dump", environment=environment))
    request = job.request
    assert isinstance(request, CommandRequest)
    assert request.producer.argv == ("pg_dump", "-Fc", "appdb") and request.name == "dump"
    assert request.allow_empty is True
    assert dict(request.producer.env or {}) == {"PATH": "/usr/bin", "PGHOST": "db.internal"}


def test_a_source_of_another_kind_is_refused_by_a_kind_specific_front_end() -> None:
    with pytest.raises(UsageError) as caught:
        backup_job(parse_config(CONFIG), BackupOptions(source="uploads"), kind="postgres")
    assert caught.value.message == "source 'uploads' is a files source, not a postgres source"
    assert "lifeboat backup --source uploads" in caught.value.hint


def test_without_a_configured_source_the_options_alone_make_the_request() -> None:
    job = backup_job(None, BackupOptions(settings={"paths": ("/etc",), "one_file_system": True}))
    assert job.request == FilesRequest(paths=("/etc",), one_file_system=True)
    with pytest.raises(UsageError, match="nothing to back up"):
        backup_job(None, BackupOptions())


def test_retention_given_wins_else_the_sources_else_the_configurations() -> None:
    from datetime import UTC, datetime

    from lifeboat.core.snapshot import Snapshot

    config = parse_config(CONFIG + "retention: {keep_last: 3}\n")
    snapshot = Snapshot(time=datetime.now(UTC), source="uploads", kind="files", tree=bytes(32))
    assert retention_for(config, retention_given())(snapshot) == config.retention_for("uploads")
    given = retention_given(keep_daily=7, keep_within="2d")
    assert given.keep_within == timedelta(days=2)
    assert retention_for(config, given)(snapshot) is given
    with pytest.raises(UsageError, match="no retention policy given"):
        retention_for(None, retention_given())
    with pytest.raises(UsageError) as caught:
        retention_given(keep_within="7q")
    assert caught.value.spelled(cli_flag)[0].startswith("--keep-within: invalid duration")
    window = retention_given(recovery_window="14d")
    assert window.recovery_window == timedelta(days=14) and not window.is_empty
    with pytest.raises(UsageError) as caught:
        retention_given(recovery_window="two weeks")
    assert caught.value.spelled(cli_flag)[0].startswith("--recovery-window: invalid duration")


def test_an_unknown_kind_named_by_a_source_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"sources\.cache\.type: unknown source type 'mongodb'"):
        parse_config("sources: {cache: {type: mongodb}}")
