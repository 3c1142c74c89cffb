"""The Kafka ACLs of a federation, rendered from its manifest: one principal per connector and
per subscribing agency's processor, each allowed exactly what its process does and no more.

- ``User:processor-<agency>`` reads the topics its agency subscribes to and commits offsets
  in its own consumer group; it writes (and creates, as the worker does at start) its own
  dead-letter topic and the audit's checkpoint topic, where its signed chain heads go.
- ``User:connector-<source>`` writes (and creates, as the connector does at start) its
  source's topics and its own connector dead-letter topic.

Both produce idempotently. Since Kafka 3.0 (KIP-679) an idempotent producer needs no
``IdempotentWrite`` on the cluster: ``Write`` on a topic is enough, so no principal gets a
cluster permission. ``Read`` implies ``Describe`` in Kafka; ``Describe`` is granted anyway,
so each grant says plainly what it is for.

Pure: no broker is asked; :mod:`sync.stack.kafka.security` creates these on a cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from sync.config import AuditSettings, processor_group_id
from sync.contracts import Contract
from sync.errors import ConfigError
from sync.kafka.deadletter import connector_dead_letter_topic, dead_letter_topic
from sync.policy import Manifest

CHECKPOINT_TOPIC = str(AuditSettings.model_fields["audit_checkpoint_topic"].default)


class ResourceKind(StrEnum):
    TOPIC = "topic"
    GROUP = "group"


class Operation(StrEnum):
    READ = "read"
    WRITE = "write"
    CREATE = "create"
    DESCRIBE = "describe"


@dataclass(frozen=True, slots=True, order=True)
class Grant:
    """One allowed operation on one resource, by its literal name, from any host."""

    resource: ResourceKind
    name: str
    operation: Operation


@dataclass(frozen=True, slots=True)
class PrincipalAcls:
    """A SCRAM user and everything it may do; nothing else is allowed to it."""

    user: str
    grants: frozenset[Grant]

    @property
    def principal(self) -> str:
        return f"User:{self.user}"

    def allows(self, resource: ResourceKind, name: str, operation: Operation) -> bool:
        return Grant(resource, name, operation) in self.grants


def processor_user(agency: str) -> str:
    return f"processor-{agency}"


def connector_user(source: str) -> str:
    return f"connector-{source}"


def federation_acls(
    manifest: Manifest,
    contracts: Mapping[str, Contract],
    *,
    topic_prefix: str = "",
    checkpoint_topic: str | None = CHECKPOINT_TOPIC,
) -> tuple[PrincipalAcls, ...]:
    """Every principal of the federation: the connectors of the manifest's sources, then the
    processors of the agencies that subscribe to something. ``checkpoint_topic`` None: the
    processors publish no audit checkpoints."""
    connectors = [
        PrincipalAcls(
            connector_user(source.name),
            _writes(
                [
                    *(topic_prefix + _contract(contracts, t).topic for t in source.topics),
                    connector_dead_letter_topic(topic_prefix, source.name),
                ]
            ),
        )
        for source in manifest.sources
    ]
    subscribers = [a.code for a in manifest.agencies if manifest.subscriptions_of(a.code)]
    processors = [
        PrincipalAcls(
            processor_user(agency),
            _reads(
                [
                    topic_prefix + _contract(contracts, s.topic).topic
                    for s in manifest.subscriptions_of(agency)
                ],
                processor_group_id(topic_prefix, agency),
            )
            | _writes(
                [
                    dead_letter_topic(topic_prefix, agency),
                    *([topic_prefix + checkpoint_topic] if checkpoint_topic else []),
                ]
            ),
        )
        for agency in subscribers
    ]
    return (*connectors, *processors)


def _reads(topics: Iterable[str], group: str) -> frozenset[Grant]:
    on_topics = {
        Grant(ResourceKind.TOPIC, topic, operation)
        for topic in topics
        for operation in (Operation.READ, Operation.DESCRIBE)
    }
    return frozenset({*on_topics, Grant(ResourceKind.GROUP, group, Operation.READ)})


def _writes(topics: Iterable[str]) -> frozenset[Grant]:
    """Write, and Create: the processes create the topics they write when missing
    (``sync.kafka.ensure_topics``), which needs Describe to see that one exists."""
    return frozenset(
        Grant(ResourceKind.TOPIC, topic, operation)
        for topic in topics
        for operation in (Operation.WRITE, Operation.DESCRIBE, Operation.CREATE)
    )


def _contract(contracts: Mapping[str, Contract], topic: str) -> Contract:
    try:
        return contracts[topic]
    except KeyError:
        raise ConfigError(f"the manifest names topic {topic!r}, which has no contract") from None
