"""Decoding of the messages the ``pgoutput`` plugin writes, logical replication protocol version 1.

Each row that ``pg_logical_slot_peek_binary_changes(slot, NULL, n, 'proto_version', '1',
'publication_names', pub)`` returns carries one message in its ``data`` column; so does each
XLogData payload of a walsender. :func:`decode_message` turns those bytes into one of the frozen
dataclasses below and does nothing else: no I/O, no state, no type conversion of column values
(that is :mod:`connectors.postgres.values`). Keeping the wire format apart from the meaning of
the values lets this module be tested byte for byte.

The protocol, in short (all integers big-endian; a String is NUL-terminated):

* ``B`` Begin, ``C`` Commit: bracket every transaction; the Begin's *final LSN* is the commit
  LSN, the position a transaction is acknowledged by.
* ``R`` Relation: describes a table's published columns. pgoutput sends one before the first
  change of a table in each decoding session and again after the table's schema changed, so a
  consumer keeps them in a :class:`RelationCache` and resolves changes against it.
* ``I``/``U``/``D`` Insert, Update, Delete: a relation oid plus TupleData. An Update carries an
  old tuple (``K``: only the replica identity columns, the others arrive as NULL; ``O``: the
  whole row under ``REPLICA IDENTITY FULL``) only when the identity changed or is FULL.
* ``T`` Truncate, ``O`` Origin, ``Y`` Type, ``M`` logical decoding Message.

A column in TupleData is NULL, *unchanged TOAST* (a large value the update did not touch and
the server did not resend), text or binary. Unchanged TOAST is not NULL: it is the
:data:`UNCHANGED_TOAST` sentinel here, so that nobody overwrites a stored value with NULL.

The decoder is strict: unknown message types, unknown markers, negative lengths, truncated
bytes and trailing bytes all raise :class:`~sync.errors.DecodeError` naming the message type
and the byte offset. Trailing bytes are an error because they are what the streaming and
two-phase messages of protocol versions 2 and later look like to a version 1 decoder.
Strings and text values are decoded as UTF-8: the source database must use that encoding.

The connector's hot path does not build these dataclasses for row changes:
:mod:`connectors.postgres.pgoutput_scan` reads them in one pass and falls back to
:func:`decode_message` for anything it does not take, which then names the problem.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum, StrEnum
from typing import Final, TypeAlias

from sync.errors import DecodeError
from sync.types import Lsn

PG_EPOCH: Final = datetime(2000, 1, 1, tzinfo=UTC)
"""PostgreSQL counts timestamps in microseconds from here."""

_U8: Final = struct.Struct("!B")
_I16: Final = struct.Struct("!h")
_I32: Final = struct.Struct("!i")
_U32: Final = struct.Struct("!I")
_I64: Final = struct.Struct("!q")
_U64: Final = struct.Struct("!Q")
_BEGIN: Final = struct.Struct("!QqI")  # final LSN, commit time, xid
_COMMIT: Final = struct.Struct("!BQQq")  # flags, commit LSN, end LSN, commit time


class UnchangedToast(Enum):
    """The type of :data:`UNCHANGED_TOAST`; a one-member enum so type checkers narrow on ``is``."""

    UNCHANGED_TOAST = "u"

    def __repr__(self) -> str:
        return "UNCHANGED_TOAST"


UNCHANGED_TOAST: Final = UnchangedToast.UNCHANGED_TOAST
"""A TOASTed value an update left unchanged and the server did not send. Not NULL."""

ColumnValue: TypeAlias = str | bytes | UnchangedToast | None
"""One column of a tuple: NULL, unchanged TOAST, text format (``str``) or binary (``bytes``)."""

TupleValues: TypeAlias = tuple[ColumnValue, ...]


class ReplicaIdentity(StrEnum):
    """A table's ``pg_class.relreplident``: what an update or delete sends of the old row."""

    DEFAULT = "d"  # the primary key columns
    NOTHING = "n"
    FULL = "f"  # every column
    INDEX = "i"  # the columns of a chosen unique index


