"""Batched, idempotent, version-guarded apply of change events to a replica.

One database transaction per batch: the batch is reduced to the newest change per key, copied
into temporary tables with COPY, merged into the live table with one statement per kind, and
the consumed offsets are written in the same transaction. So a batch is applied completely or
not at all, its offsets move only with it, and replaying any events changes nothing:

- an upsert lands only where the row's position is older and no newer delete is remembered;
- a delete removes an older row and is remembered (outside the live table).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import psycopg
from psycopg import sql

from sync.replica.evolution import TableChanges, evolve_table, lock_layout
from sync.replica.layout import BOOKKEEPING, OFFSETS_DDL, STATE_SCHEMA, ReplicaTable
from sync.types import ChangeEvent, Op


@dataclass(frozen=True, slots=True)
class Delivery:
    """An event and where it was read from."""

    event: ChangeEvent
    topic: str
    partition: int
    offset: int
    applies: bool = True  # False: filtered out by the subscription, only its offset counts


@dataclass
class ApplyResult:
    events: int
    upserts: int
    deletes: int


class Applier:
    """Applies batches for one consumer group to one replica database (async psycopg)."""

    def __init__(
        self,
        conn: psycopg.AsyncConnection[tuple[object, ...]],
        tables: Mapping[str, ReplicaTable],
        group_id: str,
        topic_ids: Mapping[str, str] | None = None,
    ) -> None:
        self.conn = conn
        self.tables = dict(tables)  # by topic
        self.group_id = group_id
        # a topic's id changes when it is recreated; offsets of an older incarnation are void
        self.topic_ids = dict(topic_ids or {})

    async def prepare(self) -> dict[str, TableChanges]:
        """Create the replica's tables if missing and bring existing ones to their contract
        (see :mod:`sync.replica.evolution`), all in one transaction; returns what changed per
        table (by topic). Raises ``ReplicaSchemaError`` when a table cannot follow its contract."""
        changes = {}
        async with self.conn.transaction():
            await lock_layout(self.conn)
            await self.conn.execute(OFFSETS_DDL)
            for topic, table in self.tables.items():
                await self.conn.execute(table.ddl())
                changes[topic] = await evolve_table(self.conn, table)
        return changes

    async def apply(self, deliveries: Sequence[Delivery]) -> ApplyResult:
        by_topic = _newest_per_key(deliveries)
        upserts = deletes = 0
        async with self.conn.transaction():
            for topic, events in by_topic.items():
                table = self.tables[topic]
                live = [e for e in events if e.op is not Op.DELETE]
                gone = [e for e in events if e.op is Op.DELETE]
                if live:
                    upserts += await self._upsert(table, live)
                if gone:
                    deletes += await self._delete(table, gone)
            await self._commit_offsets(deliveries)
        return ApplyResult(len(deliveries), upserts, deletes)

    async def _upsert(self, table: ReplicaTable, events: list[ChangeEvent]) -> int:
        columns = [*table.value_names, *BOOKKEEPING]
        rows = (
            [*(e.after.get(n) for n in table.value_names), *_version(e), e.commit_time]
            for e in events
            if e.after is not None
        )
        staging = await self._stage(table.live, f"up_{table.slug}", columns, rows)
        statement = _UPSERT.format(
            live=table.live,
            deleted=table.deleted,
            staging=staging,
            columns=_names(columns),
            keys=_names(table.key_names),
            key_match=_key_match(table.key_names, "d", "s"),
            updates=sql.SQL(", ").join(
                sql.SQL("{0} = excluded.{0}").format(sql.Identifier(c)) for c in columns
            ),
        )
        cursor = await self.conn.execute(statement)
        await self.conn.execute(
            _FORGET_DELETES.format(
                deleted=table.deleted,
                staging=staging,
                key_match=_key_match(table.key_names, "d", "s"),
            )
        )
        return cursor.rowcount

    async def _delete(self, table: ReplicaTable, events: list[ChangeEvent]) -> int:
        columns = [*table.key_names, "_source_lsn", "_source_index"]
        rows = ([*(e.key[n] for n in table.key_names), *_version(e)] for e in events)
        staging = await self._stage(table.deleted, f"del_{table.slug}", columns, rows)
        cursor = await self.conn.execute(
            _DELETE.format(
                live=table.live,
                staging=staging,
                key_match=_key_match(table.key_names, "l", "s"),
            )
        )
        await self.conn.execute(
            _REMEMBER_DELETES.format(
                live=table.live,
                deleted=table.deleted,
                staging=staging,
                columns=_names(columns),
                keys=_names(table.key_names),
                key_match=_key_match(table.key_names, "l", "s"),
            )
        )
        return cursor.rowcount

    async def _stage(
        self,
        like: sql.Identifier,
        name: str,
        columns: Sequence[str],
        rows: Iterable[Sequence[object]],
    ) -> sql.Identifier:
        """COPY ``rows`` into a temporary table shaped like ``like``, emptied at commit."""
        staging = sql.Identifier(f"_govsync_{name}")
        await self.conn.execute(
            sql.SQL(
                "CREATE TEMP TABLE IF NOT EXISTS {staging} "
                "(LIKE {like} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            ).format(staging=staging, like=like)
        )
        copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(staging, _names(columns))
        async with self.conn.cursor().copy(copy_sql) as copy:
            for row in rows:
                await copy.write_row(row)
        return staging

    async def _commit_offsets(self, deliveries: Sequence[Delivery]) -> None:
        next_offsets: dict[tuple[str, int], int] = {}
        for d in deliveries:
            key = (d.topic, d.partition)
            next_offsets[key] = max(next_offsets.get(key, 0), d.offset + 1)
        if not next_offsets:
            return
        async with self.conn.cursor() as cursor:
            await cursor.executemany(
                _OFFSETS.format(schema=sql.Identifier(STATE_SCHEMA)),
                [
                    (self.group_id, t, p, o, self.topic_ids.get(t, ""))
                    for (t, p), o in next_offsets.items()
                ],
            )


def _newest_per_key(deliveries: Sequence[Delivery]) -> dict[str, list[ChangeEvent]]:
    """Per topic, only the newest change of each key: older ones cannot win anyway."""
    newest: dict[str, dict[tuple[object, ...], ChangeEvent]] = {}
    for d in deliveries:
        if not d.applies:
            continue
        per_key = newest.setdefault(d.topic, {})
        key = tuple(d.event.key.values())
        current = per_key.get(key)
        if current is None or current.position < d.event.position:
            per_key[key] = d.event
    return {topic: list(events.values()) for topic, events in newest.items()}


def _version(event: ChangeEvent) -> tuple[str, int]:
    return str(event.position.lsn), event.position.index


def _names(names: Iterable[str]) -> sql.Composed:
    return sql.SQL(", ").join(map(sql.Identifier, names))


def _key_match(keys: Iterable[str], left: str, right: str) -> sql.Composed:
    return sql.SQL(" AND ").join(
        sql.SQL("{}.{} = {}.{}").format(
            sql.Identifier(left), sql.Identifier(k), sql.Identifier(right), sql.Identifier(k)
        )
        for k in keys
    )


_UPSERT = sql.SQL(
    """
    INSERT INTO {live} AS l ({columns})
    SELECT {columns} FROM {staging} s
    WHERE NOT EXISTS (
        SELECT 1 FROM {deleted} d WHERE {key_match}
        AND (d._source_lsn, d._source_index) >= (s._source_lsn, s._source_index))
    ON CONFLICT ({keys}) DO UPDATE SET {updates}
    WHERE (l._source_lsn, l._source_index) < (excluded._source_lsn, excluded._source_index)
    """
)
_FORGET_DELETES = sql.SQL(
    """
    DELETE FROM {deleted} d USING {staging} s WHERE {key_match}
    AND (d._source_lsn, d._source_index) < (s._source_lsn, s._source_index)
    """
)
_DELETE = sql.SQL(
    """
    DELETE FROM {live} l USING {staging} s WHERE {key_match}
    AND (l._source_lsn, l._source_index) < (s._source_lsn, s._source_index)
    """
)
_REMEMBER_DELETES = sql.SQL(
    """
    INSERT INTO {deleted} AS d ({columns})
    SELECT {columns} FROM {staging} s
    WHERE NOT EXISTS (
        SELECT 1 FROM {live} l WHERE {key_match}
        AND (l._source_lsn, l._source_index) > (s._source_lsn, s._source_index))
    ON CONFLICT ({keys}) DO UPDATE
    SET _source_lsn = excluded._source_lsn, _source_index = excluded._source_index,
        deleted_at = now()
    WHERE (d._source_lsn, d._source_index) < (excluded._source_lsn, excluded._source_index)
    """
)
_OFFSETS = sql.SQL(
    """
    INSERT INTO {schema}.consumed_offsets AS o (group_id, topic, partition, next_offset, topic_id)
    VALUES (%s, %s, %s, %s, %s)
    ON CONFLICT (group_id, topic, partition) DO UPDATE
    SET next_offset = excluded.next_offset, topic_id = excluded.topic_id, updated_at = now()
    """
)
