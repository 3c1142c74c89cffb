"""ChangeEvent <-> Confluent-framed Avro bytes.

The Confluent wire format is a zero magic byte, the schema id as a 4-byte big-endian integer,
then the Avro binary body. Decoding resolves the writer's schema (fetched by id) against our
reader schema.

Encoding, the connector's hot path, writes the envelope in pieces: the rows with a
:class:`~sync.contracts.row_writer.RowWriter`, and ``source`` and ``transaction`` from bytes
kept per transaction (only the event's index and the processing time differ between the events
of a transaction). A row the row writer leaves to fastavro sends the whole envelope through
fastavro's schemaless writer, which gives the same bytes and refuses what does not fit.

Decoding, the processor's hot path, compares each writer schema with the reader's once per
schema id. A value written with the reader's own envelope is read by
:class:`~sync.contracts.envelope_reader.EnvelopeReader` (the rows through fastavro, the rest by
hand, ``source`` once per transaction), a key of plain fields by hand; anything else goes
through fastavro's schema resolution.
"""

from __future__ import annotations

import io
import struct
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import fastavro
from fastavro.read import SchemaResolutionError
from fastavro.schema import SchemaParseException

from sync import __version__
from sync.contracts.envelope import envelope_schema
from sync.contracts.envelope_reader import (
    EnvelopeReader,
    SourceFields,
    plain_record_plan,
    read_plain_record,
)
from sync.contracts.loader import Contract
from sync.contracts.row_writer import LONG_MAX, LONG_MIN, RowWriter, avro_long, avro_string
from sync.errors import ContractError, DecodeError
from sync.temporal import Uncarried, install_avro_readers
from sync.types import ChangeEvent, Lsn, Op, Position, TableRef

