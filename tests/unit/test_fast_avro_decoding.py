"""The processor's fast Avro decoding gives exactly the events the reference decoder (the code
before it, in ``tests/reference``) gives, and refuses what it refuses with the same error: rows
of every type and edge value, every op, many transactions through one codec, writers other than
the reader's own envelope, and envelopes whose fields do not make a change event."""

from __future__ import annotations

import copy
import io
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import fastavro
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.contracts import Contract, EventCodec, frame
from sync.contracts.envelope_reader import EnvelopeReader, row_plan
from sync.errors import ContractError, DecodeError
from sync.types import ChangeEvent, Lsn, Op, Position, TableRef
from tests.reference.avro_decoder import reference_decode
from tests.reference.compare import assert_same_events
from tests.unit.test_fast_encoding import (
    CITIZEN,
    FEWER,
    MANY,
    SAMPLE,
    events,
    fastavro_bytes,
    field_types,
    value_for,
)

KEY_ID, VALUE_ID, OLD_KEY_ID, OLD_VALUE_ID = 21, 22, 23, 24


def writers(contract: Contract) -> dict[int, Mapping[str, Any]]:
    """The contract's own schemas, and others a writer may have used: an envelope whose row has
    a column the contract lacks (skipped when reading), a key with another doc."""
    value = EventCodec(contract).value_schema
    old = copy.deepcopy(value)
    row = old["fields"][0]["type"][1]
    row["fields"] = [f for f in row["fields"] if f["name"] != "extra"] + [
        {"name": "extra", "type": ["null", "string"], "default": None, "doc": "Gone since."}
    ]
    old_key = copy.deepcopy(contract.key_schema)
    old_key["doc"] = "An older writer's key, with another doc."
    return {KEY_ID: contract.key_schema, VALUE_ID: value, OLD_KEY_ID: old_key, OLD_VALUE_ID: old}


WRITERS = {contract.topic: writers(contract) for contract in (SAMPLE, CITIZEN)}


def decoded(decode: Any, codec: EventCodec, key: bytes | None, value: bytes) -> object:
    schemas = WRITERS[codec.contract.topic]
    try:
        return [decode(codec, key, value, schemas.__getitem__)]
    except DecodeError as exc:
        return ("refused", str(exc))


def fast_decode(codec: EventCodec, key: bytes | None, value: bytes, lookup: Any) -> ChangeEvent:
    return codec.decode(key, value, lookup)


def assert_decodes_as_the_reference(codec: EventCodec, key: bytes | None, value: bytes) -> None:
    new = decoded(fast_decode, codec, key, value)
    old = decoded(reference_decode, EventCodec(codec.contract), key, value)
    if isinstance(old, tuple) or isinstance(new, tuple):
        assert new == old
    else:
        assert isinstance(new, list) and isinstance(old, list)
        assert_same_events(new, old)


def encoded(event: ChangeEvent, key_id: int = KEY_ID, value_id: int = VALUE_ID) -> Any:
    """The event's message, or None when the event does not fit its contract."""
    try:
        return EventCodec(SAMPLE if event.table.name == "sample" else CITIZEN).encode(
            event, key_id, value_id
        )
    except ContractError:
        return None


@MANY
@given(events(SAMPLE))
def test_every_type_decodes_as_the_reference_decodes_it(event: ChangeEvent) -> None:
    message = encoded(event)
    if message is not None:
        assert_decodes_as_the_reference(EventCodec(SAMPLE), *message)


@MANY
@given(events(CITIZEN))
def test_citizens_decode_as_the_reference_decodes_them(event: ChangeEvent) -> None:
    message = encoded(event)
    if message is not None:
        assert_decodes_as_the_reference(EventCodec(CITIZEN), *message)


@MANY
@given(st.lists(field_types, min_size=1, max_size=5).flatmap(
    lambda types: st.tuples(st.just(types), st.tuples(*(value_for(t, odd=False) for t in types)))
))  # fmt: skip
def test_rows_read_by_hand_read_as_fastavro_reads_them(
    drawn: tuple[list[Any], tuple[Any, ...]],
) -> None:
    """Rows of strings, ints and longs (nullable, with a logical type) are read by hand,
    others by fastavro: either way as fastavro reads the row."""
    types, values = drawn
    EventCodec(SAMPLE)  # installs govsync's readers of far dates, as every codec does
    fields = [{"name": f"f{i}", "type": copy.deepcopy(t)} for i, t in enumerate(types)]
    schema = fastavro.parse_schema({"type": "record", "name": "R", "fields": fields})
    row = {f"f{i}": value for i, value in enumerate(values)}
    try:
        body = fastavro_bytes(schema, row)
    except Exception:  # noqa: BLE001 -- a value the type does not carry: nothing to read
        return
    expected = fastavro.schemaless_reader(io.BytesIO(body), schema)  # type: ignore[arg-type]
    plain = all(_kind(t) in ("string", "int", "long") for t in types)
    assert (row_plan(schema) is not None) == plain
    read, end = EnvelopeReader(schema).read_row(body, 0)
    assert end == len(body)
    assert_same_events([_with(read)], [_with(expected)])


def _kind(schema: Any) -> str:
    if isinstance(schema, list):
        return _kind(schema[1]) if len(schema) == 2 and schema[0] == "null" else "union"
    return str(schema["type"] if isinstance(schema, dict) else schema)


