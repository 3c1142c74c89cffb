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
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final

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
