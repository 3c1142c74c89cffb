"""Reading an agency's dead-letter topic, and recording what became of each letter.

Every record on ``govsync.dlq.<agency>`` is keyed by the original event's
``topic/partition/offset``, so all records about one event sit in one partition (both writers
use the producer's default, key-hashing partitioner), in order, and the last one says where it
stands:

- a dead letter (written by the processor, see :mod:`sync.kafka.deadletter`): *open*;
- a resolution marker (written by ``govsync dlq replay``, header ``govsync.resolution``):
  *replayed* when the event applied, *failed again* when it was dead-lettered once more.

Markers carry coordinates and the error, never field values, like the letters themselves.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from sync.errors import ConfigError

log = logging.getLogger(__name__)

RESOLUTION_HEADER = "govsync.resolution"
READ_TIMEOUT = 30.0  # seconds to reach the end of the dead-letter topic


class Status(StrEnum):
    OPEN = "open"
    REPLAYED = "replayed"
    FAILED_AGAIN = "failed again"


class Resolution(StrEnum):
    """What ``govsync dlq replay`` records about one letter."""

    REPLAYED = "replayed"
    FAILED_AGAIN = "failed_again"


@dataclass(frozen=True, slots=True)
class Coordinates:
    """Where the original event sits: the dead letter's key."""

    topic: str
    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"

    @classmethod
    def parse(cls, text: str) -> Coordinates:
        topic, _, rest = text.rpartition("/")
        topic, _, partition = topic.rpartition("/")
        try:
            return cls(topic, int(partition), int(rest)) if topic else _malformed(text)
        except ValueError:
            return _malformed(text)


def _malformed(text: str) -> Coordinates:
    raise ConfigError(f"{text!r} is not TOPIC/PARTITION/OFFSET, e.g. population.citizen/0/42")


@dataclass(frozen=True, slots=True)
class Letter:
    """One dead-lettered event and where it stands, folded from all records about it."""

    agency: str
    original: Coordinates
    reason: str  # of the latest letter
    error: str  # of the latest letter, or of the latest failed replay
    event_id: str
    first_ts_ms: int  # when it was first dead-lettered
    ts_ms: int  # of the latest record about it
    status: Status
    letters: int  # how many times it was dead-lettered

    @property
    def unresolved(self) -> bool:
        return self.status is not Status.REPLAYED

    def as_dict(self) -> dict[str, Any]:
        return {
            "agency": self.agency,
            "topic": self.original.topic,
            "partition": self.original.partition,
            "offset": self.original.offset,
            "reason": self.reason,
            "error": self.error,
            "event_id": self.event_id,
            "first_ts_ms": self.first_ts_ms,
            "ts_ms": self.ts_ms,
            "status": str(self.status),
            "letters": self.letters,
        }


def fold(records: Iterable[tuple[bytes | None, bytes | None]]) -> list[Letter]:
    """Letters from (key, value) records in topic order (per partition); the last record about
    an event decides its status. Records that are not ours are skipped with a warning."""
    letters: dict[Coordinates, Letter] = {}
    for key, value in records:
        try:
            where = Coordinates.parse((key or b"").decode())
            body = json.loads(value or b"")
        except (ConfigError, ValueError) as exc:
            log.warning("skipping a record of the dead-letter topic that is not ours: %s", exc)
            continue
        if not isinstance(body, dict):
            continue
        letters[where] = _folded(letters.get(where), where, body)
    return sorted(
        letters.values(), key=lambda x: (x.original.topic, x.original.partition, x.original.offset)
    )


def _folded(previous: Letter | None, where: Coordinates, body: Mapping[str, Any]) -> Letter:
    ts_ms = int(body.get("ts_ms", 0))
    resolution = body.get("resolution")
    if resolution is None:  # a dead letter
        return Letter(
            agency=str(body.get("agency", "")),
            original=where,
            reason=str(body.get("reason", "")),
            error=str(body.get("error", "")),
            event_id=str(body.get("event_id", "")),
            first_ts_ms=previous.first_ts_ms if previous else ts_ms,
            ts_ms=ts_ms,
            status=Status.OPEN,
            letters=(previous.letters if previous else 0) + 1,
        )
    if previous is None:  # a marker whose letter is gone (retention): nothing to show
        return _orphan(where, body)
    status = Status.REPLAYED if resolution == Resolution.REPLAYED else Status.FAILED_AGAIN
    error = str(body.get("error") or previous.error)
    return replace(previous, status=status, ts_ms=ts_ms, error=error)


