"""pgoutput messages -> :class:`~sync.types.ChangeEvent`.

Changes are buffered per transaction and released at its commit, so a batch never ends inside
a transaction. Every event gets the transaction's commit LSN and its index inside the
transaction (from 1; 0 belongs to snapshot rows). An update that changes the primary key becomes
a delete of the old key followed by a create of the new one, as Debezium does, so each key's
history stays on its own partition.

A TRUNCATE becomes one truncate event (op ``t``, no key, no images) per captured table it
names, at its own position in the transaction. pgoutput lists every truncated table it
publishes, those reached through CASCADE included, so the options (CASCADE, RESTART IDENTITY)
change nothing for replicas: they hold no sequences.

Row changes of captured tables take a fast path: ``pgoutput_scan.scan_change`` leaves their
values as raw bytes and a ``values.TupleLoader`` kept per relation converts each tuple at once.
Whatever that path does not take (a message that would not decode, a relation not yet
described, text that is not UTF-8) goes through ``pgoutput.decode_message`` and
``values.read_text`` value by value, which give the same events and name the problem.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from connectors.postgres import pgoutput, pgoutput_scan
from connectors.postgres.values import TupleLoader, read_text
from sync.errors import DecodeError
from sync.types import ChangeEvent, Lsn, Op, Position, TableRef


class _Unchanged:
    """Stands for an out-of-line value an update left unchanged and the WAL did not carry."""

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED = _Unchanged()
_START = Position(Lsn(0), 0)


@dataclass
class DecodedBatch:
    events: list[ChangeEvent] = field(default_factory=list)
    end_lsn: Lsn | None = None  # where the slot may advance once ``events`` are acknowledged
    captured: Counter[str] = field(default_factory=Counter)  # changes per table
    # Relation messages of captured tables, with the position of the first change after each
    relations: list[tuple[Position, pgoutput.Relation]] = field(default_factory=list)


@dataclass
class _Plan:
    """How the fast path reads the tuples of one captured relation."""

    table: TableRef
    keys: tuple[str, ...]
    names: tuple[str, ...]
    loader: TupleLoader

    def row(
        self, values: pgoutput_scan.RawTuple | None, previous: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """As :meth:`ChangeDecoder._row`; ValueError (quoting nothing) when the values do not
        match the columns or some text is not UTF-8: the strict path then reports it."""
        if values is None or len(values) != len(self.names):
            raise ValueError("tuple and relation differ in columns")
        if pgoutput.UNCHANGED_TOAST not in values:
            texts = cast(list[bytes | None], values)
            return dict(zip(self.names, self.loader.load(texts), strict=True))
        loadable = [None if v is pgoutput.UNCHANGED_TOAST else v for v in values]
        row = dict(zip(self.names, self.loader.load(loadable), strict=True))
        for name, value in zip(self.names, values, strict=True):
            if value is pgoutput.UNCHANGED_TOAST:
                known = previous is not None and previous.get(name) is not None
                row[name] = previous[name] if known else UNCHANGED  # type: ignore[index]
        return row


_Rows = tuple[str, TableRef, tuple[str, ...], dict[str, Any] | None, dict[str, Any] | None]


@dataclass
class _Transaction:
    xid: int
    commit_lsn: Lsn
    commit_time: datetime
    events: list[ChangeEvent] = field(default_factory=list)


class ChangeDecoder:
    """Decodes peeked pgoutput messages of the tables in ``key_columns`` into change events."""

    def __init__(self, source: str, key_columns: Mapping[TableRef, tuple[str, ...]]) -> None:
        self.source = source
        self.key_columns = dict(key_columns)
        self.relations = pgoutput.RelationCache()
        # per relation oid, from its Relation message and key_columns (both read when a change
        # first needs them; a new Relation message drops it); None: a table not captured
        self._plans: dict[int, _Plan | None] = {}

    def decode(self, messages: Iterable[tuple[Lsn, bytes]]) -> DecodedBatch:
        """The events of ``messages``, or :class:`DecodeError` naming the WAL position of the
        first message that cannot be decoded. No other exception escapes, and no error quotes a
        column's value: values are personal data, and errors reach logs and dead letters."""
        batch = DecodedBatch()
        txn: _Transaction | None = None
        for lsn, data in messages:
            try:
                if txn is not None and (rows := self._read_change(data)) is not None:
                    self._on_rows(txn, *rows)
                else:
                    txn = self._on_message(batch, txn, pgoutput.decode_message(data))
            except DecodeError as exc:
                raise _located(exc, lsn) from None
        return batch

    def _read_change(self, data: bytes) -> _Rows | None:
        """The rows of a change to a captured table, for :meth:`_on_rows`; None leaves the
        message to the strict path."""
        scanned = pgoutput_scan.scan_change(data)
        if scanned is None:
            return None
        kind, oid, _, old, new = scanned
        plan = self._plans[oid] if oid in self._plans else self._plan(oid)
        if plan is None:
            return None
        try:
            if kind == "I":
                before, after = None, plan.row(new, None)
            elif kind == "U":
                before = plan.row(old, None) if old else None
                after = plan.row(new, before)
            else:
                before, after = plan.row(old, None), None
        except ValueError:
            return None
        return kind, plan.table, plan.keys, before, after

    def _plan(self, oid: int) -> _Plan | None:
        if oid not in self.relations:
            return None  # decode_message's path reports it
        relation = self.relations.get(oid)
        table = TableRef(relation.namespace, relation.name)
        keys = self.key_columns.get(table)
        plan = None
        if keys is not None:
            loader = TupleLoader([column.type_oid for column in relation.columns])
            plan = _Plan(table, keys, relation.column_names, loader)
        self._plans[oid] = plan
        return plan

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
            self._plans.pop(message.oid, None)
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
            self._on_rows(txn, "I", table, keys, None, self._row(relation, message.new, None))
        elif isinstance(message, pgoutput.Update):
            before = self._row(relation, message.old, None) if message.old else None
            after = self._row(relation, message.new, before)
            self._on_rows(txn, "U", table, keys, before, after)
        else:
            self._on_rows(txn, "D", table, keys, self._row(relation, message.old, None), None)

    def _on_rows(
        self,
        txn: _Transaction,
        kind: str,
        table: TableRef,
        keys: tuple[str, ...],
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> None:
        """The events of an Insert, Update or Delete (``kind``) whose rows are read."""
        if kind == "I":
            assert after is not None
            self._emit(txn, Op.CREATE, table, keys, None, after)
        elif kind == "U":
            assert after is not None
            old_key = _key_of(before, keys, table) if before else None
            if old_key is not None and old_key != _key_of(after, keys, table):
                self._emit(txn, Op.DELETE, table, keys, before, None)
                self._emit(txn, Op.CREATE, table, keys, None, after)
            else:
                old = before if _is_full(before, keys) else None
                self._emit(txn, Op.UPDATE, table, keys, old, after)
        else:
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
                # text that does not read as its type is Uncarried, which the contract refuses
                # to encode, so that change alone is dead-lettered
                row[column.name] = read_text(column.type_oid, value)
        return row


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
