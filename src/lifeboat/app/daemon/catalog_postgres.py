"""The catalog in a PostgreSQL database (``postgresql://…``), for several hosts reporting into one place.

The URL is a libpq URL: the password may be in it, or (better) in PGPASSFILE / ``~/.pgpass``,
or the URL names a service of ``pg_service.conf`` (``postgresql:///?service=lifeboat``);
every PG* variable libpq reads applies. The URL is parsed once (by libpq) and never shown:
messages name the catalog by its user, host, port and database only. One autocommit
connection serves all threads under the database's lock; a connection the server dropped is
reopened once. Times are ``timestamptz``, summaries ``jsonb``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from lifeboat.app.daemon.catalog_db import CatalogError, CatalogUnavailable, Cursor, Database, T, utc
from lifeboat.errors import ConfigError, MissingTool

if TYPE_CHECKING:
    import psycopg

#: the key of the advisory lock under which a catalog is migrated ("lifeboat" in ASCII)
SCHEMA_LOCK_KEY = 0x6C696665626F6174
#: libpq settings unless the URL (or a service) says otherwise: a server that vanished without
#: closing the connection (a crashed host, a dropped route) is noticed within about a minute,
#: instead of holding the catalog's lock — and every job thread waiting for it — for hours.
DEFAULTS = {
    "connect_timeout": "10",
    "application_name": "lifeboat-daemon",
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
    "tcp_user_timeout": "60000",
}
_CONNECT_HINT = (
    "check that the server is up and reachable, and the user, the database and the password — "
    "in the URL, in PGPASSFILE (~/.pgpass) or in the pg_service.conf service the URL names"
)


class _PostgresCursor:
    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self._connection = connection

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._connection.cursor() as cursor:
            cursor.execute(sql.replace("?", "%s"), tuple(params))
            return list(cursor.fetchall()) if cursor.description else []

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self._connection.cursor() as cursor:
            cursor.execute(sql.replace("?", "%s"), tuple(params))
            return int(cursor.rowcount)


class PostgresDatabase(Database):
    dialect = "postgresql"
    time_type = "timestamptz"
    json_type = "jsonb"

    def __init__(self, url: str) -> None:
        try:
            import psycopg
            from psycopg.conninfo import conninfo_to_dict
        except ImportError:  # pragma: no cover - a declared dependency
            raise MissingTool("the psycopg package is not installed", hint="pip install 'psycopg[binary]'") from None
        try:
            params = {key: str(value) for key, value in conninfo_to_dict(url).items() if value is not None}
        except psycopg.Error:
            raise ConfigError(
                f"daemon.catalog: {_sketch(url)} is not a valid PostgreSQL URL",
                hint="the form is postgresql://USER@HOST:PORT/DATABASE?sslmode=verify-full (docs/catalog.md)",
            ) from None
        super().__init__(_location(params))
        self._params = params
        self._connection = self._connect()

    # --- the connection ---------------------------------------------------------------------
    def _connect(self) -> psycopg.Connection[Any]:
        import psycopg

        settings: dict[str, Any] = {**DEFAULTS, **self._params}
        try:
            return psycopg.connect(**settings, autocommit=True)
        except psycopg.Error as exc:
            raise CatalogUnavailable(
                f"cannot connect to the job catalog {self.location}: {self._reason(exc)}", hint=_CONNECT_HINT
            ) from None

    def _reason(self, exc: BaseException) -> str:
        """The driver's message on one line, unless it quotes the password (then only its kind)."""
        text = " ".join(part.strip() for part in str(exc).splitlines() if part.strip())
        password = self._params.get("password")
        if password and password in text:
            return f"{type(exc).__name__} (its message is not shown: it quotes the password)"
        return text[:400] or type(exc).__name__

    def _transaction(self, work: Callable[[Cursor], T], *, write: bool) -> T:
        import psycopg

        for attempt in (1, 2):
            try:
                with self._connection.transaction():
                    return work(_PostgresCursor(self._connection))
            except psycopg.OperationalError as exc:
                if attempt == 1 and self._connection.closed:  # dropped: a restart, a failover, an idle timeout
                    self._connection = self._connect()
                    continue
                raise CatalogUnavailable(
                    f"the job catalog {self.location} failed: {self._reason(exc)}", hint=_CONNECT_HINT
                ) from None
            except psycopg.Error as exc:
                raise CatalogError(
                    f"the job catalog {self.location} refused an operation: {self._reason(exc)}"
                ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    # --- the dialect ------------------------------------------------------------------------
    def lock_schema(self, cursor: Cursor) -> None:
        cursor.rows("SELECT pg_advisory_xact_lock(?)", (SCHEMA_LOCK_KEY,))

    def table_exists(self, cursor: Cursor, name: str) -> bool:
        return bool(cursor.rows("SELECT to_regclass(?) IS NOT NULL", (name,))[0][0])

    def index_exists(self, cursor: Cursor, name: str) -> bool:
        return self.table_exists(cursor, name)

    def store_time(self, moment: datetime) -> datetime:
        return utc(moment)

    def load_time(self, value: Any) -> datetime:
        if not isinstance(value, datetime):
            raise CatalogError(f"the job catalog {self.location} holds a time that is not a timestamptz: {value!r}")
        return value.astimezone(UTC)

    def store_json(self, value: dict[str, Any]) -> Any:
        from psycopg.types.json import Jsonb

        return Jsonb(value, dumps=lambda obj: json.dumps(obj, sort_keys=True, default=str))

    def load_json(self, value: Any) -> dict[str, Any]:
        loaded = json.loads(value) if isinstance(value, str | bytes) else value
        return loaded if isinstance(loaded, dict) else {"value": loaded}

    def close(self) -> None:
        with self.locked():
            self._connection.close()


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def _location(params: dict[str, str]) -> str:
    """``postgresql://USER@HOST:PORT/DATABASE`` from parsed settings: never the password."""
    host = params.get("host", "")
    user = params.get("user", "")
    text = "postgresql://" + (f"{user}@" if user else "")
    text += host if host and not host.startswith("/") else ""
    text += f":{params['port']}" if params.get("port") else ""
    text += "/" + params.get("dbname", "")
    extras = [f"host={host}"] if host.startswith("/") else []
    extras += [f"service={params['service']}"] if params.get("service") else []
    return text + ("?" + "&".join(extras) if extras else "")


def _sketch(url: str) -> str:
    """What can be shown of a URL libpq could not parse: its scheme and host, never its user part."""
    try:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.hostname or ''}/…"
    except ValueError:
        return "the URL"
