"""The per-agency dead-letter topic.

A dead-letter record says why an event could not be applied and where it is (topic, partition,
offset), but carries none of the event's fields: it must not disclose more than the agency may
see, and the original stays on its topic for ``govsync dlq replay``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from confluent_kafka import Producer


@dataclass(frozen=True)
class DeadLetter:
    agency: str
    reason: str  # a short, bounded code: decode_error, unappliable, ...
    error: str
    topic: str
    partition: int
    offset: int
    event_id: str = ""


def dead_letter_topic(prefix: str, agency: str) -> str:
    return f"{prefix}govsync.dlq.{agency}"


def dead_letter_producer(kafka: Mapping[str, Any]) -> Producer:
    """A producer for dead letters; the agencies of one worker share it."""
    return Producer({**kafka, "enable.idempotence": True, "acks": "all"})


class DeadLetterPublisher:
    def __init__(
        self, kafka: Mapping[str, Any], topic: str, producer: Producer | None = None
    ) -> None:
        self.topic = topic
        self._producer = producer if producer is not None else dead_letter_producer(kafka)

    async def publish(self, letters: list[DeadLetter]) -> None:
        """Returns once the broker acknowledged every letter; raises otherwise."""
        if not letters:
            return
        for letter in letters:
            self._producer.produce(
                self.topic,
                key=f"{letter.topic}/{letter.partition}/{letter.offset}".encode(),
                value=json.dumps({**asdict(letter), "ts_ms": int(time.time() * 1000)}).encode(),
                headers={"govsync.reason": letter.reason},
            )
        remaining = await asyncio.to_thread(self._producer.flush, 30)
        if remaining:
            raise ConnectionError(f"{remaining} dead letters not acknowledged by the broker")

    def close(self) -> None:
        self._producer.flush(10)
