"""Snapshots by watermarks (the DBLog algorithm), interleaved with the stream.

A table is snapshotted in primary-key chunks, each in its own short statement, never in one
long transaction. For each chunk the connector:

1. commits a *low* watermark row into ``govsync.snapshot_watermark`` (a published table);
2. selects the next chunk of rows after the last key done;
3. commits a *high* watermark row.

While reading the log, every change between the two watermarks to a key of the chunk removes
that key from the chunk: the change itself carries a state at least as new. At the high
watermark the remaining rows are emitted as snapshot reads, positioned at the high watermark's
commit, so they are newer than every change before it and older than every change after it.
A replica never regresses, whatever races the snapshot.

One more race is closed before step 2: a transaction whose commit record precedes the low
watermark may still be invisible for a few microseconds (its WAL is flushed but it has not left
the process array). The connector waits, briefly, for the transactions in progress when the low
watermark committed, so the chunk's statement sees every commit that precedes it in the WAL.

Progress (last key done, rows read) is saved after the chunk's events are acknowledged, so a
crash repeats at most one chunk. ``govsync snapshot TABLE`` sets a table back to pending on a
live source.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.string import TextLoader

from connectors.postgres.session import capture_conninfo
from sync.errors import ConfigError
from sync.temporal import register_pg_adapters
from sync.types import ChangeEvent, Op, Position, TableRef

WATERMARK_TABLE = TableRef("govsync", "snapshot_watermark")
WATERMARK_KEY = ("id",)

STATE_DDL = """
CREATE SCHEMA IF NOT EXISTS govsync;
CREATE TABLE IF NOT EXISTS govsync.snapshot_watermark (
    id bigserial PRIMARY KEY,
    slot_name text NOT NULL,
    chunk_id text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('low', 'high')),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS govsync.snapshot_state (
    slot_name text NOT NULL,
    table_name text NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'done')),
    last_key jsonb,
    rows_read bigint NOT NULL DEFAULT 0,
    requested_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    PRIMARY KEY (slot_name, table_name)
);
CREATE TABLE IF NOT EXISTS govsync.stopped_table (
    slot_name text NOT NULL,
    table_name text NOT NULL,
    reason text NOT NULL,
    stopped_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (slot_name, table_name)
);
CREATE TABLE IF NOT EXISTS govsync.captured_columns (
    slot_name text NOT NULL,
    table_name text NOT NULL,
    known text[] NOT NULL,
    added text[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (slot_name, table_name)
);
CREATE TABLE IF NOT EXISTS govsync.stopped_key (
    slot_name text NOT NULL,
    table_name text NOT NULL,
    key jsonb NOT NULL,
    PRIMARY KEY (slot_name, table_name, key)
)
"""

_REQUEST_NEW = (
    "INSERT INTO govsync.snapshot_state (slot_name, table_name, status) "
    "VALUES (%s, %s, 'pending') ON CONFLICT (slot_name, table_name) DO NOTHING"
)
_REQUEST_AGAIN = (
    "UPDATE govsync.snapshot_state SET status = 'pending', last_key = NULL, rows_read = 0, "
    "requested_at = now(), finished_at = NULL "
    "WHERE slot_name = %s AND table_name = ANY (%s) RETURNING table_name"
)
_REGISTERED = (
    "SELECT table_name FROM govsync.snapshot_state WHERE slot_name = %s ORDER BY table_name"
)

# how long to wait for transactions caught between their commit record and their visibility
COMMIT_GAP_WAIT = 0.5


@dataclass
class Chunk:
    """Rows selected between a low and a high watermark, waiting for the high one."""

    chunk_id: str
    table: TableRef
    keys: tuple[str, ...]
    rows: dict[tuple[Any, ...], dict[str, Any]]
    last_key: tuple[Any, ...] | None  # the greatest key selected: where the next chunk starts
    final: bool  # fewer rows than asked: the table is done after this chunk
    # keys changed while the table's capture was stopped and now absent: deleted at the high
    # watermark, like the rows read, unless a change between the watermarks speaks for them
    gone: set[tuple[Any, ...]] = field(default_factory=set)
    forgets_stopped_keys: bool = False
    inside: bool = False  # the low watermark has been seen
    closed: bool = False  # the high watermark has been seen
    emitted: int = 0
    taken_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def window(
    events: Sequence[ChangeEvent], chunk: Chunk | None, source: str, slot: str
) -> list[ChangeEvent]:
    """The events to publish: ``events`` without watermark rows, with the chunk's remaining
    rows inserted where its high watermark committed. Marks the chunk closed when it is."""
    out: list[ChangeEvent] = []
    for event in events:
        if event.table == WATERMARK_TABLE:
            if chunk is not None and event.after and _ours(event.after, chunk, slot):
                if event.after["kind"] == "low":
                    chunk.inside = True
                elif chunk.inside:
                    out += _snapshot_reads(chunk, source, event.position)
                    chunk.closed = True
            continue
        if chunk is not None and chunk.inside and not chunk.closed and event.table == chunk.table:
            if event.op is Op.TRUNCATE:
                # the chunk may have read rows from before it: only rows inserted after it
                # are current, and their own changes follow in the log
                chunk.rows.clear()
                out.append(event)
                continue
            key = tuple(event.key[k] for k in chunk.keys)
            chunk.rows.pop(key, None)
            chunk.gone.discard(key)
        out.append(event)
    return out


def _ours(row: Mapping[str, Any], chunk: Chunk, slot: str) -> bool:
    return bool(row.get("slot_name") == slot and row.get("chunk_id") == chunk.chunk_id)


def _snapshot_reads(chunk: Chunk, source: str, high: Position) -> list[ChangeEvent]:
    position = Position(high.lsn, 0)
    reads = []
    images: list[tuple[tuple[Any, ...], dict[str, Any] | None]] = list(chunk.rows.items())
    images += [(key, None) for key in sorted(chunk.gone, key=repr)]
    for key, row in images:
        named_key = dict(zip(chunk.keys, key, strict=True))
        reads.append(
            ChangeEvent(
                op=Op.READ if row is not None else Op.DELETE,
                table=chunk.table,
                key=named_key,
                before=None,
                after=row,
                position=position,
                txid=0,
                commit_time=chunk.taken_at,
                event_id=ChangeEvent.make_event_id(source, position, named_key),
                source=source,
            )
        )
    chunk.emitted = len(chunk.rows)
    return reads


class SnapshotState:
    """Which tables of a slot need a snapshot, and how far each got."""

    def __init__(self, dsn: str, slot: str) -> None:
        self.dsn, self.slot = dsn, slot
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(STATE_DDL)

    def request(self, tables: Sequence[TableRef], *, again: bool = False) -> None:
        """Mark ``tables`` pending: those never snapshotted, or all of them with ``again``.

        Only tables the slot's connector registered (it registers every table it captures when
        it starts) are requested again: any other would head its queue for ever. Otherwise
        nothing is requested and :class:`ConfigError` names them and the registered ones."""
        names = [str(t) for t in tables]
        if not again:
            with psycopg.connect(self.dsn, autocommit=True) as conn, conn.cursor() as cursor:
                cursor.executemany(_REQUEST_NEW, [(self.slot, name) for name in names])
            return
        with psycopg.connect(self.dsn) as conn:  # one transaction: every table or none
            requested = {row[0] for row in conn.execute(_REQUEST_AGAIN, (self.slot, names))}
            unknown = [name for name in names if name not in requested]
            if unknown:
                captured = [row[0] for row in conn.execute(_REGISTERED, (self.slot,))]
                raise ConfigError(
                    f"{', '.join(unknown)} not captured through slot {self.slot}, which "
                    f"captures {', '.join(captured) or 'no table yet'}",
                    tables=unknown,
                    captured=captured,
                )

    def pending(self) -> list[tuple[str, tuple[Any, ...] | None, int]]:
        """(table, last key done, rows read) of every table still to snapshot."""
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT table_name, last_key, rows_read FROM govsync.snapshot_state "
                "WHERE slot_name = %s AND status = 'pending' ORDER BY requested_at, table_name",
                (self.slot,),
            ).fetchall()
        return [(t, tuple(k) if k is not None else None, int(n)) for t, k, n in rows]

    def chunk_done(self, chunk: Chunk) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            if chunk.forgets_stopped_keys:
                conn.execute(
                    "DELETE FROM govsync.stopped_key WHERE slot_name = %s AND table_name = %s",
                    (self.slot, str(chunk.table)),
                )
            conn.execute(
                "UPDATE govsync.snapshot_state SET last_key = %s, rows_read = rows_read + %s, "
                "status = CASE WHEN %s THEN 'done' ELSE 'pending' END, "
                "finished_at = CASE WHEN %s THEN now() END "
                "WHERE slot_name = %s AND table_name = %s",
                (
                    json.dumps(chunk.last_key, default=str),
                    chunk.emitted,
                    chunk.final,
                    chunk.final,
                    self.slot,
                    str(chunk.table),
                ),
            )


class ChunkReader:
    """Writes the watermarks and selects one chunk between them."""

    def __init__(self, dsn: str, slot: str, size: int) -> None:
        self.slot, self.size = slot, size
        self._conn = psycopg.connect(capture_conninfo(dsn), autocommit=True)
        # json and jsonb as their text, as the stream's pgoutput delivers them
        self._conn.adapters.register_loader("json", TextLoader)
        self._conn.adapters.register_loader("jsonb", TextLoader)
        # dates and times beyond Python's range, read as the stream carries them
        register_pg_adapters(self._conn)

    @property
    def connection(self) -> psycopg.Connection[Any]:
        """The source connection rows are read with (json as text, as pgoutput sends it)."""
        return self._conn

    def close(self) -> None:
        self._conn.close()

    def open(self, table: TableRef, keys: tuple[str, ...], after: tuple[Any, ...] | None) -> Chunk:
        chunk_id = uuid.uuid4().hex
        self._watermark(chunk_id, "low")
        self._wait_for_commit_gap()
        rows = self._select(table, keys, after)
        stopped = self._stopped_keys(table, keys)
        self._watermark(chunk_id, "high")
        by_key = {tuple(row[k] for k in keys): row for row in rows}
        last = tuple(rows[-1][k] for k in keys) if rows else after
        chunk = Chunk(chunk_id, table, keys, by_key, last, final=len(rows) < self.size)
        chunk.gone = {key for key, exists in stopped if not exists}
        chunk.forgets_stopped_keys = bool(stopped)
        return chunk

    def _stopped_keys(
        self, table: TableRef, keys: tuple[str, ...]
    ) -> list[tuple[tuple[Any, ...], bool]]:
        """Keys changed while the table's capture was stopped, typed as the table's columns,
        and whether each row exists now."""
        name = sql.Identifier(table.schema, table.name)
        ours = sql.SQL(", ").join(sql.Identifier("k", k) for k in keys)
        theirs = sql.SQL(", ").join(sql.Identifier("t", k) for k in keys)
        query = sql.SQL(
            "SELECT {ours}, EXISTS (SELECT 1 FROM {name} t WHERE ({theirs}) = ({ours})) "
            "FROM govsync.stopped_key s, jsonb_populate_record(NULL::{name}, s.key) k "
            "WHERE s.slot_name = %s AND s.table_name = %s"
        ).format(ours=ours, theirs=theirs, name=name)
        rows = self._conn.execute(query, (self.slot, str(table))).fetchall()
        return [(tuple(row[:-1]), bool(row[-1])) for row in rows]

    def _watermark(self, chunk_id: str, kind: str) -> None:
        self._conn.execute(
            "INSERT INTO govsync.snapshot_watermark (slot_name, chunk_id, kind) "
            "VALUES (%s, %s, %s)",
            (self.slot, chunk_id, kind),
        )

    def _wait_for_commit_gap(self) -> None:
        """Wait (briefly) until the transactions in progress now have finished or shown
        that they are long-running; see the module docstring."""
        row = self._conn.execute(
            "SELECT array_agg(x::text) FROM pg_snapshot_xip(pg_current_snapshot()) x"
        ).fetchone()
        pending = list(row[0] or []) if row else []
        deadline = time.monotonic() + COMMIT_GAP_WAIT
        while pending and time.monotonic() < deadline:
            statuses = self._conn.execute(
                "SELECT x, pg_xact_status(x::xid8) FROM unnest(%s::text[]) x", (pending,)
            ).fetchall()
            pending = [x for x, status in statuses if status == "in progress"]
            if pending:
                time.sleep(0.005)

    def _select(
        self, table: TableRef, keys: tuple[str, ...], after: tuple[Any, ...] | None
    ) -> list[dict[str, Any]]:
        key_list = sql.SQL(", ").join(map(sql.Identifier, keys))
        where: sql.Composable = sql.SQL("")
        if after is not None:
            where = sql.SQL("WHERE ({}) > ({})").format(
                key_list, sql.SQL(", ").join(sql.Literal(v) for v in after)
            )
        query = sql.SQL("SELECT * FROM {} {} ORDER BY {} LIMIT {}").format(
            sql.Identifier(table.schema, table.name), where, key_list, sql.Literal(self.size)
        )
        with self._conn.cursor() as cursor:
            cursor.execute(query)
            names = [d.name for d in cursor.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def cleanup(self, older_than_seconds: int = 3600) -> None:
        """Forget old watermark rows (their deletes flow through the log and are ignored)."""
        self._conn.execute(
            "DELETE FROM govsync.snapshot_watermark WHERE slot_name = %s "
            "AND created_at < now() - make_interval(secs => %s)",
            (self.slot, older_than_seconds),
        )


def estimated_rows(dsn: str, table: TableRef) -> int:
    """The planner's row estimate: free on a 100-million-row table, unlike count(*). A table
    never analysed has no estimate (-1); autovacuum analyses big tables, so count that one."""
    name = sql.Identifier(table.schema, table.name)
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
            (name.as_string(conn),),
        ).fetchone()
        if row is not None and row[0] >= 0:
            return int(row[0])
        counted = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(name)).fetchone()
    return int(counted[0]) if counted else 0
