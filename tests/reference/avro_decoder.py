"""The processor's Avro decoding as it was before its fast path: the whole envelope through
fastavro's schemaless reader with the contract's schema as reader, on every key and value. Kept
only for the tests that prove the fast path gives exactly the same events and errors."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import fastavro

from sync.contracts import EventCodec
from sync.contracts.serde import _UNDECODABLE, SchemaLookup, _brief, unframe
from sync.errors import DecodeError
from sync.types import ChangeEvent, Lsn, Op, Position, TableRef

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def reference_decode(
    codec: EventCodec, key: bytes | None, value: bytes | None, lookup: SchemaLookup
) -> ChangeEvent:
    """The event in a (key, value) message; writer schemas come from ``lookup(id)``."""
    record = _read(value, lookup, codec._value_parsed, "value")
    if not isinstance(record, dict) or "source" not in record:
        raise DecodeError("the value's schema does not describe a change event")
    if record.get("op") == Op.TRUNCATE.value:
        if key is not None:
            raise DecodeError("a truncate event with a key: it concerns no single row")
        key_record: Any = {}
    else:
        if key is None:
            raise DecodeError("a change event without a key (only a truncate has none)")
        key_record = _read(key, lookup, codec._key_parsed, "key")
        if not isinstance(key_record, dict):
            raise DecodeError("the key's schema does not describe a record")
    try:
        return _from_record(key_record, record)
    except _UNDECODABLE as exc:
        raise DecodeError(f"change event fields out of range: {_brief(exc)}") from exc


def _read(data: bytes | None, lookup: SchemaLookup, reader: Any, part: str) -> Any:
    schema_id, body = unframe(data)
    writer = fastavro.parse_schema(dict(lookup(schema_id)))
    try:
        return fastavro.schemaless_reader(io.BytesIO(body), writer, reader)
    except _UNDECODABLE as exc:
        raise DecodeError(
            f"Avro {part} does not decode with schema id {schema_id}: {_brief(exc)}"
        ) from exc


def _from_record(key: dict[str, Any], record: dict[str, Any]) -> ChangeEvent:
    source = record["source"]
    position = Position(Lsn(source["lsn"]), source["event_index"])
    try:
        op = Op(record["op"])
    except ValueError:
        raise DecodeError(f"unknown op {record['op']!r} in change event") from None
    before, after = record["before"], record["after"]
    if op is Op.TRUNCATE:
        if before is not None or after is not None:
            raise DecodeError("a truncate event with a row image")
    elif after is None and op is not Op.DELETE:
        raise DecodeError(f"a {op.name.lower()} event without an after image")
    return ChangeEvent(
        op=op,
        table=TableRef(source["schema"], source["table"]),
        key=key,
        before=before,
        after=after,
        position=position,
        txid=source["txId"] or 0,
        commit_time=_EPOCH + timedelta(microseconds=source["ts_us"]),
        event_id=ChangeEvent.make_event_id(
            source["name"], position, None if source["txId"] else key
        ),
        source=source["name"],
        tx_events=(record.get("transaction") or {}).get("event_counts") or {},
    )
