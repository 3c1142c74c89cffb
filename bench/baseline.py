"""The naive baseline: a plain confluent-kafka consumer that reads one event at a time,
decodes it, and writes it with one ``INSERT … ON CONFLICT … DO UPDATE`` (version-guarded like
the product's merge) and one commit. Same topic, same replica table, same machine; it runs for
a fixed time rather than to the end, since it is far slower."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from typing import Any

import psycopg
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from psycopg import sql

from bench.data import replica_row
from bench.session import PARTITIONS, Session
from bench.timing import Figure, rate
from sync.contracts import EventCodec
from sync.replica import ReplicaTable
from sync.replica.layout import BOOKKEEPING, OFFSETS_DDL
from sync.types import ChangeEvent


class NaiveConsumer:
    """Reads the phase's topic from offset 0, one message per poll, decoding each."""

    def __init__(self, session: Session, phase: str) -> None:
        self.codec = EventCodec(session.contract)
        self.registry = SchemaRegistryClient({"url": session.stack.registry_url})
        self.schemas: dict[int, Mapping[str, Any]] = {}
        self.consumer = Consumer(
            {
                "bootstrap.servers": session.stack.bootstrap,
                "group.id": f"bench-naive-{os.getpid()}",
                "enable.auto.commit": False,
            }
        )
        topic = session.topic(phase)
        self.consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])

    def next_event(self) -> ChangeEvent | None:
        message = self.consumer.poll(0.5)
        if message is None or message.error() is not None:
            return None
        key, value = message.key(), message.value()
        for schema_id in self.codec.schema_ids(key, value) - set(self.schemas):
            schema = self.registry.get_schema(schema_id)
            self.schemas[schema_id] = json.loads(schema.schema_str or "{}")
        return self.codec.decode(key, value, self.schemas.__getitem__)

    def close(self) -> None:
        self.consumer.close()


def naive_baseline(session: Session, phase: str, seconds: float, limit: int) -> Figure:
    table = ReplicaTable.for_contract(session.contract)
    source = NaiveConsumer(session, phase)
    try:
        with psycopg.connect(session.database("naive_replica")) as conn:
            conn.execute(OFFSETS_DDL)
            conn.execute(table.ddl())
            conn.commit()
            applied, elapsed = _apply_each(conn, table, source, seconds, limit)
    finally:
        source.close()
    label = "naive consumer: one upsert and one commit per event"
    figure = rate(label, "baseline", applied, elapsed)
    figure["time_boxed"] = applied < limit
    return figure


def _apply_each(
    conn: psycopg.Connection[tuple[object, ...]],
    table: ReplicaTable,
    source: NaiveConsumer,
    seconds: float,
    limit: int,
) -> tuple[int, float]:
    upsert = upsert_statement(table)
    applied = 0
    started = time.perf_counter()
    while applied < limit and time.perf_counter() - started < seconds:
        event = source.next_event()
        if event is None:
            continue
        conn.execute(upsert, replica_row(table, event))
        conn.commit()
        applied += 1
    return applied, time.perf_counter() - started


def upsert_statement(table: ReplicaTable) -> sql.Composed:
    columns = [*table.value_names, *BOOKKEEPING]
    return sql.SQL(
        "INSERT INTO {live} AS l ({columns}) VALUES ({values}) "
        "ON CONFLICT ({keys}) DO UPDATE SET {updates} "
        "WHERE (l._source_lsn, l._source_index) < (excluded._source_lsn, excluded._source_index)"
    ).format(
        live=table.live,
        columns=sql.SQL(", ").join(map(sql.Identifier, columns)),
        values=sql.SQL(", ").join(sql.Placeholder() for _ in columns),
        keys=sql.SQL(", ").join(map(sql.Identifier, table.key_names)),
        updates=sql.SQL(", ").join(
            sql.SQL("{0} = excluded.{0}").format(sql.Identifier(c)) for c in columns
        ),
    )
