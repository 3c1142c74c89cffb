"""One agency's consumer group, read with confluent-kafka on the hot path.

faust-streaming stays the worker's framework (lifecycle, web server, /metrics, timers), but its
stream machinery costs more per event than decoding and applying it, and its aiokafka fetcher
waits up to 1.5 s on an idle partition. librdkafka hands over whole batches from its own
prefetch queue, and its fetch wait is ours to set.

The consumer is driven by exactly one task at a time: read a batch, apply it, commit it, read
the next. A rebalance can only happen inside a read, so no batch is ever in flight when
partitions are revoked, and a commit never names a partition the group has moved elsewhere.

Where a partition starts is the replica's business: its recorded offset is the position of
record, Kafka's committed offset only a fast path. After a read that assigned partitions, the
caller looks the recorded offsets up and hands them to :meth:`SubscriptionConsumer.start_at`,
which seeks where they are further than where the consumer starts. Not inside the assignment
callback: a database read there would hold the rebalance, and a client call made there
aborts the process (see :meth:`SubscriptionConsumer._refresh_partitions`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from sync.processor.decoding import RawMessage

log = logging.getLogger(__name__)

FETCH_WAIT_MS = 100  # the longest a fetch on an idle partition waits for data
# librdkafka prefetches up to 64 MiB per consumer by default; a worker hosting 85 agencies
# would hold a backlog 85 times. A few batches' worth each is enough to keep applying.
PREFETCH_KIB = 4096


class SubscriptionConsumer:
    """Reads an agency's topics in its own consumer group; commits only what it is told."""

    def __init__(
        self,
        kafka: Mapping[str, Any],
        group_id: str,
        topics: Iterable[str],
        session_timeout: float,
    ) -> None:
        self.group_id = group_id
        self.topics = sorted(topics)
        self._consumer = Consumer(
            {
                **kafka,
                "group.id": group_id,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": int(session_timeout * 1000),
                "heartbeat.interval.ms": int(min(1.0, session_timeout / 3) * 1000),
                "fetch.wait.max.ms": FETCH_WAIT_MS,
                "queued.max.messages.kbytes": PREFETCH_KIB,
                "fetch.max.bytes": PREFETCH_KIB * 1024,
                "client.id": group_id,
            }
        )
        self._assigned: set[tuple[str, int]] = set()
        self._new: set[tuple[str, int]] = set()  # assigned since the caller last asked
        # the first offset to hand over per partition, where a seek could not be made
        self._floors: dict[tuple[str, int], int] = {}
        self._partitions: set[tuple[str, int]] = set()  # of the topics, as of the assignment
        self._partitions_stale = False
        self._paused = False
        self._consumer.subscribe(self.topics, on_assign=self._on_assign, on_revoke=self._on_revoke)

    def read(self, max_messages: int, timeout: float) -> list[RawMessage]:
        """Up to ``max_messages``: waits at most ``timeout`` seconds for the first, then takes
        what is already fetched without waiting. Batches grow with the load: while one is
        applied, the next accumulates. Errors a client can recover from are logged, a fatal
        one raises."""
        first = self._consumer.poll(timeout)
        if self._partitions_stale:
            self._refresh_partitions()
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
            if self._floors and offset < self._floors.get((topic, partition), -1):
                continue  # below the replica's recorded offset: settled already
            batch.append(RawMessage(topic, partition, offset, message.key(), message.value()))
        return batch

    def newly_assigned(self) -> set[tuple[str, int]]:
        """The partitions assigned since the last call, and still assigned."""
        new, self._new = self._new & self._assigned, set()
        return new

    def start_at(
        self, recorded: Mapping[tuple[str, int], int], messages: Sequence[RawMessage]
    ) -> list[RawMessage]:
        """Move each assigned partition to its ``recorded`` offset where that is further than
        where the consumer starts it (Kafka's committed offset, or the topic's start), and
        commit it there, so that Kafka's fast path agrees; returns ``messages`` without those
        read from the moved partitions before the move."""
        starts = self._starts(recorded.keys() & self._assigned, messages)
        moved = {p: offset for p, offset in recorded.items() if p in starts and offset > starts[p]}
        sought: set[tuple[str, int]] = set()
        for (topic, partition), offset in moved.items():
            log.info(
                "group %s: %s/%d starts at the replica's recorded offset %d (the consumer at %d)",
                self.group_id,
                topic,
                partition,
                offset,
                starts[(topic, partition)],
            )
            try:
                self._consumer.seek(TopicPartition(topic, partition, offset))
                sought.add((topic, partition))
            except KafkaException as exc:
                # read on from where it is, handing over nothing below the recorded offset
                log.warning("group %s: seek failed (%s)", self.group_id, exc)
                self._floors[(topic, partition)] = offset
        self.commit(moved)
        # a moved partition is read again from its new offset: drop what came before
        return [
            m
            for m in messages
            if (m.topic, m.partition) not in sought
            and m.offset >= moved.get((m.topic, m.partition), -1)
        ]

    def _starts(
        self, partitions: set[tuple[str, int]], messages: Sequence[RawMessage]
    ) -> dict[tuple[str, int], int]:
        """Where the consumer starts each of ``partitions``: its first message among
        ``messages``, else Kafka's committed offset (-1 for none: the topic's start)."""
        starts: dict[tuple[str, int], int] = {}
        for m in messages:
            where = (m.topic, m.partition)
            if where in partitions:
                starts[where] = min(starts.get(where, m.offset), m.offset)
        rest = [TopicPartition(t, p) for t, p in partitions if (t, p) not in starts]
        if rest:
            try:
                committed = self._consumer.committed(rest, timeout=10)
            except KafkaException as exc:
                log.warning("group %s: committed offsets unknown (%s)", self.group_id, exc)
                committed = rest  # unknown: as if none, so the recorded offset wins
            starts |= {(tp.topic, tp.partition): max(tp.offset, -1) for tp in committed}
        return starts

    def commit(self, next_offsets: Mapping[tuple[str, int], int]) -> None:
        """Commit the next offset to read per partition; returns once the broker stored it."""
        if not next_offsets:
            return
        try:
            self._consumer.commit(
                offsets=[TopicPartition(t, p, o) for (t, p), o in next_offsets.items()],
                asynchronous=False,
            )
        except KafkaException as exc:
            # the replica holds the batch and its offsets; whoever reads these partitions
            # next replays from the older commit, which changes nothing
            log.warning("group %s: offset commit failed: %s", self.group_id, exc)

    def highwater(self, topic: str, partition: int) -> int | None:
        """The partition's end as the last fetch reported it, without asking the broker."""
        _, high = self._consumer.get_watermark_offsets(
            TopicPartition(topic, partition), cached=True
        )
        return high if high >= 0 else None

    @property
    def assigned(self) -> set[tuple[str, int]]:
        return set(self._assigned)

    @property
    def reads_everything(self) -> bool:
        """Every partition of every topic of the group is assigned here (no other worker
        shares the agency's partitions)."""
        return bool(self._assigned) and self._assigned == self._partitions

    def _refresh_partitions(self) -> None:
        """Every partition of the topics, read after an assignment. Not inside the assignment
        callback: a client call made there clears the call state of the read that runs the
        callback, and confluent-kafka then aborts the process."""
        try:
            metadata = self._consumer.list_topics(timeout=10)
        except KafkaException as exc:
            log.warning("group %s: no topic metadata (%s)", self.group_id, exc)
            self._partitions = set()  # unknown: hold nothing back
        else:
            self._partitions = {
                (topic, partition)
                for topic in self.topics
                if topic in metadata.topics
                for partition in metadata.topics[topic].partitions
            }
        self._partitions_stale = False

    def pause(self) -> None:
        """Stop fetching (a stopped subscription) while staying in the group."""
        self._paused = True
        if self._assigned:
            self._consumer.pause([TopicPartition(t, p) for t, p in self._assigned])

    def close(self) -> None:
        self._consumer.close()

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._assigned = {(tp.topic, tp.partition) for tp in partitions}
        self._new |= self._assigned
        self._floors = {p: o for p, o in self._floors.items() if p in self._assigned}
        self._partitions_stale = True
        log.info("group %s assigned %d partitions", self.group_id, len(partitions))
        if self._paused:
            consumer.pause(partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        revoked = {(tp.topic, tp.partition) for tp in partitions}
        self._assigned -= revoked
        self._new -= revoked
        self._floors = {p: o for p, o in self._floors.items() if p not in revoked}
