"""ChangeEvent <-> Confluent-framed Avro bytes for the citizen contract: round trips of every
operation, the wire header, and the DecodeError every kind of bad message gives."""

from __future__ import annotations

import dataclasses
import io
import struct
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync.contracts import Contract, EventCodec, frame, load_contracts, unframe
from sync.errors import DecodeError
from sync.types import ChangeEvent, Lsn, Op, Position, TableRef

REPO_SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "avro"
KEY_ID, VALUE_ID = 101, 202
COMMIT_TIME = datetime(2024, 5, 6, 7, 8, 9, 123457, tzinfo=UTC)
TABLE = TableRef("public", "citizen")


@pytest.fixture(scope="module")
def contract() -> Contract:
    return load_contracts(REPO_SCHEMAS)["population.citizen"]


@pytest.fixture
def codec(contract: Contract) -> EventCodec:
    return EventCodec(contract, source_db="population")


def lookup_for(codec: EventCodec) -> Any:
    schemas: dict[int, Mapping[str, Any]] = {
        KEY_ID: codec.contract.key_schema,
        VALUE_ID: codec.value_schema,
    }

    def lookup(schema_id: int) -> Mapping[str, Any]:
        try:
            return schemas[schema_id]
        except KeyError:
            raise DecodeError(f"unknown schema id {schema_id}") from None

    return lookup


def citizen(personal_id: str = "001099012345", **changes: Any) -> dict[str, Any]:
    row = {
        "personal_id": personal_id,
        "full_name": "Nguyễn Thị Ánh Tuyết",
        "date_of_birth": date(1990, 2, 28),
        "sex": "nu",
        "ethnicity": "Kinh",
        "province_code": "01",
        "district_code": "001",
        "ward_code": "00001",
        "updated_at": datetime(2024, 5, 6, 7, 8, 9, 654321, tzinfo=UTC),
    }
    row.update(changes)
    return row


def event(
    op: Op,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    key: str = "001099012345",
    index: int = 1,
    txid: int = 4242,
    commit_time: datetime = COMMIT_TIME,
) -> ChangeEvent:
    position = Position(Lsn.parse("16/B374D848"), index)
    return ChangeEvent(
        op=op,
        table=TABLE,
        key={"personal_id": key},
        before=before,
        after=after,
        position=position,
        txid=txid,
        commit_time=commit_time,
        event_id=ChangeEvent.make_event_id(
            "population", position, None if txid else {"personal_id": key}
        ),
        source="population",
    )


def round_trip(codec: EventCodec, original: ChangeEvent) -> ChangeEvent:
    key, value = codec.encode(original, KEY_ID, VALUE_ID)
    return codec.decode(key, value, lookup_for(codec))


# ---- round trips -------------------------------------------------------------------------


def test_create_round_trips(codec: EventCodec) -> None:
    original = event(Op.CREATE, after=citizen())
    assert round_trip(codec, original) == original


def test_update_with_before_image_round_trips(codec: EventCodec) -> None:
    original = event(
        Op.UPDATE,
        before=citizen(ward_code="00001"),
        after=citizen(ward_code="00004", full_name="Trần Văn Đức"),
        index=2,
    )
    assert round_trip(codec, original) == original


def test_update_without_before_image_round_trips(codec: EventCodec) -> None:
    original = event(Op.UPDATE, after=citizen(ethnicity=None))
    decoded = round_trip(codec, original)
    assert decoded == original
    assert decoded.before is None
    assert decoded.after is not None and decoded.after["ethnicity"] is None


def test_delete_without_images_takes_its_key_from_the_kafka_key(codec: EventCodec) -> None:
    original = event(Op.DELETE, key="079203000001")
    decoded = round_trip(codec, original)
    assert decoded == original
    assert decoded.key == {"personal_id": "079203000001"}
    assert decoded.before is None and decoded.after is None


def test_delete_with_full_before_image_round_trips(codec: EventCodec) -> None:
    original = event(Op.DELETE, before=citizen())
    assert round_trip(codec, original) == original


def test_snapshot_read_with_diacritics_round_trips(codec: EventCodec) -> None:
    row = citizen(
        full_name="Hoàng Thị Ngọc Ánh Nguyệt Ưng Ỷ",
        ethnicity="Ê Đê",
        date_of_birth=date(1945, 9, 2),
    )
    original = event(Op.READ, after=row, index=0, txid=0)
    decoded = round_trip(codec, original)
    assert decoded == original
    assert decoded.after is not None
    assert decoded.after["full_name"] == "Hoàng Thị Ngọc Ánh Nguyệt Ưng Ỷ"
    assert decoded.position.index == 0


