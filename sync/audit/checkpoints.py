"""Signed checkpoints leave the audit database: published to a Kafka topic (each confirmed by
the broker), optionally time-stamped by an RFC 3161 authority, and read back by ``govsync
audit verify`` as anchors a chain must still pass through.

A database superuser can cut a chain back to an earlier signed entry without any key; only a
checkpoint kept elsewhere shows it. Whoever keeps the topic (or a copy of it, e.g. the data
protection authority) therefore holds the proof of everything up to the last checkpoint.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from sync.audit.chain import Break
from sync.audit.signing import Checkpoint, TrustedKeys
from sync.audit.timestamp import TimeStampAuthority
from sync.errors import AuditError
from sync.kafka import ensure_topics

log = logging.getLogger(__name__)


def encode(checkpoint: Checkpoint) -> bytes:
    """The checkpoint as published: JSON, binary fields in hex or base64."""
    c = checkpoint
    document = {
        "kind": c.kind,
        "agency": c.agency,
        "seq": c.seq,
        "head": c.head.hex(),
        "at": c.at.isoformat(),
        "key_id": c.key_id,
        "signature": base64.b64encode(c.signature).decode("ascii"),
        "timestamp_token": (
            None if c.timestamp_token is None else base64.b64encode(c.timestamp_token).decode()
        ),
    }
    return json.dumps(document, sort_keys=True).encode("utf-8")


def decode(raw: bytes) -> Checkpoint:
    """A published checkpoint; ValueError when it is not one."""
    try:
        d = json.loads(raw)
        token = d.get("timestamp_token")
        checkpoint = Checkpoint(
            kind=str(d["kind"]),
            agency=str(d["agency"]),
            seq=int(d["seq"]),
            head=bytes.fromhex(d["head"]),
            at=datetime.fromisoformat(d["at"]),
            key_id=str(d["key_id"]),
            signature=base64.b64decode(d["signature"], validate=True),
            timestamp_token=None if token is None else base64.b64decode(token, validate=True),
        )
        checkpoint.statement()  # the kind is one a key signs
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a checkpoint: {exc}") from None
    return checkpoint


class CheckpointPublisher:
    """Publishes checkpoints to one topic, keyed by agency; :meth:`publish` returns only once
    the broker stored it (acks=all, idempotent producer)."""

    def __init__(self, kafka: Mapping[str, Any], topic: str, timeout: float = 30.0) -> None:
        self.topic = topic
        self.timeout = timeout
        self._producer = Producer({**kafka, "enable.idempotence": True, "acks": "all"})

    @classmethod
    def create(cls, kafka: Mapping[str, Any], topic: str) -> CheckpointPublisher:
        """A publisher whose topic exists: one partition, so checkpoints keep one order."""
        ensure_topics(dict(kafka), [topic], 1)
        return cls(kafka, topic)

    def publish(self, checkpoint: Checkpoint) -> None:
        outcome: list[KafkaError | None] = []

        def delivered(error: KafkaError | None, _message: Message) -> None:
            outcome.append(error)

        self._producer.produce(
            self.topic, key=checkpoint.agency, value=encode(checkpoint), on_delivery=delivered
        )
        deadline = time.monotonic() + self.timeout
        while not outcome and time.monotonic() < deadline:
            self._producer.flush(min(1.0, max(deadline - time.monotonic(), 0.0)))
        if not outcome or outcome[0] is not None:
            reason = outcome[0] if outcome else f"no acknowledgement in {self.timeout:.0f} s"
            raise AuditError(
                f"checkpoint {checkpoint} not published to {self.topic}: {reason}",
                agency=checkpoint.agency,
            )

    def close(self) -> None:
        self._producer.flush(5)


class Checkpointer:
    """Which signed heads a writer publishes: the newest, at most one per ``every`` seconds,
    time-stamped at most once per ``stamp_every``. A checkpoint that cannot be published now
    is kept and tried again with the next batch: the disclosures are already committed, and
    a late checkpoint only narrows what it proves."""

    def __init__(
        self,
        publisher: CheckpointPublisher,
        tsa: TimeStampAuthority | None = None,
        every: float = 5.0,
        stamp_every: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.publisher = publisher
        self.tsa = tsa
        self.every, self.stamp_every = every, stamp_every
        self.pending: Checkpoint | None = None
        self._clock = clock
        self._published_at: float | None = None
        self._stamped_at: float | None = None

    async def offer(self, checkpoint: Checkpoint) -> None:
        self.pending = checkpoint
        if self._published_at is None or self._clock() - self._published_at >= self.every:
            await self.flush()

    async def flush(self) -> bool:
        """Publish the pending checkpoint now; False when it could not be."""
        checkpoint = self.pending
        if checkpoint is None:
            return True
        try:
            await asyncio.to_thread(self._publish, checkpoint)
        except (AuditError, KafkaException, BufferError) as exc:
            log.warning("audit checkpoint for %s kept for later: %s", checkpoint.agency, exc)
            return False
        if self.pending is checkpoint:
            self.pending = None
        self._published_at = self._clock()
        return True

    def _publish(self, checkpoint: Checkpoint) -> None:
        due = self._stamped_at is None or self._clock() - self._stamped_at >= self.stamp_every
        if self.tsa is not None and due:
            try:
                checkpoint = checkpoint.stamped(self.tsa.stamp(checkpoint.statement()).token)
                self._stamped_at = self._clock()
            except AuditError as exc:
                log.warning("audit checkpoint for %s not time-stamped: %s", checkpoint.agency, exc)
        self.publisher.publish(checkpoint)

    async def close(self) -> None:
        await self.flush()
        await asyncio.to_thread(self.publisher.close)


def read_checkpoints(
    kafka: Mapping[str, Any], topic: str, timeout: float = 60.0
) -> tuple[list[Checkpoint], int]:
    """Every checkpoint on ``topic``, oldest first, and how many messages were not
    checkpoints. Reads to the end as it is now, without joining a consumer group."""
    consumer = Consumer(
        {
            **kafka,
            "group.id": f"govsync-audit-verify-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        return _read_all(consumer, topic, time.monotonic() + timeout)
    finally:
        consumer.close()


def _read_all(consumer: Consumer, topic: str, deadline: float) -> tuple[list[Checkpoint], int]:
    found = consumer.list_topics(topic, timeout=15).topics.get(topic)
    if found is None or found.error is not None:
        return [], 0
    ends: dict[int, int] = {}
    for partition in found.partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=15)
        if high > low:
            ends[partition] = high
    consumer.assign([TopicPartition(topic, p, 0) for p in ends])
    checkpoints, unreadable = [], 0
    while ends:
        if time.monotonic() > deadline:
            raise AuditError(f"reading checkpoints from {topic} timed out")
        message = consumer.poll(1.0)
        if message is None:
            continue
        if message.error() is not None:
            raise AuditError(f"reading checkpoints from {topic}: {message.error()}")
        partition, offset = message.partition(), message.offset()
        try:
            checkpoints.append(decode(message.value() or b""))
        except ValueError:
            unreadable += 1
        if partition is not None and offset is not None and offset + 1 >= ends.get(partition, 0):
            ends.pop(partition, None)
    return checkpoints, unreadable


def read_checkpoint_file(path: Path) -> tuple[list[Checkpoint], int]:
    """Checkpoints kept as JSON lines, one published message per line (a third party's
    copy of the topic)."""
    checkpoints, unreadable = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                checkpoints.append(decode(line.encode("utf-8")))
            except ValueError:
                unreadable += 1
    return checkpoints, unreadable


@dataclass
class Anchors:
    """Per agency, seq -> head of every checkpoint a trusted key signed (any checkpoint when
    no keys are given); what was ignored; and contradictions. Two signed checkpoints naming
    different heads at one seq mean a key holder rewrote the chain after publishing: that is
    a break, never resolved in favour of either."""

    heads: dict[str, dict[int, bytes]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    conflicts: list[Break] = field(default_factory=list)

    @classmethod
    def of(cls, checkpoints: Iterable[Checkpoint], keys: TrustedKeys | None) -> Anchors:
        anchors = cls()
        for c in checkpoints:
            problem = None if keys is None else keys.problem(c)
            if problem is not None:
                anchors.ignored.append(f"checkpoint {c.agency}:{c.seq} ignored: {problem}")
                continue
            anchors.counts[c.agency] = anchors.counts.get(c.agency, 0) + 1
            known = anchors.heads.setdefault(c.agency, {}).setdefault(c.seq, c.head)
            if known != c.head:
                anchors.conflicts.append(
                    Break(
                        c.agency,
                        c.seq,
                        "two signed checkpoints name different heads (rewritten after a "
                        "checkpoint)",
                    )
                )
        return anchors
