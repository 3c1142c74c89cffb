"""Dead letters are kept at least 12 months: the dead-letter topic a processor creates carries
that retention."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ConfigResource,
    ResourceType,
)

from sync.kafka.deadletter import dead_letter_topic
from tests.fixtures.pipeline import Pipeline

pytestmark = pytest.mark.integration

YEAR_MS = 365 * 24 * 3600 * 1000


def topic_config(bootstrap: str, topic: str) -> dict[str, str]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    resource = ConfigResource(ResourceType.TOPIC, topic)
    described = admin.describe_configs([resource])[resource].result(timeout=30)
    return {name: entry.value for name, entry in described.items()}


def test_the_processors_dead_letter_topic_keeps_letters_a_year(
    pipeline_factory: Callable[..., Pipeline],
) -> None:
    pipeline = pipeline_factory(citizens=10)
    pipeline.start_connector()
    pipeline.start_processor()
    pipeline.wait_converged()  # the processor created its topics before it consumed
    topic = dead_letter_topic(f"{pipeline.name}.", "vss")
    retention = int(topic_config(pipeline.stack.bootstrap, topic)["retention.ms"])
    assert retention >= YEAR_MS
