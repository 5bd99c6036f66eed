"""The PostgreSQL client programs of the pg_dump source: how they reach one cluster, their
command lines (pg_dump, pg_dumpall, pg_restore, psql), and the few questions asked with
``psql`` (the databases and their sizes, the version, whether a database exists).

Settings left unset fall back to libpq's own: the PG* variables of the environment and a
service file (``service`` sets PGSERVICE). A password is never an argument: it comes from
PGPASSWORD or a password file (``passfile`` sets PGPASSFILE) in the programs' environment,
which is never shown.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from lifeboat.errors import SourceError
from lifeboat.sources.tools.pg import find_program

APPLICATION_NAME = "lifeboat pg_dump"
QUERY_TIMEOUT = 300.0


def conninfo(database: str) -> str:
    """A libpq connection string naming only ``database``: a name holding '=' or a URI
    prefix is never read as a connection string of its own."""
    quoted = database.replace("\\", "\\\\").replace("'", "\\'")
    return f"dbname='{quoted}'"


@dataclass(frozen=True)
class Server:
    """A cluster as the client programs see it: options (never a password) and environment."""

    host: str | None = None
    port: int | None = None
    user: str | None = None
    dbname: str = "postgres"  # the database connected to for listing, the globals, CREATE DATABASE
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    major: str | None = None  # the client programs' major version (the server's, when known)

    def argv(self) -> list[str]:
        args: list[str] = []
        if self.host:
            args += ["-h", self.host]
        if self.port:
            args += ["-p", str(self.port)]
        if self.user:
            args += ["-U", self.user]
        return [*args, "-w"]  # never prompt: a missing password is an error, not a hang

    def program(self, name: str) -> str:
        return find_program(name, self.major)

    def describe(self) -> str:
        where = self.host or self.env.get("PGHOST") or "the default socket"
        port = self.port or self.env.get("PGPORT")
        service = self.env.get("PGSERVICE")
        text = f"{where}:{port}" if port else where
        return f"{text} (service {service})" if service else text

    def with_major(self, major: str | None) -> Server:
        return Server(self.host, self.port, self.user, self.dbname, self.env, major)

    # --- command lines ---------------------------------------------------------------------------

    def globals_argv(self, *, role_passwords: bool = True) -> list[str]:
        """pg_dumpall of the roles and tablespaces, as SQL on standard output; without
        ``role_passwords`` it reads pg_roles instead of pg_authid, which needs no superuser."""
        argv = [self.program("pg_dumpall"), *self.argv(), "--globals-only", "-l", self.dbname]
        return argv if role_passwords else [*argv, "--no-role-passwords"]

    def dump_argv(self, database: str, *, directory: str | None = None, jobs: int | None = None) -> list[str]:
        """pg_dump of ``database``, uncompressed (so that unchanged rows chunk alike day over day):
        the custom format on standard output, or (``directory``) the directory format, in parallel."""
        argv = [self.program("pg_dump"), *self.argv(), "-Z0", "-d", conninfo(database)]
        if directory is None:
            return [*argv, "-Fc"]
        return [*argv, "-Fd", "-f", directory, *(["-j", str(jobs)] if jobs else [])]

    def restore_argv(
        self,
        selection: Selection,
        *,
        database: str | None = None,
        output: str | None = None,
        create: bool = False,
        single_transaction: bool = False,
        jobs: int | None = None,
        archive: str | None = None,
    ) -> list[str]:
        """pg_restore loading ``database`` (or, ``create``, creating it from the maintenance
        database), or writing SQL to ``output``; the archive from ``archive`` or standard input.
        It stops at the first error, so its exit status says whether all went in."""
        argv = [self.program("pg_restore"), *self.argv(), "--exit-on-error", *selection.argv()]
        if output is not None:
            argv += ["-f", output]
        elif create:
            argv += ["--create", "-d", conninfo(self.dbname)]
        else:
            argv += ["-d", conninfo(database or self.dbname)]
        if single_transaction:
            argv.append("--single-transaction")
        if jobs:
            argv += ["-j", str(jobs)]
        return [*argv, archive] if archive else argv

    def script_argv(self) -> list[str]:
        """psql running an SQL script from standard input in the maintenance database, going on
        after an error (the globals: a role that exists already is expected)."""
        return [self.program("psql"), *self.argv(), "-X", "-q", "-d", conninfo(self.dbname), "-f", "-"]

    # --- questions asked with psql ---------------------------------------------------------------

    def query(
        self, sql: str, columns: int, variables: Mapping[str, str] | None = None, *, database: str | None = None
    ) -> list[list[str]]:
        """Rows of ``columns`` values of ``sql``, read from standard input so that psql quotes
        its ``:'name'`` variables (names and values never need quoting here)."""
        argv = [self.program("psql"), *self.argv(), "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1"]
        argv += ["--field-separator-zero", "--record-separator-zero", "-d", conninfo(database or self.dbname)]
        for name, value in (variables or {}).items():
            argv += ["-v", f"{name}={value}"]
        try:
            done = subprocess.run(
                argv,
                input=sql.encode(),
                capture_output=True,
                timeout=QUERY_TIMEOUT,
                check=False,
                env=self.program_env(),
            )
        except subprocess.TimeoutExpired:
            raise SourceError(f"psql did not answer within {QUERY_TIMEOUT:.0f}s ({self.describe()})") from None
        if done.returncode != 0:
            raise SourceError(
                f"cannot query the PostgreSQL server at {self.describe()}: {last_line(done.stderr)}",
                hint="check the connection settings (host, port, user, service) and that the server is running",
            )
        values = [value.decode(errors="surrogateescape") for value in done.stdout.rstrip(b"\0\n").split(b"\0")]
        if values == [""]:
            return []
        return [values[i : i + columns] for i in range(0, len(values), columns)]

    def program_env(self) -> dict[str, str]:
        return {**self.env, "PGAPPNAME": APPLICATION_NAME}

    def version(self) -> tuple[str, int]:
        """The server's version, as it says it and as a number (150004)."""
        rows = self.query("SELECT current_setting('server_version'), current_setting('server_version_num')", 2)
        return rows[0][0], int(rows[0][1])

    def databases(self) -> dict[str, int]:
        """Every database that takes connections (not a template), and its size in bytes (0 for one
        this user may not connect to: its pg_dump will say so)."""
        rows = self.query(
            "SELECT datname, CASE WHEN has_database_privilege(oid, 'CONNECT') THEN pg_database_size(oid) ELSE 0 END "
            "FROM pg_database "
            "WHERE datallowconn AND NOT datistemplate ORDER BY datname",
            2,
        )
        return {name: int(size) for name, size in rows}

    def exists(self, database: str) -> bool:
        rows = self.query("SELECT count(*) FROM pg_database WHERE datname = :'name'", 1, {"name": database})
        return rows == [["1"]]

    def create_database(self, database: str) -> None:
        """An empty database (from template0, as pg_restore expects)."""
        self.query('CREATE DATABASE :"name" TEMPLATE template0', 1, {"name": database})

    def create_schema(self, database: str, schema: str) -> None:
        """The schema, if absent: ``pg_restore -n`` restores a schema's objects, not the schema itself."""
        self.query('CREATE SCHEMA IF NOT EXISTS :"name"', 1, {"name": schema}, database=database)


