"""Raw ceilings of the broker the pipeline runs on: producing pre-encoded values with the
connector's producer settings (idempotent, ``acks=all``) into a topic replicated as the
pipeline's are, and consuming them back from offset 0."""

from __future__ import annotations

import logging
import os
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from bench.timing import Figure, rate, timed
from connectors.postgres.delivery import PRODUCER_DEFAULTS
from sync.kafka import ensure_topics

log = logging.getLogger(__name__)

VALUE_BYTES = 300
PARTITIONS = 3


def measure_kafka(
    bootstrap: str, topic: str, count: int, replication: int | None = None
) -> dict[str, Figure]:
    """``replication``: the topic's replication factor (None: the broker's default)."""
    ensure_topics(bootstrap, [topic], PARTITIONS, replication)
    try:
        produced = produce(bootstrap, topic, count)
        consumed = consume(bootstrap, topic, count)
    finally:
        delete_topic(bootstrap, topic)
    return {"produce": produced, "consume": consumed}


def delete_topic(bootstrap: str, topic: str, timeout: float = 60.0) -> None:
    """Delete ``topic`` and wait for the answer (Tansu keeps topics in memory, a Kafka cluster
    on disk: either way the rest of the run should not carry them). A failure is logged, not
    raised: it costs memory or disk, not the figures."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    future = admin.delete_topics([topic], operation_timeout=timeout)[topic]
    try:
        future.result(timeout=timeout)
    except (KafkaException, TimeoutError) as exc:
        log.warning("could not delete topic %s: %s", topic, exc)


def produce(bootstrap: str, topic: str, count: int) -> Figure:
    producer = Producer({"bootstrap.servers": bootstrap, **PRODUCER_DEFAULTS})
    value = os.urandom(VALUE_BYTES)
    keys = [f"{n:012d}".encode() for n in range(count)]
    failures: list[KafkaError] = []

    def on_delivery(error: KafkaError | None, _msg: Message) -> None:
        if error is not None:
            failures.append(error)

    def send_all() -> int:
        for key in keys:
            while True:
                try:
                    producer.produce(topic, value=value, key=key, on_delivery=on_delivery)
                    break
                except BufferError:
                    producer.poll(0.05)
        return int(producer.flush(120))

    remaining, seconds = timed(send_all)
    if failures or remaining:
        raise RuntimeError(f"raw produce: {len(failures)} failed, {remaining} unflushed")
    figure = rate("raw produce (acks=all, idempotent)", "broker", count, seconds, "messages")
    figure["mb_per_s"] = round(count * VALUE_BYTES / seconds / 1e6, 1)
    return figure


def consume(bootstrap: str, topic: str, count: int, timeout: float = 120.0) -> Figure:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-raw-{os.getpid()}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])

    def read_all() -> int:
        seen, deadline = 0, time.monotonic() + timeout
        while seen < count and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=10_000, timeout=0.5):
                if message.error() is None:
                    seen += 1
        return seen

    try:
        seen, seconds = timed(read_all)
    finally:
        consumer.close()
    if seen < count:
        raise RuntimeError(f"raw consume: read {seen} of {count} messages")
    return rate("raw consume from offset 0", "broker", count, seconds, "messages")