class OldTupleKind(StrEnum):
    """Which old tuple an Update or Delete carries."""

    KEY = "K"  # the replica identity columns; the other columns are NULL
    FULL = "O"  # the whole old row (REPLICA IDENTITY FULL)


@dataclass(frozen=True, slots=True)
class Begin:
    """Start of a transaction. ``final_lsn`` is the LSN of its commit record."""

    final_lsn: Lsn
    commit_time: datetime
    xid: int


@dataclass(frozen=True, slots=True)
class Commit:
    """End of a transaction. ``end_lsn`` is where the next transaction's records start."""

    flags: int
    commit_lsn: Lsn
    end_lsn: Lsn
    commit_time: datetime


@dataclass(frozen=True, slots=True)
class Origin:
    """The transaction was replicated from elsewhere; ``name`` is its replication origin."""

    commit_lsn: Lsn
    name: str


@dataclass(frozen=True, slots=True)
class Column:
    """One published column of a :class:`Relation`. ``type_modifier`` is -1 when none."""

    flags: int
    name: str
    type_oid: int
    type_modifier: int

    @property
    def is_key(self) -> bool:
        """Part of the replica identity (for ``DEFAULT``, the primary key)."""
        return bool(self.flags & 1)


@dataclass(frozen=True, slots=True)
class Relation:
    """The shape of a table as published: its columns in the order tuples carry them."""

    oid: int
    namespace: str  # empty for pg_catalog, as on the wire
    name: str
    replica_identity: ReplicaIdentity
    columns: tuple[Column, ...]

    @property
    def schema(self) -> str:
        return self.namespace or "pg_catalog"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    @property
    def key_columns(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns if column.is_key)


@dataclass(frozen=True, slots=True)
class TypeMessage:
    """A non-built-in data type used by a following Relation (sent once per session)."""

    oid: int
    namespace: str
    name: str


@dataclass(frozen=True, slots=True)
class Insert:
    relation_oid: int
    new: TupleValues


@dataclass(frozen=True, slots=True)
class Update:
    """``old`` is present only when the replica identity changed or is FULL; ``new`` may hold
    :data:`UNCHANGED_TOAST` for large columns the update did not touch."""

    relation_oid: int
    old_kind: OldTupleKind | None
    old: TupleValues | None
    new: TupleValues


@dataclass(frozen=True, slots=True)
class Delete:
    relation_oid: int
    old_kind: OldTupleKind
    old: TupleValues


@dataclass(frozen=True, slots=True)
class Truncate:
    options: int
    relation_oids: tuple[int, ...]

    @property
    def cascade(self) -> bool:
        return bool(self.options & 1)

    @property
    def restart_identity(self) -> bool:
        return bool(self.options & 2)


@dataclass(frozen=True, slots=True)
class LogicalMessage:
    """A message written by ``pg_logical_emit_message`` (sent only with ``messages 'true'``)."""

    flags: int
    lsn: Lsn
    prefix: str
    content: bytes

    @property
    def transactional(self) -> bool:
        return bool(self.flags & 1)


Message: TypeAlias = (
    Begin
    | Commit
    | Origin
    | Relation
    | TypeMessage
    | Insert
    | Update
    | Delete
    | Truncate
    | LogicalMessage
)