def test_snapshot_reads_sharing_a_position_keep_ids_of_their_own(codec: EventCodec) -> None:
    one = round_trip(
        codec, event(Op.READ, after=citizen("001099000001"), key="001099000001", index=0, txid=0)
    )
    two = round_trip(
        codec, event(Op.READ, after=citizen("001099000002"), key="001099000002", index=0, txid=0)
    )
    assert one.position == two.position
    assert one.event_id != two.event_id, "a dead letter or audit entry names one row"
    assert "001099000001" not in one.event_id, "ids are logged; keys are personal data"


def test_commit_time_survives_to_the_microsecond(codec: EventCodec) -> None:
    moment = datetime(2024, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    decoded = round_trip(codec, event(Op.CREATE, after=citizen(), commit_time=moment))
    assert decoded.commit_time == moment
    assert decoded.commit_time.microsecond == 999999
    assert decoded.commit_time.utcoffset() == timedelta(0)


def test_commit_time_in_another_zone_decodes_to_the_same_instant(codec: EventCodec) -> None:
    hanoi = timezone(timedelta(hours=7))
    moment = datetime(2024, 1, 1, 6, 0, 0, 1, tzinfo=hanoi)
    decoded = round_trip(codec, event(Op.CREATE, after=citizen(), commit_time=moment))
    assert decoded.commit_time == moment
    assert decoded.commit_time.tzinfo is not None
    assert decoded.commit_time.utcoffset() == timedelta(0)


def test_commit_time_before_1970_survives(codec: EventCodec) -> None:
    moment = datetime(1969, 12, 31, 23, 59, 59, 1, tzinfo=UTC)
    assert round_trip(codec, event(Op.CREATE, after=citizen(), commit_time=moment)).commit_time == (
        moment
    )


def test_timestamp_column_keeps_microseconds(codec: EventCodec) -> None:
    stamp = datetime(2000, 1, 1, 0, 0, 0, 7, tzinfo=UTC)
    decoded = round_trip(codec, event(Op.CREATE, after=citizen(updated_at=stamp)))
    assert decoded.after is not None
    assert decoded.after["updated_at"] == stamp


def test_position_source_and_event_id_survive(codec: EventCodec) -> None:
    original = event(Op.UPDATE, after=citizen(), index=17, txid=2**40)
    decoded = round_trip(codec, original)
    assert decoded.position == Position(Lsn.parse("16/B374D848"), 17)
    assert decoded.event_id == "population:00000016B374D848:17"
    assert decoded.source == "population"
    assert decoded.txid == 2**40
    assert decoded.table == TABLE


# ---- wire format -------------------------------------------------------------------------


def test_value_and_key_start_with_magic_byte_and_schema_id(codec: EventCodec) -> None:
    key, value = codec.encode(event(Op.CREATE, after=citizen()), 7, 0x01020304)
    assert value[:5] == b"\x00\x01\x02\x03\x04"
    assert key[:5] == b"\x00\x00\x00\x00\x07"
    assert codec.schema_ids(key, value) == {7, 0x01020304}


def test_frame_and_unframe_are_inverse() -> None:
    schema_id, body = unframe(frame(2**32 - 1, b"avro body"))
    assert schema_id == 2**32 - 1
    assert bytes(body) == b"avro body"


def test_header_only_message_has_an_empty_body() -> None:
    schema_id, body = unframe(b"\x00\x00\x00\x00\x09")
    assert (schema_id, bytes(body)) == (9, b"")


def test_null_value_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="null value"):
        unframe(None)


@pytest.mark.parametrize("data", [b"", b"\x00", b"\x00\x00\x00\x01"])
def test_message_shorter_than_the_header_is_a_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError, match=f"message of {len(data)} bytes is shorter than"):
        unframe(data)


def test_wrong_magic_byte_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="wrong magic byte 1"):
        unframe(b"\x01\x00\x00\x00\x01body")


def test_json_text_is_not_mistaken_for_avro() -> None:
    with pytest.raises(DecodeError, match="magic byte"):
        unframe(b'{"personal_id": "001099012345"}')


def test_tombstone_value_is_a_decode_error(codec: EventCodec) -> None:
    key, _ = codec.encode(event(Op.DELETE), KEY_ID, VALUE_ID)
    with pytest.raises(DecodeError, match="null value"):
        codec.decode(key, None, lookup_for(codec))


def test_missing_key_is_a_decode_error(codec: EventCodec) -> None:
    _, value = codec.encode(event(Op.CREATE, after=citizen()), KEY_ID, VALUE_ID)
    with pytest.raises(DecodeError, match="without a key"):
        codec.decode(None, value, lookup_for(codec))


