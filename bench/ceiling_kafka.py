"""Raw ceilings of the broker: producing pre-encoded values with the connector's producer
settings (idempotent, ``acks=all``) and consuming them back from offset 0."""

from __future__ import annotations

import contextlib
import os
import time

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from bench.timing import Figure, rate, timed
from connectors.postgres.delivery import PRODUCER_DEFAULTS
from sync.kafka import ensure_topics

VALUE_BYTES = 300
PARTITIONS = 3


def measure_kafka(bootstrap: str, topic: str, count: int) -> dict[str, Figure]:
    ensure_topics(bootstrap, [topic], PARTITIONS)
    try:
        produced = produce(bootstrap, topic, count)
        consumed = consume(bootstrap, topic, count)
    finally:
        with contextlib.suppress(Exception):  # the broker keeps topics in memory: free it
            AdminClient({"bootstrap.servers": bootstrap}).delete_topics([topic])
    return {"produce": produced, "consume": consumed}


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
