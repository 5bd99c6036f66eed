"""One SQL session held open in a ``psql`` process: statements go in on its standard input,
rows come back in COPY's text format, each answer closed by a marker line; the statement
failed if psql's ERROR variable says so or an error line reached its standard error since the
last answer (a COPY that fails after its rows began leaves ERROR as it was).

The session is a process of its own so that the backup's process never loads a PostgreSQL
driver (psycopg brings its own libpq, TLS and Kerberos libraries: 23 MiB resident). It ends
when psql reads the end of its input, so when Lifeboat dies, however it dies, the server
sees the connection drop. Settings left unset fall back to libpq's PG* variables; a
password comes from PGPASSWORD or a password file, never from an argument, and psql never
prompts for one.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import tempfile
from collections.abc import Sequence
from typing import IO

from lifeboat.core.tokens import token_hex
from lifeboat.errors import PostgresError
from lifeboat.sources.tools.pg import find_program

Value = str | None  # one field as PostgreSQL prints it (text), None for NULL
Param = str | int | bool | None | Sequence[str]

_PLACEHOLDER = re.compile(r"%s|%%")
# An error psql reports on its standard error (VERBOSITY=terse: one line; a "psql:<stdin>:N: "
# prefix when it names the input line).
_ERROR_LINE = re.compile(r"^(?:psql:\S*: )?(?:ERROR|FATAL|PANIC):\s+(.*)$", re.MULTILINE)
_COPY_ESCAPE = re.compile(r"\\(.)")
_COPY_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_ENCODING = "utf-8"
_ERRORS = "surrogateescape"  # a path that is not UTF-8 comes back as the bytes it is


def literal(value: Param) -> str:
    """``value`` as an SQL literal (an escape string, whatever standard_conforming_strings says)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        if "\0" in value:
            raise ValueError("an SQL string cannot hold a NUL character")
        escaped = value.replace("\\", "\\\\").replace("'", "''").replace("\n", "\\n").replace("\r", "\\r")
        return f"E'{escaped}'"
    return "ARRAY[" + ", ".join(literal(str(item)) for item in value) + "]::text[]"


