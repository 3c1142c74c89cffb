"""A probe consumer that splits end-to-end latency at the broker.

While the latency loads run, a plain consumer with a 10 ms fetch wait reads the pipeline's topic
and records, for each event produced after the probe started, the time from its source commit
(carried in the event) to the moment the probe could read it. That covers the connector (poll,
decode, encode, produce) and the broker; the rest of the processor's end-to-end figure is the
processor side (fetch, batch window, decode, apply, commit). The probe starts each partition
at its high watermark: reading the topic's backlog from offset 0 would keep the broker busy
(close to a core on Tansu) during the very loads it measures. Messages produced before the probe
started are skipped by their Kafka timestamp, without decoding.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Mapping
from typing import Any

from confluent_kafka import Consumer, Message, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient

from sync.contracts import Contract, EventCodec

FETCH_WAIT_MS = 10


class BrokerProbe:
    """Start with :meth:`start`; :meth:`latencies` between two commit times; then :meth:`stop`."""

    def __init__(
        self, bootstrap: str, registry_url: str, topic: str, contract: Contract, partitions: int
    ) -> None:
        self.codec = EventCodec(contract)
        self.registry = SchemaRegistryClient({"url": registry_url})
        self.schemas: dict[int, Mapping[str, Any]] = {}
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"bench-probe-{os.getpid()}",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": FETCH_WAIT_MS,
            }
        )
        self.consumer.assign([self._end_of(topic, p) for p in range(partitions)])
        self.seen: list[tuple[float, float]] = []  # (source commit, readable), epoch seconds
        self._since_ms = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-probe", daemon=True)

    def _end_of(self, topic: str, partition: int) -> TopicPartition:
        """Where the partition ends now: the next offset the broker will write."""
        _, high = self.consumer.get_watermark_offsets(TopicPartition(topic, partition), 10)
        return TopicPartition(topic, partition, high)

    def start(self) -> None:
        self._since_ms = int(time.time() * 1000)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.consumer.close()

    def latencies(self, committed_from: float, committed_to: float) -> list[float]:
        """Sorted seconds from source commit to readable, for commits in the window."""
        return sorted(
            readable - commit
            for commit, readable in list(self.seen)
            if committed_from <= commit <= committed_to
        )

    def _run(self) -> None:
        while not self._stop.is_set():
            for message in self.consumer.consume(num_messages=1_000, timeout=0.05):
                readable = time.time()
                if message.error() is None and message.timestamp()[1] >= self._since_ms:
                    self.seen.append((self._commit_time(message), readable))

    def _commit_time(self, message: Message) -> float:
        key, value = message.key(), message.value()
        for schema_id in self.codec.schema_ids(key, value) - set(self.schemas):
            schema = self.registry.get_schema(schema_id)
            self.schemas[schema_id] = json.loads(schema.schema_str or "{}")
        return self.codec.decode(key, value, self.schemas.__getitem__).commit_time.timestamp()


def exact_percentiles(
    values: list[float], qs: tuple[float, ...] = (0.5, 0.95, 0.99)
) -> dict[str, float]:
    """Percentiles of sorted ``values``, by rank (no interpolation)."""
    if not values:
        return {}
    last = len(values) - 1
    return {f"p{round(q * 100):d}": values[min(last, round(q * last))] for q in qs}
