"""Consumer lag: how far a consumer group's committed positions are behind its topics' ends."""

from __future__ import annotations

from collections.abc import Iterable

from confluent_kafka import Consumer, TopicPartition


def group_lag(bootstrap: str, group_id: str, topics: Iterable[str]) -> dict[tuple[str, int], int]:
    """Messages not yet committed by ``group_id``, per (topic, partition). Querying does not
    join the group."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group_id, "enable.auto.commit": False}
    )
    try:
        metadata = consumer.list_topics(timeout=10)
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            if topic in metadata.topics
            for p in metadata.topics[topic].partitions
        ]
        committed = {
            (tp.topic, tp.partition): tp.offset for tp in consumer.committed(partitions, timeout=10)
        }
        lag = {}
        for tp in partitions:
            low, high = consumer.get_watermark_offsets(tp, timeout=10)
            position = committed[(tp.topic, tp.partition)]
            lag[(tp.topic, tp.partition)] = high - (position if position >= 0 else low)
        return lag
    finally:
        consumer.close()
