"""A table's rows as Parquet, written in batches so memory stays bounded whatever its size.

PostgreSQL types map to Arrow's where the meaning is the same (integers, floats, booleans,
dates, timestamps in microseconds — with time zone as UTC —, numeric(p,s) with p ≤ 38 as
decimal128, bytea as binary); numeric without a precision, json, uuid, intervals, arrays and
everything else are exported as their text form (a string), which loses nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from lifeboat.errors import LifeboatError, MissingTool, option
from lifeboat.operations.migrate.catalog import Column, Table
from lifeboat.operations.migrate.files import CountingWriter

if TYPE_CHECKING:
    import psycopg
    import pyarrow as pa
    from psycopg import sql

BATCH_ROWS = 10_000


def require_pyarrow() -> None:
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise MissingTool(
            "Parquet export needs the pyarrow package, which is not installed",
            hint="pip install 'lifeboat[parquet]' (or pip install pyarrow), or export as CSV",
        ) from None


def arrow_type(column: Column) -> pa.DataType:
    """The Arrow type a column is exported as (a string: its text form)."""
    import pyarrow as pa

    simple: dict[str, Callable[[], pa.DataType]] = {
        "int2": pa.int16,
        "int4": pa.int32,
        "int8": pa.int64,
        "oid": pa.int64,
        "float4": pa.float32,
        "float8": pa.float64,
        "bool": pa.bool_,
        "date": pa.date32,
        "bytea": pa.binary,
        "text": pa.string,
        "varchar": pa.string,
        "bpchar": pa.string,
        "name": pa.string,
    }
    if column.type_name in simple:
        return simple[column.type_name]()
    if column.type_name == "timestamp":
        return pa.timestamp("us")
    if column.type_name == "timestamptz":
        return pa.timestamp("us", tz="UTC")
    if column.type_name == "numeric" and column.precision and 0 < column.precision <= 38:
        return pa.decimal128(column.precision, column.scale or 0)
    return pa.string()


def select_expression(column: Column) -> sql.Composable:
    """How a column is selected: as itself, or as text when it is exported as a string."""
    import pyarrow as pa
    from psycopg import sql

    ident = sql.Identifier(column.name)
    if arrow_type(column) == pa.string() and column.type_name not in ("text", "varchar", "bpchar", "name"):
        return sql.SQL("{}::text").format(ident)
    return ident


def write_parquet(
    conn: psycopg.Connection[Any],
    table: Table,
    columns: Sequence[Column],
    out: CountingWriter,
    *,
    batch_rows: int = BATCH_ROWS,
    check: Callable[[], None] | None = None,
) -> int:
    """Write the rows of ``columns`` of ``table`` to ``out`` as Parquet; returns the row count.

    Runs a server-side cursor in ``conn``'s transaction (the connection must not be in
    autocommit), fetching ``batch_rows`` at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from psycopg import sql

    schema = pa.schema([pa.field(c.name, arrow_type(c)) for c in columns])
    query = sql.SQL("SELECT {} FROM {}").format(
        sql.SQL(", ").join(select_expression(c) for c in columns), table.identifier()
    )
    rows = 0
    writer = pq.ParquetWriter(out, schema, compression="zstd")
    try:
        with conn.cursor(name="lifeboat_migrate_export") as cur:
            cur.itersize = batch_rows
            cur.execute(query)
            while batch := cur.fetchmany(batch_rows):
                if check is not None:
                    check()
                arrays = [pa.array([row[i] for row in batch], type=field.type) for i, field in enumerate(schema)]
                writer.write_batch(pa.record_batch(arrays, schema=schema))
                rows += len(batch)
    finally:
        writer.close()
    return rows


def _column(pa: Any, table: Table, field: Any, values: list[Any]) -> Any:
    """One column of a batch as an Arrow array; a value Arrow cannot hold is named (NaN in a decimal…)."""
    try:
        return pa.array(values, type=field.type)
    except (pa.ArrowException, OverflowError, ValueError) as exc:
        raise LifeboatError(
            f"column {field.name} of {table.qualified} cannot be written as Parquet {field.type}: {exc}",
            hint="export the table as csv, or choose the other columns with " + option("columns"),
        ) from None
