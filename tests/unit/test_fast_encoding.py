"""The connector's fast Avro encoding writes exactly the bytes the reference encoder (the code
before it, in ``tests/reference``) writes, and refuses exactly the events it refuses, with the
same error: rows of every type and edge value the connector carries, values of other types,
every op, events of many transactions through one codec."""

from __future__ import annotations

import copy
import dataclasses
import io
import math
import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock

import fastavro
import pytest
from fastavro.validation import validate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync.contracts import Contract, EventCodec, load_contracts
from sync.contracts.row_writer import RowWriter, avro_long
from sync.errors import ContractError
from sync.temporal import FarDate, FarTime, FarTimestamp, FarTimestampTz, Uncarried
from sync.types import ChangeEvent, Lsn, Op, Position, TableRef
from tests.reference.encoder import reference_encode

MANY = settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
FEWER = settings(MANY, max_examples=150)
TYPES = Path(__file__).parent.parent / "fixtures" / "contracts_types"
SAMPLE = load_contracts(TYPES)["typecheck.sample"]
CITIZEN = load_contracts()["population.citizen"]

# ---- values of every kind, right and wrong ------------------------------------------------------

_text = st.text(st.characters(exclude_characters="\x00"), max_size=30)
ODD = [
    None, True, False, 0, -1, 2**31 - 1, -(2**31), 2**31, 2**63 - 1, -(2**63), 2**63,
    -(2**63) - 1, 2**70, 0.0, -0.0, 1.5, math.nan, math.inf, -math.inf, 1e300, 3.4e38,
    "", "ba\u0301", "\ud800", b"", b"\x00\xff", bytearray(b"ab"), (), ("a",), [], [None],
    Decimal("NaN"), Decimal("Infinity"), Decimal("-0.001"), Decimal("12.5"),
    Decimal("123456789012345"), Decimal("1E+2"), date(1, 1, 1), date(9999, 12, 31),
    datetime(2024, 1, 1), datetime(2024, 1, 1, tzinfo=UTC), time(23, 59, 59, 999999),
    time(1, 2, tzinfo=UTC), uuid.UUID(int=5), str(uuid.UUID(int=5)),
    FarDate(2**31 - 1), FarDate(-(2**31)), FarDate(-719893), FarTime(86_400_000_000),
    FarTimestamp(2**63 - 1), FarTimestampTz(-(2**63)), FarTimestampTz(-62167219200000000),
    Uncarried("294276-12-31", "a timestamp beyond the range of an Avro long"),
    Lsn(7), Op.CREATE, {"a": 1},
]  # fmt: skip
odd_values = st.one_of(
    st.sampled_from(ODD),
    st.integers(),
    st.floats(),
    _text,
    st.binary(max_size=20),
    st.decimals(places=3, allow_nan=False) | st.decimals(),
    st.dates(),
    st.datetimes(),
    st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=7))])),
    st.times(),
    st.uuids(),
)

RIGHT: dict[str, st.SearchStrategy[Any]] = {
    "string": _text,
    "long": st.integers(-(2**63), 2**63 - 1),
    "int": st.integers(-(2**31), 2**31 - 1),
    "float": st.floats(width=32),
    "double": st.floats(),
    "boolean": st.booleans(),
    "bytes": st.binary(max_size=40),
    "date": st.dates() | st.sampled_from([FarDate(2**31 - 1), FarDate(-(2**31)), FarDate(-719893)]),
    "time-micros": st.times() | st.just(FarTime(86_400_000_000)),
    "timestamp-micros": st.datetimes(timezones=st.just(UTC))
    | st.sampled_from([FarTimestampTz(2**63 - 1), FarTimestampTz(-62167219200000000)]),
    "local-timestamp-micros": st.datetimes() | st.just(FarTimestamp(-(2**63))),
    "uuid": st.uuids(),
    "decimal": st.decimals(-(10**11) + 1, 10**11 - 1, places=3, allow_nan=False),
}


def _kind(schema: Any) -> str:
    if isinstance(schema, list):
        return _kind(schema[-1])
    if isinstance(schema, dict):
        if schema.get("type") == "array":
            return "array"
        return str(schema.get("logicalType") or schema["type"])
    return str(schema)


