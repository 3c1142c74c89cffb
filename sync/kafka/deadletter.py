"""Dead letters, for the connector and the processor alike: one record type, the topic names,
the JSON on the topic, and a publisher that returns only once the broker acknowledged.

A dead letter says why an event could not go on and where the original is -- for the
processor its topic, partition and offset; for the connector the source table, the commit
position and the event id -- and never carries a field value: it must not disclose more than
the agency may see, and the original stays on its topic (or in its source) for a replay.

Topics: ``<prefix>govsync.dlq.<agency>`` for an agency's processor letters,
``<prefix>govsync.dlq.connector.<source>`` for a source's connector letters.

Retention: dead letters are kept at least 12 months (Decree 53/2022 on logs), so
:func:`dead_letter_topic_config` refuses less; every topic govsync creates for them gets it.

Nothing acknowledged is lost: :meth:`DeadLetterPublisher.publish` waits for the delivery
report of every letter, and raises :class:`DeadLetterNotAcknowledged` (retryable) when one is
missing or failed, so the caller moves no position past an event whose letter is not stored.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from sync.errors import ConfigError, Retryable

REASON_HEADER = "govsync.reason"
ACK_TIMEOUT = 30.0  # seconds to wait for the broker's acknowledgement of a batch of letters


class DeadLetterNotAcknowledged(Retryable):
    """The broker did not acknowledge every dead letter; the caller keeps its position."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Why one event could not go on, and where it is; never a field value.

    ``reason`` is a short, bounded code (a metric label): ``decode_error``, ``unappliable``,
    ``projection_error`` (processor); ``too_large``, ``unencodable`` (connector).
    ``error`` says what was wrong by type and field name.
    """

    reason: str
    error: str
    topic: str  # the event's topic
    event_id: str = ""
    # processor letters: the subscribing agency, and where the original sits on its topic
    agency: str = ""
    partition: int = -1
    offset: int = -1
    # connector letters: where the change is in its source
    source: str = ""
    table: str = ""
    lsn: str = ""
    index: int = -1
    op: str = ""
    field: str = ""  # the field that could not be carried, when one is to blame
    size_bytes: int = 0
    limit_bytes: int = 0

    @property
    def key(self) -> bytes:
        """Processor letters are keyed by the original's coordinates, so every record about
        one event (letters, replay outcomes) sits in one partition, in order; connector
        letters by the event id."""
        if self.partition >= 0:
            return f"{self.topic}/{self.partition}/{self.offset}".encode()
        return self.event_id.encode()

    def to_json(self, now_ms: int | None = None) -> bytes:
        body = {
            name: value
            for name, value in asdict(self).items()
            if value != _DEFAULTS.get(name, object())
        }
        body["ts_ms"] = int(time.time() * 1000) if now_ms is None else now_ms
        return json.dumps(body, ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> DeadLetter:
        """A letter from its JSON; fields it does not know (``ts_ms``, newer ones) are left."""
        body = json.loads(data)
        if not isinstance(body, dict):
            raise ValueError("a dead letter is a JSON object")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in body.items() if k in known})


_DEFAULTS: dict[str, Any] = {
    f.name: f.default for f in fields(DeadLetter) if f.default is not MISSING
}


def dead_letter_topic(prefix: str, agency: str) -> str:
    """An agency's dead-letter topic (the processor's letters)."""
    return f"{prefix}govsync.dlq.{agency}"


def connector_dead_letter_topic(prefix: str, source: str) -> str:
    """A source's dead-letter topic (the connector's letters)."""
    return f"{prefix}govsync.dlq.connector.{source}"


MIN_RETENTION_MONTHS = 12
_DAY_MS = 24 * 3600 * 1000


def dead_letter_topic_config(months: int = MIN_RETENTION_MONTHS) -> dict[str, str]:
    """The configuration of a dead-letter topic keeping letters ``months`` months (of 31
    days, so never less than the calendar months); a ConfigError below 12."""
    if months < MIN_RETENTION_MONTHS:
        raise ConfigError(
            f"dead letters are kept at least {MIN_RETENTION_MONTHS} months (Decree 53/2022); "
            f"{months} was asked (GOVSYNC_DEAD_LETTER_RETENTION_MONTHS)"
        )
    return {"cleanup.policy": "delete", "retention.ms": str(months * 31 * _DAY_MS)}


def dead_letter_producer(kafka: Mapping[str, Any]) -> Producer:
    """A producer for dead letters; the agencies of one worker may share it."""
    return Producer({**kafka, "enable.idempotence": True, "acks": "all"})


class _Acks:
    """Delivery reports of one batch, whichever thread serves them."""

    def __init__(self, expected: int) -> None:
        self._expected = expected
        self._done = threading.Condition()
        self.failures: list[KafkaError] = []

    def __call__(self, error: KafkaError | None, _message: Message) -> None:
        with self._done:
            if error is not None:
                self.failures.append(error)
            self._expected -= 1
            self._done.notify_all()

    def wait(self, producer: Producer, timeout: float) -> int:
        """Serve delivery reports until every one arrived or ``timeout``; returns how many are
        still missing. Another thread's poll may serve ours: the condition sees it."""
        deadline = time.monotonic() + timeout
        while True:
            with self._done:
                if self._expected <= 0:
                    return 0
            left = deadline - time.monotonic()
            if left <= 0:
                with self._done:
                    return self._expected
            producer.flush(min(left, 1.0))
            with self._done:
                if self._expected > 0:
                    self._done.wait(min(max(deadline - time.monotonic(), 0), 0.05))


class DeadLetterPublisher:
    """Publishes letters to one dead-letter topic and confirms each was stored."""

    def __init__(self, producer: Producer, topic: str, timeout: float = ACK_TIMEOUT) -> None:
        self.topic = topic
        self._producer = producer
        self._timeout = timeout

    def publish(self, letters: Sequence[DeadLetter]) -> None:
        """Returns once the broker acknowledged every letter; raises
        :class:`DeadLetterNotAcknowledged` otherwise (the letters may then be sent again)."""
        if not letters:
            return
        acks = _Acks(len(letters))
        for letter in letters:
            self.produce(letter, acks)
        missing = acks.wait(self._producer, self._timeout)
        if acks.failures or missing:
            first = acks.failures[0] if acks.failures else f"{missing} unacknowledged"
            raise DeadLetterNotAcknowledged(
                f"{len(letters)} dead letter(s) on {self.topic} not acknowledged: {first}"
            )

    async def publish_async(self, letters: Sequence[DeadLetter]) -> None:
        """:meth:`publish` off the event loop."""
        if letters:
            await asyncio.to_thread(self.publish, letters)

    def produce(self, letter: DeadLetter, on_delivery: Any) -> None:
        """Queue one letter; ``on_delivery(error, message)`` reports the broker's answer."""
        while True:
            try:
                self._producer.produce(
                    self.topic,
                    key=letter.key,
                    value=letter.to_json(),
                    headers={REASON_HEADER: letter.reason},
                    on_delivery=on_delivery,
                )
                return
            except BufferError:
                self._producer.poll(0.1)  # local queue full: let deliveries drain

    def close(self) -> None:
        self._producer.flush(10)
