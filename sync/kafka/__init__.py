"""Kafka plumbing shared by connectors and processors: topic creation and client settings."""

from sync.kafka.lag import end_offsets, group_lag
from sync.kafka.topics import ensure_topics, topic_ids

__all__ = ["end_offsets", "ensure_topics", "group_lag", "topic_ids"]
