"""PostgreSQL text output -> Python values: scalars, dates and times, arrays.

The texts are what PostgreSQL 18's output functions print (checked against a server while this
was written); the tests themselves need none.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.postgres.values import convert_text, parse_array
from sync.errors import DecodeError
from sync.temporal import FarDate, FarTime, FarTimestamp, FarTimestampTz, Uncarried

BOOL, BYTEA, NAME, INT8, INT2, INT4, TEXT, OID = 16, 17, 19, 20, 21, 23, 25, 26
JSON, FLOAT4, FLOAT8, BPCHAR, VARCHAR = 114, 700, 701, 1042, 1043
DATE, TIME, TIMESTAMP, TIMESTAMPTZ, NUMERIC, UUID, JSONB = 1082, 1083, 1114, 1184, 1700, 2950, 3802


@pytest.mark.parametrize(
    ("type_oid", "text", "expected"),
    [
        (BOOL, "t", True),
        (BOOL, "f", False),
        (BYTEA, "\\x", b""),
        (BYTEA, "\\x00ff10", b"\x00\xff\x10"),
        (INT2, "-32768", -32768),
        (INT4, "2147483647", 2147483647),
        (INT8, "-9223372036854775808", -9223372036854775808),
        (OID, "4294967295", 4294967295),
        (TEXT, 'héllo\n"q"', 'héllo\n"q"'),
        (VARCHAR, "", ""),
        (BPCHAR, "ab   ", "ab   "),
        (NAME, "citizen", "citizen"),
        (NUMERIC, "12.50", Decimal("12.50")),
        (NUMERIC, "-0.000000001", Decimal("-0.000000001")),
        (NUMERIC, "Infinity", Decimal("Infinity")),
        (FLOAT4, "0.1", 0.1),
        (FLOAT8, "-Infinity", -math.inf),
        (FLOAT8, "1e+300", 1e300),
        (DATE, "2024-02-29", date(2024, 2, 29)),
        (TIME, "00:00:00", time(0, 0)),
        (TIME, "23:59:59.999999", time(23, 59, 59, 999999)),
        (TIME, "03:04:05.5", time(3, 4, 5, 500000)),
        (TIMESTAMP, "2024-01-02 03:04:05.1", datetime(2024, 1, 2, 3, 4, 5, 100000)),
        (
            UUID,
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            uuid.UUID(int=0xA0EEBC999C0B4EF8BB6D6BB9BD380A11),
        ),
        (JSON, '{"a": [1, 2]}', '{"a": [1, 2]}'),
        (JSONB, '{"a": 1, "b": null}', '{"a": 1, "b": null}'),
    ],
)
def test_scalars(type_oid: int, text: str, expected: Any) -> None:
    value = convert_text(type_oid, text)
    assert value == expected
    assert type(value) is type(expected)


def test_timestamp_is_naive() -> None:
    assert convert_text(TIMESTAMP, "2000-01-01 00:00:00").tzinfo is None


@pytest.mark.parametrize(
    ("type_oid", "cls"), [(NUMERIC, Decimal), (FLOAT4, float), (FLOAT8, float)]
)
def test_nan(type_oid: int, cls: type) -> None:
    value = convert_text(type_oid, "NaN")
    assert isinstance(value, cls)
    assert value != value  # NaN is not equal to itself, whichever type


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2024-01-02 03:04:05.123456+07", datetime(2024, 1, 1, 20, 4, 5, 123456, tzinfo=UTC)),
        ("2024-01-02 01:34:05+05:30", datetime(2024, 1, 1, 20, 4, 5, tzinfo=UTC)),
        ("2024-01-01 16:34:05-03:30", datetime(2024, 1, 1, 20, 4, 5, tzinfo=UTC)),
        ("2024-01-01 20:04:05+00", datetime(2024, 1, 1, 20, 4, 5, tzinfo=UTC)),
        # local mean time before time zones: offsets with seconds
        ("1900-01-01 05:21:10+05:21:10", datetime(1900, 1, 1, tzinfo=UTC)),
    ],
)
def test_timestamptz_offsets_become_utc(text: str, utc: datetime) -> None:
    value = convert_text(TIMESTAMPTZ, text)
    assert value == utc
    assert value.utcoffset() == timedelta(0)


def test_timestamptz_keeps_the_instant() -> None:
    value = convert_text(TIMESTAMPTZ, "2024-06-30 23:59:59.999999+14")
    assert value == datetime(2024, 6, 30, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=14)))


@pytest.mark.parametrize(
    ("type_oid", "text", "kind", "carried"),
    [
        (DATE, "infinity", FarDate, "infinity"),
        (DATE, "-infinity", FarDate, "-infinity"),
        (DATE, "0044-03-15 BC", FarDate, "0044-03-15 BC"),
        (DATE, "294276-01-01", FarDate, "294276-01-01"),
        (TIME, "24:00:00", FarTime, "24:00:00"),
        (TIMESTAMP, "infinity", FarTimestamp, "infinity"),
        (TIMESTAMP, "0044-03-15 12:00:01.5 BC", FarTimestamp, "0044-03-15 12:00:01.5 BC"),
        (TIMESTAMPTZ, "-infinity", FarTimestampTz, "-infinity"),
        (
            TIMESTAMPTZ,
            "0044-03-15 12:17:30+00:17:30 BC",
            FarTimestampTz,
            "0044-03-15 12:00:00+00 BC",
        ),
        (TIMESTAMPTZ, "9999-12-31 23:00:00-05", FarTimestampTz, "10000-01-01 04:00:00+00"),
        (TIMESTAMPTZ, "0001-01-01 00:00:00+05", FarTimestampTz, "0001-12-31 19:00:00+00 BC"),
    ],
)
def test_values_python_cannot_hold_are_carried_as_far_values(
    type_oid: int, text: str, kind: type, carried: str
) -> None:
    value = convert_text(type_oid, text)
    assert type(value) is kind
    assert value.text == carried


@pytest.mark.parametrize(
    ("type_oid", "text"),
    [
        (BOOL, "yes"),
        (BYTEA, "\\xzz"),
        (INT4, "seven"),
        (NUMERIC, "1,5"),
        (FLOAT8, "fast"),
        (DATE, "01/02/2024"),  # DateStyle other than ISO
        (DATE, "2024-02-30"),
        (TIME, "3pm"),
        (TIMESTAMP, "2024-01-02T03:04:05"),
        (TIMESTAMPTZ, "2024-01-02 03:04:05"),  # no offset
        (UUID, "not-a-uuid"),
        (TIMESTAMP, "294276-12-31 23:59:59.999999"),  # past an Avro long of microseconds
        (1007, "{1,2"),
    ],
)
def test_text_that_cannot_be_carried_is_uncarried_and_never_quoted(
    type_oid: int, text: str
) -> None:
    value = convert_text(type_oid, text)
    assert isinstance(value, Uncarried)
    assert value.text == text  # kept for the verify's staging, never shown
    assert text not in value.reason and text not in repr(value)


def test_bad_element_of_a_typed_array_is_uncarried() -> None:
    one, bad = convert_text(1007, "{1,zebra}")
    assert one == 1 and isinstance(bad, Uncarried) and "zebra" not in bad.reason


def test_unknown_types_pass_through() -> None:
    assert convert_text(16402, "happy") == "happy"  # an enum
    assert convert_text(1186, "1 day 02:00:00") == "1 day 02:00:00"  # interval


def test_bytea_escape_format() -> None:
    assert convert_text(BYTEA, "ab\\\\c\\001\\377") == b"ab\\c\x01\xff"


# ---- arrays -------------------------------------------------------------------------------


def test_text_array_with_quotes_nulls_and_escapes() -> None:
    text = '{a,"b c",NULL,"NULL","","x\\\\y","q\\"t","{}"," lead"}'
    assert convert_text(1009, text) == ["a", "b c", None, "NULL", "", "x\\y", 'q"t', "{}", " lead"]


def test_quoted_element_with_newline() -> None:
    assert convert_text(1009, '{"a\nb","tab\there"}') == ["a\nb", "tab\there"]


def test_empty_array() -> None:
    assert convert_text(1007, "{}") == []


@pytest.mark.parametrize(
    ("type_oid", "text", "expected"),
    [
        (1007, "{1,NULL,3}", [1, None, 3]),
        (1016, "{-9223372036854775808}", [-9223372036854775808]),
        (1000, "{t,f,NULL}", [True, False, None]),
        (1001, '{"\\\\x0102","\\\\x"}', [b"\x01\x02", b""]),
        (1231, "{1.5,-Infinity,NULL}", [Decimal("1.5"), Decimal("-Infinity"), None]),
        (1182, "{infinity,2020-01-01}", [FarDate(2**31 - 1), date(2020, 1, 1)]),
        (1185, '{"2024-01-02 03:04:05+01"}', [datetime(2024, 1, 2, 2, 4, 5, tzinfo=UTC)]),
        (
            2951,
            "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
            [uuid.UUID(int=0xA0EEBC999C0B4EF8BB6D6BB9BD380A11)],
        ),
        (3807, '{"{\\"a\\": 1}"}', ['{"a": 1}']),
        (1015, '{"c,d"}', ["c,d"]),
    ],
)
def test_typed_arrays(type_oid: int, text: str, expected: list[Any]) -> None:
    assert convert_text(type_oid, text) == expected


def test_arrays_with_nan() -> None:
    nan, inf = convert_text(1022, "{NaN,Infinity}")
    assert math.isnan(nan) and inf == math.inf
    (decimal_nan,) = convert_text(1231, "{NaN}")
    assert isinstance(decimal_nan, Decimal) and decimal_nan.is_nan()


def test_array_with_lower_bound_prefix() -> None:
    assert convert_text(1007, "[0:1]={1,2}") == [1, 2]


def test_nested_array_becomes_nested_lists() -> None:
    assert convert_text(1007, "{{1,2},{3,NULL}}") == [[1, 2], [3, None]]


@pytest.mark.parametrize(
    ("text", "offset"),
    [
        ("", 0),
        ("1,2", 0),
        ("{1,2", 4),
        ("{1,,2}", 3),
        ('{"open}', 1),
        ("{1}x", 3),
        ("{1 2}{", 5),
    ],
)
def test_malformed_arrays(text: str, offset: int) -> None:
    with pytest.raises(DecodeError, match=rf"at character {offset}$"):
        parse_array(text)


def pg_array_literal(items: list[str | None]) -> str:
    """Format a text[] the way PostgreSQL's array_out does."""

    def element(item: str | None) -> str:
        if item is None:
            return "NULL"
        special = item == "" or item.upper() == "NULL" or any(c in item for c in '{},"\\ \t\n')
        if not special:
            return item
        return '"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"'

    return "{" + ",".join(element(item) for item in items) + "}"


@given(st.lists(st.none() | st.text(st.characters(exclude_characters="\0"))))
def test_text_arrays_round_trip(items: list[str | None]) -> None:
    assert convert_text(1009, pg_array_literal(items)) == items
