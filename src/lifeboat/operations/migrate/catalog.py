"""Tables and their columns as the database's catalog describes them: what an export
selects and a Parquet schema is built from, what an import checks a CSV header against."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lifeboat.errors import ObjectNotFound, PostgresError, UsageError

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql


@dataclass(frozen=True)
class Column:
    name: str
    type_name: str  # the base type's name (int4, numeric, timestamptz…)
    type_text: str  # as format_type shows it (numeric(10,2))
    precision: int | None = None  # numeric(p, s)
    scale: int | None = None


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    columns: tuple[Column, ...]

    @property
    def qualified(self) -> str:
        """``schema.name`` as a user writes it (and a package's file names use)."""
        return f"{self.schema}.{self.name}"

    @property
    def quoted(self) -> str:
        """``"schema"."name"``: an exact pattern for pg_dump and an identifier for SQL text."""
        return f"{quote_ident(self.schema)}.{quote_ident(self.name)}"

    def identifier(self) -> sql.Composable:
        from psycopg import sql

        return sql.Identifier(self.schema, self.name)

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def split_name(text: str) -> tuple[str | None, str]:
    """``[SCHEMA.]TABLE`` → (schema or None, table). A name holding a dot can be quoted: "a.b"."""
    text = text.strip()
    parts: list[str] = []
    current = ""
    quoted = False
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == '"':
            if quoted and i + 1 < len(text) and text[i + 1] == '"':
                current += '"'
                i += 1
            else:
                quoted = not quoted
        elif ch == "." and not quoted:
            parts.append(current)
            current = ""
        else:
            current += ch
        i += 1
    parts.append(current)
    if quoted or len(parts) > 2 or not all(parts):
        raise UsageError(f"table {text!r}: write it as TABLE or SCHEMA.TABLE")
    return (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])


_COLUMNS = """
SELECT a.attname, t.typname, format_type(a.atttypid, a.atttypmod), a.atttypmod
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""

_FIND = """
SELECT c.oid, n.nspname, c.relname, c.relkind
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname = %(name)s
  AND (n.nspname = %(schema)s OR (%(schema)s IS NULL AND pg_table_is_visible(c.oid)))
"""

_TABLE_KINDS = ("r", "p", "v", "m", "f")  # tables, partitioned tables, views, materialized views, foreign tables


def find_table(conn: psycopg.Connection[Any], text: str) -> Table:
    """The table (or view) ``[SCHEMA.]TABLE`` names; ObjectNotFound names what was looked for."""
    schema, name = split_name(text)
    rows = _rows(conn, _FIND, {"name": name, "schema": schema})
    rows = [r for r in rows if r[3] in _TABLE_KINDS]
    if not rows:
        raise ObjectNotFound(
            f"table {text} does not exist in database {conn.info.dbname}",
            hint="name it as SCHEMA.TABLE; '\\dt *.*' in psql lists them",
        )
    oid, found_schema, found_name, _kind = rows[0]
    return Table(found_schema, found_name, columns_of(conn, oid))


def columns_of(conn: psycopg.Connection[Any], oid: int) -> tuple[Column, ...]:
    columns = []
    for name, type_name, type_text, typmod in _rows(conn, _COLUMNS, (oid,)):
        precision = scale = None
        if type_name == "numeric" and typmod >= 4:
            precision, scale = ((typmod - 4) >> 16) & 0xFFFF, (typmod - 4) & 0xFFFF
        columns.append(Column(name, type_name, type_text, precision, scale))
    return tuple(columns)


def tables_of_schema(conn: psycopg.Connection[Any], schema: str) -> list[Table]:
    """Every ordinary and partitioned table of ``schema`` (not the partitions: their parent holds their rows)."""
    rows = _rows(
        conn,
        """
        SELECT c.oid, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND NOT c.relispartition
        ORDER BY c.relname
        """,
        (schema,),
    )
    if not rows and not _rows(conn, "SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)):
        raise ObjectNotFound(f"schema {schema} does not exist in database {conn.info.dbname}")
    return [Table(schema, name, columns_of(conn, oid)) for oid, name in rows]


def has_rows(conn: psycopg.Connection[Any], table: Table) -> bool:
    from psycopg import sql

    query = sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(table.identifier())
    with conn.cursor() as cur:
        cur.execute(query)
        found = cur.fetchone()
    return bool(found and found[0])


def _rows(conn: psycopg.Connection[Any], query: str, params: Any) -> list[tuple[Any, ...]]:
    import psycopg

    try:
        with conn.cursor() as cur:
            cur.execute(query, params)
            return list(cur.fetchall())
    except psycopg.Error as exc:
        raise PostgresError(f"reading the catalog failed: {str(exc).strip().splitlines()[0]}") from None
