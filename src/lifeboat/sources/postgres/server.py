"""SQL control of a running PostgreSQL server: facts, settings, backup mode.

Data never flows through this connection — base backups read files or run
pg_basebackup, WAL comes through archive_command — it only asks and commands, through a
``psql`` process (:class:`~lifeboat.sources.tools.psql.PsqlSession`), so no driver is loaded
here. Backup mode is the non-exclusive kind, tied to this session: if Lifeboat dies, psql
reads the end of its input and disconnects, and the server ends the backup itself, so it is
never left in backup mode.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lifeboat.core.wal import Lsn
from lifeboat.errors import PostgresError
from lifeboat.sources.tools.pg import Connection
from lifeboat.sources.tools.psql import Param, PsqlSession, Value, identifier, literal


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
    """One autocommit session with a server."""

    def __init__(self, session: PsqlSession, settings: Connection) -> None:
        self._session = session
        self.settings = settings

    @classmethod
    def connect(cls, settings: Connection, *, application_name: str = "lifeboat", timeout: int = 30) -> PgServer:
        session = PsqlSession(
            host=settings.host,
            port=settings.port,
            user=settings.user,
            dbname=settings.dbname,
            application_name=application_name,
            timeout=timeout,
        )
        return cls(session, settings)

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> PgServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- queries -----------------------------------------------------------------------------
    def rows(self, sql: str, params: Sequence[Param] = ()) -> list[tuple[Value, ...]]:
        """The rows of a query, each field as PostgreSQL prints it (None for NULL)."""
        return self._session.rows(sql, params)

    def value(self, sql: str, params: Sequence[Param] = ()) -> Value:
        found = self.rows(sql, params)
        return found[0][0] if found else None

    def integer(self, sql: str, params: Sequence[Param] = ()) -> int:
        """The one integer a query returns."""
        found = self.value(sql, params)
        if found is None:
            raise PostgresError(f"PostgreSQL answered {sql.split('(', 1)[0].strip()!r} with no number")
        return int(found)

    def setting(self, name: str) -> str:
        return str(self.value("SELECT current_setting(%s)", (name,)))

    def info(self) -> ServerInfo:
        version_num = self.integer("SELECT current_setting('server_version_num')")
        row = self.rows(
            "SELECT current_setting('server_version'), (SELECT system_identifier FROM pg_control_system()),"
            " current_setting('data_directory'), current_setting('wal_segment_size'),"
            " current_setting('block_size'), current_setting('segment_size'), current_setting('data_checksums'),"
            " pg_is_in_recovery(), (SELECT rolsuper FROM pg_roles WHERE rolname = current_user), current_user"
        )[0]
        in_recovery = row[7] == "t"
        if in_recovery:
            timeline = self.integer("SELECT timeline_id FROM pg_control_checkpoint()")
        else:
            timeline = int(str(self.value("SELECT pg_walfile_name(pg_current_wal_lsn())"))[:8], 16)
        block_size = int(str(row[4]))
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
            superuser=row[8] == "t",
            user=str(row[9]),
        )

    def tablespaces(self) -> list[Tablespace]:
        return [
            Tablespace(int(str(oid)), str(name), str(location))
            for oid, name, location in self.rows(
                "SELECT oid, spcname, pg_tablespace_location(oid) FROM pg_tablespace"
                " WHERE spcname NOT IN ('pg_default', 'pg_global') ORDER BY oid"
            )
        ]

    def database_sizes(self) -> list[DatabaseSize]:
        return [
            DatabaseSize(str(name), int(str(oid)), int(str(size)))
            for name, oid, size in self.rows(
                "SELECT datname, oid, pg_database_size(oid) FROM pg_database WHERE datallowconn ORDER BY datname"
            )
        ]

    def next_xid(self) -> int:
        """The next transaction id to be assigned (full 64-bit form)."""
        return self.integer("SELECT pg_snapshot_xmax(pg_current_snapshot())")

    # --- backup mode -------------------------------------------------------------------------
    def backup_start(self, label: str, *, fast: bool = True) -> Lsn:
        if self._version() >= 150000:
            found = self.value("SELECT pg_backup_start(%s, %s)::text", (label, fast))
        else:
            found = self.value("SELECT pg_start_backup(%s, %s, false)::text", (label, fast))
        return Lsn.parse(str(found))

    def backup_stop(self) -> BackupStop:
        function = "pg_backup_stop(false)" if self._version() >= 150000 else "pg_stop_backup(false, false)"
        row = self.rows(
            f"SELECT lsn::text, labelfile, spcmapfile, extract(epoch FROM clock_timestamp()) FROM {function}"  # noqa: S608
        )[0]
        return BackupStop(Lsn.parse(str(row[0])), row[1] or "", row[2] or "", _timestamp(row[3]) or datetime.now(UTC))

    def _version(self) -> int:
        return self._session.server_version

    # --- WAL ---------------------------------------------------------------------------------
    def switch_wal(self) -> str:
        """Write a record and switch to a new segment; returns the name of the segment closed."""
        self.value("SELECT pg_logical_emit_message(false, 'lifeboat', 'switch')::text")
        return str(self.value("SELECT pg_walfile_name(pg_switch_wal())"))

    def current_lsn(self) -> Lsn:
        return Lsn.parse(str(self.value("SELECT pg_current_wal_lsn()::text")))

    def archiver(self) -> dict[str, Any]:
        """``pg_stat_archiver``: the counts as ints, the times as aware datetimes (None when never)."""
        row = self.rows(
            "SELECT archived_count, last_archived_wal, extract(epoch FROM last_archived_time), failed_count,"
            " last_failed_wal, extract(epoch FROM last_failed_time) FROM pg_stat_archiver"
        )[0]
        return {
            "archived_count": int(row[0] or 0),
            "last_archived_wal": row[1],
            "last_archived_time": _timestamp(row[2]),
            "failed_count": int(row[3] or 0),
            "last_failed_wal": row[4],
            "last_failed_time": _timestamp(row[5]),
        }

    def alter_system(self, name: str, value: str) -> None:
        self._session.execute(
            f"ALTER SYSTEM SET {identifier(name)} = {literal(value)}", what=f"ALTER SYSTEM SET {name}"
        )

    def reload(self) -> None:
        self.value("SELECT pg_reload_conf()")

    def pending_restart(self) -> list[str]:
        return [str(r[0]) for r in self.rows("SELECT name FROM pg_settings WHERE pending_restart")]


def _timestamp(epoch: Value) -> datetime | None:
    """A time PostgreSQL gave as seconds since the epoch (``extract(epoch FROM ...)``)."""
    return None if epoch is None else datetime.fromtimestamp(float(epoch), UTC)