def value_for(schema: Any, odd: bool = True) -> st.SearchStrategy[Any]:
    """A value that fits ``schema``, and when ``odd``, sometimes one that does not."""
    nullable = isinstance(schema, list)
    inner = schema[-1] if nullable else schema
    kind = _kind(inner)
    if kind == "array":
        right = st.lists(value_for(inner["items"], odd), max_size=4)
    else:
        right = RIGHT.get(kind, odd_values)
    nulls = [st.none()] if nullable else []
    return st.one_of(right, right, right, *nulls, *([odd_values] if odd else []))


def rows_of(contract: Contract) -> st.SearchStrategy[dict[str, Any]]:
    """Rows as the decoder gives them, and now and then rows with values that do not fit."""

    def rows(odd: bool) -> st.SearchStrategy[dict[str, Any]]:
        fields = contract.row_schema["fields"]
        return st.fixed_dictionaries({f["name"]: value_for(f["type"], odd) for f in fields})

    return st.one_of(rows(False), rows(False), rows(True))


# ---- the row writer against fastavro ------------------------------------------------------------

FIELD_TYPES = [
    "string", "long", "int", "float", "double", "boolean", "bytes", "null",
    {"type": "int", "logicalType": "date"},
    {"type": "long", "logicalType": "time-micros"},
    {"type": "long", "logicalType": "timestamp-micros"},
    {"type": "long", "logicalType": "local-timestamp-micros"},
    {"type": "string", "logicalType": "uuid"},
    {"type": "bytes", "logicalType": "decimal", "precision": 14, "scale": 3},
    {"type": "bytes", "logicalType": "decimal", "precision": 4, "scale": 0},
    {"type": "string", "logicalType": "an-unknown-one"},
    {"type": "string"},
]  # fmt: skip
field_types = st.sampled_from(FIELD_TYPES).flatmap(
    lambda t: st.sampled_from(
        [t, ["null", t], {"type": "array", "items": t}, {"type": "array", "items": ["null", t]},
         ["null", {"type": "array", "items": ["null", t]}]]
    )
)  # fmt: skip


def fastavro_bytes(schema: Any, row: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schema, row)
    return buf.getvalue()


@MANY
@given(st.lists(field_types, min_size=1, max_size=5).flatmap(
    lambda types: st.tuples(
        st.just(types),
        st.tuples(*(value_for(t) for t in types)),
    )
))  # fmt: skip
def test_what_the_row_writer_writes_fastavro_validates_and_writes_alike(
    drawn: tuple[list[Any], tuple[Any, ...]],
) -> None:
    types, values = drawn
    fields = [{"name": f"f{i}", "type": copy.deepcopy(t)} for i, t in enumerate(types)]
    schema = fastavro.parse_schema({"type": "record", "name": "R", "fields": fields})
    row = {f"f{i}": value for i, value in enumerate(values)}
    writer = RowWriter(schema)
    assert writer.fast
    written = writer.write(row)
    if written is not None:
        assert validate(row, schema, raise_errors=False)
        assert written == fastavro_bytes(schema, row)


@pytest.mark.parametrize(
    "unsupported",
    [
        {"type": "map", "values": "long"},
        {"type": "enum", "name": "E", "symbols": ["a"]},
        {"type": "fixed", "name": "F", "size": 2},
        {"type": "record", "name": "Inner", "fields": [{"name": "x", "type": "long"}]},
        ["string", "null"],
        ["null", "string", "long"],
    ],
)
def test_a_schema_with_a_type_the_row_writer_does_not_know_has_no_fast_path(
    unsupported: Any,
) -> None:
    fields = [{"name": "a", "type": "string"}, {"name": "b", "type": unsupported}]
    writer = RowWriter(fastavro.parse_schema({"type": "record", "name": "R", "fields": fields}))
    assert not writer.fast
    assert writer.write({"a": "x", "b": None}) is None


@pytest.mark.parametrize("n", [0, 1, -1, 63, -64, 64, 2**31 - 1, -(2**31), 2**63 - 1, -(2**63)])
def test_avro_long_is_fastavros_long(n: int) -> None:
    schema = fastavro.parse_schema({"type": "record", "name": "L", "fields": [
        {"name": "n", "type": "long"}]})  # fmt: skip
    assert avro_long(n) == fastavro_bytes(schema, {"n": n})


@pytest.mark.parametrize("n", [2**63, -(2**63) - 1])
def test_avro_long_refuses_what_fastavro_refuses(n: int) -> None:
    with pytest.raises(OverflowError):
        avro_long(n)


