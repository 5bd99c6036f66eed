"""Load CSV files into tables: one CSV into one table, or a migration package's tables.

``COPY table (columns from the header) FROM STDIN WITH (FORMAT csv, HEADER)``, all in one
transaction (a package: all its tables in one), so a failure leaves nothing half-imported.
The header names the columns (a name the table lacks is refused before anything is sent);
a table that already has rows is refused unless the rows are appended or the table is
emptied first. A value PostgreSQL rejects is reported with its file, line, column and value
(from the error's COPY context).
"""

from __future__ import annotations

import csv
import re
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lifeboat.errors import PostgresError, RestoreRefused, UsageError, option
from lifeboat.operations.migrate.catalog import Table, find_table, has_rows, quote_ident
from lifeboat.operations.migrate.endpoint import Endpoint, first_line

if TYPE_CHECKING:
    import psycopg

BLOCK = 1 << 20


@dataclass(frozen=True)
class LoadMode:
    append: bool = False  # add to rows already there
    truncate: bool = False  # empty the table first (in the same transaction)

    def check(self) -> None:
        if self.append and self.truncate:
            raise UsageError(f"give {option('append')} or {option('truncate')}, not both")


@dataclass(frozen=True)
class LoadedTable:
    table: str
    file: str
    columns: tuple[str, ...]
    rows: int
    truncated: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "file": self.file,
            "columns": list(self.columns),
            "rows": self.rows,
            "truncated": self.truncated,
        }


@dataclass
class ImportResult:
    database: str
    tables: list[LoadedTable] = field(default_factory=list)
    created: bool = False  # the package's schema was created first
    package: dict[str, Any] | None = None  # the package's origin and time

    def to_json(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "tables": [t.to_json() for t in self.tables],
            "rows": sum(t.rows for t in self.tables),
            "created": self.created,
            "package": self.package,
        }


# --- one CSV file -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CsvImportRequest:
    file: str
    table: str
    mode: LoadMode = field(default_factory=LoadMode)


def _input_file(name: str) -> Path:
    """``name`` as a path that names a regular file, or the one-line reason it does not (a name
    too long for the file system is such a reason, not an internal error)."""
    path = Path(name)
    try:
        regular = stat.S_ISREG(path.stat().st_mode)
    except FileNotFoundError:
        raise UsageError(f"{name} does not exist") from None
    except OSError as exc:
        raise UsageError(f"{name}: {exc.strerror or exc}") from None
    if not regular:
        raise UsageError(f"{name} is not a file")
    return path


def import_csv(
    endpoint: Endpoint, request: CsvImportRequest, *, check: Callable[[], None] | None = None
) -> ImportResult:
    """Load ``request.file`` into ``request.table`` in one transaction."""
    request.mode.check()
    path = _input_file(request.file)
    import psycopg

    conn = endpoint.connect()
    try:
        table = find_table(conn, request.table)
        loaded = load_table(conn, table, path, request.file, request.mode, check=check)
        conn.commit()
        return ImportResult(conn.info.dbname, [loaded])
    except psycopg.Error as exc:  # TRUNCATE refused, a constraint checked at commit…
        raise PostgresError(f"importing {request.file} failed: {first_line(exc)}; nothing was imported") from None
    finally:
        conn.close()  # uncommitted work is rolled back


# --- a package ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PackageImportRequest:
    file: str
    mode: LoadMode = field(default_factory=LoadMode)
    create: bool = False  # run the package's schema.sql first (the tables must not exist)


def import_package(
    endpoint: Endpoint, request: PackageImportRequest, *, check: Callable[[], None] | None = None
) -> ImportResult:
    """Check the package against its manifest, then load every table of it in one transaction."""
    import psycopg

    from lifeboat.operations.migrate.package import open_package

    request.mode.check()
    _input_file(request.file)
    with open_package(request.file) as package:
        conn = endpoint.connect()
        try:
            if request.create:
                _create_schema(conn, package.schema, request.file, package.manifest)
            tables = [find_table(conn, manifest_name(entry)) for entry in package.manifest["tables"]]
            result = ImportResult(
                conn.info.dbname,
                created=request.create,
                package={k: package.manifest.get(k) for k in ("origin", "created", "database", "lifeboat_version")},
            )
            for table, entry in zip(tables, package.manifest["tables"], strict=True):
                label = f"{request.file}:{entry['file']}"
                loaded = load_table(conn, table, package.data_file(entry), label, request.mode, check=check)
                if loaded.rows != int(entry["rows"]):
                    raise PostgresError(
                        f"{label}: {loaded.rows} rows were loaded into {table.qualified}, the manifest says "
                        f"{entry['rows']}; nothing was imported (rolled back)"
                    )
                result.tables.append(loaded)
            if request.create:
                _advance_sequences(conn, tables)
            conn.commit()
            return result
        except psycopg.Error as exc:  # TRUNCATE refused, a constraint checked at commit…
            raise PostgresError(f"importing {request.file} failed: {first_line(exc)}; nothing was imported") from None
        finally:
            conn.close()


