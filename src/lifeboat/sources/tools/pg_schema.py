"""``pg_dump --schema-only``: the DDL of a schema or of some tables, as text (``migrate``).

The password never reaches argv: libpq takes it from the environment given (PGPASSWORD,
PGPASSFILE, a service file). A failing pg_dump is a :class:`SourceError` with its last words.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence

from lifeboat.errors import PostgresError
from lifeboat.sources.tools.pg import Connection, _tail, find_program


def dump_schema(
    connection: Connection,
    *,
    schema: str | None = None,
    tables: Sequence[str] = (),
    snapshot: str | None = None,
    environment: Mapping[str, str] | None = None,
    major: str | None = None,
    timeout: float = 600,
) -> str:
    """The schema-only dump of ``schema`` (``-n``) or of ``tables`` (``-t``, qualified names),
    taken in the exported ``snapshot`` if given (the same view as the data)."""
    argv = [find_program("pg_dump", major), *connection.argv(), "--schema-only", "--no-owner", "--no-privileges"]
    if connection.dbname:
        argv += ["--dbname", connection.dbname]
    if schema:
        argv += ["--schema", _pattern(schema)]
    for table in tables:
        argv += ["--table", table]
    if snapshot:
        argv += [f"--snapshot={snapshot}"]
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
            env=dict(environment or {}),
        )
    except subprocess.TimeoutExpired:
        raise PostgresError(f"pg_dump --schema-only did not finish within {timeout:.0f}s") from None
    if done.returncode != 0:
        raise PostgresError(f"pg_dump --schema-only failed (exit status {done.returncode}): {_tail(done.stderr)}")
    return done.stdout.decode("utf-8", errors="replace")


def _pattern(name: str) -> str:
    """A schema name as a pg_dump pattern that matches only itself (quoted: no wildcards, case kept)."""
    return '"' + name.replace('"', '""') + '"'
