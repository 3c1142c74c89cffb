"""The connector's hot path through pgoutput: an Insert, Update or Delete read in one pass, its
values left as raw bytes for :class:`~connectors.postgres.values.TupleLoader` to convert a
whole tuple at once. :func:`scan_change` gives up (returns None) on anything
:func:`connectors.postgres.pgoutput.decode_message` would refuse, or that it does not handle
itself, such as binary values; the caller then decodes the message strictly, which names the
problem."""

from __future__ import annotations

import struct
from typing import Final, TypeAlias

from connectors.postgres.pgoutput import UNCHANGED_TOAST, OldTupleKind, UnchangedToast

_U32: Final = struct.Struct("!I")

RawTuple: TypeAlias = list[bytes | UnchangedToast | None]
"""A tuple's values: the UTF-8 bytes of a text value, :data:`UNCHANGED_TOAST` or None (NULL)."""

RawChange: TypeAlias = tuple[str, int, OldTupleKind | None, RawTuple | None, RawTuple | None]
"""An Insert, Update or Delete: its type (``I``, ``U`` or ``D``), its relation oid, the kind
of its old tuple, its old tuple and its new tuple (a Delete has none)."""

_OLD_KINDS: Final = {0x4B: OldTupleKind.KEY, 0x4F: OldTupleKind.FULL}  # K, O
_NEW: Final = 0x4E  # N


class _Unscannable(Exception):
    """Raised inside :func:`scan_change` only, for what the strict decoder must report."""


def scan_change(data: bytes) -> RawChange | None:
    """The Insert, Update or Delete in ``data`` with raw values, or None when ``data`` is no
    such message, has binary values, or would not decode (see the module's docstring)."""
    data = bytes(data)  # its slices, the values, then end in a NUL as psycopg's loaders expect
    try:
        kind, marker = data[0], data[5]
        (oid,) = _U32.unpack_from(data, 1)
        old_kind, old, new, end = None, None, None, 6
        if marker == _NEW and kind in (0x49, 0x55):  # I, or U without an old tuple
            new, end = _scan_tuple(data, 6)
        elif kind == 0x55 and marker in _OLD_KINDS:  # U with one
            old_kind = _OLD_KINDS[marker]
            old, end = _scan_tuple(data, 6)
            if data[end] != _NEW:
                return None
            new, end = _scan_tuple(data, end + 1)
        elif kind == 0x44 and marker in _OLD_KINDS:  # D
            old_kind = _OLD_KINDS[marker]
            old, end = _scan_tuple(data, 6)
        else:
            return None
    except (IndexError, struct.error, _Unscannable):
        return None
    if end != len(data):  # trailing bytes, or the last value runs past the end
        return None
    return chr(kind), oid, old_kind, old, new


def _scan_tuple(data: bytes, pos: int) -> tuple[RawTuple, int]:
    """TupleData at ``pos``: its values and the position after it. A length running past
    the end makes the next read fail or leaves the position past the end."""
    count = (data[pos] << 8) | data[pos + 1]
    if count & 0x8000:
        raise _Unscannable  # a negative count
    pos += 2
    values: RawTuple = []
    append = values.append
    size_at = _U32.unpack_from
    for _ in range(count):
        marker = data[pos]
        if marker == 0x74:  # t
            start = pos + 5
            pos = start + size_at(data, pos + 1)[0]
            append(data[start:pos])
        elif marker == 0x6E:  # n
            append(None)
            pos += 1
        elif marker == 0x75:  # u
            append(UNCHANGED_TOAST)
            pos += 1
        else:
            raise _Unscannable  # binary values, unknown markers
    return values, pos
