"""Dates and times beyond Python's range against a real PostgreSQL: what psycopg reads through
govsync's adapters is the integer PostgreSQL itself computes, writing it back gives the same
text, and the year transform and row filters agree with the server's own answers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from sync.contracts import load_contracts
from sync.policy.filters import check_filter, matches, parse_filter, to_sql
from sync.policy.transforms import Year
from sync.stack.providers import StackProvider
from sync.temporal import (
    FarDate,
    FarTime,
    FarTimestamp,
    FarTimestampTz,
    FarValue,
    as_ordinal,
    register_pg_adapters,
)

pytestmark = [pytest.mark.integration, pytest.mark.brokerless]

TYPES = Path(__file__).parent.parent / "fixtures" / "contracts_types"

DATES = [
    "infinity",
    "-infinity",
    "4714-11-24 BC",
    "0044-03-15 BC",
    "0001-12-31 BC",
    "0001-01-01",
    "2024-02-29",
    "9999-12-31",
    "10000-01-01",
    "5874897-12-31",
]
TIMESTAMPS = [
    "infinity",
    "-infinity",
    "4714-11-24 00:00:00 BC",
    "0044-03-15 12:00:00.5 BC",
    "0001-01-01 00:00:00",
    "2024-06-30 23:59:59.999999",
    "9999-12-31 23:59:59.999999",
    "10000-01-01 00:00:00",
    "294247-01-10 04:00:54.775806",
]
ZONED = [*TIMESTAMPS[:-1], "0001-01-01 00:00:00+05", "9999-12-31 23:00:00-05"]
TIMES = ["00:00:00", "23:59:59.999999", "24:00:00"]


@pytest.fixture(scope="module")
def conn(stack: StackProvider) -> Iterator[psycopg.Connection[Any]]:
    dsn = stack.create_database(f"temporal_{uuid.uuid4().hex[:6]}")
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute("SET TimeZone = 'UTC'")
        register_pg_adapters(connection)
        yield connection


def _read(conn: psycopg.Connection[Any], text: str, type_name: str) -> Any:
    row = conn.execute(f"SELECT %s::text::{type_name}", (text,)).fetchone()
    assert row is not None
    return row[0]


def _server_integer(conn: psycopg.Connection[Any], text: str, type_name: str) -> int:
    """The integer the value is carried as, computed by PostgreSQL."""
    if type_name == "date":
        query = "SELECT %s::date - '1970-01-01'::date"
    elif type_name == "time":
        query = "SELECT (extract(epoch FROM %s::time) * 1000000)::bigint"
    else:
        query = f"SELECT (extract(epoch FROM %s::{type_name}) * 1000000)::numeric(30,0)"
    row = conn.execute(query, (text,)).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize(
    ("type_name", "texts"),
    [("date", DATES), ("timestamp", TIMESTAMPS), ("timestamptz", ZONED), ("time", TIMES)],
)
def test_values_read_as_the_integer_postgresql_computes(
    conn: psycopg.Connection[Any], type_name: str, texts: list[str]
) -> None:
    for text in texts:
        value = _read(conn, text, type_name)
        if isinstance(value, FarValue) and value.infinite:
            assert text.lstrip("-") == "infinity"
            continue
        assert as_ordinal(value) == _server_integer(conn, text, type_name), text


@pytest.mark.parametrize(
    ("type_name", "texts", "far"),
    [
        ("date", DATES, FarDate),
        ("timestamp", TIMESTAMPS, FarTimestamp),
        ("timestamptz", ZONED, FarTimestampTz),
        ("time", TIMES, FarTime),
    ],
)
def test_written_back_they_are_the_same_value(
    conn: psycopg.Connection[Any], type_name: str, texts: list[str], far: type[FarValue]
) -> None:
    table = f"back_{type_name}"
    conn.execute(f"CREATE TEMP TABLE {table} (n int, original text, v {type_name})")
    values = [_read(conn, text, type_name) for text in texts]
    assert any(type(v) is far for v in values)
    with conn.cursor().copy(f"COPY {table} (n, original, v) FROM STDIN") as copy:
        for n, (text, value) in enumerate(zip(texts, values, strict=True)):
            copy.write_row((n, text, value))
    differing = conn.execute(
        f"SELECT original FROM {table} WHERE v IS DISTINCT FROM original::{type_name}"
    ).fetchall()
    assert differing == []


def test_year_transform_agrees_with_extract(conn: psycopg.Connection[Any]) -> None:
    year = Year(kind="year").bind({})
    for text in DATES:
        value = _read(conn, text, "date")
        row = conn.execute("SELECT extract(year FROM %s::date)", (text,)).fetchone()
        assert row is not None
        if row[0].is_infinite():
            assert year(value) == (2**31 - 1 if row[0] > 0 else -(2**31))
        else:
            assert year(value) == int(row[0]), text


@pytest.mark.parametrize(
    "condition",
    [
        "t_date > '2000-01-01'",
        "t_date < '0001-01-01'",
        "t_date == '2024-02-29'",
        "t_date != '2024-02-29'",
        "t_date >= '9999-12-31'",
        "t_date in ['0001-01-01', '2024-02-29']",
    ],
)
def test_filters_agree_with_postgresql(conn: psycopg.Connection[Any], condition: str) -> None:
    expr = check_filter(parse_filter(condition), load_contracts(TYPES)["typecheck.sample"])
    where = to_sql(expr).as_string(conn)
    for text in DATES:
        value = _read(conn, text, "date")
        row = conn.execute(
            f"SELECT coalesce(({where}), false) FROM (SELECT %s::date AS t_date) t", (text,)
        ).fetchone()
        assert row is not None
        assert matches(expr, {"t_date": value}) is row[0], (condition, text)
