"""Batched, idempotent, version-guarded apply of change events to a replica.

One database transaction per batch: the batch is reduced to the newest change per key, copied
into temporary tables with COPY, merged into the live table with one statement per kind, and
the consumed offsets are written in the same transaction. So a batch is applied completely or
not at all, its offsets move only with it, and replaying any events changes nothing:

- an upsert lands only where the row's position is older and no newer delete is remembered;
- a delete removes an older row and is remembered (outside the live table) by a keyed hash of
  its key, never the key itself (see :mod:`sync.replica.deletes`);
- a truncate at position P removes every row older than P and records P as the table's
  truncation watermark; any change older than P is a no-op from then on, upserts and deletes
  alike. A truncate arrives once per partition (see :mod:`connectors.postgres.delivery`): the
  first copy applied does the work, the others find the watermark already at P.

A ``guard`` given to the applier runs first in each of its writing transactions and refuses the
transaction by raising: a processor passes the check of its agency's member lock, so that only
the agency's active member writes (see :mod:`sync.processor.membership`).

Truncates are applied first in a batch, table by table in name order (they lock the table
against concurrent writers, so that no older row lands beside them), then the changes newer
than them; the changes they supersede never leave the reduction.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from sync.replica.deletes import DeletedKeys, migrate_raw_deletes
from sync.replica.evolution import TableChanges, evolve_table, lock_layout
from sync.replica.layout import BOOKKEEPING, OFFSETS_DDL, STATE_SCHEMA, ReplicaTable
from sync.temporal import register_pg_adapters
from sync.types import ChangeEvent, Op

log = logging.getLogger(__name__)

Connection = psycopg.AsyncConnection[tuple[object, ...]]
Guard = Callable[[Connection], Awaitable[None]]


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
    truncated: list[str] = field(default_factory=list)  # topics whose truncate did the work


class Applier:
    """Applies batches for one consumer group to one replica database (async psycopg)."""

    def __init__(
        self,
        conn: Connection,
        tables: Mapping[str, ReplicaTable],
        group_id: str,
        topic_ids: Mapping[str, str] | None = None,
        guard: Guard | None = None,
        *,
        deleted_keys: DeletedKeys,
    ) -> None:
        self.conn = conn
        register_pg_adapters(conn)  # dates and times beyond Python's range, as carried
        self.tables = dict(tables)  # by topic
        self.group_id = group_id
        # a topic's id changes when it is recreated; offsets of an older incarnation are void
        self.topic_ids = dict(topic_ids or {})
        self.guard = guard  # runs first in each writing transaction; raises to refuse it
        self.deleted_keys = deleted_keys  # remembered deletes keep keyed hashes of keys

    async def _check_guard(self) -> None:
        if self.guard is not None:
            await self.guard(self.conn)

    async def prepare(self) -> dict[str, TableChanges]:
        """Create the replica's tables if missing and bring existing ones to their contract
        (see :mod:`sync.replica.evolution`), and hash the raw keys of remembered deletes of
        the old layout, all in one transaction; returns what changed per table (by topic).
        Raises ``ReplicaSchemaError`` when a table cannot follow its contract."""
        changes = {}
        async with self.conn.transaction():
            await self._check_guard()
            await lock_layout(self.conn)
            await self.conn.execute(OFFSETS_DDL)
            for topic, table in self.tables.items():
                hashed = await migrate_raw_deletes(self.conn, table, self.deleted_keys)
                if hashed is not None:
                    log.info("%s: hashed the keys of %d remembered deletes", table.slug, hashed)
                await self.conn.execute(table.ddl())
                changes[topic] = await evolve_table(self.conn, table)
        return changes

    async def apply(
        self,
        deliveries: Sequence[Delivery],
        next_offsets: Mapping[tuple[str, int], int] | None = None,
    ) -> ApplyResult:
        """Apply ``deliveries`` and record, in the same transaction, ``next_offsets`` (the
        next offset to read per topic and partition; by default the deliveries' own)."""
        by_topic = _newest_per_key(deliveries)
        upserts = deletes = 0
        truncated = []
        async with self.conn.transaction():
            await self._check_guard()
            for topic in sorted(by_topic, key=lambda t: _watermark_name(self.tables[t])):
                truncate = next((e for e in by_topic[topic] if e.op is Op.TRUNCATE), None)
                if truncate is not None and await self._truncate(self.tables[topic], truncate):
                    truncated.append(topic)
            for topic, events in by_topic.items():
                table = self.tables[topic]
                live = [e for e in events if e.op not in (Op.DELETE, Op.TRUNCATE)]
                gone = [e for e in events if e.op is Op.DELETE]
                if live:
                    upserts += await self._upsert(table, live)
                if gone:
                    deletes += await self._delete(table, gone)
            await self._commit_offsets(deliveries, next_offsets)
        return ApplyResult(len(deliveries), upserts, deletes, truncated)

    async def _truncate(self, table: ReplicaTable, event: ChangeEvent) -> bool:
        """Empty ``table`` of rows older than ``event`` and move its watermark there; False
        when the watermark was already there (another partition's copy did the work)."""
        # SHARE ROW EXCLUSIVE waits for writers in flight and holds off new ones until
        # commit; their statements then see the watermark. Readers are not blocked.
        await self.conn.execute(
            sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(table.live)
        )
        moved = await self.conn.execute(
            _MOVE_WATERMARK.format(schema=sql.Identifier(STATE_SCHEMA)),
            (_watermark_name(table), *_version(event)),
        )
        if not moved.rowcount:
            return False
        for target in (table.live, table.deleted):  # remembered deletes the watermark covers
            await self.conn.execute(_TRUNCATE.format(target=target), _version(event))
        return True

    def _key_hash(self, table: ReplicaTable, values: Mapping[str, object]) -> bytes:
        return self.deleted_keys.digest(
            _watermark_name(table), [values.get(n) for n in table.key_names]
        )

    async def _upsert(self, table: ReplicaTable, events: list[ChangeEvent]) -> int:
        columns = [*table.value_names, *BOOKKEEPING]
        rows = (
            [
                *(e.after.get(n) for n in table.value_names),
                *_version(e),
                e.commit_time,
                self._key_hash(table, e.after),
            ]
            for e in events
            if e.after is not None
        )
        shape = sql.SQL("LIKE {} INCLUDING DEFAULTS, _key_hash bytea").format(table.live)
        staging = await self._stage(shape, f"up_{table.slug}", [*columns, "_key_hash"], rows)
        statement = _UPSERT.format(
            live=table.live,
            deleted=table.deleted,
            staging=staging,
            not_truncated=_not_truncated(table),
            columns=_names(columns),
            keys=_names(table.key_names),
            updates=sql.SQL(", ").join(
                sql.SQL("{0} = excluded.{0}").format(sql.Identifier(c)) for c in columns
            ),
        )
        cursor = await self.conn.execute(statement)
        await self.conn.execute(_FORGET_DELETES.format(deleted=table.deleted, staging=staging))
        return cursor.rowcount

    async def _delete(self, table: ReplicaTable, events: list[ChangeEvent]) -> int:
        columns = [*table.key_names, "_key_hash", "_source_lsn", "_source_index"]
        rows = (
            [*(e.key[n] for n in table.key_names), self._key_hash(table, e.key), *_version(e)]
            for e in events
        )
        shape = table.delete_staging_columns()
        staging = await self._stage(shape, f"del_{table.slug}", columns, rows)
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
                not_truncated=_not_truncated(table),
                key_match=_key_match(table.key_names, "l", "s"),
            )
        )
        return cursor.rowcount

    async def _stage(
        self,
        shape: sql.Composable,
        name: str,
        columns: Sequence[str],
        rows: Iterable[Sequence[object]],
    ) -> sql.Identifier:
        """COPY ``rows`` into a temporary table of ``shape`` (its column list), emptied at
        commit."""
        staging = sql.Identifier(f"_govsync_{name}")
        await self.conn.execute(
            sql.SQL(
                "CREATE TEMP TABLE IF NOT EXISTS {staging} ({shape}) ON COMMIT DELETE ROWS"
            ).format(staging=staging, shape=shape)
        )
        copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(staging, _names(columns))
        async with self.conn.cursor().copy(copy_sql) as copy:
            for row in rows:
                await copy.write_row(row)
        return staging

    async def record_offsets(self, next_offsets: Mapping[tuple[str, int], int]) -> None:
        """Record offsets alone, for events settled without rows to apply with them."""
        async with self.conn.transaction():
            await self._check_guard()
            await self._commit_offsets((), next_offsets)

    async def recorded_offsets(self) -> dict[tuple[str, int], int]:
        """The next offset to read per topic and partition, as this group last recorded it.
        Offsets recorded for another incarnation of a topic (another topic id), or without
        one, are void and left out."""
        async with self.conn.transaction():
            cursor = await self.conn.execute(
                _RECORDED.format(schema=sql.Identifier(STATE_SCHEMA)), (self.group_id,)
            )
            rows = await cursor.fetchall()
        return {
            (str(topic), int(partition)): int(offset)  # type: ignore[call-overload]
            for topic, partition, offset, topic_id in rows
            if topic_id and topic_id == self.topic_ids.get(str(topic))
        }

    async def _commit_offsets(
        self,
        deliveries: Sequence[Delivery],
        next_offsets: Mapping[tuple[str, int], int] | None = None,
    ) -> None:
        if next_offsets is None:
            derived: dict[tuple[str, int], int] = {}
            for d in deliveries:
                key = (d.topic, d.partition)
                derived[key] = max(derived.get(key, 0), d.offset + 1)
            next_offsets = derived
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
    """Per topic, the newest truncate first (its copies and older truncates count once), then
    the newest change of each key, unless that truncate is newer: older changes cannot win."""
    newest: dict[str, dict[tuple[object, ...], ChangeEvent]] = {}
    truncates: dict[str, ChangeEvent] = {}
    for d in deliveries:
        if not d.applies:
            continue
        per_key = newest.setdefault(d.topic, {})
        if d.event.op is Op.TRUNCATE:
            current = truncates.get(d.topic)
            if current is None or current.position < d.event.position:
                truncates[d.topic] = d.event
            continue
        key = tuple(d.event.key.values())
        current = per_key.get(key)
        if current is None or current.position < d.event.position:
            per_key[key] = d.event
    reduced = {}
    for topic, events in newest.items():
        truncate = truncates.get(topic)
        if truncate is None:
            reduced[topic] = list(events.values())
        else:
            newer = [e for e in events.values() if e.position > truncate.position]
            reduced[topic] = [truncate, *newer]
    return reduced


