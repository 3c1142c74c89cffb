"""Initial snapshot of a captured table, consistent with the stream.

The rows are read inside a snapshot exported by a temporary replication slot, so every
transaction committed before the snapshot's LSN is in it and every later one is in the WAL after
it. Snapshot rows carry the position (snapshot LSN, 0); a streamed change to the same key has a
later commit LSN or index and wins, an earlier one the replica ignores as older. The permanent
slot is created before the snapshot, so no change between them is missed.

Whether a table's snapshot is done is recorded in the source database (``govsync`` schema), so a
restart never snapshots a table twice, and a crash mid-snapshot starts it again from scratch.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
from psycopg import sql
from psycopg.types.string import TextLoader

from connectors.postgres.slot import ExportedSnapshot
from sync.types import ChangeEvent, Lsn, Op, Position, TableRef

log = logging.getLogger(__name__)

STATE_DDL = """
CREATE SCHEMA IF NOT EXISTS govsync;
CREATE TABLE IF NOT EXISTS govsync.snapshot_state (
    slot_name text NOT NULL,
    table_name text NOT NULL,
    snapshot_lsn pg_lsn NOT NULL,
    rows_read bigint NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (slot_name, table_name)
)
"""


class SnapshotState:
    def __init__(self, dsn: str, slot: str) -> None:
        self.dsn, self.slot = dsn, slot
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(STATE_DDL)

    def done(self, table: TableRef) -> bool:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            row = conn.execute(
                "SELECT 1 FROM govsync.snapshot_state WHERE slot_name = %s AND table_name = %s",
                (self.slot, str(table)),
            ).fetchone()
        return row is not None

    def forget(self) -> None:
        """Every table of this slot needs a new snapshot."""
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute("DELETE FROM govsync.snapshot_state WHERE slot_name = %s", (self.slot,))

    def mark_done(self, table: TableRef, lsn: Lsn, rows: int) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO govsync.snapshot_state (slot_name, table_name, snapshot_lsn, "
                "rows_read) VALUES (%s, %s, %s::pg_lsn, %s) ON CONFLICT DO NOTHING",
                (self.slot, str(table), str(lsn), rows),
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


def read_snapshot(
    dsn: str, source: str, slot: str, table: TableRef, keys: tuple[str, ...], chunk: int
) -> Iterator[list[ChangeEvent]]:
    """Yield the table's rows as snapshot events, ``chunk`` at a time, in key order."""
    # slot names are cluster-wide: derive the temporary one from the connector's own slot
    with (
        ExportedSnapshot(dsn, f"{slot}_snapshot") as exported,
        psycopg.connect(dsn) as conn,
    ):
        # json and jsonb as their text, as the stream's pgoutput delivers them
        conn.adapters.register_loader("json", TextLoader)
        conn.adapters.register_loader("jsonb", TextLoader)
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        conn.execute(
            sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(exported.handle.name))
        )
        position = Position(exported.handle.lsn, 0)
        taken_at = datetime.now(UTC)
        query = sql.SQL("SELECT * FROM {} ORDER BY {}").format(
            sql.Identifier(table.schema, table.name),
            sql.SQL(", ").join(map(sql.Identifier, keys)),
        )
        with conn.cursor(name="govsync_snapshot") as cursor:
            cursor.itersize = chunk
            cursor.execute(query)
            columns = [d.name for d in cursor.description or ()]
            while rows := cursor.fetchmany(chunk):
                yield [
                    _snapshot_event(source, table, keys, columns, row, position, taken_at)
                    for row in rows
                ]
        conn.rollback()
    log.info("snapshot of %s read at %s", table, position.lsn)


def _snapshot_event(
    source: str,
    table: TableRef,
    keys: tuple[str, ...],
    columns: list[str],
    row: tuple[object, ...],
    position: Position,
    taken_at: datetime,
) -> ChangeEvent:
    after = dict(zip(columns, row, strict=True))
    key = {k: after[k] for k in keys}
    # every snapshot row shares the position, so the id also names the row (hashed: no
    # personal data in ids, which end up in logs)
    digest = hashlib.blake2b(repr(sorted(key.items())).encode(), digest_size=8).hexdigest()
    return ChangeEvent(
        op=Op.READ,
        table=table,
        key=key,
        before=None,
        after=after,
        position=position,
        txid=0,
        commit_time=taken_at,
        event_id=f"{ChangeEvent.make_event_id(source, position)}:{digest}",
        source=source,
    )
