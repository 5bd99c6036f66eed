"""``migrate``'s pure parts: how a table is named on the command line, and which Parquet type
each PostgreSQL type is exported as (docs/migrate.md)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from lifeboat.errors import UsageError
from lifeboat.operations.migrate.catalog import Column, split_name
from lifeboat.operations.migrate.files import safe_file_name
from lifeboat.operations.migrate.parquet import arrow_type


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("orders", (None, "orders")),
        ("public.orders", ("public", "orders")),
        ('"Shop"."Order Lines"', ("Shop", "Order Lines")),
        ('shop."odd.name"', ("shop", "odd.name")),
        ('"say ""hi"""', (None, 'say "hi"')),
    ],
)
def test_a_table_is_named_table_or_schema_dot_table(text: str, expected: tuple[str | None, str]) -> None:
    assert split_name(text) == expected


@pytest.mark.parametrize("text", ["a.b.c", "", ".orders", "public.", '"unclosed'])
def test_a_malformed_table_name_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match=r"SCHEMA\.TABLE"):
        split_name(text)


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        (Column("a", "int4", "integer"), pa.int32()),
        (Column("a", "int8", "bigint"), pa.int64()),
        (Column("a", "numeric", "numeric(10,2)", 10, 2), pa.decimal128(10, 2)),
        (Column("a", "numeric", "numeric"), pa.string()),
        (Column("a", "numeric", "numeric(60,2)", 60, 2), pa.string()),
        (Column("a", "timestamptz", "timestamp with time zone"), pa.timestamp("us", tz="UTC")),
        (Column("a", "timestamp", "timestamp without time zone"), pa.timestamp("us")),
        (Column("a", "date", "date"), pa.date32()),
        (Column("a", "jsonb", "jsonb"), pa.string()),
        (Column("a", "bytea", "bytea"), pa.binary()),
        (Column("a", "uuid", "uuid"), pa.string()),
        (Column("a", "_int4", "integer[]"), pa.string()),
    ],
)
def test_postgres_types_map_to_parquet_types(column: Column, expected: pa.DataType) -> None:
    assert arrow_type(column) == expected


def test_a_table_name_becomes_a_file_name_that_stays_in_its_directory() -> None:
    assert safe_file_name("shop.a/b") == "shop.a%2Fb"
    assert "/" not in safe_file_name("../../etc")
