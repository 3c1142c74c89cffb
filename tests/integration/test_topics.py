"""A topic govsync has just created can be described at once, whichever broker of the
session's stack is asked (a Kafka cluster spreads a new topic to its brokers only after it
has answered the creation)."""

from __future__ import annotations

import uuid

import pytest

from sync.kafka import ensure_topics, topic_ids

pytestmark = pytest.mark.integration


def test_the_id_of_a_topic_just_created_is_known(bootstrap: str) -> None:
    created = []
    for _ in range(30):
        topic = f"fresh-{uuid.uuid4().hex[:8]}"
        ensure_topics(bootstrap, [topic], 3)
        created.append(topic)
        assert list(topic_ids(bootstrap, [topic])) == [topic]
    ids = topic_ids(bootstrap, created)
    assert len(set(ids.values())) == len(created)