class _Reader:
    """A cursor over one message that turns every shortfall into a :class:`DecodeError`."""

    __slots__ = ("_data", "_what", "pos")

    def __init__(self, data: bytes, what: str) -> None:
        self._data = data
        self._what = what
        self.pos = 1  # the type byte is already read

    def error(self, problem: str, offset: int | None = None) -> DecodeError:
        at = self.pos if offset is None else offset
        return DecodeError(
            f"pgoutput {self._what} message: {problem} at byte {at}",
            message_type=self._what,
            offset=at,
        )

    def _take(self, size: int) -> int:
        start = self.pos
        left = len(self._data) - start
        if size > left:
            raise self.error(f"truncated, {size} bytes needed but {left} left")
        self.pos = start + size
        return start

    def _unpack(self, layout: struct.Struct) -> int:
        value: int = layout.unpack_from(self._data, self._take(layout.size))[0]
        return value

    def u8(self) -> int:
        return self._unpack(_U8)

    def i16(self) -> int:
        return self._unpack(_I16)

    def i32(self) -> int:
        return self._unpack(_I32)

    def u32(self) -> int:
        return self._unpack(_U32)

    def lsn(self) -> Lsn:
        return Lsn(self._unpack(_U64))

    def count(self, read: Callable[[], int]) -> int:
        at = self.pos
        value = read()
        if value < 0:
            raise self.error(f"negative count {value}", at)
        return value

    def timestamp(self) -> datetime:
        at = self.pos
        micros = self._unpack(_I64)
        try:
            return PG_EPOCH + timedelta(microseconds=micros)
        except OverflowError:
            raise self.error(f"timestamp {micros} out of range", at) from None

    def raw(self, size: int) -> bytes:
        start = self._take(size)
        return self._data[start : self.pos]

    def text(self, raw: bytes, at: int) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.error(f"invalid UTF-8 ({exc.reason})", at + exc.start) from None

    def string(self) -> str:
        start = self.pos
        end = self._data.find(b"\0", start)
        if end < 0:
            raise self.error("unterminated string", start)
        self.pos = end + 1
        return self.text(self._data[start:end], start)

    def marker(self, expected: str) -> str:
        at = self.pos
        found = chr(self.u8())
        if found not in expected:
            choices = " or ".join(repr(c) for c in expected)
            raise self.error(f"expected {choices}, found {found!r}", at)
        return found

    def finish(self) -> None:
        if self.pos != len(self._data):
            raise self.error(f"{len(self._data) - self.pos} unexpected trailing bytes")


def _read_value(reader: _Reader) -> ColumnValue:
    kind = reader.marker("ntub")
    if kind == "n":
        return None
    if kind == "u":
        return UNCHANGED_TOAST
    size = reader.count(reader.i32)
    at = reader.pos
    raw = reader.raw(size)
    return raw if kind == "b" else reader.text(raw, at)


def _read_tuple(reader: _Reader) -> TupleValues:
    count = reader.count(reader.i16)
    return tuple(_read_value(reader) for _ in range(count))


def _decode_begin(reader: _Reader) -> Begin:
    return Begin(reader.lsn(), reader.timestamp(), reader.u32())


def _decode_commit(reader: _Reader) -> Commit:
    return Commit(reader.u8(), reader.lsn(), reader.lsn(), reader.timestamp())


def _decode_origin(reader: _Reader) -> Origin:
    return Origin(reader.lsn(), reader.string())


def _read_column(reader: _Reader) -> Column:
    return Column(reader.u8(), reader.string(), reader.u32(), reader.i32())


def _decode_relation(reader: _Reader) -> Relation:
    oid, namespace, name = reader.u32(), reader.string(), reader.string()
    at = reader.pos
    identity = chr(reader.u8())
    try:
        replica_identity = ReplicaIdentity(identity)
    except ValueError:
        raise reader.error(f"unknown replica identity {identity!r}", at) from None
    count = reader.count(reader.i16)
    columns = tuple(_read_column(reader) for _ in range(count))
    return Relation(oid, namespace, name, replica_identity, columns)


def _decode_type(reader: _Reader) -> TypeMessage:
    return TypeMessage(reader.u32(), reader.string(), reader.string())


def _decode_insert(reader: _Reader) -> Insert:
    oid = reader.u32()
    reader.marker("N")
    return Insert(oid, _read_tuple(reader))


def _decode_update(reader: _Reader) -> Update:
    oid = reader.u32()
    marker = reader.marker("KON")
    if marker == "N":
        return Update(oid, None, None, _read_tuple(reader))
    old = _read_tuple(reader)
    reader.marker("N")
    return Update(oid, OldTupleKind(marker), old, _read_tuple(reader))


def _decode_delete(reader: _Reader) -> Delete:
    oid = reader.u32()
    kind = OldTupleKind(reader.marker("KO"))
    return Delete(oid, kind, _read_tuple(reader))