def _create_schema(conn: psycopg.Connection[Any], schema: str, package: str, manifest: dict[str, Any]) -> None:
    """Run the package's ``pg_dump --schema-only`` text (without psql's meta-commands) in the
    transaction, after creating the schemas its tables live in (``pg_dump -t`` leaves them out)."""
    import psycopg
    from psycopg import sql

    from lifeboat.operations.migrate.catalog import split_name

    statements = "\n".join(line for line in schema.splitlines() if not line.startswith("\\"))
    namespaces = sorted({split_name(manifest_name(t))[0] or "public" for t in manifest["tables"]})
    try:
        with conn.cursor() as cur:
            for namespace in namespaces:
                cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(namespace)))
            cur.execute(statements.encode("utf-8"))
            cur.execute("RESET search_path")  # pg_dump's text empties it
    except psycopg.Error as exc:
        raise PostgresError(
            f"{package}: creating the tables from its schema.sql failed: {first_line(exc)}; nothing was imported",
            hint=f"{option('create')} creates the package's tables, which must not exist yet; "
            "without it they must exist already",
        ) from None


def manifest_name(entry: dict[str, Any]) -> str:
    """A manifest's table as a name :func:`find_table` reads (quoted: a dot in a name stays in it)."""
    if entry.get("schema") and entry.get("name"):
        return f"{quote_ident(str(entry['schema']))}.{quote_ident(str(entry['name']))}"
    return str(entry["table"])


def _advance_sequences(conn: psycopg.Connection[Any], tables: Sequence[Table]) -> None:
    """Sequences the created tables own continue after the loaded rows (pg_dump's schema has no setval)."""
    from psycopg import sql

    with conn.cursor() as cur:
        for table in tables:
            for column in table.columns:
                cur.execute("SELECT pg_get_serial_sequence(%s, %s)", (table.quoted, column.name))
                found = cur.fetchone()
                if not found or not found[0]:
                    continue
                cur.execute(
                    sql.SQL("SELECT setval(%s, max({c})) FROM {t} HAVING max({c}) IS NOT NULL").format(
                        c=sql.Identifier(column.name), t=table.identifier()
                    ),
                    (found[0],),
                )


# --- loading one file -------------------------------------------------------------------------


def header_columns(path: Path, label: str, table: Table) -> tuple[str, ...]:
    """The CSV header's column names, each one a column of ``table``."""
    with open(path, encoding="utf-8", errors="replace", newline="") as text:
        header = next(csv.reader(text), None)
    if not header or not any(name.strip() for name in header):
        raise UsageError(f"{label}: the first line must be a header naming the columns")
    unknown = [name for name in header if table.column(name) is None]
    if unknown:
        raise UsageError(
            f"{label}: column {unknown[0]!r} of the header is not a column of table {table.qualified}",
            hint="its columns: " + ", ".join(c.name for c in table.columns),
        )
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise UsageError(f"{label}: the header names column {name!r} twice")
        seen.add(name)
    return tuple(header)


def load_table(
    conn: psycopg.Connection[Any],
    table: Table,
    path: Path,
    label: str,
    mode: LoadMode,
    *,
    check: Callable[[], None] | None = None,
) -> LoadedTable:
    """COPY ``path`` into ``table`` inside ``conn``'s transaction (not committed here)."""
    import psycopg
    from psycopg import sql

    columns = header_columns(path, label, table)
    if mode.truncate:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("TRUNCATE {}").format(table.identifier()))
    elif not mode.append and has_rows(conn, table):
        raise RestoreRefused(
            f"table {table.qualified} already has rows; nothing was imported",
            hint=f"{option('append')} adds the rows to them, {option('truncate')} empties the table first",
        )
    query = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv, HEADER)").format(
        table.identifier(), sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    )
    try:
        with conn.cursor() as cur:
            with cur.copy(query) as copy, open(path, "rb") as data:
                while block := data.read(BLOCK):
                    if check is not None:
                        check()
                    copy.write(block)
            rows = max(cur.rowcount, 0)
    except psycopg.Error as exc:
        raise copy_failure(exc, label, table) from None
    return LoadedTable(table.qualified, label, columns, rows, mode.truncate)


_CONTEXT = re.compile(r"COPY [^,]+, line (?P<line>\d+)(?:, column (?P<column>[^:]+): (?P<value>.*))?")


def copy_failure(exc: Exception, label: str, table: Table) -> PostgresError:
    """PostgreSQL's COPY error as one line naming the file, line, column and value."""
    diag = getattr(exc, "diag", None)
    primary = (getattr(diag, "message_primary", None) or first_line(exc)).strip()
    context = getattr(diag, "context", None) or ""
    found = _CONTEXT.search(context)
    where = label
    if found:
        where += f", line {found['line']}"
        if found["column"]:
            where += f", column {found['column']}"
        if found["value"]:
            where += f", value {found['value'].strip()}"
    return PostgresError(
        f"{where}: {primary}; nothing was imported into {table.qualified} (rolled back)",
        hint="fix the file and import it again (line 1 is the header)",
    )
