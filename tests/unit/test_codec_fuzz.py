"""Fuzzing the processor's decoder: whatever bytes a topic holds -- random, or real change
events truncated, flipped, spliced or framed with another schema -- ``EventCodec.decode``
either returns a change event or raises :class:`DecodeError`. Nothing else may escape: one
message must never crash a worker that hosts up to 85 agencies."""

from __future__ import annotations

import io
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync.contracts import Contract, EventCodec, load_contracts
from sync.errors import DecodeError
from sync.temporal import parse_date, parse_time, parse_timestamp, parse_timestamptz
from sync.types import ChangeEvent, Lsn, Op, Position, TableRef

TYPES = Path(__file__).parent.parent / "fixtures" / "contracts_types"
SCHEMAS = Path(__file__).parent.parent.parent / "schemas" / "avro"
KEY_ID, VALUE_ID, OTHER_KEY_ID, OTHER_VALUE_ID = 1, 2, 3, 4


def _contracts() -> tuple[Contract, Contract]:
    return (
        load_contracts(TYPES)["typecheck.sample"],
        load_contracts(SCHEMAS)["population.citizen"],
    )


SAMPLE, CITIZEN = _contracts()
CODEC = EventCodec(SAMPLE)
WRITERS: dict[int, Mapping[str, Any]] = {
    KEY_ID: SAMPLE.key_schema,
    VALUE_ID: CODEC.value_schema,
    OTHER_KEY_ID: CITIZEN.key_schema,
    OTHER_VALUE_ID: EventCodec(CITIZEN).value_schema,
}


def lookup(schema_id: int) -> Mapping[str, Any]:
    """As the processor's schema cache: an unknown id is a DecodeError."""
    try:
        return WRITERS[schema_id]
    except KeyError:
        raise DecodeError(f"unknown schema id {schema_id}") from None


def _event(op: Op, row: dict[str, Any] | None) -> ChangeEvent:
    return ChangeEvent(
        op=op,
        table=TableRef("public", "sample"),
        key={} if op is Op.TRUNCATE else {"id": 7},
        before=None,
        after=row,
        position=Position(Lsn(0x16B374D848), 3),
        txid=901,
        commit_time=datetime(2026, 12, 2, tzinfo=UTC),
        event_id="typecheck:00000016B374D848:3",
        source="typecheck",
        tx_events={"typecheck.sample": 3},
    )


def _row() -> dict[str, Any]:
    row: dict[str, Any] = {f["name"]: None for f in SAMPLE.row_schema["fields"]}
    row.update(
        id=7,
        t_text="Thừa Thiên Huế",
        t_int8=-(2**63),
        t_double=float("nan"),
        t_date=parse_date("infinity"),
        t_time=parse_time("24:00:00"),
        t_timestamp=parse_timestamp("0044-03-15 12:00:00 BC"),
        t_timestamptz=parse_timestamptz("2024-06-30 17:00:00+07"),
        t_text_array=["a", None],
        t_int_array=[1, None],
    )
    return row


REAL: list[tuple[bytes | None, bytes]] = [
    CODEC.encode(_event(Op.CREATE, _row()), KEY_ID, VALUE_ID),
    CODEC.encode(_event(Op.DELETE, None), KEY_ID, VALUE_ID),
    CODEC.encode(_event(Op.TRUNCATE, None), KEY_ID, VALUE_ID),
]


def decode_or_refuse(key: bytes | None, value: bytes | None) -> None:
    try:
        event = CODEC.decode(key, value, lookup)
    except DecodeError as exc:
        assert str(exc)  # says what was wrong
    else:
        assert isinstance(event, ChangeEvent) and isinstance(event.op, Op)


def test_the_real_messages_decode() -> None:
    for key, value in REAL:
        assert CODEC.decode(key, value, lookup).source == "typecheck"


@settings(max_examples=300)
@given(st.none() | st.binary(max_size=64), st.none() | st.binary(max_size=256))
def test_random_bytes(key: bytes | None, value: bytes | None) -> None:
    decode_or_refuse(key, value)


@settings(max_examples=300)
@given(
    st.binary(max_size=200),
    st.sampled_from([KEY_ID, VALUE_ID, OTHER_KEY_ID, OTHER_VALUE_ID, 99]),
    st.sampled_from([KEY_ID, VALUE_ID, OTHER_KEY_ID, OTHER_VALUE_ID, 99]),
)
def test_random_bodies_behind_valid_headers(body: bytes, key_id: int, value_id: int) -> None:
    header = bytes([0])
    decode_or_refuse(
        header + key_id.to_bytes(4, "big") + body[:16],
        header + value_id.to_bytes(4, "big") + body,
    )


@st.composite
def mutated(draw: st.DrawFn) -> tuple[bytes | None, bytes]:
    key, value = draw(st.sampled_from(REAL))
    data = bytearray(value)
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "delete", "swap_id"]))
        where = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[where] ^= 1 << draw(st.integers(0, 7))
        elif kind == "cut":
            del data[where:]
        elif kind == "insert":
            data[where:where] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete" and data:
            del data[where : where + draw(st.integers(1, 8))]
        elif kind == "swap_id" and len(data) >= 5:
            data[1:5] = draw(st.sampled_from([KEY_ID, OTHER_VALUE_ID, 99])).to_bytes(4, "big")
    return key, bytes(data)


@settings(max_examples=1000)
@given(mutated())
def test_mutated_real_events(message: tuple[bytes | None, bytes]) -> None:
    decode_or_refuse(*message)


@pytest.mark.parametrize("ts_us", [2**63 - 1, -(2**63)])
def test_a_truncate_whose_commit_time_overflows_is_refused(ts_us: int) -> None:
    """The malformed truncate that once crashed the worker: its commit time is out of range."""
    event = _event(Op.TRUNCATE, None)
    _, value = CODEC.encode(event, KEY_ID, VALUE_ID)
    record = CODEC.decode(None, value, lookup)
    assert record.op is Op.TRUNCATE
    body = dict(CODEC._to_record(event))
    body["source"] = {**body["source"], "ts_us": ts_us}
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(CODEC.value_schema), body)
    with pytest.raises(DecodeError, match="out of range"):
        CODEC.decode(None, bytes([0]) + VALUE_ID.to_bytes(4, "big") + buf.getvalue(), lookup)
