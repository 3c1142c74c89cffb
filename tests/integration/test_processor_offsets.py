"""The committed position never passes an event that is neither applied nor dead-lettered
(faust-streaming acknowledges events in a ``finally`` even when the agent raised, issue #315)."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

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
