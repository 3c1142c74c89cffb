"""PostgreSQL's text output of built-in types, turned into Python values.

pgoutput sends column values in the text format of each type's output function, the same text
``psql`` shows. :func:`convert_text` maps that text to the natural Python value for the built-in
types the contracts use, chosen by type oid from one table, and to a list for one-dimensional
arrays of them. Text of any other type is returned unchanged, so a new column type never stops
capture; the contract layer decides whether it fits.

Assumptions about the decoding session, which the connector sets: ``DateStyle`` is ``ISO``
(PostgreSQL's default) and ``bytea_output`` is ``hex`` (``escape`` is understood too).
``timestamptz`` values may arrive in any UTC offset, including the ``+00:17:30`` of old local
mean times; they are returned in UTC.

Values PostgreSQL holds but Python's ``date``/``time``/``datetime`` cannot -- ``infinity``,
``-infinity``, years before 1 AD (``BC``) or after 9999, ``24:00:00`` -- become the
:mod:`sync.temporal` values the contracts carry them as. Text that does not parse as its type,
or a value no contract type can carry, becomes :class:`~sync.temporal.Uncarried`: capture is
not the place to refuse a committed row, and one bad value must not stop a whole batch. The
contract layer refuses to encode it, naming the field, and the connector dead-letters that one
change. Messages never quote the text: column values are personal data.

:class:`TupleLoader` is the connector's fast path to the same values: it converts the raw bytes
of a whole tuple in one call of psycopg's C loaders and falls back, value by value, to
:func:`read_text` for whatever those loaders cannot read or would read differently.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC
from decimal import Decimal
from typing import Any, Final

from psycopg.adapt import AdaptersMap, Transformer
from psycopg.pq import Format
from psycopg.types.datetime import DateLoader, TimeLoader, TimestampLoader, TimestamptzLoader
from psycopg.types.numeric import NumericLoader
from psycopg.types.string import TextLoader
from psycopg.types.uuid import UUIDLoader

from sync.errors import DecodeError
from sync.temporal import Uncarried, parse_date, parse_time, parse_timestamp, parse_timestamptz

Converter = Callable[[str], Any]


def _to_bool(text: str) -> bool:
    if text in ("t", "f"):
        return text == "t"
    raise ValueError("not t or f")


def _to_bytes(text: str) -> bytes:
    if text.startswith("\\x"):
        return bytes.fromhex(text[2:])
    return _unescape_bytea(text)


def _unescape_bytea(text: str) -> bytes:
    """The ``escape`` bytea format: ``\\\\`` for a backslash, ``\\nnn`` (octal) for other bytes."""
    encoded = text.encode("latin-1")  # escape output is pure ASCII
    out = bytearray()
    i = 0
    while i < len(encoded):
        if encoded[i] != 0x5C:
            out.append(encoded[i])
            i += 1
        elif encoded[i + 1 : i + 2] == b"\\":
            out.append(0x5C)
            i += 2
        else:
            out.append(int(encoded[i + 1 : i + 4], 8))
            i += 4
    return bytes(out)


def _keep(text: str) -> str:
    return text


_SCALARS: Final[dict[int, Converter]] = {
    16: _to_bool,  # bool
    17: _to_bytes,  # bytea
    19: _keep,  # name
    20: int,  # int8
    21: int,  # int2
    23: int,  # int4
    25: _keep,  # text
    26: int,  # oid
    114: _keep,  # json, kept as its text
    700: float,  # float4; float() reads NaN, Infinity, -Infinity
    701: float,  # float8
    1042: _keep,  # bpchar, with its padding
    1043: _keep,  # varchar
    1082: parse_date,
    1083: parse_time,
    1114: parse_timestamp,  # naive
    1184: parse_timestamptz,  # aware, in UTC
    1700: Decimal,  # numeric; Decimal reads NaN, Infinity, -Infinity
    2950: uuid.UUID,
    3802: _keep,  # jsonb, kept as its text
}

_ARRAYS: Final[dict[int, int]] = {
    1000: 16,
    1001: 17,
    1003: 19,
    1016: 20,
    1005: 21,
    1007: 23,
    1009: 25,
    1028: 26,
    199: 114,
    1021: 700,
    1022: 701,
    1014: 1042,
    1015: 1043,
    1182: 1082,
    1183: 1083,
    1115: 1114,
    1185: 1184,
    1231: 1700,
    2951: 2950,
    3807: 3802,
}
"""Array type oid -> element type oid, for the element types in :data:`_SCALARS`."""

ARRAY_ELEMENT_OIDS: Final = _ARRAYS

_TYPE_NAMES: Final = {16: "boolean", 17: "bytea", 1700: "numeric", 2950: "uuid"}


def _convert_scalar(type_oid: int, text: str) -> Any:
    try:
        return _SCALARS[type_oid](text)
    except (ValueError, ArithmeticError):
        kind = _TYPE_NAMES.get(type_oid, f"value of type oid {type_oid}")
        return Uncarried(text, f"text that does not parse as a {kind}")


def convert_text(type_oid: int, text: str) -> Any:
    """The Python value of ``text``, a value of PostgreSQL type ``type_oid`` in text format.

    Built-in scalars become ``bool``, ``bytes``, ``int``, ``float``, ``Decimal``, ``date``,
    ``time``, naive ``datetime`` (timestamp), UTC ``datetime`` (timestamptz) or ``UUID``;
    text types, json and jsonb stay ``str``; arrays of those become lists, NULL elements
    ``None``. Dates and times beyond Python's types are :mod:`sync.temporal` values, text
    that does not parse is :class:`~sync.temporal.Uncarried`; unknown types stay ``text``.
    """
    if type_oid in _SCALARS:
        return _convert_scalar(type_oid, text)
    element_oid = _ARRAYS.get(type_oid)
    if element_oid is None:
        return text
    try:
        return parse_array(text, lambda item: _convert_scalar(element_oid, item))
    except DecodeError as exc:
        return Uncarried(text, str(exc))


_QUOTED: Final = re.compile(r'"((?:[^"\\]|\\.)*)"', re.DOTALL)
_UNQUOTED: Final = re.compile(r'(?:[^,{}"\\]|\\.)+', re.DOTALL)
_ESCAPE: Final = re.compile(r"\\(.)", re.DOTALL)
_DIMENSIONS: Final = re.compile(r"(?:\[-?\d+:-?\d+\])+=")


def parse_array(text: str, convert: Converter = _keep) -> list[Any]:
    """The elements of an array literal such as ``{a,"b c",NULL}``, each passed to ``convert``.

    Handles quoting, backslash escapes, NULL (unquoted) versus ``"NULL"`` (a string) and the
    ``[lower:upper]=`` prefix PostgreSQL prints when the lower bound is not 1 (the bounds are
    dropped). A nested array becomes a nested list.
    """
    parser = _ArrayParser(text, convert)
    return parser.parse()


class _ArrayParser:
    """A recursive-descent reader of PostgreSQL's array output syntax (delimiter ``,``)."""

    __slots__ = ("_convert", "_pos", "_text")

    def __init__(self, text: str, convert: Converter) -> None:
        self._text = text
        self._convert = convert
        self._pos = 0

    def parse(self) -> list[Any]:
        prefix = _DIMENSIONS.match(self._text)
        if prefix is not None:
            self._pos = prefix.end()
        result = self._array()
        if self._pos != len(self._text):
            raise self._error("text after the closing '}'")
        return result

    def _error(self, problem: str) -> DecodeError:
        # the literal itself is never quoted: its elements are column values
        return DecodeError(
            f"array literal of {len(self._text)} characters: {problem} at character {self._pos}",
            offset=self._pos,
        )

    def _take(self, expected: str) -> str:
        found = self._text[self._pos : self._pos + 1]
        if not found or found not in expected:
            raise self._error(f"expected one of {expected!r}")
        self._pos += 1
        return found

    def _array(self) -> list[Any]:
        self._take("{")
        items: list[Any] = []
        if self._text.startswith("}", self._pos):
            self._pos += 1
            return items
        while True:
            items.append(self._element())
            if self._take(",}") == "}":
                return items

    def _element(self) -> Any:
        if self._text.startswith("{", self._pos):
            return self._array()
        quoted = self._text.startswith('"', self._pos)
        found = (_QUOTED if quoted else _UNQUOTED).match(self._text, self._pos)
        if found is None:
            raise self._error("expected an element")
        self._pos = found.end()
        raw = found.group(1) if quoted else found.group(0)
        if not quoted and raw.upper() == "NULL":
            return None
        return self._convert(_ESCAPE.sub(r"\1", raw))


