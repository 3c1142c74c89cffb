"""Create topics explicitly, with the partition count we intend (brokers that auto-create
topics pick their own count, and a key's partition depends on it)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from sync.errors import ConfigError

log = logging.getLogger(__name__)

# seconds for a created topic to reach every broker: a Kafka cluster answers CreateTopics once
# its controller has the topic, and a broker asked a moment later may not know it yet
PROPAGATION_TIMEOUT = 10.0


KafkaClient = str | Mapping[str, str]


def client_config(kafka: KafkaClient) -> dict[str, str | int | float | bool]:
    """A bootstrap address or a full confluent-kafka configuration, as a configuration."""
    return {"bootstrap.servers": kafka} if isinstance(kafka, str) else dict(kafka)


def ensure_topics(
    kafka: KafkaClient,
    topics: Iterable[str],
    partitions: int,
    replication: int | None = None,
    config: Mapping[str, str] | None = None,
) -> None:
    """Create the topics that do not exist yet, with ``config`` (topic settings such as
    ``retention.ms``; none: the broker's defaults); existing ones are left as they are.
    ``replication`` None leaves the replication factor to the broker's
    ``default.replication.factor`` (3 on the embedded Kafka cluster and in ``deploy/``, where
    ``min.insync.replicas=2`` would refuse an ``acks=all`` write to a topic of one replica).
    Production clusters create topics in their deployment."""
    admin = AdminClient(client_config(kafka))
    existing = set(admin.list_topics(timeout=15).topics)
    wanted = [t for t in dict.fromkeys(topics) if t not in existing]
    if not wanted:
        return
    factor = -1 if replication is None else replication  # -1: the broker's default
    futures = admin.create_topics(
        [
            NewTopic(
                t, num_partitions=partitions, replication_factor=factor, config=dict(config or {})
            )
            for t in wanted
        ],
        operation_timeout=15,
    )
    for topic, future in futures.items():
        try:
            future.result(timeout=30)
            log.info("created topic %s with %d partitions", topic, partitions)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise ConfigError(f"cannot create topic {topic}: {exc}") from exc


def topic_ids(kafka: KafkaClient, topics: Iterable[str]) -> dict[str, str]:
    """Each topic's id, which changes when a topic is deleted and created again. A topic
    just created may still be unknown to the broker asked; it is asked again until
    :data:`PROPAGATION_TIMEOUT`."""
    from confluent_kafka import TopicCollection

    admin = AdminClient(client_config(kafka))
    names = list(topics)
    deadline = time.monotonic() + PROPAGATION_TIMEOUT
    while True:
        futures = admin.describe_topics(TopicCollection(names))
        try:
            return {name: str(f.result(timeout=30).topic_id) for name, f in futures.items()}
        except KafkaException as exc:
            unknown = exc.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART
            if not unknown or time.monotonic() > deadline:
                raise
        time.sleep(0.2)
