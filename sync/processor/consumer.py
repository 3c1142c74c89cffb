"""One agency's topics, read with confluent-kafka on the hot path.

faust-streaming stays the worker's framework (lifecycle, web server, /metrics, timers), but its
stream machinery costs more per event than decoding and applying it, and its aiokafka fetcher
waits up to 1.5 s on an idle partition. librdkafka hands over whole batches from its own
prefetch queue, and its fetch wait is ours to set.

Only the agency's active member reads (see :mod:`sync.processor.membership`), so Kafka's group
protocol has nothing to balance: the consumer assigns itself every partition of the agency's
topics, and the agency's group id serves for committed offsets only, Kafka's fast path to the
position. No rebalance ever happens. A member taking over reads at once instead of waiting for
the group to notice that the last one is gone, it always reads every partition (so whole
transactions can be held), and nothing depends on how a broker handles a member leaving while
another joins (Tansu 0.6 then leaves the group without an assignment for good).

Where a partition starts is the replica's business: its recorded offset is the position of
record, Kafka's committed offset only a fast path. The caller looks the recorded offsets up and
hands them to :meth:`SubscriptionConsumer.assign`, which starts each partition at its recorded
offset where that is further than Kafka's committed one, and otherwise where Kafka's committed
offset says (the topic's start when there is none). Partitions a topic gains later are found by
:meth:`SubscriptionConsumer.unassigned`, which the caller asks now and then.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from sync.processor.decoding import RawMessage

log = logging.getLogger(__name__)

# librdkafka prefetches up to 64 MiB per consumer by default; a worker hosting 85 agencies
# would hold a backlog 85 times. A few batches' worth each is enough to keep applying, and
# the worker's budget (GOVSYNC_PREFETCH_MIB) is shared among the agencies it hosts.
MAX_PREFETCH_KIB = 4096
MIN_PREFETCH_KIB = 1024  # a fetch may not be smaller than a message (message.max.bytes)


def prefetch_kib(budget_mib: int, agencies: int) -> int:
    """Each agency's share of the worker's prefetch budget, between 1 and 4 MiB. The
    bound is on the messages queued; the fetch responses holding them take several times as
    much (85 agencies at 4 MiB each kept 2.5 GiB resident, at 1 MiB 0.85 GiB)."""
    share = budget_mib * 1024 // max(agencies, 1)
    return max(MIN_PREFETCH_KIB, min(MAX_PREFETCH_KIB, share))


Partition = tuple[str, int]


class SubscriptionConsumer:
    """Reads every partition of an agency's topics; commits only what it is told."""

    def __init__(
        self,
        kafka: Mapping[str, Any],
        group_id: str,
        topics: Iterable[str],
        fetch_wait_ms: int = 25,
        prefetch: int = MAX_PREFETCH_KIB,
    ) -> None:
        """``fetch_wait_ms``: the longest the broker holds a fetch of partitions with nothing
        new, which a change arriving meanwhile may have to wait out on a broker that does not
        answer early (GOVSYNC_FETCH_WAIT_MS). ``prefetch``: KiB of messages queued ahead of
        the reader (:func:`prefetch_kib`)."""
        self.group_id = group_id
        self.topics = sorted(topics)
        self._consumer = Consumer(
            {
                **kafka,
                "group.id": group_id,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": fetch_wait_ms,
                "queued.max.messages.kbytes": prefetch,
                "fetch.max.bytes": prefetch * 1024,
                "client.id": group_id,
                "on_commit": self._committed_callback,
            }
        )
        self._assigned: set[Partition] = set()

    def unassigned(self) -> set[Partition]:
        """The partitions of the topics not read yet: all of them at first, then those a topic
        gained. Empty when the broker does not answer (asked again later)."""
        try:
            metadata = self._consumer.list_topics(timeout=10)
        except KafkaException as exc:
            log.warning("group %s: no topic metadata (%s)", self.group_id, exc)
            return set()
        every = {
            (topic, partition)
            for topic in self.topics
            if topic in metadata.topics
            for partition in metadata.topics[topic].partitions
        }
        return every - self._assigned

    def assign(self, partitions: Collection[Partition], recorded: Mapping[Partition, int]) -> bool:
        """Start reading ``partitions``, each at an explicit offset: its ``recorded`` one where
        that is further than Kafka's committed one (committed there too, so that Kafka's fast
        path agrees), else Kafka's committed one, else the start of the partition. When Kafka
        cannot say what is committed (its group coordinator moving, or not elected yet on a
        new cluster) nothing is assigned: :meth:`unassigned` offers the partitions again.
        Leaving the lookup to the client's own assign is not enough: a lookup refused with
        NOT_COORDINATOR there can leave a partition waiting for its offset for good. Returns
        whether the partitions were assigned."""
        committed = self._committed(partitions)
        if committed is None:
            return False
        moved = {p: recorded[p] for p in partitions if recorded.get(p, -1) > committed.get(p, -1)}
        for (topic, partition), offset in moved.items():
            log.info(
                "group %s: %s/%d starts at the replica's recorded offset %d (Kafka's at %d)",
                self.group_id,
                topic,
                partition,
                offset,
                committed.get((topic, partition), -1),
            )
        starts = {p: moved.get(p, committed.get(p, OFFSET_BEGINNING)) for p in partitions}
        self._consumer.incremental_assign(
            [TopicPartition(t, p, offset) for (t, p), offset in starts.items()]
        )
        self._assigned |= set(partitions)
        log.info("group %s reads %d partitions", self.group_id, len(self._assigned))
        self.commit(moved)
        return True

    def _committed(self, partitions: Collection[Partition]) -> dict[Partition, int] | None:
        """Kafka's committed offset of each of ``partitions`` that has one; None when the
        group's coordinator did not answer for all of them."""
        try:
            found = self._consumer.committed(
                [TopicPartition(t, p) for t, p in partitions], timeout=10
            )
        except KafkaException as exc:
            log.warning(
                "group %s: committed offsets unknown, asking again (%s)", self.group_id, exc
            )
            return None
        failed = [tp for tp in found if tp.error is not None]
        if failed:
            log.warning(
                "group %s: committed offsets unknown, asking again (%s)",
                self.group_id,
                failed[0].error,
            )
            return None
        return {(tp.topic, tp.partition): tp.offset for tp in found if tp.offset >= 0}

    def read(self, max_messages: int, timeout: float) -> list[RawMessage]:
        """Up to ``max_messages``: waits at most ``timeout`` seconds for the first, then takes
        what is already fetched without waiting. Batches grow with the load: while one is
        applied, the next accumulates. Errors a client can recover from are logged, a fatal
        one raises."""
        first = self._consumer.poll(timeout)
        if first is None:
            return []
        messages = [first]
        if max_messages > 1:
            messages += self._consumer.consume(max_messages - 1, 0)
        batch = []
        for message in messages:
            error = message.error()
            if error is not None:
                if error.fatal():
                    raise KafkaException(error)
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("group %s: %s", self.group_id, error)
                continue
            topic, partition, offset = message.topic(), message.partition(), message.offset()
            assert topic is not None and partition is not None and offset is not None
            batch.append(RawMessage(topic, partition, offset, message.key(), message.value()))
        return batch

    def commit(self, next_offsets: Mapping[Partition, int]) -> None:
        """Send the next offset to read per partition to the broker, without waiting for it
        to be stored: the replica recorded them with the batch, and its record is the position
        of record, so the next batch need not wait for Kafka's fast path. A commit that fails
        or comes late is logged and changes nothing: whoever reads these partitions next
        starts from the replica's record where it is further, and replays change nothing."""
        if not next_offsets:
            return
        try:
            self._consumer.commit(
                offsets=[TopicPartition(t, p, o) for (t, p), o in next_offsets.items()],
                asynchronous=True,
            )
        except KafkaException as exc:
            log.warning("group %s: offset commit failed: %s", self.group_id, exc)

    def _committed_callback(
        self, error: KafkaError | None, partitions: list[TopicPartition]
    ) -> None:
        """The broker's answer to a commit, served by :meth:`read`'s polls."""
        failed = [tp for tp in partitions if tp.error is not None]
        if error is not None or failed:
            log.warning(
                "group %s: offset commit failed: %s", self.group_id, error or failed[0].error
            )

    def highwater(self, topic: str, partition: int) -> int | None:
        """The partition's end as the last fetch reported it, without asking the broker."""
        _, high = self._consumer.get_watermark_offsets(
            TopicPartition(topic, partition), cached=True
        )
        return high if high >= 0 else None

    @property
    def assigned(self) -> set[Partition]:
        return set(self._assigned)

    def close(self) -> None:
        self._consumer.close()