def read_text(type_oid: int, text: str) -> Any:
    """:func:`convert_text`, with text that does not read as its type made
    :class:`~sync.temporal.Uncarried` whatever the reason: ``convert_text`` makes most bad text
    Uncarried itself; this is for what it lets through, such as an array literal nested far
    deeper than PostgreSQL's 6 dimensions."""
    try:
        return convert_text(type_oid, text)
    except (DecodeError, ValueError, ArithmeticError, RecursionError):
        return Uncarried(text, f"text that does not read as PostgreSQL type oid {type_oid}")


# -- whole tuples at once ------------------------------------------------------------------------

TEXT: Final = 25

# psycopg's C loaders of these types read the connector's session's output (ISO DateStyle, UTC
# when there is no connection) as convert_text does, but they are lenient: any non-digit
# separates fields, and a timestamptz pushed past year 9999 by its offset keeps that offset.
# A value keeps their result only when its text has PostgreSQL's ISO shape (these patterns:
# ASCII, four-digit years, no BC, no infinity) and a timestamptz came out in UTC; any other text
# takes convert_text's path, which also carries what Python's types cannot.
_ISO_DATE: Final = rb"\d{4}-\d\d-\d\d"
_ISO_TIME: Final = rb"\d\d:\d\d:\d\d(?:\.\d{1,6})?"
_SHAPES: Final[dict[int, Callable[[bytes], object]]] = {
    1082: re.compile(_ISO_DATE).fullmatch,
    1083: re.compile(_ISO_TIME).fullmatch,
    1114: re.compile(_ISO_DATE + b" " + _ISO_TIME).fullmatch,
    1184: re.compile(_ISO_DATE + b" " + _ISO_TIME + rb"[+-]\d\d(?::\d\d){0,2}").fullmatch,
    2950: re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}").fullmatch,
}

