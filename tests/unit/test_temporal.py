"""Dates and times beyond Python's range: the calendar arithmetic, PostgreSQL's text, the Avro
round trip through a contract, and what the policy's year transform and filters make of them.
(tests/integration/test_temporal.py holds the same values against a real server.)"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.contracts import EventCodec, load_contracts
from sync.errors import ContractError
from sync.policy.filters import matches, parse_filter
from sync.policy.transforms import Year
from sync.temporal import (
    INT32_MAX,
    INT32_MIN,
    FarDate,
    FarTime,
    FarTimestamp,
    FarTimestampTz,
    Uncarried,
    as_ordinal,
    civil_from_days,
    days_from_civil,
    parse_date,
    parse_time,
    parse_timestamp,
    parse_timestamptz,
)
from sync.types import ChangeEvent, Lsn, Op, Position, TableRef

# PostgreSQL's date range: 4714-11-24 BC to 5874897-12-31
PG_FIRST_DAY = days_from_civil(-4713, 11, 24)
PG_LAST_DAY = days_from_civil(5874897, 12, 31)
TYPES = Path(__file__).parent.parent / "fixtures" / "contracts_types"


@given(st.dates())
def test_civil_arithmetic_agrees_with_python_where_python_reaches(day: date) -> None:
    days = day.toordinal() - date(1970, 1, 1).toordinal()
    assert days_from_civil(day.year, day.month, day.day) == days
    assert civil_from_days(days) == (day.year, day.month, day.day)


@given(st.integers(PG_FIRST_DAY, PG_LAST_DAY))
def test_every_postgresql_date_reads_back_from_its_text(days: int) -> None:
    value = parse_date(FarDate(days).text)
    plain = isinstance(value, date)
    assert (value.toordinal() - date(1970, 1, 1).toordinal() if plain else int(value)) == days


def test_every_postgresql_date_fits_an_avro_int_below_the_infinities() -> None:
    assert INT32_MIN < PG_FIRST_DAY and PG_LAST_DAY < INT32_MAX


@given(
    st.integers(PG_FIRST_DAY * 86_400_000_000, 2**63 - 2),
    st.sampled_from([FarTimestamp, FarTimestampTz]),
)
def test_timestamps_read_back_from_their_text(micros: int, kind: type[FarTimestamp]) -> None:
    parse = parse_timestamptz if kind is FarTimestampTz else parse_timestamp
    value = parse(kind(micros).text)
    assert as_ordinal(value) == micros


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("infinity", "infinity"),
        ("-infinity", "-infinity"),
        ("0001-01-01 BC", "0001-01-01 BC"),
        ("0044-03-15 BC", "0044-03-15 BC"),
        ("4714-11-24 BC", "4714-11-24 BC"),
        ("10000-01-01", "10000-01-01"),
        ("5874897-12-31", "5874897-12-31"),
    ],
)
def test_far_dates_print_as_postgresql_does(text: str, expected: str) -> None:
    value = parse_date(text)
    assert isinstance(value, FarDate) and str(value) == expected


def test_infinities_are_the_extremes_of_the_avro_integers() -> None:
    assert int(parse_date("infinity")) == 2**31 - 1
    assert int(parse_date("-infinity")) == -(2**31)
    assert int(parse_timestamp("infinity")) == 2**63 - 1
    assert int(parse_timestamptz("-infinity")) == -(2**63)


def test_midnight_at_the_end_of_the_day() -> None:
    value = parse_time("24:00:00")
    assert isinstance(value, FarTime) and int(value) == 86_400_000_000 and value.text == "24:00:00"


def test_timestamps_past_an_avro_long_are_uncarried() -> None:
    assert isinstance(parse_timestamp("294247-01-10 04:00:54.775806"), FarTimestamp)
    assert isinstance(parse_timestamp("294247-01-10 04:00:54.775807"), Uncarried)
    assert isinstance(parse_timestamptz("294276-12-31 23:59:59.999999+00"), Uncarried)


def _event(row: dict[str, Any]) -> ChangeEvent:
    return ChangeEvent(
        op=Op.CREATE,
        table=TableRef("public", "sample"),
        key={"id": row["id"]},
        before=None,
        after=row,
        position=Position(Lsn(100), 1),
        txid=5,
        commit_time=datetime(2026, 1, 1, tzinfo=UTC),
        event_id="typecheck:0000000000000064:1",
        source="typecheck",
    )


def _row(**values: Any) -> dict[str, Any]:
    codec = EventCodec(load_contracts(TYPES)["typecheck.sample"])
    row: dict[str, Any] = {f["name"]: None for f in codec.contract.row_schema["fields"]}
    return {**row, "id": 1, **values}


FAR_ROW = {
    "t_date": parse_date("-infinity"),
    "t_time": parse_time("24:00:00"),
    "t_timestamp": parse_timestamp("0044-03-15 12:00:00.5 BC"),
    "t_timestamptz": parse_timestamptz("infinity"),
    "t_double": float("nan"),
    "t_real": float("-inf"),
}


def test_far_values_cross_avro_as_they_are() -> None:
    codec = EventCodec(load_contracts(TYPES)["typecheck.sample"])
    schemas = {1: codec.contract.key_schema, 2: codec.value_schema}
    key, value = codec.encode(_event(_row(**FAR_ROW)), 1, 2)
    after = codec.decode(key, value, schemas.__getitem__).after
    assert after is not None
    for name in ("t_date", "t_time", "t_timestamp", "t_timestamptz"):
        assert type(after[name]) is type(FAR_ROW[name]) and after[name] == FAR_ROW[name], name
    assert after["t_double"] != after["t_double"] and after["t_real"] == float("-inf")


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("t_numeric", Decimal("NaN"), "a numeric NaN or infinity"),
        ("t_numeric", Decimal("Infinity"), "a numeric NaN or infinity"),
        ("t_timestamp", parse_timestamp("294276-12-31 23:59:59"), "beyond the range"),
        ("t_date", Uncarried("31/12/2024", "text that does not parse as a date"), "parse"),
    ],
)
def test_what_no_contract_carries_is_refused_naming_the_field_only(
    field: str, value: Any, problem: str
) -> None:
    codec = EventCodec(load_contracts(TYPES)["typecheck.sample"])
    with pytest.raises(ContractError, match=problem) as refused:
        codec.encode(_event(_row(**{field: value})), 1, 2)
    assert refused.value.field == field
    assert "31/12/2024" not in str(refused.value) and "294276" not in str(refused.value)


@pytest.mark.parametrize(
    ("value", "year"),
    [
        (parse_date("infinity"), 2**31 - 1),
        (parse_date("-infinity"), -(2**31)),
        (parse_date("0044-03-15 BC"), -44),
        (parse_date("0001-12-31 BC"), -1),
        (parse_date("12345-06-07"), 12345),
        (parse_timestamp("infinity"), 2**31 - 1),
        (parse_timestamptz("0001-01-01 00:00:00+05"), -1),  # 1 BC in UTC
        (parse_timestamptz("9999-12-31 23:00:00-05"), 10000),
        (date(1990, 2, 28), 1990),
    ],
)
def test_year_of_far_values(value: Any, year: int) -> None:
    assert Year(kind="year").bind({})(value) == year


@pytest.mark.parametrize(
    ("condition", "value", "passes"),
    [
        ("t_date > '2000-01-01'", parse_date("infinity"), True),
        ("t_date < '2000-01-01'", parse_date("-infinity"), True),
        ("t_date < '0001-01-01'", parse_date("0044-03-15 BC"), True),
        ("t_date == 'infinity'", parse_date("infinity"), True),
        ("t_date == 'infinity'", date(2024, 1, 1), False),
        ("t_date >= '2024-01-01'", parse_date("12345-01-01"), True),
        ("t_timestamptz > '2024-01-01T00:00:00+00:00'", parse_timestamptz("infinity"), True),
    ],
)
def test_filters_order_far_values_as_postgresql(condition: str, value: Any, passes: bool) -> None:
    assert matches(parse_filter(condition), {"t_date": value, "t_timestamptz": value}) is passes
