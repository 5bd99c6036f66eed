"""The ``postgres`` kind: physical base backups of a cluster (local or streamed), restored by
point-in-time recovery (``restore postgres``, docs/postgres.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from lifeboat.core.basebackup import KIND, BaseBackup
from lifeboat.core.defaults import ARCHIVE_WAIT
from lifeboat.core.snapshot import Snapshot
from lifeboat.errors import LifeboatError, NotSupported, UsageError, option
from lifeboat.sources.base import (
    BackupContext,
    BackupOptions,
    Produced,
    RestoreContext,
    Restored,
    RestoreDestination,
    RestoreInto,
    SourceKind,
    Verification,
)

if TYPE_CHECKING:
    from lifeboat.config.model import PostgresSourceConfig
    from lifeboat.sources.postgres.basebackup import PgBackupRequest
    from lifeboat.sources.tools.pg import Connection

METHODS = ("local", "stream")


class PostgresSource(SourceKind):
    name = "postgres"
    config_model = "lifeboat.config.model:PostgresSourceConfig"
    snapshot_kinds = (KIND,)
    # Restored by point-in-time recovery, its own use case (operations/pitr.py): it needs the WAL
    # archive and timelines, more of the repository than a source sees.
    restores_into: ClassVar[frozenset[RestoreInto]] = frozenset({RestoreInto.RECOVERY})

    def request(self, config: PostgresSourceConfig | None, options: BackupOptions) -> PgBackupRequest:
        """Each setting given, else the configured source's, else the default (libpq's PG*
        variables for an unset connection setting)."""
        from lifeboat.core.units import parse_duration, parse_size
        from lifeboat.sources.postgres.basebackup import PgBackupRequest

        given = options.settings

        def setting(key: str, default: Any = None) -> Any:
            value = given.get(key)
            if value is None and config is not None:
                value = getattr(config, key)
            return default if value is None else value

        method = setting("method", "local")
        if method not in METHODS:
            raise UsageError(f"{option('method')} {method!r}: use local or stream")
        try:
            block_size = parse_size(setting("block_size")) if setting("block_size") else None
            archive_wait = parse_duration(setting("archive_wait", ARCHIVE_WAIT)).total_seconds()
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        return PgBackupRequest(
            method=method,
            connection=connection_for(config, given),
            data_directory=setting("data_directory"),
            source=options.source,
            block_size=block_size,
            verify_checksums=bool(given.get("verify_checksums")) or bool(config and config.verify_checksums),
            archive_wait=archive_wait,
            label=given.get("label"),
            full=bool(given.get("full")),
        )

    def label(self, request: PgBackupRequest) -> str:
        return f"backing up PostgreSQL ({request.method})"

    def backup(self, ctx: BackupContext, request: PgBackupRequest) -> Produced:
        from lifeboat.sources.postgres.basebackup import produce_base_backup

        return produce_base_backup(ctx, request)

    def check_restore(self, into: RestoreDestination) -> None:
        raise NotSupported(
            "a postgres source is restored by point-in-time recovery into a data directory",
            hint=f"give the data directory with {option('target')}, or run 'lifeboat restore postgres "
            "--source NAME --target-dir DIR' to choose a recovery target (docs/postgres.md)",
        )

    def restore(self, ctx: RestoreContext, snapshot: Snapshot, into: RestoreDestination) -> Restored:
        self.check_restore(into)
        raise AssertionError("not reached")

    def verify(self, ctx: RestoreContext, snapshot: Snapshot) -> Verification:
        """The snapshot records a base backup whose data directory holds its backup_label."""
        from lifeboat.core.treewalk import find
        from lifeboat.sources.postgres.treeparts import DATA

        problems: list[str] = []
        try:
            BaseBackup.of(snapshot)
        except LifeboatError as exc:
            problems.append(f"its base backup record cannot be read: {exc}")
        if find(ctx.loader, snapshot.tree, f"{DATA}/backup_label") is None:
            problems.append(f"{DATA}/backup_label is missing: recovery could not start from it")
        return Verification(checked="a base backup record and its backup_label", problems=tuple(problems))

    def describe(self, snapshot: Snapshot) -> list[str]:
        from lifeboat.core.units import format_bytes

        try:
            backup = BaseBackup.of(snapshot)
        except LifeboatError:
            return []
        lines = [
            f"PostgreSQL {backup.version}, system {backup.system_id}, timeline {backup.timeline}: "
            f"WAL {backup.start_segment.name}..{backup.stop_segment.name} (LSN {backup.start_lsn}..{backup.stop_lsn})",
            "databases: " + ", ".join(f"{d['name']} {format_bytes(int(d['size']))}" for d in backup.databases),
        ]
        wal_wait = float(snapshot.summary.get("wal_wait_seconds", 0) or 0)
        if wal_wait:
            lines.append(f"its WAL was archived {wal_wait:.1f}s after the backup stopped")
        if backup.checksum_errors:
            lines.append(f"DAMAGED PAGES: {len(backup.checksum_errors)} pages failed their checksum (listed above)")
        return lines


def connection_for(config: PostgresSourceConfig | None, given: Mapping[str, Any]) -> Connection:
    """How to reach the server: each connection setting given (``host``, ``port``, ``user``,
    ``dbname``), else the configured source's; unset ones are left to libpq's PG* variables."""
    from lifeboat.sources.tools.pg import Connection

    def setting(key: str) -> Any:
        value = given.get(key)
        return getattr(config, key) if value is None and config is not None else value

    return Connection(host=setting("host"), port=setting("port"), user=setting("user"), dbname=setting("dbname"))