def _watermark_name(table: ReplicaTable) -> str:
    """The live table's name in ``govsync_state.truncations``."""
    return f"{table.contract.domain}.{table.contract.entity}"


def _not_truncated(table: ReplicaTable) -> sql.Composed:
    """A condition on the staged rows ``s``: not older than the table's last truncate."""
    return sql.SQL(
        "NOT EXISTS (SELECT 1 FROM {schema}.truncations t WHERE t.replica_table = {name} "
        "AND (t._source_lsn, t._source_index) > (s._source_lsn, s._source_index))"
    ).format(schema=sql.Identifier(STATE_SCHEMA), name=sql.Literal(_watermark_name(table)))


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
        SELECT 1 FROM {deleted} d WHERE d._key_hash = s._key_hash
        AND (d._source_lsn, d._source_index) >= (s._source_lsn, s._source_index))
    AND {not_truncated}
    ON CONFLICT ({keys}) DO UPDATE SET {updates}
    WHERE (l._source_lsn, l._source_index) < (excluded._source_lsn, excluded._source_index)
    """
)
_FORGET_DELETES = sql.SQL(
    """
    DELETE FROM {deleted} d USING {staging} s WHERE d._key_hash = s._key_hash
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
    INSERT INTO {deleted} AS d (_key_hash, _source_lsn, _source_index)
    SELECT _key_hash, _source_lsn, _source_index FROM {staging} s
    WHERE NOT EXISTS (
        SELECT 1 FROM {live} l WHERE {key_match}
        AND (l._source_lsn, l._source_index) > (s._source_lsn, s._source_index))
    AND {not_truncated}
    ON CONFLICT (_key_hash) DO UPDATE
    SET _source_lsn = excluded._source_lsn, _source_index = excluded._source_index,
        deleted_at = now()
    WHERE (d._source_lsn, d._source_index) < (excluded._source_lsn, excluded._source_index)
    """
)
_MOVE_WATERMARK = sql.SQL(
    """
    INSERT INTO {schema}.truncations AS t (replica_table, _source_lsn, _source_index)
    VALUES (%s, %s, %s)
    ON CONFLICT (replica_table) DO UPDATE
    SET _source_lsn = excluded._source_lsn, _source_index = excluded._source_index,
        truncated_at = now()
    WHERE (t._source_lsn, t._source_index) < (excluded._source_lsn, excluded._source_index)
    """
)
_TRUNCATE = sql.SQL(
    "DELETE FROM {target} WHERE (_source_lsn, _source_index) < (%s::pg_lsn, %s::integer)"
)
_RECORDED = sql.SQL(
    "SELECT topic, partition, next_offset, topic_id FROM {schema}.consumed_offsets "
    "WHERE group_id = %s"
)
_OFFSETS = sql.SQL(
    """
    INSERT INTO {schema}.consumed_offsets AS o (group_id, topic, partition, next_offset, topic_id)
    VALUES (%s, %s, %s, %s, %s)
    ON CONFLICT (group_id, topic, partition) DO UPDATE
    SET next_offset = excluded.next_offset, topic_id = excluded.topic_id, updated_at = now()
    """
)