def _orphan(where: Coordinates, body: Mapping[str, Any]) -> Letter:
    ts_ms = int(body.get("ts_ms", 0))
    replayed = body.get("resolution") == Resolution.REPLAYED
    return Letter(
        agency=str(body.get("agency", "")),
        original=where,
        reason=str(body.get("reason", "")),
        error=str(body.get("error", "")),
        event_id=str(body.get("event_id", "")),
        first_ts_ms=ts_ms,
        ts_ms=ts_ms,
        status=Status.REPLAYED if replayed else Status.FAILED_AGAIN,
        letters=0,
    )


def read_letters(
    kafka: Mapping[str, str], topic: str, timeout: float = READ_TIMEOUT
) -> list[Letter]:
    """Every letter of the dead-letter ``topic``, read from its beginning to its end.

    The end of each partition is the high watermark its fetch responses carry (reported as
    partition EOF), not a ListOffsets answer, which the embedded broker gets wrong."""
    consumer = Consumer(
        {
            **kafka,
            "group.id": "govsync-dlq-reader",  # never joined nor committed: partitions assigned
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "fetch.wait.max.ms": 50,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if metadata is None or metadata.error is not None or not metadata.partitions:
            raise ConfigError(f"dead-letter topic {topic} does not exist (nothing dead-lettered?)")
        partitions = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in metadata.partitions]
        return fold(_read_to_end(consumer, partitions, timeout))
    finally:
        consumer.close()


def _read_to_end(
    consumer: Consumer, partitions: list[TopicPartition], timeout: float
) -> list[tuple[bytes | None, bytes | None]]:
    consumer.assign(partitions)
    records: list[tuple[bytes | None, bytes | None]] = []
    pending = {tp.partition for tp in partitions}
    deadline = time.monotonic() + timeout
    while pending:
        if time.monotonic() > deadline:
            raise ConnectionError(
                f"could not read to the end of {partitions[0].topic} within {timeout:.0f} s "
                f"(partitions {sorted(pending)} unfinished); is the broker reachable?"
            )
        message = consumer.poll(0.5)
        if message is None:
            continue
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                pending.discard(int(message.partition() or 0))
                continue
            raise ConnectionError(f"reading {partitions[0].topic}: {error.str()}")
        records.append((message.key(), message.value()))
    return records


class ResolutionWriter:
    """Records on the dead-letter topic what became of replayed letters."""

    def __init__(self, kafka: Mapping[str, str], topic: str, agency: str) -> None:
        self.topic = topic
        self.agency = agency
        self._producer = Producer({**kafka, "enable.idempotence": True, "acks": "all"})

    def record(self, letter: Letter, resolution: Resolution, error: str = "") -> None:
        body = {
            "resolution": str(resolution),
            "agency": self.agency,
            "topic": letter.original.topic,
            "partition": letter.original.partition,
            "offset": letter.original.offset,
            "event_id": letter.event_id,
            "error": error,
            "ts_ms": int(time.time() * 1000),
        }
        self._producer.produce(
            self.topic,
            key=str(letter.original).encode(),
            value=json.dumps(body).encode(),
            headers={RESOLUTION_HEADER: str(resolution)},
        )

    def flush(self, timeout: float = 30) -> None:
        """Returns once the broker acknowledged every marker; raises otherwise."""
        remaining = self._producer.flush(timeout)
        if remaining:
            raise ConnectionError(f"{remaining} resolution records not acknowledged by the broker")

    def close(self) -> None:
        self._producer.flush(10)

    def __enter__(self) -> ResolutionWriter:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
