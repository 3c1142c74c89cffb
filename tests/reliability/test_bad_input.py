"""Bad events on a live topic: each gets a clear error, a metric and a dead letter with the
reason, and nothing else is lost or blocked. Prints the table of what the user saw."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from sync.processor.deadletter import dead_letter_topic
from sync.stack.status import scrape
from tests.fixtures.pipeline import Pipeline

pytestmark = pytest.mark.integration

OTHER = {
    "type": "record",
    "name": "Unrelated",
    "namespace": "vn.gov.test",
    "fields": [{"name": "x", "type": "int"}],
}


def framed(schema_id: int, body: bytes, magic: int = 0) -> bytes:
    return struct.pack(">BI", magic, schema_id) + body


def bad_inputs(pipeline: Pipeline) -> dict[str, tuple[bytes | None, bytes | None]]:
    """name -> (key, value) as it lands on the topic."""
    client = SchemaRegistryClient({"url": pipeline.stack.registry_url})
    key_id = client.get_latest_version(f"{pipeline.topic}-key").schema_id
    value_id = client.get_latest_version(f"{pipeline.topic}-value").schema_id
    other_id = client.register_schema(
        f"{pipeline.name}.unrelated-value", Schema(json.dumps(OTHER), "AVRO")
    )
    key = framed(key_id, b"\x18" + b"079099000001")
    return {
        "wrong magic byte": (key, framed(value_id, b"\x00\x02", magic=7)),
        "unknown schema id": (key, framed(987_654, b"\x00\x02")),
        "truncated Avro body": (key, framed(value_id, b"\x02\x18079099")),
        "null value (a tombstone)": (key, None),
        "a schema the reader cannot resolve": (key, framed(other_id, b"\x02")),
        "a key and a value in no wire format": (b"not-avro", b"\x01"),
    }


def dead_letters(pipeline: Pipeline, expected: int) -> list[dict[str, object]]:
    consumer = Consumer(
        {
            "bootstrap.servers": pipeline.stack.bootstrap,
            "group.id": "dlq-read",
            "enable.partition.eof": True,
        }
    )
    topic = dead_letter_topic(f"{pipeline.name}.", "vss")
    consumer.assign([TopicPartition(topic, p, 0) for p in range(3)])
    letters, ends = [], 0
    try:
        while ends < 3 or len(letters) < expected:
            message = consumer.poll(10)
            assert message is not None, f"only {len(letters)} dead letters"
            if message.error():
                ends += 1
                continue
            letters.append(json.loads(message.value()))
    finally:
        consumer.close()
    return letters


def test_bad_events_are_dead_lettered_with_their_reason_and_nothing_is_lost(
    pipeline_factory: Callable[..., Pipeline],
) -> None:
    pipeline = pipeline_factory(citizens=100)
    pipeline.start_connector()
    processor = pipeline.start_processor().spec.metrics_url
    assert processor is not None
    pipeline.wait_converged()
    inputs = bad_inputs(pipeline)
    producer = Producer({"bootstrap.servers": pipeline.stack.bootstrap})
    for key, value in inputs.values():
        producer.produce(pipeline.topic, key=key, value=value, partition=0)
    producer.flush(10)
    with pipeline.source() as conn:  # good changes after the bad ones still flow
        conn.execute("UPDATE citizen SET ward_code = '00123'")
    pipeline.wait_converged()

    letters = dead_letters(pipeline, len(inputs))
    assert len(letters) == len(inputs)
    for letter in letters:
        assert set(letter) == {
            "agency",
            "reason",
            "error",
            "topic",
            "partition",
            "offset",
            "event_id",
            "ts_ms",
        }, "coordinates and reason, no field values"
        assert letter["reason"] == "decode_error" and letter["topic"] == pipeline.topic
    counted = scrape(processor)["govsync_processor_events_dead_lettered_total"]
    assert sum(v for _, v in counted) == len(inputs)
    rows = sorted(letters, key=lambda item: int(str(item["offset"])))
    print("\ninput | what the user saw | metric | dead letter | lost")
    for name, letter in zip(inputs, rows, strict=True):
        print(
            f"{name} | {letter['error']} | dead_lettered_total{{reason=decode_error}} | "
            f"{letter['topic']}/{letter['partition']}@{letter['offset']} | 0"
        )
