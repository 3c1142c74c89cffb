"""Consumer lag: how far a consumer group's committed positions are behind its topics' ends.

Topic ends are read from the high watermark a fetch response carries, not from a ListOffsets
request: Tansu 0.6 answers ListOffsets(latest) with a wrong offset (1 here, whatever the
partition holds), while its fetch responses carry the right high watermark, as Kafka's do.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from sync.kafka.topics import KafkaClient, client_config

Partition = tuple[str, int]


def _consumer(kafka: KafkaClient, group_id: str) -> Consumer:
    return Consumer(
        {
            **client_config(kafka),
            "group.id": group_id,
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "max.partition.fetch.bytes": 1024,
        }
    )


def _partitions(consumer: Consumer, topics: Iterable[str]) -> list[TopicPartition]:
    metadata = consumer.list_topics(timeout=10)
    return [
        TopicPartition(topic, p)
        for topic in topics
        if topic in metadata.topics
        for p in metadata.topics[topic].partitions
    ]


def _high_watermarks(
    consumer: Consumer, positions: dict[Partition, int], timeout: float = 10
) -> dict[Partition, int]:
    """Fetch once from each partition (at ``positions``) and read the watermark it carries."""
    consumer.assign([TopicPartition(t, p, o) for (t, p), o in positions.items()])
    seen: set[Partition] = set()
    deadline = time.monotonic() + timeout
    while len(seen) < len(positions) and time.monotonic() < deadline:
        message = consumer.poll(0.2)
        if message is None:
            continue
        error = message.error()
        if error is not None and error.code() != KafkaError._PARTITION_EOF:
            continue
        seen.add((str(message.topic()), int(message.partition() or 0)))
    return {
        (t, p): consumer.get_watermark_offsets(TopicPartition(t, p), cached=True)[1]
        for (t, p) in positions
    }


def group_lag(kafka: KafkaClient, group_id: str, topics: Iterable[str]) -> dict[Partition, int]:
    """Messages not yet committed by ``group_id``, per (topic, partition). Querying does not
    join the group. ``kafka``: a bootstrap address or a client configuration."""
    consumer = _consumer(kafka, group_id)
    try:
        partitions = _partitions(consumer, topics)
        committed = {
            (tp.topic, tp.partition): tp.offset for tp in consumer.committed(partitions, timeout=10)
        }
        positions = {k: (o if o >= 0 else OFFSET_BEGINNING) for k, o in committed.items()}
        ends = _high_watermarks(consumer, positions)
        return {k: ends[k] - max(committed[k], 0) for k in positions}
    finally:
        consumer.close()


def end_offsets(kafka: KafkaClient, topics: Iterable[str]) -> dict[Partition, int]:
    """The next offset to be written in each partition of ``topics``."""
    consumer = _consumer(kafka, "govsync-end-offsets")
    try:
        partitions = _partitions(consumer, topics)
        return _high_watermarks(
            consumer, {(tp.topic, tp.partition): OFFSET_BEGINNING for tp in partitions}
        )
    finally:
        consumer.close()
