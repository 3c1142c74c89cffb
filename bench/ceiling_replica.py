"""Raw ceilings of the replica: a plain COPY of citizen rows into an empty replica table, and
the processor's :class:`Applier` (COPY into staging, one version-guarded merge per batch, offsets
in the same transaction) applying the same events in the processor's batch size."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import psycopg
from psycopg import sql

from bench.data import replica_row
from bench.timing import Figure, rate, timed
from sync.config import ProcessorSettings
from sync.contracts import Contract
from sync.replica import Applier, DeletedKeys, Delivery, ReplicaTable
from sync.replica.layout import BOOKKEEPING, OFFSETS_DDL
from sync.types import ChangeEvent

BATCH = int(ProcessorSettings.model_fields["batch_size"].default)


def measure_replica(
    dsn: str, contract: Contract, events: Sequence[ChangeEvent]
) -> dict[str, Figure]:
    table = ReplicaTable.for_contract(contract)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(OFFSETS_DDL)  # creates the state schema the table's DDL needs
        conn.execute(table.ddl())
        copy_s = _copy(conn, table, events)
        conn.execute(sql.SQL("TRUNCATE {}").format(table.live))
    merge_s = asyncio.run(_merge(dsn, table, events))
    count = len(events)
    return {
        "copy": rate("COPY into an empty replica table", "postgres", count, copy_s),
        "merge": rate(f"Applier merge, batches of {BATCH}", "processor", count, merge_s, "events"),
    }


def _copy(
    conn: psycopg.Connection[tuple[object, ...]], table: ReplicaTable, events: Sequence[ChangeEvent]
) -> float:
    columns = [*table.value_names, *BOOKKEEPING]
    rows = [replica_row(table, e) for e in events]
    copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(
        table.live, sql.SQL(", ").join(map(sql.Identifier, columns))
    )

    def copy_all() -> None:
        with conn.transaction(), conn.cursor().copy(copy_sql) as copy:
            for row in rows:
                copy.write_row(row)

    return timed(copy_all)[1]


async def _merge(dsn: str, table: ReplicaTable, events: Sequence[ChangeEvent]) -> float:
    topic = table.contract.topic
    deliveries = [Delivery(e, topic, 0, offset) for offset, e in enumerate(events)]
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        applier = Applier(
            conn, {topic: table}, "bench-ceiling", deleted_keys=DeletedKeys(b"b" * 32)
        )
        await applier.prepare()
        loop = asyncio.get_running_loop()
        started = loop.time()
        for first in range(0, len(deliveries), BATCH):
            await applier.apply(deliveries[first : first + BATCH])
        return loop.time() - started