# ---- whole events against the reference encoder -------------------------------------------------

KEY_ID, VALUE_ID = 11, 12
COMMIT_TIMES = [
    datetime(2026, 12, 2, 3, 4, 5, 678901, tzinfo=UTC),
    datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(2024, 6, 30, 17, 0, tzinfo=timezone(timedelta(hours=7))),
]
NOW = 1_796_000_000.123


@st.composite
def events(draw: st.DrawFn, contract: Contract) -> ChangeEvent:
    op = draw(st.sampled_from(Op))
    rows = rows_of(contract)
    before = draw(st.none() | rows) if op in (Op.UPDATE, Op.DELETE) else None
    after = draw(rows) if op in (Op.CREATE, Op.UPDATE, Op.READ) else None
    if draw(st.integers(0, 20)) == 0:  # now and then an image where none belongs
        before = draw(rows)
    key_field = contract.key_fields[0]
    image = after or before or {}
    key = {} if op is Op.TRUNCATE else {key_field: image.get(key_field, draw(odd_values))}
    txid = 0 if op is Op.READ else draw(st.sampled_from([1, 4242, 2**32 - 1, 0]))
    position = Position(
        Lsn(draw(st.sampled_from([0, 0x16B374D848, 2**63 - 1, 2**64 - 1]))),
        draw(st.sampled_from([0, 1, 7, 2**31, 2**40])),
    )
    counts = draw(
        st.sampled_from([{}, {contract.topic: 3}, {contract.topic: 2, "other.topic": 2**40}])
    )
    return ChangeEvent(
        op=op,
        table=TableRef("public", contract.source_table),
        key=key,
        before=before,
        after=after,
        position=position,
        txid=txid,
        commit_time=draw(st.sampled_from(COMMIT_TIMES)),
        event_id=ChangeEvent.make_event_id(contract.domain, position),
        source=draw(st.sampled_from([contract.domain, "nguồn"])),
        tx_events=counts,
    )


def outcome(encode: Any, codec: EventCodec, event: ChangeEvent) -> object:
    try:
        return encode(codec, event, KEY_ID, VALUE_ID)
    except ContractError as exc:
        return ("refused", str(exc), exc.fields)


def fast_encode(codec: EventCodec, event: ChangeEvent, key_id: int, value_id: int) -> object:
    return codec.encode(event, key_id, value_id)


def assert_encodes_as_the_reference(codec: EventCodec, event: ChangeEvent) -> None:
    reference = EventCodec(codec.contract, source_db=codec.source_db)
    # the envelope's ts_ms is the time of encoding: the same for both encoders here
    with mock.patch("time.time", return_value=NOW):
        assert outcome(fast_encode, codec, event) == outcome(reference_encode, reference, event)


@MANY
@given(events(SAMPLE), st.sampled_from(["", "typecheck", "cơ sở"]))
def test_every_type_encodes_as_the_reference_encodes_it(event: ChangeEvent, db: str) -> None:
    assert_encodes_as_the_reference(EventCodec(SAMPLE, source_db=db), event)


@FEWER
@given(events(CITIZEN))
def test_citizens_encode_as_the_reference_encodes_them(event: ChangeEvent) -> None:
    assert_encodes_as_the_reference(EventCodec(CITIZEN, source_db="population"), event)


@FEWER
@given(st.lists(events(SAMPLE), min_size=2, max_size=12))
def test_one_codec_encodes_a_stream_as_the_reference_encodes_each_event(
    stream: list[ChangeEvent],
) -> None:
    """What the codec keeps between events (source and counts bytes) never leaks into
    another transaction's events."""
    codec = EventCodec(SAMPLE, source_db="typecheck")
    for event in stream:
        assert_encodes_as_the_reference(codec, event)


def test_event_counts_changed_in_place_are_encoded_as_they_now_are() -> None:
    codec = EventCodec(CITIZEN, source_db="population")
    counts = {CITIZEN.topic: 1}
    event = ChangeEvent(
        op=Op.DELETE,
        table=TableRef("public", "citizen"),
        key={"personal_id": "001099012345"},
        before=None,
        after=None,
        position=Position(Lsn(0x16B374D848), 1),
        txid=4242,
        commit_time=datetime(2026, 12, 2, tzinfo=UTC),
        event_id="population:0000016B374D848:1",
        source="population",
        tx_events=counts,
    )
    assert_encodes_as_the_reference(codec, event)
    counts[CITIZEN.topic] = 2
    counts["population.household"] = 1
    assert_encodes_as_the_reference(codec, event)