def _decode_truncate(reader: _Reader) -> Truncate:
    count = reader.count(reader.i32)
    options = reader.u8()
    return Truncate(options, tuple(reader.u32() for _ in range(count)))


def _decode_logical_message(reader: _Reader) -> LogicalMessage:
    flags, lsn, prefix = reader.u8(), reader.lsn(), reader.string()
    content = reader.raw(reader.count(reader.i32))
    return LogicalMessage(flags, lsn, prefix, content)


_DECODERS: Final[dict[str, tuple[str, Callable[[_Reader], Message]]]] = {
    "B": ("Begin", _decode_begin),
    "C": ("Commit", _decode_commit),
    "O": ("Origin", _decode_origin),
    "R": ("Relation", _decode_relation),
    "Y": ("Type", _decode_type),
    "I": ("Insert", _decode_insert),
    "U": ("Update", _decode_update),
    "D": ("Delete", _decode_delete),
    "T": ("Truncate", _decode_truncate),
    "M": ("Message", _decode_logical_message),
}


def decode_message(data: bytes) -> Message:
    """Decode one pgoutput protocol version 1 message, or raise :class:`DecodeError`."""
    if not data:
        raise DecodeError("empty pgoutput message at byte 0", message_type="", offset=0)
    kind = chr(data[0])
    if kind not in _DECODERS:
        raise DecodeError(
            f"unknown pgoutput message type {kind!r} at byte 0 (protocol version 1 knows "
            f"{', '.join(_DECODERS)}; streaming and two-phase messages need a later version)",
            message_type=kind,
            offset=0,
        )
    known = _decode_begin_or_commit(data)
    if known is not None:
        return known
    what, decode = _DECODERS[kind]
    reader = _Reader(bytes(data), what)
    message = decode(reader)
    reader.finish()
    return message


def _decode_begin_or_commit(data: bytes) -> Begin | Commit | None:
    """A Begin or Commit read in one unpack, as ``_decode_begin`` or ``_decode_commit`` would
    read it; None for anything else, or a commit time out of range (which they refuse)."""
    try:
        if data[0] == 0x42 and len(data) == 1 + _BEGIN.size:  # B
            lsn, micros, xid = _BEGIN.unpack_from(data, 1)
            return Begin(Lsn(lsn), PG_EPOCH + timedelta(microseconds=micros), xid)
        if data[0] == 0x43 and len(data) == 1 + _COMMIT.size:  # C
            flags, lsn, end, micros = _COMMIT.unpack_from(data, 1)
            return Commit(flags, Lsn(lsn), Lsn(end), PG_EPOCH + timedelta(microseconds=micros))
    except OverflowError:
        pass
    return None


class RelationCache:
    """The latest Relation message of each table, by oid, to resolve changes against.

    A newer Relation for the same oid (sent after ``ALTER TABLE``) replaces the older one.
    """

    __slots__ = ("_by_oid",)

    def __init__(self) -> None:
        self._by_oid: dict[int, Relation] = {}

    def add(self, relation: Relation) -> None:
        self._by_oid[relation.oid] = relation

    def get(self, oid: int) -> Relation:
        """The relation, or :class:`DecodeError` when no Relation message for it was seen."""
        try:
            return self._by_oid[oid]
        except KeyError:
            raise DecodeError(
                f"change for relation oid {oid} before any Relation message describing it",
                relation_oid=oid,
            ) from None

    def __contains__(self, oid: object) -> bool:
        return oid in self._by_oid

    def __len__(self) -> int:
        return len(self._by_oid)


def row_from_tuple(relation: Relation, values: Sequence[ColumnValue]) -> dict[str, ColumnValue]:
    """Name the values of a tuple by the relation's columns; they must match one for one."""
    if len(values) != len(relation.columns):
        raise DecodeError(
            f"tuple of {len(values)} columns for {relation.schema}.{relation.name}, "
            f"whose Relation message has {len(relation.columns)}",
            relation_oid=relation.oid,
        )
    return dict(zip(relation.column_names, values, strict=True))
