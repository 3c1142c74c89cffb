"""Delivery of change events to Kafka: Avro with registered contracts, idempotent producer,
``acks=all``. :meth:`Publisher.publish` returns only when the broker acknowledged every event
of the batch, and raises otherwise, so the caller advances the source only after success.

A change whose message exceeds the producer's ``message.max.bytes`` (GOVSYNC_MAX_MESSAGE_BYTES,
to be kept at or below the topics' ``max.message.bytes``) can never be delivered: retrying it
would stop capture for good. It is recorded on the connector's dead-letter topic instead -- its
table, position, event id, size and the reason, never a field value -- and counted, and
capture goes on. Replicas miss that change until the row changes again. So does a change
with a value its contract cannot carry (a timestamp past an Avro ``long``, a numeric ``NaN``
in a decimal field; see ``docs/value-mapping.md``): the letter names the field, never a value,
and ``govsync verify`` reports the row until it changes again.

A truncate concerns every key, and keys are spread over the topic's partitions: it is sent to
each partition (explicitly, without a key), every copy with the same event id and position, so
a subscriber meets it in every partition's order. The first copy applied does the work; the
replica's truncation watermark makes the others, and anything older, no-ops.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from sync.contracts import Contract, EventCodec, envelope_schema
from sync.errors import ContractError, RegistryError, RegistryUnavailable, Retryable
from sync.kafka.deadletter import DeadLetter, DeadLetterPublisher, connector_dead_letter_topic
from sync.metrics import ConnectorMetrics
from sync.types import ChangeEvent, Lsn, Op, TableRef

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


DEFAULT_MAX_MESSAGE_BYTES = 1_000_000  # below Kafka's default broker limit (1,048,588)


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
        registry: str | Mapping[str, Any],
        contracts: Mapping[TableRef, Contract],
        *,
        source: str,
        source_db: str,
        topic_prefix: str = "",
        metrics: ConnectorMetrics | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        self.source = source
        self.metrics = metrics
        self.max_message_bytes = max_message_bytes
        self.dead_letter_topic = connector_dead_letter_topic(topic_prefix, source)
        self._producer = Producer(
            {**kafka, **PRODUCER_DEFAULTS, "message.max.bytes": max_message_bytes}
        )
        self._dead_letters = DeadLetterPublisher(self._producer, self.dead_letter_topic)
        # its URL, or the client's settings (credentials, CA: KafkaSettings.registry_config)
        config = {"url": registry} if isinstance(registry, str) else registry
        self._registry = SchemaRegistryClient(dict(config))
        self._source_db = source_db
        self._routes = {
            table: _register(self._registry, contract, topic_prefix, source_db)
            for table, contract in contracts.items()
        }

    def evolve(self, table: TableRef, contract: Contract) -> int:
        """Register ``contract``'s envelope under the table's value subject (the subject's
        compatibility level decides) and encode the table's next events with it. Returns the
        schema id; raises :class:`RegistryError` when the registry refuses it."""
        route = self._routes[table]
        subject = f"{route.topic}-value"
        schema = Schema(json.dumps(envelope_schema(contract)), "AVRO")
        try:
            value_id = self._registry.register_schema(subject, schema)
        except SchemaRegistryError as exc:
            status, code, message = exc.http_status_code, exc.error_code, exc.error_message
            if status in (409, 422):
                raise RegistryError(status, code, message) from None
            raise RegistryUnavailable(f"registry: {exc.error_message}") from exc
        except (OSError, TimeoutError) as exc:
            raise RegistryUnavailable(f"registry unreachable: {exc}") from exc
        codec = EventCodec(contract, source_db=self._source_db)
        self._routes[table] = _Route(route.topic, codec, route.key_id, value_id)
        return value_id

    def publish(self, events: Sequence[ChangeEvent]) -> None:
        failures: list[KafkaError] = []

        def on_delivery(error: KafkaError | None, _msg: Message) -> None:
            if error is not None:
                failures.append(error)

        encoded, unfit = self._encode(events)
        letters = [self._dead_letter(letter, on_delivery) for letter in unfit]
        for event, topic, key, value in encoded:
            try:
                if event.op is Op.TRUNCATE:
                    for partition in range(self._partition_count(topic)):
                        self._produce(topic, key, value, on_delivery, partition)
                else:
                    self._produce(topic, key, value, on_delivery)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.MSG_SIZE_TOO_LARGE:
                    raise
                size = len(key or b"") + len(value)
                letter = self._too_large(event, topic, size, exc)
                letters.append(self._dead_letter(letter, on_delivery))
        remaining = self._producer.flush(60)
        if failures or remaining:
            if self.metrics:
                self.metrics.produce_errors.labels(self.source).inc(len(failures) + remaining)
            first = failures[0] if failures else f"{remaining} still queued after 60 s"
            raise DeliveryFailed(f"broker did not acknowledge {len(events)} events: {first}")
        self._count(events, letters)

    def _encode(
        self, events: Sequence[ChangeEvent]
    ) -> tuple[list[tuple[ChangeEvent, str, bytes | None, bytes]], list[DeadLetter]]:
        """Each event's key and value, and a letter for each its contract cannot carry. The
        transaction counts leave out what is dead-lettered, so subscribers do not wait for it:
        a transaction that lost an event is encoded again with the counts corrected."""
        unfit: dict[str, DeadLetter] = {}
        while True:
            kept = [e for e in events if e.event_id not in unfit]
            counts = self._event_counts(kept)
            encoded, failed = [], False
            for event in kept:
                route = self._routes[event.table]
                tx_events = counts[event.position.lsn] if event.txid else None
                try:
                    key, value = route.codec.encode(event, route.key_id, route.value_id, tx_events)
                except ContractError as exc:
                    unfit[event.event_id] = self._unencodable(event, route.topic, exc)
                    failed = True
                    continue
                encoded.append((event, route.topic, key, value))
            if not failed:
                return encoded, list(unfit.values())

    def _event_counts(self, events: Sequence[ChangeEvent]) -> dict[Lsn, dict[str, int]]:
        """Events per topic of each transaction (by commit LSN). A peek returns whole
        transactions, so a batch holds every event of each of its transactions."""
        counts: dict[Lsn, Counter[str]] = {}
        for event in events:
            if event.txid:
                topic = self._routes[event.table].topic
                counts.setdefault(event.position.lsn, Counter())[topic] += 1
        return {lsn: dict(per_topic) for lsn, per_topic in counts.items()}

    def _count(self, events: Sequence[ChangeEvent], letters: list[DeadLetter]) -> None:
        if not self.metrics:
            return
        per_topic = Counter(self._routes[event.table].topic for event in events)
        for letter in letters:
            per_topic[letter.topic] -= 1
            self.metrics.events_dead_lettered.labels(self.source, letter.table, letter.reason).inc()
        for topic, count in per_topic.items():
            if count:
                self.metrics.events_produced.labels(self.source, topic).inc(count)

    def _letter(self, event: ChangeEvent, topic: str, reason: str, error: str) -> DeadLetter:
        return DeadLetter(
            reason=reason,
            error=error,
            topic=topic,
            event_id=event.event_id,
            source=self.source,
            table=str(event.table),
            lsn=str(event.position.lsn),
            index=event.position.index,
            op=event.op.value,
        )

    def _unencodable(self, event: ChangeEvent, topic: str, exc: ContractError) -> DeadLetter:
        letter = dataclasses.replace(
            self._letter(event, topic, "unencodable", str(exc)), field=exc.field
        )
        log.error(
            "the change at %s index %d of %s (event %s) cannot be carried by its contract: "
            "%s; recorded on %s and skipped; replicas miss it until the row changes again",
            letter.lsn,
            letter.index,
            letter.table,
            letter.event_id,
            exc,
            self.dead_letter_topic,
        )
        return letter

    def _too_large(
        self, event: ChangeEvent, topic: str, size: int, exc: KafkaException
    ) -> DeadLetter:
        letter = dataclasses.replace(
            self._letter(event, topic, "too_large", exc.args[0].str()),
            size_bytes=size,
            limit_bytes=self.max_message_bytes,
        )
        log.error(
            "the change at %s index %d of %s (event %s) is %d bytes as a message, above the "
            "%d-byte limit (GOVSYNC_MAX_MESSAGE_BYTES): recorded on %s and skipped; replicas "
            "miss it until the row changes again",
            letter.lsn,
            letter.index,
            letter.table,
            letter.event_id,
            size,
            self.max_message_bytes,
            self.dead_letter_topic,
        )
        return letter

    def _dead_letter(
        self, letter: DeadLetter, callback: Callable[[KafkaError | None, Message], None]
    ) -> DeadLetter:
        """Queue the letter with the events: the same delivery report decides the batch."""
        self._dead_letters.produce(letter, callback)
        return letter

    def _partition_count(self, topic: str) -> int:
        """Asked of the broker for each truncate (they are rare): partitions may be added."""
        metadata = self._producer.list_topics(topic, timeout=15).topics.get(topic)
        if metadata is None or metadata.error is not None or not metadata.partitions:
            reason = metadata.error if metadata is not None else "no metadata"
            raise DeliveryFailed(f"cannot send a truncate to every partition of {topic}: {reason}")
        return len(metadata.partitions)

    def _produce(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        callback: Callable[[KafkaError | None, Message], None],
        partition: int = -1,  # librdkafka's "unassigned": the partitioner places the key
    ) -> None:
        while True:
            try:
                self._producer.produce(
                    topic, value=value, key=key, partition=partition, on_delivery=callback
                )
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
