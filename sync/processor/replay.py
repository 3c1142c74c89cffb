"""``govsync dlq replay``: push dead-lettered events through the processor's own path again.

The original record is read from its source topic (dead letters carry only coordinates), then
handed to a :class:`~sync.processor.subscription.Subscription` built exactly as the worker
builds it, so it is decoded, projected and applied under the same manifest. The replica's
version guard makes a replay of anything already applied, or older than the row, a no-op, so
replaying twice changes nothing. What fails again is dead-lettered again by the subscription,
and a resolution marker on the dead-letter topic records the outcome of every replayed letter.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from prometheus_client import CollectorRegistry

from sync.config import ProcessorSettings
from sync.errors import ConfigError, ReplicaUnavailable
from sync.kafka import topic_ids
from sync.kafka.deadletter import (
    DeadLetter,
    DeadLetterPublisher,
    dead_letter_producer,
    dead_letter_topic,
)
from sync.metrics import ProcessorMetrics
from sync.processor.decoding import RawMessage
from sync.processor.dlq import Coordinates, Letter, Resolution, ResolutionWriter
from sync.processor.schemas import SchemaCache
from sync.processor.subscription import Subscription

log = logging.getLogger(__name__)

BATCH = 500  # letters handed to the subscription at once
SEEK_GAP = 1_000  # read on rather than seek when the next wanted offset is this close


class Outcome(StrEnum):
    REPLAYED = "replayed"
    FAILED_AGAIN = "failed again"
    GONE = "original gone"
    NOT_SUBSCRIBED = "not subscribed"
    WOULD_REPLAY = "would replay"

    @property
    def ok(self) -> bool:
        return self in (Outcome.REPLAYED, Outcome.WOULD_REPLAY)


@dataclass(frozen=True, slots=True)
class Replayed:
    letter: Letter
    outcome: Outcome
    detail: str = ""


def select(
    letters: Iterable[Letter], offsets: Sequence[Coordinates] = (), reason: str = ""
) -> list[Letter]:
    """The unresolved letters to replay: all, or those at ``offsets``, of ``reason`` if given.
    Naming an offset that has no letter is an error."""
    by_place = {letter.original: letter for letter in letters}
    missing = [str(o) for o in offsets if o not in by_place]
    if missing:
        raise ConfigError(f"no dead letter for {', '.join(missing)}")
    chosen = [by_place[o] for o in offsets] if offsets else list(by_place.values())
    return [x for x in chosen if x.unresolved and (not reason or x.reason == reason)]


async def replay(
    settings: ProcessorSettings, letters: Sequence[Letter], dry_run: bool, timeout: float
) -> list[Replayed]:
    """Replay ``letters``; ``timeout`` bounds each batch (the subscription retries an
    unreachable replica or registry for as long as it takes, a command must not)."""
    from sync.processor.worker import deleted_keys_of, subscriptions_of  # imports faust

    contracts, projections = subscriptions_of(settings)
    deleted_keys = deleted_keys_of(settings)  # the worker's, or a replay would resurrect rows
    kafka = settings.client_config()
    results = [
        Replayed(x, Outcome.NOT_SUBSCRIBED, f"{settings.agency} does not subscribe to it now")
        for x in letters
        if x.original.topic not in contracts
    ]
    wanted = [x for x in letters if x.original.topic in contracts]
    originals = read_originals(kafka, [x.original for x in wanted])
    found: list[tuple[Letter, RawMessage]] = []
    for letter in wanted:
        message = originals.get(letter.original)
        if isinstance(message, RawMessage):
            found.append((letter, message))
        else:
            results.append(Replayed(letter, Outcome.GONE, message or "not found"))
    if dry_run:
        return results + [Replayed(x, Outcome.WOULD_REPLAY) for x, _ in found]
    dlq = dead_letter_topic(settings.topic_prefix, settings.agency)
    publisher = _RecordingPublisher(dead_letter_producer(kafka), dlq)
    subscription = Subscription(
        agency=settings.agency,
        replica_dsn=settings.replica_dsn,
        contracts=contracts,
        # the replica records consumed offsets per group; a replay of old offsets must not
        # move the processor's own record backwards
        group_id=f"{settings.group_id}.dlq-replay",
        schemas=SchemaCache(settings.registry_config()),
        dead_letters=publisher,
        metrics=ProcessorMetrics.create(CollectorRegistry()),
        topic_ids=topic_ids(kafka, contracts),
        projections=projections,
        audit_dsn=settings.audit_dsn,  # a replayed record is a disclosure like any other
    )
    subscription.replica.deleted_keys = deleted_keys
    try:
        with ResolutionWriter(kafka, dlq, settings.agency) as writer:
            for start in range(0, len(found), BATCH):
                batch = found[start : start + BATCH]
                results += await _replay_batch(subscription, publisher, writer, batch, timeout)
    finally:
        await subscription.close()
        publisher.close()
    return results


async def _replay_batch(
    subscription: Subscription,
    publisher: _RecordingPublisher,
    writer: ResolutionWriter,
    batch: Sequence[tuple[Letter, RawMessage]],
    timeout: float,
) -> list[Replayed]:
    publisher.published.clear()
    try:
        await asyncio.wait_for(subscription.handle([m for _, m in batch]), timeout)
    except TimeoutError:
        raise ReplicaUnavailable(
            f"the replica or the schema registry of {subscription.agency} did not accept the "
            f"replay within {timeout:.0f} s (the retries are logged above); nothing was recorded"
        ) from None
    failed = {Coordinates(x.topic, x.partition, x.offset): x for x in publisher.published}
    results = []
    for letter, _ in batch:
        again = failed.get(letter.original)
        if again is None:
            writer.record(letter, Resolution.REPLAYED)
            results.append(Replayed(letter, Outcome.REPLAYED))
        else:
            writer.record(letter, Resolution.FAILED_AGAIN, again.error)
            results.append(Replayed(letter, Outcome.FAILED_AGAIN, again.error))
    writer.flush()
    return results


class _RecordingPublisher(DeadLetterPublisher):
    """Publishes as the processor does, and remembers what, to tell which replays failed."""

    def __init__(self, producer: Producer, topic: str) -> None:
        super().__init__(producer, topic)
        self.published: list[DeadLetter] = []

    def publish(self, letters: Sequence[DeadLetter]) -> None:
        super().publish(letters)
        self.published.extend(letters)


def read_originals(
    kafka: Mapping[str, str], places: Sequence[Coordinates], timeout: float = 30.0
) -> dict[Coordinates, RawMessage | str]:
    """The records at ``places`` on their topics, or why one is not there any more. Partitions
    are assigned and positioned by hand: no group is joined and nothing is committed."""
    consumer = Consumer(
        {
            **kafka,
            "group.id": "govsync-dlq-replay-reader",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "error",  # an offset retention removed must not be skipped
            "fetch.wait.max.ms": 50,
        }
    )
    by_partition: dict[tuple[str, int], list[int]] = {}
    for place in places:
        by_partition.setdefault((place.topic, place.partition), []).append(place.offset)
    found: dict[Coordinates, RawMessage | str] = {}
    try:
        for (topic, partition), offsets in by_partition.items():
            found |= _read_partition(consumer, topic, partition, sorted(set(offsets)), timeout)
    finally:
        consumer.close()
    return found


def _read_partition(
    consumer: Consumer, topic: str, partition: int, offsets: list[int], timeout: float
) -> dict[Coordinates, RawMessage | str]:
    found: dict[Coordinates, RawMessage | str] = {}
    pending = list(offsets)
    consumer.assign([TopicPartition(topic, partition, pending[0])])
    deadline = time.monotonic() + timeout
    while pending:
        if time.monotonic() > deadline:
            raise ConnectionError(f"could not read {topic}/{partition} within {timeout:.0f} s")
        message = consumer.poll(0.5)
        if message is None:
            beyond = _beyond_end(consumer, topic, partition, pending)
            found |= beyond
            pending = pending[: len(pending) - len(beyond)]
            continue
        error = message.error()
        if error is not None:
            where = Coordinates(topic, partition, pending.pop(0))
            if error.code() == KafkaError._PARTITION_EOF:
                gone = [where, *(Coordinates(topic, partition, o) for o in pending)]
                found |= {g: f"{topic}/{partition} ends at offset {message.offset()}" for g in gone}
                break
            if error.code() not in (KafkaError._AUTO_OFFSET_RESET, KafkaError.OFFSET_OUT_OF_RANGE):
                raise ConnectionError(f"reading {topic}/{partition}: {error.str()}")
            found[where] = _out_of_range(consumer, where)
            if pending:
                consumer.assign([TopicPartition(topic, partition, pending[0])])
            continue
        offset = int(message.offset() or 0)
        while pending and pending[0] < offset:  # skipped by the log (compaction)
            gap = pending.pop(0)
            found[Coordinates(topic, partition, gap)] = f"offset {gap} is no longer on {topic}"
        if pending and pending[0] == offset:
            pending.pop(0)
            found[Coordinates(topic, partition, offset)] = RawMessage(
                topic, partition, offset, message.key(), message.value()
            )
        if pending and pending[0] - offset > SEEK_GAP:
            consumer.assign([TopicPartition(topic, partition, pending[0])])
    return found


def _out_of_range(consumer: Consumer, where: Coordinates) -> str:
    """Why an offset the broker refused as out of range is not there: past the partition's
    end (Apache Kafka refuses a fetch there, where Tansu answers an empty one), or before its
    start, removed by retention."""
    partition = TopicPartition(where.topic, where.partition)
    try:
        _, high = consumer.get_watermark_offsets(partition, cached=False, timeout=10)
    except KafkaException:
        high = -1
    if 0 <= high <= where.offset:
        return f"{where.topic}/{where.partition} ends at offset {high}"
    return f"offset {where.offset} is no longer on {where.topic}/{where.partition} (retention)"


def _beyond_end(
    consumer: Consumer, topic: str, partition: int, pending: list[int]
) -> dict[Coordinates, RawMessage | str]:
    """The pending offsets at or past the partition's end, which some brokers answer with an
    empty fetch rather than an out-of-range error. The end is the high watermark the last
    fetch carried (a ListOffsets answer would be wrong on the embedded broker)."""
    _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), cached=True)
    if high < 0:
        return {}
    return {
        Coordinates(topic, partition, o): f"{topic}/{partition} ends at offset {high}"
        for o in pending
        if o >= high
    }
