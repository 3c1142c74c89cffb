"""Delivery of change events to Kafka: Avro with registered contracts, idempotent producer,
``acks=all``. :meth:`Publisher.publish` returns only when the broker acknowledged every event
of the batch, and raises otherwise, so the caller advances the source only after success."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

from confluent_kafka import KafkaError, Message, Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from sync.contracts import Contract, EventCodec, envelope_schema
from sync.errors import Retryable
from sync.metrics import ConnectorMetrics
from sync.types import ChangeEvent, TableRef

log = logging.getLogger(__name__)

PRODUCER_DEFAULTS = {
    "enable.idempotence": True,
    "acks": "all",
    "linger.ms": 5,
    "batch.num.messages": 10_000,
    "queue.buffering.max.messages": 500_000,
    # the same key lands on the same partition as with Java clients (Kafka Connect, Debezium)
    "partitioner": "murmur2_random",
}


class DeliveryFailed(Retryable):
    """The broker did not acknowledge some events; nothing was advanced, they are sent again."""


class _Route:
    def __init__(self, topic: str, codec: EventCodec, key_id: int, value_id: int) -> None:
        self.topic, self.codec, self.key_id, self.value_id = topic, codec, key_id, value_id


class Publisher:
    """Publishes events of the given contracts; one instance per connector process."""

    def __init__(
        self,
        kafka: Mapping[str, str],
        registry_url: str,
        contracts: Mapping[TableRef, Contract],
        *,
        source: str,
        source_db: str,
        topic_prefix: str = "",
        metrics: ConnectorMetrics | None = None,
    ) -> None:
        self.source = source
        self.metrics = metrics
        self._producer = Producer({**kafka, **PRODUCER_DEFAULTS})
        registry = SchemaRegistryClient({"url": registry_url})
        self._routes = {
            table: _register(registry, contract, topic_prefix, source_db)
            for table, contract in contracts.items()
        }

    def publish(self, events: Sequence[ChangeEvent]) -> None:
        failures: list[KafkaError] = []

        def on_delivery(error: KafkaError | None, _msg: Message) -> None:
            if error is not None:
                failures.append(error)

        for event in events:
            route = self._routes[event.table]
            key, value = route.codec.encode(event, route.key_id, route.value_id)
            self._produce(route.topic, key, value, on_delivery)
        remaining = self._producer.flush(60)
        if failures or remaining:
            if self.metrics:
                self.metrics.produce_errors.labels(self.source).inc(len(failures) + remaining)
            first = failures[0] if failures else f"{remaining} still queued after 60 s"
            raise DeliveryFailed(f"broker did not acknowledge {len(events)} events: {first}")
        if self.metrics:
            per_topic = Counter(self._routes[event.table].topic for event in events)
            for topic, count in per_topic.items():
                self.metrics.events_produced.labels(self.source, topic).inc(count)

    def _produce(
        self,
        topic: str,
        key: bytes,
        value: bytes,
        callback: Callable[[KafkaError | None, Message], None],
    ) -> None:
        while True:
            try:
                self._producer.produce(topic, value=value, key=key, on_delivery=callback)
                return
            except BufferError:
                self._producer.poll(0.1)  # local queue full: let deliveries drain

    def topics(self) -> list[str]:
        return [route.topic for route in self._routes.values()]

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._producer.flush(30)


def _register(
    registry: SchemaRegistryClient, contract: Contract, prefix: str, source_db: str
) -> _Route:
    topic = prefix + contract.topic
    key_id = registry.register_schema(
        f"{topic}-key", Schema(json.dumps(contract.key_schema), "AVRO")
    )
    value_id = registry.register_schema(
        f"{topic}-value", Schema(json.dumps(envelope_schema(contract)), "AVRO")
    )
    log.info("contract %s registered: key id %s, value id %s", topic, key_id, value_id)
    return _Route(topic, EventCodec(contract, source_db=source_db), key_id, value_id)