def test_truncated_avro_body_is_a_decode_error_naming_the_schema_id(codec: EventCodec) -> None:
    key, value = codec.encode(event(Op.CREATE, after=citizen()), KEY_ID, VALUE_ID)
    with pytest.raises(DecodeError, match=f"Avro value does not decode with schema id {VALUE_ID}"):
        codec.decode(key, value[:-10], lookup_for(codec))


def test_every_truncation_of_the_value_is_a_decode_error(codec: EventCodec) -> None:
    key, value = codec.encode(event(Op.UPDATE, before=citizen(), after=citizen()), KEY_ID, VALUE_ID)
    lookup = lookup_for(codec)
    for length in range(len(value)):
        with pytest.raises(DecodeError):
            codec.decode(key, value[:length], lookup)


def test_truncated_key_is_a_decode_error(codec: EventCodec) -> None:
    key, value = codec.encode(event(Op.CREATE, after=citizen()), KEY_ID, VALUE_ID)
    with pytest.raises(DecodeError, match="Avro key"):
        codec.decode(key[:-3], value, lookup_for(codec))


def test_unknown_schema_id_propagates_the_lookups_decode_error(codec: EventCodec) -> None:
    key, value = codec.encode(event(Op.CREATE, after=citizen()), KEY_ID, 999)
    with pytest.raises(DecodeError, match="unknown schema id 999"):
        codec.decode(key, value, lookup_for(codec))


def envelope_record(op: str, after: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "before": None,
        "after": after,
        "source": {
            "version": "test",
            "connector": "postgresql",
            "name": "population",
            "ts_ms": 0,
            "ts_us": 0,
            "snapshot": "false",
            "db": "population",
            "schema": "public",
            "table": "citizen",
            "txId": 1,
            "lsn": 1,
            "event_index": 1,
        },
        "op": op,
        "ts_ms": None,
        "transaction": None,
    }


def encode_value(codec: EventCodec, record: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(codec.value_schema), record)
    return frame(VALUE_ID, buffer.getvalue())


def test_unknown_op_is_a_decode_error(codec: EventCodec) -> None:
    key, _ = codec.encode(event(Op.CREATE, after=citizen()), KEY_ID, VALUE_ID)
    value = encode_value(codec, envelope_record("x", citizen()))
    with pytest.raises(DecodeError, match="unknown op 'x'"):
        codec.decode(key, value, lookup_for(codec))


def truncate_event() -> ChangeEvent:
    return dataclasses.replace(event(Op.TRUNCATE), key={})


def test_a_truncate_has_no_key_and_round_trips(codec: EventCodec) -> None:
    original = truncate_event()
    key, value = codec.encode(original, KEY_ID, VALUE_ID)
    assert key is None
    assert codec.schema_ids(key, value) == {VALUE_ID}
    assert codec.decode(key, value, lookup_for(codec)) == original


def test_a_truncate_is_op_t_with_no_images_in_the_envelope(codec: EventCodec) -> None:
    _, value = codec.encode(truncate_event(), KEY_ID, VALUE_ID)
    schema_id, body = unframe(value)
    record = fastavro.schemaless_reader(io.BytesIO(body), fastavro.parse_schema(codec.value_schema))
    assert isinstance(record, dict)
    assert (schema_id, record["op"], record["before"], record["after"]) == (
        VALUE_ID,
        "t",
        None,
        None,
    )
    assert (record["source"]["table"], record["source"]["event_index"]) == ("citizen", 1)


def test_a_truncate_with_a_row_image_is_a_decode_error(codec: EventCodec) -> None:
    value = encode_value(codec, envelope_record("t", citizen()))
    with pytest.raises(DecodeError, match="truncate event with a row image"):
        codec.decode(None, value, lookup_for(codec))


def test_a_truncate_with_a_key_is_a_decode_error(codec: EventCodec) -> None:
    key, _ = codec.encode(event(Op.CREATE, after=citizen()), KEY_ID, VALUE_ID)
    _, value = codec.encode(truncate_event(), KEY_ID, VALUE_ID)
    with pytest.raises(DecodeError, match="truncate event with a key"):
        codec.decode(key, value, lookup_for(codec))


def test_create_without_after_image_is_a_decode_error(codec: EventCodec) -> None:
    key, value = codec.encode(event(Op.CREATE), KEY_ID, VALUE_ID)
    with pytest.raises(DecodeError, match="create event without an after image"):
        codec.decode(key, value, lookup_for(codec))


