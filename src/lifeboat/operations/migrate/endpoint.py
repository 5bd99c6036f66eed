"""A database to read from or load into: the connection settings and the environment its
clients get (passwords only through PGPASSWORD, PGPASSFILE or a service file, never argv)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from lifeboat.errors import MissingTool, PostgresError
from lifeboat.sources.tools.pg import Connection

if TYPE_CHECKING:
    import psycopg


@dataclass(frozen=True)
class Endpoint:
    """Where a database is: ``connection`` (unset fields: libpq's PG* variables in
    ``environment``) and a label for messages and manifests (never a password)."""

    connection: Connection
    environment: Mapping[str, str] = field(default_factory=dict, repr=False)
    label: str = ""
    major: str | None = None  # the server's major version, for pg_dump (None: the newest installed)

    def with_dbname(self, dbname: str | None) -> Endpoint:
        return replace(self, connection=replace(self.connection, dbname=dbname)) if dbname else self

    def describe(self) -> str:
        if self.label:
            return self.label
        c = self.connection
        where = f"{c.host or 'default host'}:{c.port or 'default port'}"
        return f"database {c.dbname or '(default)'} at {where}"

    def connect(self, *, autocommit: bool = False) -> psycopg.Connection[Any]:
        """A psycopg connection; libpq reads the password from ``environment``'s PG* variables."""
        try:
            import psycopg
        except ImportError:  # pragma: no cover - a declared dependency
            raise MissingTool("the psycopg package is not installed", hint="pip install 'psycopg[binary]'") from None
        params: dict[str, Any] = {"application_name": "lifeboat migrate", "connect_timeout": 30}
        for key in ("host", "port", "user", "dbname"):
            value = getattr(self.connection, key)
            if value:
                params[key] = value
        for variable, key in _LIBPQ_VARIABLES.items():
            if key not in params and self.environment.get(variable):
                params[key] = self.environment[variable]
        try:
            conn = psycopg.connect(autocommit=autocommit, **params)
        except (psycopg.Error, ValueError) as exc:
            raise PostgresError(f"cannot connect to {self.describe()}: {first_line(exc)}") from None
        return conn


# What libpq would read from the process environment, read from the one handed down instead.
_LIBPQ_VARIABLES = {
    "PGHOST": "host",
    "PGPORT": "port",
    "PGUSER": "user",
    "PGDATABASE": "dbname",
    "PGPASSWORD": "password",
    "PGPASSFILE": "passfile",
    "PGSERVICE": "service",
    "PGSSLMODE": "sslmode",
}


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
