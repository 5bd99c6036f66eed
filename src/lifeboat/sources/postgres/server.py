"""SQL control of a running PostgreSQL server (psycopg 3): facts, settings, backup mode.

Data never flows through this connection — base backups read files or run
pg_basebackup, WAL comes through archive_command — it only asks and commands. Backup
mode is the non-exclusive kind, tied to this session: if Lifeboat dies, the server
ends the backup itself when the connection drops, so it is never left in backup mode.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from lifeboat.core.wal import Lsn
from lifeboat.errors import MissingTool, PostgresError
from lifeboat.sources.tools.pg import Connection

if TYPE_CHECKING:
    import psycopg


@dataclass(frozen=True)
class ServerInfo:
    """What a backup records and a check verifies about the server."""

    version_num: int
    version: str
    system_id: str
    data_directory: str
    timeline: int
    wal_segment_size: int
    block_size: int
    relation_segment_size: int  # bytes per relation file segment (1 GiB by default)
    data_checksums: bool
    in_recovery: bool
    superuser: bool
    user: str


@dataclass(frozen=True)
class Tablespace:
    oid: int
    name: str
    location: str


@dataclass(frozen=True)
class DatabaseSize:
    name: str
    oid: int
    size: int


@dataclass(frozen=True)
class BackupStop:
    """What ``pg_backup_stop`` returns: the stop LSN and the files to write into the copy."""

    lsn: Lsn
    label_file: str
    tablespace_map: str
    stop_time: datetime


_SIZE_UNITS = {"B": 1, "kB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


def parse_pg_size(text: str) -> int:
    """``16MB`` / ``8kB`` / ``1GB`` (as SHOW prints sizes) → bytes."""
    stripped = text.strip()
    for unit in sorted(_SIZE_UNITS, key=len, reverse=True):
        if stripped.endswith(unit) and stripped[: -len(unit)].strip().isdigit():
            return int(stripped[: -len(unit)]) * _SIZE_UNITS[unit]
    if stripped.isdigit():
        return int(stripped)
    raise ValueError(f"not a PostgreSQL size: {text!r}")


class PgServer:
    """One autocommit connection to a server."""

    def __init__(self, connection: psycopg.Connection[Any], settings: Connection) -> None:
        self._conn = connection
        self.settings = settings

    @classmethod
    def connect(cls, settings: Connection, *, application_name: str = "lifeboat", timeout: int = 30) -> PgServer:
        try:
            import psycopg
        except ImportError:  # pragma: no cover - a declared dependency
            raise MissingTool("the psycopg package is not installed", hint="pip install 'psycopg[binary]'") from None
        params: dict[str, Any] = {"application_name": application_name, "autocommit": True, "connect_timeout": timeout}
        for key in ("host", "port", "user", "dbname"):
            value = getattr(settings, key)
            if value:
                params[key] = value
        try:
            conn = psycopg.connect(**params)
        except (psycopg.Error, ValueError) as exc:  # ValueError: a host name no resolver accepts
            where = f"{settings.host or 'default host'}:{settings.port or 'default port'}"
            raise PostgresError(f"cannot connect to PostgreSQL at {where}: {_first_line(exc)}") from None
        return cls(conn, settings)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> PgServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- queries -----------------------------------------------------------------------------
    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        import psycopg

        try:
            with self._conn.cursor() as cur:
                cur.execute(sql, params)
                return list(cur.fetchall()) if cur.description else []
        except psycopg.Error as exc:
            raise PostgresError(f"PostgreSQL refused {sql.split('(', 1)[0].strip()!r}: {_first_line(exc)}") from None

    def value(self, sql: str, params: Sequence[Any] = ()) -> Any:
        found = self.rows(sql, params)
        return found[0][0] if found else None

    def setting(self, name: str) -> str:
        return str(self.value("SELECT current_setting(%s)", (name,)))

    def info(self) -> ServerInfo:
        version_num = int(self.value("SELECT current_setting('server_version_num')"))
        row = self.rows(
            "SELECT current_setting('server_version'), (SELECT system_identifier FROM pg_control_system()),"
            " current_setting('data_directory'), current_setting('wal_segment_size'),"
            " current_setting('block_size'), current_setting('segment_size'), current_setting('data_checksums'),"
            " pg_is_in_recovery(), (SELECT rolsuper FROM pg_roles WHERE rolname = current_user), current_user"
        )[0]
        in_recovery = bool(row[7])
        if in_recovery:
            timeline = int(self.value("SELECT timeline_id FROM pg_control_checkpoint()"))
        else:
            timeline = int(str(self.value("SELECT pg_walfile_name(pg_current_wal_lsn())"))[:8], 16)
        block_size = int(row[4])
        return ServerInfo(
            version_num=version_num,
            version=str(row[0]),
            system_id=str(row[1]),
            data_directory=str(row[2]),
            timeline=timeline,
            wal_segment_size=parse_pg_size(str(row[3])),
            block_size=block_size,
            relation_segment_size=parse_pg_size(str(row[5])) * (block_size if str(row[5]).isdigit() else 1),
            data_checksums=str(row[6]) == "on",
            in_recovery=in_recovery,
            superuser=bool(row[8]),
            user=str(row[9]),
        )

    def tablespaces(self) -> list[Tablespace]:
        return [
            Tablespace(int(oid), str(name), str(location))
            for oid, name, location in self.rows(
                "SELECT oid, spcname, pg_tablespace_location(oid) FROM pg_tablespace"
                " WHERE spcname NOT IN ('pg_default', 'pg_global') ORDER BY oid"
            )
        ]

    def database_sizes(self) -> list[DatabaseSize]:
        return [
            DatabaseSize(str(name), int(oid), int(size))
            for name, oid, size in self.rows(
                "SELECT datname, oid, pg_database_size(oid) FROM pg_database WHERE datallowconn ORDER BY datname"
            )
        ]

    def next_xid(self) -> int:
        """The next transaction id to be assigned (full 64-bit form)."""
        return int(str(self.value("SELECT pg_snapshot_xmax(pg_current_snapshot())")))

    # --- backup mode -------------------------------------------------------------------------
    def backup_start(self, label: str, *, fast: bool = True) -> Lsn:
        if self._version() >= 150000:
            found = self.value("SELECT pg_backup_start(%s, %s)::text", (label, fast))
        else:
            found = self.value("SELECT pg_start_backup(%s, %s, false)::text", (label, fast))
        return Lsn.parse(str(found))

    def backup_stop(self) -> BackupStop:
        function = "pg_backup_stop(false)" if self._version() >= 150000 else "pg_stop_backup(false, false)"
        row = self.rows(f"SELECT lsn::text, labelfile, spcmapfile, clock_timestamp() FROM {function}")[0]  # noqa: S608
        return BackupStop(Lsn.parse(str(row[0])), str(row[1] or ""), str(row[2] or ""), row[3])

    def _version(self) -> int:
        return int(self._conn.info.server_version)

    # --- WAL ---------------------------------------------------------------------------------
    def switch_wal(self) -> str:
        """Write a record and switch to a new segment; returns the name of the segment closed."""
        self.value("SELECT pg_logical_emit_message(false, 'lifeboat', 'switch')::text")
        return str(self.value("SELECT pg_walfile_name(pg_switch_wal())"))

    def current_lsn(self) -> Lsn:
        return Lsn.parse(str(self.value("SELECT pg_current_wal_lsn()::text")))

    def archiver(self) -> dict[str, Any]:
        row = self.rows(
            "SELECT archived_count, last_archived_wal, last_archived_time, failed_count,"
            " last_failed_wal, last_failed_time FROM pg_stat_archiver"
        )[0]
        keys = ("archived_count", "last_archived_wal", "last_archived_time", "failed_count", "last_failed_wal")
        return dict(zip((*keys, "last_failed_time"), row, strict=True))

    def alter_system(self, name: str, value: str) -> None:
        from psycopg import sql

        statement = sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value))
        import psycopg

        try:
            self._conn.execute(statement)
        except psycopg.Error as exc:
            raise PostgresError(f"ALTER SYSTEM SET {name} failed: {_first_line(exc)}") from None

    def reload(self) -> None:
        self.value("SELECT pg_reload_conf()")

    def pending_restart(self) -> list[str]:
        return [str(r[0]) for r in self.rows("SELECT name FROM pg_settings WHERE pending_restart")]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
