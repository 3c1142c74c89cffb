"""How many records a topic holds, read from its partitions' watermarks, and how big they are.

Neither connector writes transactions or control records to its data topic, so the records
between each partition's low and high watermark are the changes the brokers acknowledged.
"""

from __future__ import annotations

import statistics
from types import TracebackType

from confluent_kafka import Consumer, KafkaException, TopicPartition

TIMEOUT = 5.0


class TopicRecords:
    """Use as a context manager: one consumer, never joining a group, kept for every read."""

    def __init__(self, client: dict[str, str], topic: str) -> None:
        self.topic = topic
        # a group id is required by the client, but nothing subscribes or commits
        self._consumer = Consumer(
            {**client, "group.id": "govsync-bench-watermarks", "enable.auto.commit": False}
        )

    def __enter__(self) -> TopicRecords:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._consumer.close()

    def partitions(self) -> list[int]:
        """The topic's partitions; none while it does not exist."""
        metadata = self._consumer.list_topics(self.topic, timeout=TIMEOUT)
        found = metadata.topics.get(self.topic)
        if found is None or found.error is not None:
            return []
        return sorted(found.partitions)

    def count(self) -> int:
        """The records of every partition; a partition whose leader is not known yet (a
        topic just created) counts none."""
        total = 0
        for partition in self.partitions():
            try:
                low, high = self._consumer.get_watermark_offsets(
                    TopicPartition(self.topic, partition), timeout=TIMEOUT, cached=False
                )
            except KafkaException:
                continue
            total += high - low
        return total

    def mean_record_bytes(self, limit: int = 2_000) -> float | None:
        """The mean size of key and value over the first ``limit`` records of the topic's
        first partition."""
        partitions = self.partitions()
        if not partitions:
            return None
        self._consumer.assign([TopicPartition(self.topic, partitions[0], 0)])
        sizes: list[int] = []
        try:
            while len(sizes) < limit:
                batch = self._consumer.consume(min(500, limit - len(sizes)), timeout=TIMEOUT)
                if not batch:
                    break
                sizes += [
                    len(m.key() or b"") + len(m.value() or b"") for m in batch if not m.error()
                ]
        finally:
            self._consumer.unassign()
        return statistics.fmean(sizes) if sizes else None