def test_the_processing_time_is_read_for_each_event() -> None:
    codec = EventCodec(CITIZEN, source_db="population")
    event = ChangeEvent(
        op=Op.TRUNCATE,
        table=TableRef("public", "citizen"),
        key={},
        before=None,
        after=None,
        position=Position(Lsn(1), 1),
        txid=1,
        commit_time=datetime(2026, 12, 2, tzinfo=UTC),
        event_id="population:0000000000000001:1",
        source="population",
    )
    values = set()
    for now in (1.0, 1.0005, 2.0, 1.0):
        with mock.patch("time.time", return_value=now):
            _, value = codec.encode(event, KEY_ID, VALUE_ID)
            assert value == reference_encode(codec, event, KEY_ID, VALUE_ID)[1]
            values.add(value)
    assert len(values) == 2  # 1 000 ms and 2 000 ms


def test_rows_as_the_decoder_reads_them_take_the_fast_path() -> None:
    """Not a matter of bytes (the tests above are) but of speed: every value of every carried
    type, edge values included, is written without fastavro."""
    from connectors.postgres.values import read_text

    texts = {
        "id": (20, "7"), "t_text": (25, "Huế"), "t_varchar": (1043, ""), "t_char": (1042, "ab "),
        "t_int2": (21, "-32768"), "t_int4": (23, "2147483647"), "t_int8": (20, "-1"),
        "t_numeric": (1700, "-99999999999.999"), "t_real": (700, "NaN"),
        "t_double": (701, "-Infinity"), "t_bool": (16, "t"), "t_date": (1082, "0044-03-15 BC"),
        "t_time": (1083, "24:00:00"), "t_timestamp": (1114, "infinity"),
        "t_timestamptz": (1184, "2024-06-30 17:00:00.5+07"),
        "t_uuid": (2950, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), "t_jsonb": (3802, "{}"),
        "t_bytea": (17, "\\x00ff"), "t_text_array": (1009, '{a,NULL,"b c"}'),
        "t_int_array": (1007, "{1,NULL}"),
    }  # fmt: skip
    row = {name: read_text(oid, text) for name, (oid, text) in texts.items()}
    codec = EventCodec(SAMPLE)
    written = codec._row_writer.write(row)
    assert written is not None
    assert written == fastavro_bytes(codec._value_parsed["fields"][0]["type"][1], row)


@FEWER
@given(events(SAMPLE), st.sampled_from([{}, {SAMPLE.topic: 9}, {"a": 1, "b": 2}]))
def test_counts_passed_to_encode_stand_for_the_events_own(
    event: ChangeEvent, counts: dict[str, int]
) -> None:
    """The publisher passes a transaction's counts instead of copying each event with them."""
    codec = EventCodec(SAMPLE, source_db="typecheck")
    with mock.patch("time.time", return_value=NOW):
        passed = outcome(lambda c, e, k, v: c.encode(e, k, v, counts), codec, event)
        copied = dataclasses.replace(event, tx_events=counts)
        assert passed == outcome(reference_encode, codec, copied)


@pytest.mark.parametrize("contract", [CITIZEN, SAMPLE], ids=["citizen", "sample"])
def test_the_benchmark_workloads_encode_as_the_reference_encodes_them(contract: Contract) -> None:
    from bench.connector_stages import workload
    from connectors.postgres.changes import ChangeDecoder

    name = contract.source_table
    keys = {TableRef("public", name): contract.key_fields}
    messages = [(Lsn(lsn), data) for lsn, data in workload(name, 600, 100)]
    events = ChangeDecoder("bench", keys).decode(messages).events
    codec, reference = (
        EventCodec(contract, source_db="bench"),
        EventCodec(contract, source_db="bench"),
    )
    counts = {contract.topic: 100}
    with mock.patch("time.time", return_value=NOW):
        for event in events:
            copied = dataclasses.replace(event, tx_events=counts)
            expected = reference_encode(reference, copied, KEY_ID, VALUE_ID)
            assert codec.encode(event, KEY_ID, VALUE_ID, counts) == expected
    assert codec._row_writer.fast