def identifier(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    if "\0" in name:
        raise ValueError("an SQL identifier cannot hold a NUL character")
    return '"' + name.replace('"', '""') + '"'


def bind(sql: str, params: Sequence[Param] = ()) -> str:
    """``sql`` with each ``%s`` replaced by the next parameter's literal and ``%%`` by ``%``."""
    given = iter(params)

    def replace(match: re.Match[str]) -> str:
        if match[0] == "%%":
            return "%"
        try:
            return literal(next(given))
        except StopIteration:
            raise ValueError(f"too few parameters for {sql!r}") from None

    bound = _PLACEHOLDER.sub(replace, sql)
    if next(given, _PLACEHOLDER) is not _PLACEHOLDER:
        raise ValueError(f"too many parameters for {sql!r}")
    return bound


def copy_fields(line: str) -> tuple[Value, ...]:
    """One line of ``COPY ... TO STDOUT`` (text format) → its fields."""
    return tuple(_copy_field(field) for field in line.split("\t"))


def _copy_field(text: str) -> Value:
    if text == "\\N":
        return None
    if "\\" not in text:
        return text
    return _COPY_ESCAPE.sub(lambda m: _COPY_ESCAPES.get(m[1], m[1]), text)


class PsqlSession:
    """A connection held by one psql process; statements run one at a time, in autocommit."""

    def __init__(
        self,
        *,
        host: str | None = None,
        port: int | None = None,
        user: str | None = None,
        dbname: str | None = None,
        application_name: str = "lifeboat",
        timeout: int = 30,
        major: str | None = None,
    ) -> None:
        env = dict(os.environ, PGAPPNAME=application_name, PGCONNECT_TIMEOUT=str(timeout), PGCLIENTENCODING="UTF8")
        for name, value in (("PGHOST", host), ("PGPORT", port), ("PGUSER", user), ("PGDATABASE", dbname)):
            if value:  # named in the environment, not on the command line: a name is never read as a conninfo
                env[name] = str(value)
        self._where = f"{host or env.get('PGHOST') or 'default host'}:{port or env.get('PGPORT') or 'default port'}"
        self._marker = f"--lifeboat-{token_hex(8)}"
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self._stderr_read = 0  # how much of psql's standard error the answers have looked at
        argv = [find_program("psql", major), "-X", "-q", "-w", "-v", "VERBOSITY=terse"]
        try:
            self._process = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                env=env,
                start_new_session=True,  # a Ctrl-C reaches Lifeboat, which ends the session itself
            )
        except OSError as exc:
            self._stderr.close()
            raise PostgresError(f"cannot run psql: {exc.strerror or exc}") from None
        try:
            self._send(f"\\echo {self._marker} :SERVER_VERSION_NUM\n")
            while (line := self._line()) is not None and not line.startswith(self._marker):
                pass  # nothing else is printed with -q -X; a banner would be read past
        except PostgresError:  # psql has gone already: it could not connect
            line = None
        if line is None:
            words = self._last_words()
            self.close()
            raise PostgresError(f"cannot connect to PostgreSQL at {self._where}: {words}")
        try:
            self.server_version = int(line.split()[1])
        except (IndexError, ValueError):
            self.close()
            raise PostgresError(f"psql at {self._where} did not say the server's version: {line!r}") from None

    def rows(self, sql: str, params: Sequence[Param] = ()) -> list[tuple[Value, ...]]:
        """The rows a query returns, each field as text (None for NULL)."""
        answer = self._run(f"COPY ({bind(sql, params)}) TO STDOUT;", _verb(sql))
        return [copy_fields(line) for line in answer]

    def execute(self, sql: str, params: Sequence[Param] = (), *, what: str | None = None) -> None:
        """Run a statement that returns no rows; ``what`` names it in an error (its first words)."""
        self._run(bind(sql, params) + ";", what or _verb(sql))

    def close(self) -> None:
        """End the session: psql reads the end of its input, disconnects and exits."""
        process = self._process if hasattr(self, "_process") else None
        if process is not None:
            with contextlib.suppress(OSError):
                if process.stdin is not None:
                    process.stdin.close()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()
        self._stderr.close()

    # --- the conversation --------------------------------------------------------------------
    def _run(self, text: str, what: str) -> list[str]:
        self._send(f"{text}\n\\echo {self._marker} :ERROR\n\\echo :LAST_ERROR_MESSAGE\n\\echo {self._marker}\n")
        answer: list[str] = []
        while (line := self._line()) is not None and not line.startswith(self._marker):
            answer.append(line)
        if line is None:
            raise PostgresError(f"PostgreSQL session ended during {what!r}: {self._last_words()}")
        failed = line.split()[1:] == ["true"]
        message: list[str] = []
        while (line := self._line()) is not None and line != self._marker:
            message.append(line)
        if line is None:
            raise PostgresError(f"PostgreSQL session ended during {what!r}: {self._last_words()}")
        # psql leaves ERROR as it was when a COPY fails once its rows have begun (a function the
        # role may not call, a setting it may not read): its standard error still says so.
        errors = self._new_errors()
        if failed or errors:
            reason = errors[-1] if errors else next((m.strip() for m in message if m.strip()), "an error")
            raise PostgresError(f"PostgreSQL refused {what!r}: {reason}")
        return answer

    def _new_errors(self) -> list[str]:
        """The errors psql wrote to its standard error since the last look (read in place: psql
        shares the file's offset)."""
        fd = self._stderr.fileno()
        end = os.fstat(fd).st_size
        text = os.pread(fd, end - self._stderr_read, self._stderr_read).decode(_ENCODING, "replace")
        self._stderr_read = end
        return [found[1].strip() for found in _ERROR_LINE.finditer(text)]

    def _send(self, text: str) -> None:
        stdin = self._process.stdin
        assert stdin is not None
        try:
            stdin.write(text.encode(_ENCODING, _ERRORS))
            stdin.flush()
        except (BrokenPipeError, ValueError):  # psql has gone: its last words say why
            raise PostgresError(f"PostgreSQL session at {self._where} has ended: {self._last_words()}") from None

    def _line(self) -> str | None:
        stdout = self._process.stdout
        assert stdout is not None
        raw = stdout.readline()
        if not raw:
            return None
        return raw.decode(_ENCODING, _ERRORS).removesuffix("\n")

    def _last_words(self) -> str:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout=10)
        fd = self._stderr.fileno()
        text = os.pread(fd, os.fstat(fd).st_size, 0).decode(_ENCODING, "replace")
        lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith((" ", "\t"))]
        last = lines[-1] if lines else f"psql exited with status {self._process.returncode}"
        return last.removeprefix("psql: error: ")


def _verb(sql: str) -> str:
    return sql.split("(", 1)[0].strip()
