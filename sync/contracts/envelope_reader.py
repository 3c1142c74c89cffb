"""Reading the change-event envelope by hand, when the writer's schema is the reader's own.

fastavro reads a whole envelope as nested dicts, and the processor only wants the rows, a few
``source`` fields, the op and the transaction's counts. Here the envelope is read field by
field; so are rows of strings, ints and longs (the logical types' values through fastavro's own
readers, with govsync's far dates), and any other row goes through fastavro.

``source`` and ``event_counts`` are the same bytes for every event of a transaction in one
table, so each is decoded once: the bytes read last are kept, and a message whose bytes at that
place start with them holds the same values (Avro's binary encoding of a record is
self-delimiting, so a prefix that decodes as a whole record is that record).

Only valid for a writer schema equal to :func:`~sync.contracts.envelope.envelope_schema` of the
reader's contract: any other writer is read by fastavro with schema resolution. Malformed bytes
raise what fastavro raises for them (``EOFError``, ``IndexError``, ``ValueError``...), which the
codec turns into a :class:`~sync.errors.DecodeError`.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from typing import Any

import fastavro
from fastavro.read import LOGICAL_READERS

# name, schema, table, txId, lsn, ts_us: what a change event takes from ``source``
SourceFields = tuple[str, str, str, int | None, int, int]
# before, after, source, event_index, op, event_counts (None without a transaction block)
Envelope = tuple[
    dict[str, Any] | None, dict[str, Any] | None, SourceFields, int, str, dict[str, int] | None
]
_PLAIN = ("string", "long", "int")  # field types a plain record plan reads by hand


def read_long(data: bytes, pos: int) -> tuple[int, int]:
    """A zig-zag varint (Avro's int and long) at ``pos``: (value, position after it)."""
    byte = data[pos]
    pos += 1
    value = byte & 0x7F
    shift = 7
    while byte & 0x80:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
    return (value >> 1) ^ -(value & 1), pos


def read_string(data: bytes, pos: int) -> tuple[str, int]:
    size, pos = read_long(data, pos)
    end = pos + size
    if size < 0 or end > len(data):
        raise EOFError(f"a string of {size} bytes where {len(data) - pos} remain")
    return data[pos:end].decode(), end


def _read_nullable_long(data: bytes, pos: int) -> tuple[int | None, int]:
    branch, pos = read_long(data, pos)
    if branch == 0:
        return None, pos
    if branch != 1:
        raise IndexError(f"union branch {branch} of a nullable long")
    return read_long(data, pos)


def _read_counts(data: bytes, pos: int) -> tuple[dict[str, int], int]:
    """A map of longs, in blocks as Avro writes them (a negative count carries a byte size)."""
    counts: dict[str, int] = {}
    block, pos = read_long(data, pos)
    while block:
        if block < 0:
            block = -block
            _, pos = read_long(data, pos)
        for _ in range(block):
            topic, pos = read_string(data, pos)
            counts[topic], pos = read_long(data, pos)
        block, pos = read_long(data, pos)
    return counts, pos


# how a row field is read by hand: name, "string" or "long" (Avro int or long alike), nullable
# (the union ["null", type]), and the logical type's reader fastavro would call, if any
_FieldPlan = tuple[str, str, bool, Callable[[Any, Any, Any], Any] | None, Any]


def row_plan(row: Mapping[str, Any]) -> tuple[_FieldPlan, ...] | None:
    """How to read a row whose fields are all strings, ints or longs (nullable or not, with a
    logical type or not) by hand; None for any other row, which fastavro reads. The logical
    types' readers are fastavro's own (with govsync's far dates installed), so a value reads
    exactly as fastavro reads it."""
    plan = []
    for field in row["fields"]:
        kind, nullable = field["type"], False
        if isinstance(kind, list):
            if len(kind) != 2 or kind[0] != "null":
                return None
            kind, nullable = kind[1], True
        schema, logical = kind, None
        if isinstance(kind, dict):
            kind = kind.get("type")
            if "logicalType" in schema:
                logical = LOGICAL_READERS.get(f"{kind}-{schema['logicalType']}")
        if kind not in _PLAIN:
            return None
        plan.append(
            (field["name"], "string" if kind == "string" else "long", nullable, logical, schema)
        )
    return tuple(plan)


def _read_planned(
    plan: tuple[_FieldPlan, ...], data: bytes, pos: int
) -> tuple[dict[str, Any], int]:
    """:func:`read_long` and :func:`read_string` inlined for one-byte varints (small numbers,
    strings under 64 bytes, union branches): the processor's hottest loop."""
    row: dict[str, Any] = {}
    for name, kind, nullable, logical, schema in plan:
        if nullable:
            byte = data[pos]
            if byte == 0:
                row[name] = None
                pos += 1
                continue
            if byte == 2:
                pos += 1
            else:
                branch, pos = read_long(data, pos)
                if branch == 0:
                    row[name] = None
                    continue
                if branch != 1:
                    raise IndexError(f"union branch {branch} of a nullable field")
        byte = data[pos]
        if byte < 0x80:
            pos += 1
            number = (byte >> 1) ^ -(byte & 1)
        else:
            number, pos = read_long(data, pos)
        value: Any = number
        if kind == "string":
            end = pos + number
            if number < 0 or end > len(data):
                raise EOFError(f"a string of {number} bytes where {len(data) - pos} remain")
            value, pos = data[pos:end].decode(), end
        row[name] = value if logical is None else logical(value, schema, None)
    return row, pos


class EnvelopeReader:
    """Reads envelopes of one contract: ``row`` is the contract's row schema, parsed (with
    govsync's readers of far dates installed first)."""

    def __init__(self, row: Mapping[str, Any]) -> None:
        self._row = row
        self._plan = row_plan(row)
        self._source: tuple[bytes, SourceFields] = (b"", ("", "", "", None, 0, 0))
        self._counts: tuple[bytes, dict[str, int]] = (b"", {})

    def read(self, data: bytes, pos: int) -> Envelope:
        """The envelope whose Avro body starts at ``pos`` of ``data``."""
        rows: list[dict[str, Any] | None] = []
        for _ in range(2):  # before, after
            branch, pos = read_long(data, pos)
            if branch == 0:
                rows.append(None)
                continue
            if branch != 1:
                raise IndexError(f"union branch {branch} of a row image")
            row, pos = self.read_row(data, pos)
            rows.append(row)
        source, pos = self._read_source(data, pos)
        index, pos = read_long(data, pos)
        op, pos = read_string(data, pos)
        _, pos = _read_nullable_long(data, pos)  # ts_ms: when it was processed, unused here
        branch, pos = read_long(data, pos)
        counts = None
        if branch == 1:
            _, pos = read_string(data, pos)  # id, the same as source.txId
            _, pos = read_long(data, pos)  # total_order, the same as event_index
            _, pos = read_long(data, pos)  # data_collection_order, likewise
            counts = self._read_counts(data, pos)
        elif branch != 0:
            raise IndexError(f"union branch {branch} of the transaction block")
        return rows[0], rows[1], source, index, op, counts

    def read_row(self, data: bytes, pos: int) -> tuple[dict[str, Any], int]:
        """The row record at ``pos``: (row, position after it)."""
        if self._plan is not None:
            return _read_planned(self._plan, data, pos)
        stream = io.BytesIO(data)
        stream.seek(pos)
        row = fastavro.schemaless_reader(stream, self._row)  # type: ignore[arg-type]
        return row, stream.tell()  # type: ignore[return-value]

    def _read_source(self, data: bytes, pos: int) -> tuple[SourceFields, int]:
        """``source`` up to ``event_index``, decoded once per transaction and table."""
        known, fields = self._source
        if known and data.startswith(known, pos):
            return fields, pos + len(known)
        start = pos
        _, pos = read_string(data, pos)  # version
        _, pos = read_string(data, pos)  # connector
        name, pos = read_string(data, pos)
        _, pos = read_long(data, pos)  # ts_ms, the same instant as ts_us
        ts_us, pos = read_long(data, pos)
        _, pos = read_string(data, pos)  # snapshot
        _, pos = read_string(data, pos)  # db
        schema, pos = read_string(data, pos)
        table, pos = read_string(data, pos)
        txid, pos = _read_nullable_long(data, pos)
        lsn, pos = read_long(data, pos)
        fields = (name, schema, table, txid, lsn, ts_us)
        self._source = (data[start:pos], fields)
        return fields, pos

    def _read_counts(self, data: bytes, pos: int) -> dict[str, int]:
        """``event_counts``, decoded once per transaction; every event gets its own dict."""
        known, counts = self._counts
        if not (known and data.startswith(known, pos)):
            counts, end = _read_counts(data, pos)
            self._counts = (data[pos:end], counts)
        return dict(counts)


def plain_record_plan(parsed: Mapping[str, Any]) -> tuple[tuple[str, str], ...] | None:
    """(name, type) of each field of a record whose fields are all strings, ints or longs
    without a logical type (most keys), to read by hand; None for any other schema."""
    fields = parsed.get("fields") if parsed.get("type") == "record" else None
    if not fields or not all(f.get("type") in _PLAIN for f in fields):
        return None
    return tuple((f["name"], f["type"]) for f in fields)


def read_plain_record(plan: tuple[tuple[str, str], ...], data: bytes, pos: int) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for name, kind in plan:
        if kind == "string":
            record[name], pos = read_string(data, pos)
        else:
            record[name], pos = read_long(data, pos)
    return record