def _with(row: Any) -> ChangeEvent:
    """``row`` as an event's after image, to compare it with the reference's sameness."""
    return ChangeEvent(
        op=Op.CREATE,
        table=TableRef("public", "r"),
        key={},
        before=None,
        after=row,
        position=Position(Lsn(1), 1),
        txid=1,
        commit_time=datetime(2026, 1, 1, tzinfo=UTC),
        event_id="",
        source="",
    )


@FEWER
@given(st.lists(events(SAMPLE), min_size=2, max_size=12))
def test_one_codec_decodes_a_stream_as_the_reference_decodes_each_event(
    stream: list[ChangeEvent],
) -> None:
    """What the codec keeps from one event to the next (``source``, the counts, the commit
    time) never leaks into an event of another transaction."""
    codec = EventCodec(SAMPLE)
    for event in stream:
        message = encoded(event)
        if message is not None:
            assert_decodes_as_the_reference(codec, *message)


@FEWER
@given(events(SAMPLE), st.sampled_from([(KEY_ID, OLD_VALUE_ID), (OLD_KEY_ID, VALUE_ID)]))
def test_other_writers_are_resolved_as_the_reference_resolves_them(
    event: ChangeEvent, ids: tuple[int, int]
) -> None:
    """A value or key written with another schema goes through fastavro's resolution."""
    message = encoded(event, *ids)
    if message is not None:
        codec = EventCodec(SAMPLE)
        assert_decodes_as_the_reference(codec, *message)
        assert_decodes_as_the_reference(codec, *message)  # the writer's resolution now known


def _envelope(codec: EventCodec, event: ChangeEvent, **changes: Any) -> bytes:
    record = codec._to_record(event)
    record.update(changes)
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, codec._value_parsed, record)
    return frame(VALUE_ID, buf.getvalue())


ROW = {f["name"]: None for f in SAMPLE.row_schema["fields"]} | {"id": 7}


@pytest.mark.parametrize(
    ("changes", "with_key"),
    [
        ({"op": "x"}, True),  # an op this reader does not know
        ({"op": "t"}, True),  # a truncate with a key
        ({"op": "t", "after": ROW}, False),  # a truncate with a row image
        ({"op": "c", "after": None}, True),  # a create without an after image
        ({"op": "c"}, False),  # a change without a key
        ({"op": "u", "source": None}, True),  # fields out of range: set below
    ],
    ids=["unknown-op", "truncate-key", "truncate-image", "no-after", "no-key", "far-commit"],
)
def test_envelopes_that_make_no_change_event_are_refused_alike(
    changes: dict[str, Any], with_key: bool
) -> None:
    codec = EventCodec(SAMPLE)
    event = ChangeEvent(
        op=Op.UPDATE,
        table=TableRef("public", "sample"),
        key={"id": 7},
        before=None,
        after=ROW,
        position=Position(Lsn(9), 1),
        txid=5,
        commit_time=datetime(2026, 1, 1, tzinfo=UTC),
        event_id="x",
        source="typecheck",
    )
    if changes.get("source", 1) is None:
        changes["source"] = {**codec._to_record(event)["source"], "ts_us": 2**63 - 1}
    key, _ = codec.encode(event, KEY_ID, VALUE_ID)
    value = _envelope(codec, event, **changes)
    assert_decodes_as_the_reference(codec, key if with_key else None, value)
    refused = decoded(fast_decode, codec, key if with_key else None, value)
    assert isinstance(refused, tuple)


def test_every_event_of_a_transaction_gets_its_own_counts() -> None:
    """The counts are decoded once per transaction, but no two events share the dict."""
    codec = EventCodec(SAMPLE)
    first, second = (
        _decoded_with_counts(codec, index, {SAMPLE.topic: 2, "other.topic": 5}) for index in (1, 2)
    )
    assert first.tx_events == second.tx_events == {SAMPLE.topic: 2, "other.topic": 5}
    assert first.tx_events is not second.tx_events
    assert first.table is second.table and first.commit_time == second.commit_time


def _decoded_with_counts(codec: EventCodec, index: int, counts: dict[str, int]) -> ChangeEvent:
    event = ChangeEvent(
        op=Op.CREATE,
        table=TableRef("public", "sample"),
        key={"id": index},
        before=None,
        after=ROW | {"id": index},
        position=Position(Lsn(0x16B374D848), index),
        txid=901,
        commit_time=datetime(2026, 12, 2, tzinfo=UTC),
        event_id="",
        source="typecheck",
        tx_events=counts,
    )
    key, value = codec.encode(event, KEY_ID, VALUE_ID)
    return codec.decode(key, value, WRITERS[SAMPLE.topic].__getitem__)


@pytest.mark.parametrize("contract", [CITIZEN, SAMPLE], ids=["citizen", "sample"])
def test_the_benchmark_workloads_decode_as_the_reference_decodes_them(contract: Contract) -> None:
    from bench.processor_stages import messages_of

    codec, reference = EventCodec(contract), EventCodec(contract)
    lookup = WRITERS[contract.topic].__getitem__
    messages = messages_of(contract, 600, 100, KEY_ID, VALUE_ID)
    new = [codec.decode(key, value, lookup) for key, value in messages]
    old = [reference_decode(reference, key, value, lookup) for key, value in messages]
    assert_same_events(new, old)