@dataclass(frozen=True)
class Selection:
    """What of an archive pg_restore restores, and how."""

    schemas: tuple[str, ...] = ()
    tables: tuple[str, ...] = ()
    clean: bool = False  # drop each object before creating it
    data_only: bool = False
    schema_only: bool = False

    def argv(self) -> list[str]:
        argv: list[str] = []
        for schema in self.schemas:
            argv += ["-n", schema]
        for table in self.tables:
            argv += ["-t", table]
        if self.schemas or self.tables:
            argv.append("--strict-names")  # a name that matches nothing is an error, not an empty restore
        if self.clean:
            argv += ["--clean", "--if-exists"]
        if self.data_only:
            argv.append("--data-only")
        if self.schema_only:
            argv.append("--schema-only")
        return argv


def check_argv(major: str | None) -> list[str]:
    """pg_restore reading a whole archive from standard input and writing its SQL nowhere:
    a cut or damaged archive fails."""
    return [find_program("pg_restore", major), "-f", "/dev/null"]


def last_line(stderr: bytes) -> str:
    for line in reversed(stderr.decode(errors="replace").splitlines()):
        if line.strip():
            return line.strip()[:300]
    return "no message"


def program_version(program: str, env: Mapping[str, str] | None = None) -> str:
    """What ``program --version`` says (``pg_dump (PostgreSQL) 15.14``)."""
    done = subprocess.run([program, "--version"], capture_output=True, timeout=60, check=False, env=env)
    return done.stdout.decode(errors="replace").strip() or last_line(done.stderr)


def server_major(version_num: int) -> str:
    return str(version_num // 10000) if version_num >= 100000 else f"{version_num // 10000}.{version_num // 100 % 100}"


__all__: Sequence[str] = (
    "Selection",
    "Server",
    "check_argv",
    "conninfo",
    "last_line",
    "program_version",
    "server_major",
)
