"""Avro binary encoding of a contract's rows without fastavro's per-value dispatch.

:class:`RowWriter` is built once per record schema (as fastavro parsed it) and writes a row's
fields with one small function per field. It takes only what it is sure fastavro would accept
and write byte for byte the same: values of the exact Python types a decoded change holds
(``str``, ``int``, ``float``, ``bool``, ``bytes``, lists), after fastavro's own logical-type
conversions (``fastavro.write.LOGICAL_WRITERS``: dates, timestamps, times, decimals, uuids).
For anything else -- another type, a value out of range, a missing field -- :meth:`RowWriter.write`
returns None and the caller hands the row to fastavro, which validates and writes it (or refuses
it) as it always did. A schema with a type the writer does not know (records, maps, enums,
fixed, unions other than ``["null", T]``) gets no fast path at all.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from typing import Any, Final

from fastavro.write import LOGICAL_WRITERS

INT_MIN: Final = -(2**31)
INT_MAX: Final = 2**31 - 1
LONG_MIN: Final = -(2**63)
LONG_MAX: Final = 2**63 - 1

_ONE_BYTE: Final = [bytes([n]) for n in range(128)]
_F32: Final = struct.Struct("<f").pack
_F64: Final = struct.Struct("<d").pack
_NULL: Final = b"\x00"  # union branch 0
_SECOND: Final = b"\x02"  # union branch 1

FieldWriter = Callable[[Any], bytes]


class _NotFast(Exception):
    """A value the fast path leaves to fastavro."""


def avro_long(n: int) -> bytes:
    """An Avro int or long: zig-zag, then 7 bits a byte, low bits first. OverflowError beyond
    64 bits, as fastavro raises."""
    if not LONG_MIN <= n <= LONG_MAX:
        raise OverflowError("beyond an Avro long")
    n = (n << 1) ^ (n >> 63)
    if n < 0x80:
        return _ONE_BYTE[n]
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def avro_string(text: str) -> bytes:
    encoded = text.encode()
    size = len(encoded)
    return (_ONE_BYTE[size << 1] if size < 0x40 else avro_long(size)) + encoded


def _string(value: Any) -> bytes:
    if not isinstance(value, str):
        raise _NotFast
    return avro_string(value)


def _bytes(value: Any) -> bytes:
    if not isinstance(value, bytes | bytearray):
        raise _NotFast
    return avro_long(len(value)) + bytes(value)


def _boolean(value: Any) -> bytes:
    if value is True:
        return b"\x01"
    if value is False:
        return b"\x00"
    raise _NotFast


def _integer(low: int, high: int) -> FieldWriter:
    def write(value: Any) -> bytes:
        # fastavro's validation: an int, not a bool, in range
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise _NotFast
        return avro_long(value)

    return write


def _real(pack: Callable[[float], bytes]) -> FieldWriter:
    def write(value: Any) -> bytes:
        if type(value) is not float:  # fastavro also takes ints, converted: left to it
            raise _NotFast
        return pack(value)  # OverflowError for a float beyond float32: left to fastavro

    return write


def _null(value: Any) -> bytes:
    if value is not None:
        raise _NotFast
    return b""


_PRIMITIVES: Final[dict[str, FieldWriter]] = {
    "null": _null,
    "boolean": _boolean,
    "int": _integer(INT_MIN, INT_MAX),
    "long": _integer(LONG_MIN, LONG_MAX),
    "float": _real(_F32),
    "double": _real(_F64),
    "bytes": _bytes,
    "string": _string,
}


def _logical(prepare: Callable[[Any, Any], Any], schema: Any, base: FieldWriter) -> FieldWriter:
    def write(value: Any) -> bytes:
        return base(prepare(value, schema))  # fastavro converts with the same function

    return write


def _nullable(inner: FieldWriter) -> FieldWriter:
    def write(value: Any) -> bytes:
        return _NULL if value is None else _SECOND + inner(value)

    return write


def _array(item: FieldWriter) -> FieldWriter:
    def write(value: Any) -> bytes:
        if type(value) is not list:
            raise _NotFast
        if not value:
            return b"\x00"
        return avro_long(len(value)) + b"".join([item(v) for v in value]) + b"\x00"

    return write


def field_writer(schema: Any) -> FieldWriter | None:
    """The writer of values of ``schema`` (a parsed field type), or None for a type the fast
    path does not handle."""
    if isinstance(schema, str):
        return _PRIMITIVES.get(schema)  # a named type's reference is not handled
    if isinstance(schema, list):
        if len(schema) == 2 and schema[0] == "null" and not isinstance(schema[1], list):
            inner = field_writer(schema[1])
            return _nullable(inner) if inner is not None else None
        return None
    if not isinstance(schema, dict):
        return None
    kind = schema.get("type")
    if kind == "array":
        item = field_writer(schema.get("items"))
        return _array(item) if item is not None else None
    base = _PRIMITIVES.get(kind) if isinstance(kind, str) else None
    if base is None:
        return None
    logical = schema.get("logicalType")
    prepare = LOGICAL_WRITERS.get(f"{kind}-{logical}") if logical else None
    return _logical(prepare, schema, base) if prepare is not None else base


class RowWriter:
    """Writes rows of one record schema, as parsed by ``fastavro.parse_schema``."""

    __slots__ = ("_fields",)

    def __init__(self, record: Any) -> None:
        fields = [(field["name"], field_writer(field["type"])) for field in record["fields"]]
        self._fields: list[tuple[str, FieldWriter]] | None = (
            [(name, writer) for name, writer in fields if writer is not None]
            if all(writer is not None for _, writer in fields)
            else None
        )

    @property
    def fast(self) -> bool:
        """Whether the schema has a fast path at all."""
        return self._fields is not None

    def write(self, row: Mapping[str, Any]) -> bytes | None:
        """The row's Avro bytes, or None: fastavro must decide (see the module docstring)."""
        if self._fields is None:
            return None
        try:
            return b"".join([writer(row[name]) for name, writer in self._fields])
        except Exception:  # noqa: BLE001 -- whatever it is, fastavro validates and reports it
            return None
