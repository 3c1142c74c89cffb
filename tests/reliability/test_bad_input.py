"""Bad events on a live topic: each gets a clear error, a metric and a dead letter with the
reason, and nothing else is lost or blocked. Prints the table of what the user saw."""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Callable
from datetime import UTC, datetime

import fastavro
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from sync.contracts import EventCodec, envelope_schema
from sync.kafka.deadletter import dead_letter_topic
from sync.processor.dlq import read_letters
from sync.stack.status import scrape
from sync.types import ChangeEvent, Lsn, Op, Position, TableRef
from tests.fixtures.pipeline import Pipeline

pytestmark = pytest.mark.integration

OTHER = {
    "type": "record",
    "name": "Unrelated",
    "namespace": "vn.gov.test",
    "fields": [{"name": "x", "type": "int"}],
}


# a writer schema the registry accepts (Apache Avro ignores a decimal it finds invalid) and
# fastavro refuses to parse, with an exception of its own
UNPARSABLE = {
    "type": "record",
    "name": "Odd",
    "namespace": "vn.gov.test",
    "fields": [
        {
            "name": "a",
            "type": {"type": "bytes", "logicalType": "decimal", "precision": 4, "scale": -1},
        }
    ],
}
LONG_MAX = 2**63 - 1


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
        # coordinates and reason, no field values; an undecodable event has no event id
        assert set(letter) == {"agency", "reason", "error", "topic", "partition", "offset", "ts_ms"}
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


def truncate_at_the_end_of_time(pipeline: Pipeline, value_id: int) -> bytes:
    """A truncate whose commit time (``source.ts_us``) is past any datetime."""
    position = Position(Lsn(1), 0)
    truncate = ChangeEvent(
        op=Op.TRUNCATE,
        table=TableRef("public", "citizen"),
        key={},
        before=None,
        after=None,
        position=position,
        txid=1,
        commit_time=datetime.now(UTC),
        event_id=ChangeEvent.make_event_id("population", position),
        source="population",
    )
    _, value = EventCodec(pipeline.contract).encode(truncate, 0, value_id)
    schema = fastavro.parse_schema(envelope_schema(pipeline.contract))
    record = fastavro.schemaless_reader(io.BytesIO(value[5:]), schema, None)
    assert isinstance(record, dict)
    record["source"]["ts_us"] = LONG_MAX
    body = io.BytesIO()
    fastavro.schemaless_writer(body, schema, record)
    return framed(value_id, body.getvalue())


def test_a_message_that_makes_decoding_raise_any_exception_is_dead_lettered_and_the_worker_lives(
    pipeline_factory: Callable[..., Pipeline],
) -> None:
    pipeline = pipeline_factory(citizens=50)
    pipeline.start_connector()
    processor = pipeline.start_processor()
    pipeline.wait_converged()
    client = SchemaRegistryClient({"url": pipeline.stack.registry_url})
    key_id = client.get_latest_version(f"{pipeline.topic}-key").schema_id
    value_id = client.get_latest_version(f"{pipeline.topic}-value").schema_id
    odd_id = client.register_schema(
        f"{pipeline.name}.odd-value", Schema(json.dumps(UNPARSABLE), "AVRO")
    )
    producer = Producer({"bootstrap.servers": pipeline.stack.bootstrap})
    key = framed(key_id, b"\x18" + b"079099000001")
    producer.produce(pipeline.topic, key=key, value=framed(odd_id, b"\x02\x00"), partition=0)
    truncate = truncate_at_the_end_of_time(pipeline, value_id)
    producer.produce(pipeline.topic, value=truncate, partition=0)
    producer.flush(10)
    with pipeline.source() as conn:  # good changes after the bad ones still flow
        conn.execute("UPDATE citizen SET ward_code = '00321'")
    pipeline.wait_converged()

    letters = read_letters(
        {"bootstrap.servers": pipeline.stack.bootstrap},
        dead_letter_topic(f"{pipeline.name}.", "vss"),
    )
    odd, late = sorted(letters, key=lambda x: x.original.offset)
    assert odd.reason == "decode_error"
    assert "is not a usable Avro schema: SchemaParseException" in odd.error
    assert late.reason == "decode_error" and late.original.offset == odd.original.offset + 1
    assert "9223372036854775807" not in late.error
    assert processor.restarts == 0 and processor.popen.poll() is None, "the worker never died"
    log = (pipeline.logs / "processor-vss.log").read_text()
    assert "subscription failed" not in log
    print("\ninput | what the user saw")
    print(f"writer schema fastavro cannot parse | {odd.error}")
    print(f"truncate with ts_us = Long.MAX_VALUE | {late.error}")
