"""MariaDB's (and MySQL's) programs: mariadb-dump, the mariadb client, mariabackup, mbstream.

Every client program gets the connection — and the password — from a private options file
(``--defaults-extra-file``, which must be the first option), written 0600 into a 0700
temporary directory and removed as soon as the program has ended: the password is never
on a command line, where ``ps`` and ``/proc/PID/cmdline`` would show it, and never in the
environment (``MYSQL_PWD`` is deprecated). ``mariabackup --prepare`` works on files only
and reads no option file at all (``--no-defaults``), so a host's ``/etc/mysql`` cannot
change it.

Programs are found on the ``PATH`` of the environment the front end passed in, under
their MariaDB names first and their MySQL names next (``mysqldump``, ``mysql``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from lifeboat.errors import MissingTool, SourceError
from lifeboat.sources.tools.program import Producer, StderrSink

# name → the names it goes by, the MariaDB one first
PROGRAMS: dict[str, tuple[str, ...]] = {
    "dump": ("mariadb-dump", "mysqldump"),
    "client": ("mariadb", "mysql"),
    "backup": ("mariabackup", "mariadb-backup"),
    "stream": ("mbstream",),
}
INSTALL_HINT = "install MariaDB's client programs (Debian: mariadb-client; for method physical also mariadb-backup)"
SYSTEM_DATABASES = frozenset({"information_schema", "performance_schema", "mysql", "sys"})


def find_program(role: str, environment: Mapping[str, str] | None) -> str:
    """The program for ``role`` on the environment's PATH (its MariaDB name, else its MySQL one)."""
    path = (environment or {}).get("PATH") or os.defpath
    for name in PROGRAMS[role]:
        found = shutil.which(name, path=path)
        if found:
            return found
    raise MissingTool(f"{PROGRAMS[role][0]} was not found on PATH", hint=INSTALL_HINT)


@dataclass(frozen=True)
class Connection:
    """How to reach a server. Unset values are the client programs' defaults (and the
    ``[client]`` groups of the host's option files)."""

    host: str | None = None
    port: int | None = None
    socket: str | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)

    def describe(self) -> str:
        """Where the server is, in words (never the password)."""
        if self.socket:
            where = f"socket {self.socket}"
        elif self.host or self.port:
            where = f"{self.host or 'localhost'}:{self.port or 3306}"
        else:
            where = "the default server"
        return f"{self.user}@{where}" if self.user else where

    def options(self) -> str:
        """The ``[client]`` option group naming this connection (the password among them)."""
        lines = ["[client]"]
        if self.host:
            lines.append(f"host={_value(self.host)}")
            if not self.socket:
                lines.append("protocol=TCP")  # 'localhost' would otherwise mean the default socket
        if self.port:
            lines.append(f"port={self.port}")
        if self.socket:
            lines.append(f"socket={_value(self.socket)}")
        if self.user:
            lines.append(f"user={_value(self.user)}")
        if self.password is not None:
            lines.append(f"password={_value(self.password)}")
        text = "\n".join(lines) + "\n"
        # mariabackup reads its own groups, not [client]'s connection settings on every version
        return text + text.replace("[client]", "[mariabackup]", 1)


def _value(text: str) -> str:
    """An option file value, quoted so that '#', quotes, spaces and backslashes survive."""
    if "\n" in text or "\0" in text:
        raise SourceError("a connection setting holds a line break", hint="check the MariaDB source's settings")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@contextlib.contextmanager
def options_file(connection: Connection) -> Iterator[str]:
    """A 0600 option file naming ``connection`` in a private directory, removed afterwards."""
    directory = tempfile.mkdtemp(prefix="lifeboat-mariadb-")  # 0700
    path = os.path.join(directory, "client.cnf")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(connection.options())
        yield path
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def client_argv(program: str, options: str, *args: str) -> list[str]:
    """The mariadb client, batch mode, its connection from ``options``."""
    return [program, f"--defaults-extra-file={options}", "--batch", "--skip-column-names", *args]


def query_argv(program: str, options: str, sql: str) -> list[str]:
    return client_argv(program, options, "--raw", "-e", sql)


def load_argv(program: str, options: str, database: str) -> list[str]:
    """The mariadb client reading a dump on its standard input into ``database``."""
    return [program, f"--defaults-extra-file={options}", "--batch", f"--database={database}"]


def dump_argv(program: str, options: str, database: str, *, binlog: bool) -> list[str]:
    """mariadb-dump of one database, consistent (one transaction), with its routines,
    triggers and events; with ``binlog``, the binary log position as a comment."""
    argv = [
        program,
        f"--defaults-extra-file={options}",
        "--single-transaction",
        "--routines",
        "--triggers",
        "--events",
        "--hex-blob",
    ]
    if binlog:
        argv.append("--master-data=2")
    return [*argv, "--", database]


def backup_argv(program: str, options: str) -> list[str]:
    """mariabackup streaming a full physical backup (xbstream) to its standard output."""
    return [program, f"--defaults-extra-file={options}", "--backup", "--stream=xbstream"]


def extract_argv(program: str, directory: str) -> list[str]:
    """mbstream extracting an xbstream read on its standard input below ``directory``."""
    return [program, "-x", "-C", directory]


def prepare_argv(program: str, directory: str) -> list[str]:
    """mariabackup applying the redo log to a backup extracted into ``directory``."""
    return [program, "--no-defaults", "--prepare", f"--target-dir={directory}"]


def run_query(
    program: str,
    connection: Connection,
    sql: str,
    *,
    environment: Mapping[str, str] | None,
    on_stderr: StderrSink | None = None,
) -> list[list[str]]:
    """The rows ``sql`` returns (tab-separated columns, raw); SourceError if the client fails."""
    with (
        options_file(connection) as options,
        Producer(query_argv(program, options, sql), env=environment, on_stderr=on_stderr) as running,
    ):
        output = running.stdout.read()
        running.finish()
    return [line.split("\t") for line in output.decode(errors="replace").splitlines()]


def run_to_end(argv: list[str], *, environment: Mapping[str, str] | None, on_stderr: StderrSink | None = None) -> bytes:
    """Run a program with no input; its standard output, or SourceError unless it exited 0."""
    with Producer(argv, env=environment, on_stderr=on_stderr) as running:
        output = running.stdout.read()
        running.finish()
    return output


def replay_hint(position: Mapping[str, Any], database: str | None = None) -> str:
    """How to replay the binary log from where a backup stands (docs/sources.md)."""
    only = f" --database={database}" if database else ""
    return (
        f"to replay later changes: mariadb-binlog --start-position={position.get('position')}{only} "
        f"{position.get('file')} [LATER BINLOG FILES…] | mariadb (see docs/sources.md, point-in-time recovery)"
    )


def quote_identifier(name: str) -> str:
    """``name`` as a quoted identifier (a backtick doubled), as mariadb-dump writes it."""
    return "`" + name.replace("`", "``") + "`"


def quote_string(text: str) -> str:
    """``text`` as a SQL string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"