_ADAPTERS: Final = AdaptersMap()  # its own, so that adapters registered elsewhere change nothing
for _oid, _loader in (
    (TEXT, TextLoader),  # strict UTF-8, like the text values of the reference decoder
    (1082, DateLoader),
    (1083, TimeLoader),
    (1114, TimestampLoader),
    (1184, TimestamptzLoader),
    (1700, NumericLoader),  # Decimal(text), as convert_text
    (2950, UUIDLoader),
):
    _ADAPTERS.register_loader(_oid, _loader)

_LOADED: Final = frozenset(_SHAPES) | {1700}  # by their own psycopg loader; the rest as text
_KEPT_AS_TEXT: Final = frozenset(oid for oid, convert in _SCALARS.items() if convert is _keep)
_FAILED: Final = object()


class TupleLoader:
    """Converts the column values of tuples of one relation, given as the raw UTF-8 bytes of
    their text (None for NULL), to exactly the values :func:`read_text` gives them.

    One call of psycopg's C loaders converts the text types, numeric, dates, times,
    timestamps and uuids of a whole tuple; the other types are read as text and converted by
    :func:`read_text`. Not thread-safe: one per relation of one decoder."""

    __slots__ = ("_checked", "_converted", "_loader_oids", "_loaders", "_oids", "_transformer")

    def __init__(self, type_oids: Sequence[int]) -> None:
        self._oids = tuple(type_oids)
        self._loader_oids = tuple(oid if oid in _LOADED else TEXT for oid in self._oids)
        self._transformer = Transformer(_ADAPTERS)
        self._transformer.set_loader_types(self._loader_oids, Format.TEXT)
        self._loaders = [
            self._transformer.get_loader(o, Format.TEXT).load for o in self._loader_oids
        ]
        columns = list(enumerate(self._oids))
        self._checked = [(i, oid, _SHAPES[oid]) for i, oid in columns if oid in _SHAPES]
        self._converted = [
            (i, oid)
            for i, oid in columns
            if oid not in _LOADED
            and oid not in _KEPT_AS_TEXT
            and (oid in _SCALARS or oid in _ARRAYS)
        ]

    def load(self, raw: Sequence[bytes | None]) -> list[Any]:
        """The values of one tuple. Raises ValueError (a UnicodeDecodeError) when some text
        is not UTF-8, which the caller reports as the reference decoder does."""
        try:
            loaded = self._transformer.load_sequence(raw)
        except Exception:  # noqa: BLE001 -- psycopg's errors quote the value: never re-raised
            loaded = None
        values = list(loaded) if loaded is not None else self._load_each(raw)
        for i, oid, shaped in self._checked:
            text = raw[i]
            if text is None:
                continue
            value = values[i]
            if value is _FAILED or not shaped(text) or (oid == 1184 and value.tzinfo is not UTC):
                values[i] = read_text(oid, text.decode())
        for i, oid in self._converted:
            if values[i] is not None:
                values[i] = read_text(oid, values[i])
        return values

    def _load_each(self, raw: Sequence[bytes | None]) -> list[Any]:
        """The values one by one, after psycopg refused the tuple. What it cannot load is
        decoded here, outside the ``except``, so that no psycopg error (which quotes the
        value) is chained to what is raised after; dates and times are left to the checks."""
        values: list[Any] = []
        for load, text in zip(self._loaders, raw, strict=True):
            try:
                values.append(None if text is None else load(text))
            except Exception:  # noqa: BLE001 -- as above
                values.append(_FAILED)
        for i, text in enumerate(raw):
            oid = self._oids[i]
            if values[i] is not _FAILED or oid in _SHAPES or text is None:
                continue
            decoded = text.decode()  # the text loader failed: not UTF-8, and this raises
            values[i] = decoded if self._loader_oids[i] == TEXT else read_text(oid, decoded)
        return values
