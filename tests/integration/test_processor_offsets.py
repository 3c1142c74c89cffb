"""The committed position never passes an event that is neither applied nor dead-lettered
(faust-streaming acknowledges events in a ``finally`` even when the agent raised, issue #315),
and the replica's recorded offsets are the position of record: a consumer starts there."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from sync.kafka import topic_ids
from sync.replica.layout import OFFSETS_DDL
from sync.stack.status import scrape
from tests.fixtures.pipeline import Pipeline

pytestmark = pytest.mark.integration

REFUSE = """
CREATE FUNCTION refuse_ward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.ward_code = '99999' THEN
        RAISE EXCEPTION 'replica refuses this batch';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse_ward BEFORE INSERT OR UPDATE ON population.citizen
    FOR EACH ROW EXECUTE FUNCTION refuse_ward();
"""


def committed(pipeline: Pipeline) -> dict[int, int]:
    consumer = Consumer(
        {
            "bootstrap.servers": pipeline.stack.bootstrap,
            "group.id": f"{pipeline.name}.govsync-replica-vss",
        }
    )
    try:
        tps = consumer.committed([TopicPartition(pipeline.topic, p) for p in range(3)], 10)
        return {tp.partition: tp.offset for tp in tps}
    finally:
        consumer.close()


def refused_event(pipeline: Pipeline) -> tuple[int, int]:
    """Where the event the replica refuses sits on the topic."""
    client = SchemaRegistryClient({"url": pipeline.stack.registry_url})
    decode = AvroDeserializer(client)
    consumer = Consumer(
        {
            "bootstrap.servers": pipeline.stack.bootstrap,
            "group.id": "probe",
            "enable.partition.eof": True,
        }
    )
    consumer.assign([TopicPartition(pipeline.topic, p, 0) for p in range(3)])
    ends = 0
    try:
        while ends < 3:
            message = consumer.poll(10)
            assert message is not None
            if message.error():
                ends += 1
                continue
            value = decode(
                message.value(), SerializationContext(pipeline.topic, MessageField.VALUE)
            )
            if value["after"] and value["after"]["ward_code"] == "99999":
                return int(message.partition()), int(message.offset())
    finally:
        consumer.close()
    raise AssertionError("the refused event is not on the topic")


def test_a_failing_apply_then_a_killed_worker_loses_nothing(
    pipeline_factory: Callable[..., Pipeline],
) -> None:
    pipeline = pipeline_factory(citizens=200)
    pipeline.start_connector()
    processor = pipeline.start_processor().spec.metrics_url
    assert processor is not None
    pipeline.wait_converged()
    with psycopg.connect(pipeline.replica_dsn, autocommit=True) as conn:
        conn.execute(REFUSE)
    with pipeline.source() as conn, conn.transaction():
        # one transaction: the refused row sits in the middle of the batch
        conn.execute("UPDATE citizen SET ward_code = '00100' WHERE province_code = '01'")
        conn.execute(
            "UPDATE citizen SET ward_code = '99999' WHERE personal_id = "
            "(SELECT min(personal_id) FROM citizen)"
        )
        conn.execute("UPDATE citizen SET ward_code = '00200' WHERE province_code = '79'")

    def stopped() -> bool:
        samples = scrape(processor).get("govsync_processor_subscription_state", [])
        return any(lab["state"] == "stopped" and v == 1 for lab, v in samples)

    pipeline.wait_for(stopped, "the subscription to stop on the refused batch")
    partition, offset = refused_event(pipeline)
    assert committed(pipeline)[partition] <= offset, "the position passed an unapplied event"
    with psycopg.connect(pipeline.replica_dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM population.citizen WHERE ward_code = '99999'"
        ).fetchone()
    assert row is not None and row[0] == 0

    pipeline.kill("processor-vss")
    with psycopg.connect(pipeline.replica_dsn, autocommit=True) as conn:
        conn.execute("DROP TRIGGER refuse_ward ON population.citizen")
    pipeline.wait_converged()  # the supervisor restarts the worker, which reads it all again
    pipeline.wait_for(
        lambda: committed(pipeline)[partition] > offset,
        "the restarted worker to commit past the once-refused event",
    )


def keys_by_offset(pipeline: Pipeline, expected: int) -> dict[tuple[int, int], str]:
    """(partition, offset) -> personal id of every message on the topic, once ``expected``
    are there."""
    client = SchemaRegistryClient({"url": pipeline.stack.registry_url})
    decode = AvroDeserializer(client)
    context = SerializationContext(pipeline.topic, MessageField.KEY)
    consumer = Consumer({"bootstrap.servers": pipeline.stack.bootstrap, "group.id": "probe"})
    consumer.assign([TopicPartition(pipeline.topic, p, 0) for p in range(3)])
    keys: dict[tuple[int, int], str] = {}

    def read() -> bool:
        for message in consumer.consume(500, 0.5):
            if message.error() is None:
                where = (int(message.partition() or 0), int(message.offset() or 0))
                keys[where] = decode(message.key(), context)["personal_id"]
        return len(keys) >= expected

    try:
        pipeline.wait_for(read, f"{expected} messages on {pipeline.topic}")
    finally:
        consumer.close()
    return keys


def test_a_new_consumer_starts_at_the_replicas_recorded_offsets(
    pipeline_factory: Callable[..., Pipeline],
) -> None:
    """The replica recorded partition 0 as read to its end and partition 2 up to offset 5;
    Kafka has no committed offset for partition 0 and an older one (2) for partition 2. The
    events below the records are never read nor applied, and Kafka's committed offsets follow
    the records. Partition 1's record belongs to an older incarnation of the topic: void, so
    it is read from its start."""
    pipeline = pipeline_factory(citizens=90)
    pipeline.start_connector()
    keys = keys_by_offset(pipeline, 90)
    ends = {p: 1 + max(o for q, o in keys if q == p) for p in range(3)}
    group = f"{pipeline.name}.govsync-replica-vss"
    kafka = {"bootstrap.servers": pipeline.stack.bootstrap}
    [topic_id] = topic_ids(kafka, [pipeline.topic]).values()
    records = {0: (ends[0], topic_id), 1: (5, "an-older-topic-id"), 2: (5, topic_id)}
    with psycopg.connect(pipeline.replica_dsn, autocommit=True) as conn:
        conn.execute(OFFSETS_DDL)
        for partition, (offset, incarnation) in records.items():
            conn.execute(
                "INSERT INTO govsync_state.consumed_offsets "
                "(group_id, topic, partition, next_offset, topic_id) VALUES (%s, %s, %s, %s, %s)",
                (group, pipeline.topic, partition, offset, incarnation),
            )
    committer = Consumer({**kafka, "group.id": group, "enable.auto.commit": False})
    committer.commit(offsets=[TopicPartition(pipeline.topic, 2, 2)], asynchronous=False)
    committer.close()
    assert committed(pipeline) == {0: -1001, 1: -1001, 2: 2}

    metrics_url = pipeline.start_processor().spec.metrics_url
    assert metrics_url is not None
    skipped = {pid for (p, offset), pid in keys.items() if p == 0 or (p == 2 and offset < 5)}
    expected = {k: v for k, v in pipeline.source_rows().items() if k not in skipped}
    pipeline.wait_for(
        lambda: pipeline.replica_rows() == expected, "every event from the recorded offsets on"
    )
    # partition 0 is committed at its end though nothing of it is read: the record's commit
    pipeline.wait_for(lambda: committed(pipeline) == ends, "every partition to be committed")
    consumed = scrape(metrics_url)["govsync_processor_events_consumed_total"]
    assert sum(v for _, v in consumed) == 90 - len(skipped), "nothing below a record read"
    assert pipeline.replica_rows() == expected
    with psycopg.connect(pipeline.replica_dsn) as conn:
        recorded = conn.execute(
            "SELECT partition, next_offset, topic_id FROM govsync_state.consumed_offsets "
            "WHERE group_id = %s",
            (group,),
        ).fetchall()
    assert {p: (o, i) for p, o, i in recorded} == {p: (o, topic_id) for p, o in ends.items()}
