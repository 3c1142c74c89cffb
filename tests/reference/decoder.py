"""The connector's change decoder as it was before its fast path: each message through
pgoutput's byte-by-byte reader, each value through ``convert_text``. Kept only for the tests
that prove the fast path gives exactly the same events and errors."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors.postgres import pgoutput
from connectors.postgres.changes import UNCHANGED, DecodedBatch
from connectors.postgres.values import convert_text
from sync.errors import DecodeError
from sync.temporal import Uncarried
from sync.types import ChangeEvent, Lsn, Op, Position, TableRef

_START = Position(Lsn(0), 0)


def decode_message_strictly(data: bytes) -> pgoutput.Message:
    """``pgoutput.decode_message`` as it was: every message through its byte-by-byte reader."""
    if not data:
        raise DecodeError("empty pgoutput message at byte 0", message_type="", offset=0)
    kind = chr(data[0])
    if kind not in pgoutput._DECODERS:
        raise DecodeError(
            f"unknown pgoutput message type {kind!r} at byte 0 (protocol version 1 knows "
            f"{', '.join(pgoutput._DECODERS)}; streaming and two-phase messages need a later "
            "version)",
            message_type=kind,
            offset=0,
        )
    what, decode = pgoutput._DECODERS[kind]
    reader = pgoutput._Reader(bytes(data), what)
    message = decode(reader)
    reader.finish()
    return message


@dataclass
class _Transaction:
    xid: int
    commit_lsn: Lsn
    commit_time: datetime
    events: list[ChangeEvent] = field(default_factory=list)


class ReferenceDecoder:
    """Decodes peeked pgoutput messages of the tables in ``key_columns`` into change events."""

    def __init__(self, source: str, key_columns: Mapping[TableRef, tuple[str, ...]]) -> None:
        self.source = source
        self.key_columns = dict(key_columns)
        self.relations = pgoutput.RelationCache()

    def decode(self, messages: Iterable[tuple[Lsn, bytes]]) -> DecodedBatch:
        """The events of ``messages``, or :class:`DecodeError` naming the WAL position of the
        first message that cannot be decoded. No other exception escapes, and no error quotes a
        column's value: values are personal data, and errors reach logs and dead letters."""
        batch = DecodedBatch()
        txn: _Transaction | None = None
        for lsn, data in messages:
            try:
                txn = self._on_message(batch, txn, decode_message_strictly(data))
            except DecodeError as exc:
                raise _located(exc, lsn) from None
        return batch

    def _on_message(
        self, batch: DecodedBatch, txn: _Transaction | None, message: pgoutput.Message
    ) -> _Transaction | None:
        """Apply one message; the transaction open after it."""
        if isinstance(message, pgoutput.Begin):
            return _Transaction(message.xid, message.final_lsn, message.commit_time)
        if isinstance(message, pgoutput.Commit):
            if txn is not None:
                batch.events.extend(txn.events)
                batch.captured.update(str(e.table) for e in txn.events)
            batch.end_lsn = message.end_lsn
            return None
        if isinstance(message, pgoutput.Relation):
            self.relations.add(message)
            if TableRef(message.namespace, message.name) in self.key_columns:
                at = Position(txn.commit_lsn, len(txn.events) + 1) if txn else _START
                batch.relations.append((at, message))
        elif isinstance(message, pgoutput.Truncate):
            if txn is None:
                raise DecodeError("pgoutput truncate outside a transaction")
            self._on_truncate(txn, message)
        elif isinstance(message, pgoutput.Insert | pgoutput.Update | pgoutput.Delete):
            if txn is None:
                raise DecodeError("pgoutput row change outside a transaction")
            self._on_row_change(txn, message)
        return txn

    def _on_truncate(self, txn: _Transaction, message: pgoutput.Truncate) -> None:
        """One truncate event per captured table; tables this connector does not capture are
        left out, as their row changes are."""
        for oid in message.relation_oids:
            relation = self.relations.get(oid)
            table = TableRef(relation.namespace, relation.name)
            if table in self.key_columns:
                self._append(txn, Op.TRUNCATE, table, {}, None, None)

    def _on_row_change(
        self, txn: _Transaction, message: pgoutput.Insert | pgoutput.Update | pgoutput.Delete
    ) -> None:
        relation = self.relations.get(message.relation_oid)
        table = TableRef(relation.namespace, relation.name)
        keys = self.key_columns.get(table)
        if keys is None:
            return  # published but not captured by this connector
        if isinstance(message, pgoutput.Insert):
            after = self._row(relation, message.new, None)
            self._emit(txn, Op.CREATE, table, keys, None, after)
        elif isinstance(message, pgoutput.Update):
            before = self._row(relation, message.old, None) if message.old else None
            after = self._row(relation, message.new, before)
            old_key = _key_of(before, keys, table) if before else None
            if old_key is not None and old_key != _key_of(after, keys, table):
                self._emit(txn, Op.DELETE, table, keys, before, None)
                self._emit(txn, Op.CREATE, table, keys, None, after)
            else:
                old = before if _is_full(before, keys) else None
                self._emit(txn, Op.UPDATE, table, keys, old, after)
        else:
            before = self._row(relation, message.old, None)
            self._emit(txn, Op.DELETE, table, keys, before, None)

    def _emit(
        self,
        txn: _Transaction,
        op: Op,
        table: TableRef,
        keys: tuple[str, ...],
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> None:
        image = after if after is not None else before
        assert image is not None
        # a delete's old image holds only the key unless REPLICA IDENTITY FULL
        old = before if op is not Op.DELETE or _is_full(before, keys) else None
        self._append(txn, op, table, _key_of(image, keys, table), old, after)

    def _append(
        self,
        txn: _Transaction,
        op: Op,
        table: TableRef,
        key: dict[str, Any],
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> None:
        position = Position(txn.commit_lsn, len(txn.events) + 1)
        txn.events.append(
            ChangeEvent(
                op=op,
                table=table,
                key=key,
                before=before,
                after=after,
                position=position,
                txid=txn.xid,
                commit_time=txn.commit_time,
                event_id=ChangeEvent.make_event_id(self.source, position),
                source=self.source,
            )
        )

    def _row(
        self,
        relation: pgoutput.Relation,
        values: tuple[Any, ...],
        previous: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        row: dict[str, Any] = {}
        pgoutput.row_from_tuple(relation, values)  # checks the column count
        for column, value in zip(relation.columns, values, strict=True):
            if value is pgoutput.UNCHANGED_TOAST:
                known = previous is not None and previous.get(column.name) is not None
                # without REPLICA IDENTITY FULL the value is not in the WAL: the connector
                # looks it up (see connectors.postgres.toast)
                row[column.name] = previous[column.name] if known else UNCHANGED  # type: ignore[index]
            elif value is None:
                row[column.name] = None
            elif isinstance(value, bytes):
                raise DecodeError(
                    f"binary pgoutput value for column {column.name} of {_name(relation)}: "
                    "not requested",
                    table=_name(relation),
                    column=column.name,
                )
            else:
                row[column.name] = _read_text(column, value)
        return row


def _read_text(column: pgoutput.Column, text: str) -> Any:
    """``text`` as a value of its column's type; text that does not read as one is
    :class:`~sync.temporal.Uncarried`, which the contract refuses to encode, so that change
    alone is dead-lettered."""
    try:
        return convert_text(column.type_oid, text)
    except (DecodeError, ValueError, ArithmeticError, RecursionError):
        # convert_text makes most bad text Uncarried itself; this is for what it lets through,
        # such as an array literal nested far deeper than PostgreSQL's 6 dimensions
        return Uncarried(text, f"text that does not read as PostgreSQL type oid {column.type_oid}")


def _name(relation: pgoutput.Relation) -> str:
    return f"{relation.schema}.{relation.name}"


def _key_of(row: Mapping[str, Any], keys: tuple[str, ...], table: TableRef) -> dict[str, Any]:
    try:
        return {name: row[name] for name in keys}
    except KeyError as exc:
        raise DecodeError(
            f"change of {table} without its key column {exc.args[0]} (key: {', '.join(keys)})",
            table=str(table),
            column=str(exc.args[0]),
        ) from None


def _located(exc: DecodeError, lsn: Lsn) -> DecodeError:
    """``exc`` naming the WAL position of the message it is about, with its traceback."""
    located = DecodeError(f"{exc.message} (message at {lsn})", **{**exc.fields, "lsn": str(lsn)})
    return located.with_traceback(exc.__traceback__)


def _is_full(row: Mapping[str, Any] | None, keys: tuple[str, ...]) -> bool:
    return row is not None and any(v is not None for k, v in row.items() if k not in keys)
