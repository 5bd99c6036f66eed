"""Export tables out of a database: one table to a CSV or Parquet file (or a stream), or every
table of a schema to a directory with its ``schema.sql``.

All the tables of one export are read in one read-only, repeatable-read transaction, and the
schema is dumped by ``pg_dump`` in the same snapshot: the files agree with each other.
CSV is PostgreSQL's own ``COPY ... TO STDOUT WITH (FORMAT csv, HEADER)``; Parquet is
:mod:`.parquet`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from lifeboat.errors import PostgresError, UsageError, option
from lifeboat.operations.migrate.catalog import Column, Table, find_table, tables_of_schema
from lifeboat.operations.migrate.endpoint import Endpoint, first_line
from lifeboat.operations.migrate.files import (
    CountingWriter,
    check_empty_directory,
    check_new_file,
    new_file,
    safe_file_name,
)
from lifeboat.operations.migrate.origin import Origin

if TYPE_CHECKING:
    import psycopg

FORMATS = ("csv", "parquet")
SCHEMA_FILE = "schema.sql"


@dataclass(frozen=True)
class TableFile:
    """One table written to one file (or a stream)."""

    table: str  # schema.name
    schema: str
    name: str
    file: str  # a path, or "-" for a stream
    format: str
    columns: tuple[str, ...]
    rows: int
    bytes: int
    sha256: str

    def to_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "schema": self.schema,
            "name": self.name,
            "file": self.file,
            "format": self.format,
            "columns": list(self.columns),
            "rows": self.rows,
            "bytes": self.bytes,
            "sha256": self.sha256,
        }


@dataclass
class ExportResult:
    origin: dict[str, Any]  # where the rows came from (a live database, a backup at a time)
    tables: list[TableFile] = field(default_factory=list)
    schema_file: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "tables": [t.to_json() for t in self.tables],
            "schema_file": self.schema_file,
            "rows": sum(t.rows for t in self.tables),
        }


def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise UsageError(f"{option('format')} {fmt!r}: use csv or parquet")
    if fmt == "parquet":
        from lifeboat.operations.migrate.parquet import require_pyarrow

        require_pyarrow()


@contextmanager
def reading(endpoint: Endpoint) -> Iterator[psycopg.Connection[Any]]:
    """A read-only, repeatable-read transaction: every table read sees the same snapshot."""
    import psycopg

    conn = endpoint.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SET TIME ZONE 'UTC'")  # timestamps with time zone written as UTC, whatever the server's
        conn.commit()
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        yield conn
        conn.rollback()
    finally:
        conn.close()


def export_snapshot(conn: psycopg.Connection[Any]) -> str | None:
    """The transaction's snapshot, exported for pg_dump (None if the server cannot: a standby)."""
    import psycopg

    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_export_snapshot()")
            found = cur.fetchone()
    except psycopg.Error:
        conn.rollback()
        return None
    return str(found[0]) if found else None


def pick_columns(table: Table, wanted: Sequence[str] | None) -> tuple[Column, ...]:
    """The columns to export, in the order asked (all, in table order, by default)."""
    if not wanted:
        return table.columns
    chosen = []
    for name in wanted:
        column = table.column(name)
        if column is None:
            raise UsageError(
                f"table {table.qualified} has no column {name!r}",
                hint="its columns: " + ", ".join(c.name for c in table.columns),
            )
        chosen.append(column)
    return tuple(chosen)


def write_table(
    conn: psycopg.Connection[Any],
    table: Table,
    columns: Sequence[Column],
    fmt: str,
    out: BinaryIO,
    label: str,
    *,
    check: Callable[[], None] | None = None,
) -> TableFile:
    """Write ``table``'s rows to ``out`` in ``fmt``; returns what was written."""
    import psycopg
    from psycopg import sql

    writer = CountingWriter(out)
    try:
        if fmt == "parquet":
            from lifeboat.operations.migrate.parquet import write_parquet

            rows = write_parquet(conn, table, columns, writer, check=check)
        else:
            query = sql.SQL("COPY (SELECT {} FROM {}) TO STDOUT WITH (FORMAT csv, HEADER)").format(
                sql.SQL(", ").join(sql.Identifier(c.name) for c in columns), table.identifier()
            )
            with conn.cursor() as cur:
                with cur.copy(query) as copy:
                    for data in copy:
                        if check is not None:
                            check()
                        writer.write(data)
                rows = max(cur.rowcount, 0)
    except psycopg.Error as exc:
        raise PostgresError(f"reading table {table.qualified} failed: {first_line(exc)}") from None
    writer.flush()
    return TableFile(
        table.qualified,
        table.schema,
        table.name,
        label,
        fmt,
        tuple(c.name for c in columns),
        rows,
        writer.size,
        writer.sha256,
    )


@dataclass(frozen=True)
class TableExportRequest:
    table: str  # [schema.]table
    output: str  # a file, or "-" with ``stream``
    format: str = "csv"
    columns: tuple[str, ...] = ()
    dbname: str | None = None
    force: bool = False


def export_table(
    origin: Origin,
    request: TableExportRequest,
    *,
    stream: BinaryIO | None = None,
    check: Callable[[], None] | None = None,
) -> ExportResult:
    """Export one table from ``origin`` into ``request.output`` (or into ``stream``)."""
    check_format(request.format)
    if stream is None:
        check_new_file(request.output, force=request.force)
    with origin.open(request.dbname) as endpoint, reading(endpoint) as conn:
        table = find_table(conn, request.table)
        columns = pick_columns(table, request.columns)
        if stream is not None:
            written = write_table(conn, table, columns, request.format, stream, "-", check=check)
        else:
            with new_file(request.output) as out:
                written = write_table(conn, table, columns, request.format, out, request.output, check=check)
        return ExportResult(origin.describe(), [written])


@dataclass(frozen=True)
class SchemaExportRequest:
    schema: str
    directory: str
    format: str = "csv"
    dbname: str | None = None
    force: bool = False


def export_schema(
    origin: Origin, request: SchemaExportRequest, *, check: Callable[[], None] | None = None
) -> ExportResult:
    """Every table of ``request.schema``, one file each, and ``schema.sql`` (pg_dump --schema-only -n)."""
    from lifeboat.sources.tools.pg_schema import dump_schema

    check_format(request.format)
    check_empty_directory(request.directory, force=request.force)
    directory = Path(request.directory)
    with origin.open(request.dbname) as endpoint, reading(endpoint) as conn:
        tables = tables_of_schema(conn, request.schema)
        snapshot = export_snapshot(conn)
        directory.mkdir(parents=True, exist_ok=True)
        ddl = dump_schema(
            endpoint.connection,
            schema=request.schema,
            snapshot=snapshot,
            environment=endpoint.environment,
            major=endpoint.major,
        )
        schema_path = directory / SCHEMA_FILE
        with new_file(schema_path) as out:
            out.write(ddl.encode("utf-8"))
        result = ExportResult(origin.describe(), schema_file=str(schema_path))
        for table in tables:
            path = directory / f"{safe_file_name(table.qualified)}.{request.format}"
            with new_file(path) as out:
                result.tables.append(
                    write_table(conn, table, table.columns, request.format, out, str(path), check=check)
                )
        return result


def file_name(table: Table, fmt: str) -> str:
    return f"{safe_file_name(table.qualified)}.{fmt}"