MAGIC = 0
_HEADER = struct.Struct(">BI")
# what fastavro and datetime raise on bytes or schemas that do not fit: all mean undecodable
_UNDECODABLE = (
    EOFError,
    ValueError,
    TypeError,
    IndexError,
    KeyError,
    OverflowError,
    struct.error,
    SchemaResolutionError,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NULL, _SECOND = b"\x00", b"\x02"  # union branches 0 and 1
_OPS = {op.value: avro_string(op.value) for op in Op}
_OP_CODES = {op.value: op for op in Op}
_SOURCE_CACHE_SIZE = 4096  # transactions x tables whose source bytes are kept

SchemaLookup = Callable[[int], Mapping[str, Any]]


def frame(schema_id: int, body: bytes) -> bytes:
    return _HEADER.pack(MAGIC, schema_id) + body


def unframe(data: bytes | None) -> tuple[int, memoryview]:
    """Split Confluent-framed bytes into (schema id, Avro body)."""
    if data is None:
        raise DecodeError("empty message: a change event was expected, not a null value")
    if len(data) < _HEADER.size:
        raise DecodeError(f"message of {len(data)} bytes is shorter than the 5-byte header")
    magic, schema_id = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise DecodeError(f"wrong magic byte {magic} (Confluent wire format starts with 0)")
    return schema_id, memoryview(data)[_HEADER.size :]


class EventCodec:
    """Encodes and decodes one contract's events. Parsed schemas are built once."""

    def __init__(self, contract: Contract, *, source_db: str = "") -> None:
        self.contract = contract
        self.source_db = source_db
        self.value_schema = envelope_schema(contract)
        self._value_parsed = fastavro.parse_schema(self.value_schema)
        self._key_parsed = fastavro.parse_schema(contract.key_schema)
        self._writers: dict[int, Any] = {}
        self._resolutions: dict[tuple[int, str], tuple[Any, Any]] = {}
        install_avro_readers()  # dates and times beyond Python's range decode as they are carried
        row_parsed: Any = fastavro.parse_schema(dict(contract.row_schema))
        self._envelope_reader = EnvelopeReader(row_parsed)
        key_parsed: Any = self._key_parsed
        self._key_plan = plain_record_plan(key_parsed)
        self._shared: tuple[Any, ...] = (None,)
        # the row record exactly as fastavro parsed it inside the envelope (the before branch)
        envelope: Any = self._value_parsed
        self._row_writer = RowWriter(envelope["fields"][0]["type"][1])
        self._key_writer = RowWriter(self._key_parsed)
        self._sources: dict[tuple[Any, ...], tuple[bytes, bytes]] = {}
        self._counts: tuple[Mapping[str, int], dict[str, int], bytes] | None = None
        self._now: tuple[int, bytes] = (-1, b"")

    def encode(
        self,
        event: ChangeEvent,
        key_id: int,
        value_id: int,
        tx_events: Mapping[str, int] | None = None,
    ) -> tuple[bytes | None, bytes]:
        """(key bytes, value bytes) for ``event``, framed with the registered schema ids. A
        truncate concerns no one row: it has no key (None), as in Debezium. ``tx_events``, when
        given, stands for the event's own: the publisher counts a batch's transactions and
        passes the counts here rather than copying every event to hold them."""
        counts = event.tx_events if tx_events is None else tx_events
        try:
            key = None if event.op is Op.TRUNCATE else frame(key_id, self._key_bytes(event.key))
            value = self._envelope_bytes(event, value_id, counts)
            if value is None:
                record = self._to_record(event, counts)
                buf = io.BytesIO()
                fastavro.schemaless_writer(buf, self._value_parsed, record)
                value = frame(value_id, buf.getvalue())
        except Exception:  # noqa: BLE001 -- fastavro raises whatever the value makes it raise
            # fastavro's message quotes the whole row: name the field, never the values
            field, problem = self._misfit(event)
            raise ContractError(
                f"a change to {event.table} does not fit contract {self.contract.topic}: {problem}",
                contract=self.contract.topic,
                field=field,
            ) from None
        return key, value

    def _key_bytes(self, key: Mapping[str, Any]) -> bytes:
        written = self._key_writer.write(key)
        if written is None:
            buf = io.BytesIO()
            fastavro.schemaless_writer(buf, self._key_parsed, dict(key))
            written = buf.getvalue()
        return written

    def _envelope_bytes(
        self, event: ChangeEvent, value_id: int, counts: Mapping[str, int]
    ) -> bytes | None:
        """The framed value, or None when a row is left to fastavro (see the module's
        docstring). Writes what :meth:`_to_record` holds, field by field."""
        parts = [_HEADER.pack(MAGIC, value_id)]
        for row in (event.before, event.after):
            if row is None:
                parts.append(_NULL)
                continue
            written = self._row_writer.write(row)
            if written is None:
                return None
            parts += (_SECOND, written)
        source, txn_id = self._source_bytes(event)
        index = event.position.index
        parts += (source, avro_long(index), _OPS[event.op.value], self._processed_at())
        if event.op is Op.READ:
            parts.append(_NULL)  # no transaction
        else:
            order = _checked_long(index)  # total and data collection order alike
            parts += (_SECOND, txn_id, order, order)
            parts.append(self._counts_bytes(counts))
        return b"".join(parts)

    def _source_bytes(self, event: ChangeEvent) -> tuple[bytes, bytes]:
        """``source`` up to ``event_index`` and the transaction's id, the same for every event
        of a transaction in one table."""
        table = event.table
        snapshot = event.op is Op.READ
        at = (event.source, event.commit_time, snapshot, table.schema, table.name, event.txid)
        key = (*at, event.position.lsn)
        cached = self._sources.get(key)
        if cached is None:
            micros = (event.commit_time - _EPOCH) // timedelta(microseconds=1)
            txid = event.txid or None
            source = (
                avro_string(__version__),
                avro_string("postgresql"),
                avro_string(event.source),
                avro_long(micros // 1000),
                avro_long(micros),
                avro_string("true" if snapshot else "false"),
                avro_string(self.source_db),
                avro_string(table.schema),
                avro_string(table.name),
                _NULL if txid is None else _SECOND + _checked_long(txid),
                avro_long(int(event.position.lsn)),
            )
            cached = b"".join(source), avro_string(str(event.txid))
            if len(self._sources) >= _SOURCE_CACHE_SIZE:
                self._sources.clear()
            self._sources[key] = cached
        return cached

    def _counts_bytes(self, counts: Mapping[str, int]) -> bytes:
        """``event_counts``, kept while the events of one transaction share the mapping."""
        last = self._counts
        if last is not None and last[0] is counts and last[1] == counts:
            return last[2]
        items = dict(counts)
        if not all(isinstance(topic, str) for topic in items):
            raise TypeError("event counts by something else than a topic name")
        written = b"".join(avro_string(t) + _checked_long(n) for t, n in items.items())
        encoded = (avro_long(len(items)) + written + _NULL) if items else _NULL
        self._counts = (counts, items, encoded)
        return encoded

    def _processed_at(self) -> bytes:
        """The envelope's ``ts_ms``, now, as the nullable long it is."""
        now = int(time.time() * 1000)
        if now != self._now[0]:
            self._now = (now, _SECOND + avro_long(now))
        return self._now[1]

    def _misfit(self, event: ChangeEvent) -> tuple[str, str]:
        """(field name, what is wrong) for the first field of the row that does not fit, by
        name and Python type only."""
        for image in (event.after, event.before, event.key):
            for field in self.contract.row_schema["fields"]:
                name = field["name"]
                if image is None or name not in image:
                    continue
                value = image[name]
                if not _fits(value, field):
                    return name, f"field {name!r} cannot carry {_described(value)}"
        return "", "the key or the envelope does not fit"

    def decode(self, key: bytes | None, value: bytes | None, lookup: SchemaLookup) -> ChangeEvent:
        """The event in a (key, value) message; writer schemas come from ``lookup(id)``. A
        value written with the reader's own envelope is read by hand (see
        :mod:`~sync.contracts.envelope_reader`), any other through fastavro's resolution."""
        schema_id, body = unframe(value)
        assert value is not None  # unframe refuses None
        writer, reader = self._resolved(schema_id, lookup, "value")
        if reader is not None or type(value) is not bytes:
            record = self._read_body(body, schema_id, writer, reader)
            return self._decode_resolved(key, record, lookup)
        try:
            envelope = self._envelope_reader.read(value, _HEADER.size)
        except _UNDECODABLE as exc:
            raise DecodeError(
                f"Avro value does not decode with schema id {schema_id}: {_brief(exc)}"
            ) from exc
        before, after, source, index, op_text, counts = envelope
        key_record = self._key_of(key, op_text, lookup)
        try:
            return self._event(key_record, before, after, source, index, op_text, counts)
        except _UNDECODABLE as exc:
            raise DecodeError(f"change event fields out of range: {_brief(exc)}") from exc

    def _decode_resolved(self, key: bytes | None, record: Any, lookup: SchemaLookup) -> ChangeEvent:
        """The event from a value record fastavro read."""
        if not isinstance(record, dict) or "source" not in record:
            raise DecodeError("the value's schema does not describe a change event")
        key_record = self._key_of(key, record.get("op"), lookup)
        try:
            return self._from_record(key_record, record)
        except _UNDECODABLE as exc:
            raise DecodeError(f"change event fields out of range: {_brief(exc)}") from exc

    def _key_of(self, key: bytes | None, op: Any, lookup: SchemaLookup) -> Any:
        if op == Op.TRUNCATE.value:
            if key is not None:
                raise DecodeError("a truncate event with a key: it concerns no single row")
            return {}
        if key is None:
            raise DecodeError("a change event without a key (only a truncate has none)")
        schema_id, body = unframe(key)
        writer, reader = self._resolved(schema_id, lookup, "key")
        if reader is None and self._key_plan is not None and type(key) is bytes:
            try:
                return read_plain_record(self._key_plan, key, _HEADER.size)
            except _UNDECODABLE as exc:
                raise DecodeError(
                    f"Avro key does not decode with schema id {schema_id}: {_brief(exc)}"
                ) from exc
        key_record = self._read_body(body, schema_id, writer, reader, "key")
        if not isinstance(key_record, dict):
            raise DecodeError("the key's schema does not describe a record")
        return key_record

    def schema_ids(self, key: bytes | None, value: bytes | None) -> set[int]:
        """The schema ids a message refers to, to fetch them before decoding (a truncate has
        no key)."""
        parts = (value,) if key is None else (key, value)
        return {unframe(part)[0] for part in parts}

    def _read_body(
        self, body: memoryview, schema_id: int, writer: Any, reader: Any, part: str = "value"
    ) -> Any:
        try:
            return fastavro.schemaless_reader(io.BytesIO(body), writer, reader)
        except _UNDECODABLE as exc:
            raise DecodeError(
                f"Avro {part} does not decode with schema id {schema_id}: {_brief(exc)}"
            ) from exc

    def _resolved(self, schema_id: int, lookup: SchemaLookup, part: str) -> tuple[Any, Any]:
        """(parsed writer schema, reader schema) to read ``part`` written with ``schema_id``;
        the reader is None where it equals the writer (compared once per id, not per message,
        as fastavro would compare the two whole schemas on every read)."""
        found = self._resolutions.get((schema_id, part))
        if found is None:
            writer = self._writer(schema_id, lookup)
            reader = self._value_parsed if part == "value" else self._key_parsed
            found = (writer, None if writer == reader else reader)
            self._resolutions[(schema_id, part)] = found
        return found

    def _writer(self, schema_id: int, lookup: SchemaLookup) -> Any:
        if schema_id not in self._writers:
            writer = lookup(schema_id)  # its DecodeError names an unknown id
            try:
                self._writers[schema_id] = fastavro.parse_schema(dict(writer))
            except (*_UNDECODABLE, SchemaParseException, RecursionError) as exc:
                raise DecodeError(
                    f"schema id {schema_id} is not a usable Avro schema: {_brief(exc)}"
                ) from exc
        return self._writers[schema_id]

    def _event(
        self,
        key: dict[str, Any],
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        source: SourceFields,
        index: int,
        op_text: str,
        counts: dict[str, int] | None,
    ) -> ChangeEvent:
        """What :meth:`_from_record` makes of the same fields, with what every event of a
        transaction shares (its table, commit time and LSN) made once."""
        op = _OP_CODES.get(op_text)
        if op is None:
            raise DecodeError(f"unknown op {op_text!r} in change event")
        if op is Op.TRUNCATE:
            if before is not None or after is not None:
                raise DecodeError("a truncate event with a row image")
        elif after is None and op is not Op.DELETE:
            raise DecodeError(f"a {op.name.lower()} event without an after image")
        shared = self._shared
        if shared[0] is not source:
            name, schema, table, txid, lsn, ts_us = source
            commit_time = _EPOCH + timedelta(microseconds=ts_us)
            shared = self._shared = (source, TableRef(schema, table), commit_time, Lsn(lsn))
        position = Position(shared[3], index)
        name, txid = source[0], source[3]
        return ChangeEvent(
            op=op,
            table=shared[1],
            key=key,
            before=before,
            after=after,
            position=position,
            txid=txid or 0,
            commit_time=shared[2],
            event_id=ChangeEvent.make_event_id(name, position, None if txid else key),
            source=name,
            tx_events=counts or {},
        )

    def _to_record(
        self, event: ChangeEvent, tx_events: Mapping[str, int] | None = None
    ) -> dict[str, Any]:
        micros = (event.commit_time - _EPOCH) // timedelta(microseconds=1)
        snapshot = event.op is Op.READ
        return {
            "before": dict(event.before) if event.before is not None else None,
            "after": dict(event.after) if event.after is not None else None,
            "source": {
                "version": __version__,
                "connector": "postgresql",
                "name": event.source,
                "ts_ms": micros // 1000,
                "ts_us": micros,
                "snapshot": "true" if snapshot else "false",
                "db": self.source_db,
                "schema": event.table.schema,
                "table": event.table.name,
                "txId": event.txid or None,
                "lsn": int(event.position.lsn),
                "event_index": event.position.index,
            },
            "op": event.op.value,
            "ts_ms": int(time.time() * 1000),
            "transaction": None
            if snapshot
            else {
                "id": str(event.txid),
                "total_order": event.position.index,
                "data_collection_order": event.position.index,
                "event_counts": dict(event.tx_events if tx_events is None else tx_events),
            },
        }

    def _from_record(self, key: dict[str, Any], record: dict[str, Any]) -> ChangeEvent:
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
            # snapshot events (no transaction) share their position: the key tells them apart
            event_id=ChangeEvent.make_event_id(
                source["name"], position, None if source["txId"] else key
            ),
            source=source["name"],
            tx_events=(record.get("transaction") or {}).get("event_counts") or {},
        )


def _checked_long(value: Any) -> bytes:
    """A long inside a union, which fastavro validates before writing: an int, not a bool."""
    if not isinstance(value, int) or isinstance(value, bool) or not LONG_MIN <= value <= LONG_MAX:
        raise TypeError("not a long")
    return avro_long(value)


def _fits(value: Any, field: Mapping[str, Any]) -> bool:
    """Whether ``value`` encodes as ``field`` on its own."""
    one = {"type": "record", "name": "One", "fields": [{"name": "v", "type": field["type"]}]}
    try:
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, fastavro.parse_schema(one), {"v": value})
    except Exception:  # noqa: BLE001 -- any failure means it does not fit
        return False
    return True


def _described(value: Any) -> str:
    """What a value is, without what it says."""
    if isinstance(value, Uncarried):
        return value.reason
    if isinstance(value, Decimal) and not value.is_finite():
        return "a numeric NaN or infinity"
    return f"a {type(value).__name__}"


def _brief(exc: BaseException) -> str:
    """What went wrong in a line: fastavro's resolution errors quote both whole schemas."""
    if isinstance(exc, SchemaResolutionError):
        return "the writer's schema does not resolve against the contract's"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:160]}" if text else type(exc).__name__