def test_writer_schemas_are_looked_up_once_per_id(codec: EventCodec) -> None:
    calls: list[int] = []
    inner = lookup_for(codec)

    def counting(schema_id: int) -> Mapping[str, Any]:
        calls.append(schema_id)
        result: Mapping[str, Any] = inner(schema_id)
        return result

    for index in range(1, 4):
        key, value = codec.encode(event(Op.CREATE, after=citizen(), index=index), KEY_ID, VALUE_ID)
        codec.decode(key, value, counting)
    assert sorted(calls) == [KEY_ID, VALUE_ID]


def test_value_written_with_an_older_row_schema_decodes(contract: Contract) -> None:
    """A writer schema without the optional ``ethnicity`` field resolves against ours."""
    old_row = {
        **contract.row_schema,
        "fields": [f for f in contract.row_schema["fields"] if f["name"] != "ethnicity"],
    }
    old_contract = Contract(
        domain=contract.domain,
        entity=contract.entity,
        row_schema=old_row,
        key_schema=contract.key_schema,
        path=contract.path,
    )
    old_codec, new_codec = EventCodec(old_contract), EventCodec(contract)
    row = citizen()
    del row["ethnicity"]
    key, value = old_codec.encode(event(Op.CREATE, after=row), KEY_ID, 303)
    schemas = {KEY_ID: contract.key_schema, 303: old_codec.value_schema}
    decoded = new_codec.decode(key, value, schemas.__getitem__)
    assert decoded.after == {**row, "ethnicity": None}


# ---- property ----------------------------------------------------------------------------

_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)


@st.composite
def citizen_rows(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "personal_id": draw(st.text(st.characters(exclude_categories=("Cs",)), max_size=12)),
        "full_name": draw(_text),
        "date_of_birth": draw(st.dates(date(1900, 1, 1), date(2100, 12, 31))),
        "sex": draw(st.sampled_from(["nam", "nu"])),
        "ethnicity": draw(st.none() | _text),
        "province_code": draw(_text),
        "district_code": draw(_text),
        "ward_code": draw(_text),
        "updated_at": draw(
            st.datetimes(datetime(1900, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC))
        ),
    }


@settings(max_examples=150, deadline=None)
@given(
    row=citizen_rows(),
    op=st.sampled_from([Op.CREATE, Op.UPDATE, Op.READ]),
    index=st.integers(0, 2**31 - 1),
    txid=st.integers(0, 2**63 - 1),
    commit_time=st.datetimes(datetime(1900, 1, 1), datetime(2200, 1, 1), timezones=st.just(UTC)),
)
def test_any_citizen_row_round_trips(
    contract: Contract,
    row: dict[str, Any],
    op: Op,
    index: int,
    txid: int,
    commit_time: datetime,
) -> None:
    codec = EventCodec(contract)
    original = event(
        op,
        after=row,
        key=row["personal_id"],
        index=index,
        txid=txid,
        commit_time=commit_time,
    )
    assert round_trip(codec, original) == original


@settings(max_examples=50, deadline=None)
@given(before=citizen_rows())
def test_any_delete_round_trips(contract: Contract, before: dict[str, Any]) -> None:
    codec = EventCodec(contract)
    original = event(Op.DELETE, before=before, key=before["personal_id"])
    assert round_trip(codec, original) == original


def test_header_layout_is_big_endian() -> None:
    assert frame(1, b"") == struct.pack(">bI", 0, 1) == b"\x00\x00\x00\x00\x01"


def test_a_writer_with_a_column_the_contract_lacks_is_read_without_it(
    contract: Contract, codec: EventCodec
) -> None:
    """The connector registers a source's added column as a new version before reviewers
    change the contract; processors reading with the contract ignore the extra field."""
    from connectors.postgres.pgoutput import Column
    from connectors.postgres.schema_diff import diff

    columns = [Column(0, f["name"], 25, -1) for f in contract.row_schema["fields"]]
    columns = [c if c.name != "date_of_birth" else Column(0, c.name, 1082, -1) for c in columns]
    columns = [c if c.name != "updated_at" else Column(0, c.name, 1184, -1) for c in columns]
    evolved = diff(contract, [*columns, Column(0, "household_id", 20, -1)])
    assert evolved.added == ("household_id",) and not evolved.problems
    writer = EventCodec(dataclasses.replace(contract, row_schema=evolved.row_schema))
    original = event(Op.CREATE, after={**citizen(), "household_id": 77})
    key, value = writer.encode(original, KEY_ID, VALUE_ID + 1)
    schemas = {KEY_ID: contract.key_schema, VALUE_ID + 1: writer.value_schema}
    assert codec.decode(key, value, schemas.__getitem__) == event(Op.CREATE, after=citizen())
