"""A citizen's change flows from the population database to a subscriber's replica."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import psycopg
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from sync.kafka import group_lag
from sync.replica import DeletedKeys
from tests.fixtures.pipeline import Pipeline

pytestmark = pytest.mark.integration

NEW = ("001099000001", "Nguyễn Thị Ánh Tuyết", date(1990, 5, 6), "nu", "Kinh", "01", "001", "00031")


def insert_citizen(conn: psycopg.Connection[tuple[object, ...]], row: tuple[object, ...]) -> None:
    conn.execute(
        "INSERT INTO citizen (personal_id, full_name, date_of_birth, sex, ethnicity, "
        "province_code, district_code, ward_code, updated_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, now())",
        row,
    )


@pytest.fixture
def running(pipeline_factory: Callable[..., Pipeline]) -> Pipeline:
    pipeline = pipeline_factory(citizens=300)
    pipeline.start_connector()
    pipeline.start_processor()
    pipeline.wait_converged()
    return pipeline


def test_snapshot_brings_every_existing_row(running: Pipeline) -> None:
    replica = running.replica_rows()
    assert len(replica) == 300
    assert replica == running.source_rows()


def test_insert_update_key_change_and_delete_reach_the_replica(running: Pipeline) -> None:
    victim = sorted(running.source_rows())[0]
    with running.source() as conn:
        insert_citizen(conn, NEW)
        conn.execute("UPDATE citizen SET ward_code = '00032' WHERE personal_id = %s", (NEW[0],))
        conn.execute(
            "UPDATE citizen SET personal_id = '001099000002' WHERE personal_id = %s", (NEW[0],)
        )
        conn.execute("DELETE FROM citizen WHERE personal_id = %s", (victim,))
    running.wait_converged()
    replica = running.replica_rows()
    assert NEW[0] not in replica
    assert replica["001099000002"][1] == "Nguyễn Thị Ánh Tuyết"
    assert replica["001099000002"][7] == "00032"
    assert victim not in replica
    with psycopg.connect(running.replica_dsn) as conn:
        remembered = {
            bytes(r[0])
            for r in conn.execute(
                "SELECT _key_hash FROM govsync_state.population__citizen__deleted"
            )
        }
    # the processor runs unrestricted: it made its key in its state directory
    secret = (running.logs / "state-vss" / "remembered-deletes.vss.key").read_bytes().strip()
    keys = DeletedKeys(secret)
    expected = {keys.digest("population.citizen", [pid]) for pid in (NEW[0], victim)}
    assert remembered == expected, "deletes are remembered outside the live table, hashed"


def test_replica_rows_carry_the_source_position_and_commit_time(running: Pipeline) -> None:
    with running.source() as conn:
        insert_citizen(conn, NEW)
        lsn_after = conn.execute("SELECT pg_current_wal_lsn()").fetchone()
    running.wait_converged()
    with psycopg.connect(running.replica_dsn) as conn:
        row = conn.execute(
            "SELECT _source_lsn, _source_index, _source_commit_time, "
            "_source_lsn <= %s::pg_lsn, now() - _source_commit_time < interval '5 minutes' "
            "FROM population.citizen WHERE personal_id = %s",
            (lsn_after[0] if lsn_after else None, NEW[0]),
        ).fetchone()
    assert row is not None
    assert row[1] == 1 and row[3] is True and row[4] is True


def test_replaying_the_topic_from_the_start_changes_nothing(running: Pipeline) -> None:
    with running.source() as conn:
        insert_citizen(conn, NEW)
        conn.execute("DELETE FROM citizen WHERE personal_id = %s", (NEW[0],))
    running.wait_converged()
    before = _replica_with_positions(running.replica_dsn)
    # a second consumer group on the same replica reads every event again from offset 0
    replay = running.start_processor(agency="replay")
    group = f"{running.name}.govsync-replica-replay"
    running.wait_for(
        lambda: not any(group_lag(running.stack.bootstrap, group, [running.topic]).values()),
        "the replay group to reach the end of the topic",
    )
    assert replay.popen.poll() is None
    assert _replica_with_positions(running.replica_dsn) == before


def test_events_are_confluent_avro_readable_by_confluents_deserializer(
    running: Pipeline, registry_url: str
) -> None:
    client = SchemaRegistryClient({"url": registry_url})
    assert client.get_latest_version(f"{running.topic}-value").schema.schema_type == "AVRO"
    assert client.get_latest_version(f"{running.topic}-key") is not None
    deserializer = AvroDeserializer(client)
    messages = _read_topic(running, 5)
    for message in messages:
        value = message.value()
        assert value[0] == 0, "magic byte"
        schema_id = int.from_bytes(value[1:5], "big")
        assert client.get_schema(schema_id) is not None
        record = deserializer(value, SerializationContext(running.topic, MessageField.VALUE))
        assert record["op"] == "r"
        assert record["after"]["personal_id"] in running.source_rows()
        assert record["source"]["lsn"] > 0
        assert record["source"]["ts_ms"] > 0


def _replica_with_positions(dsn: str) -> set[tuple[object, ...]]:
    with psycopg.connect(dsn) as conn:
        return set(conn.execute("SELECT *, _source_lsn::text FROM population.citizen"))


def _consumer(pipeline: Pipeline, group: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": pipeline.stack.bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )


def _read_topic(pipeline: Pipeline, count: int) -> list[object]:
    consumer = _consumer(pipeline, f"{pipeline.name}-reader")
    consumer.assign([TopicPartition(pipeline.topic, p, 0) for p in range(3)])
    try:
        messages: list[object] = []
        while len(messages) < count:
            message = consumer.poll(10)
            assert message is not None, "the topic holds events"
            assert message.error() is None
            messages.append(message)
        return messages
    finally:
        consumer.close()
