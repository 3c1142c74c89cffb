"""Which stack and broker the test session gets from ``GOVSYNC_TEST_STACK`` and
``GOVSYNC_TEST_BROKER``, and the errors a wrong choice gives before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from sync.errors import ConfigError
from sync.stack.providers import broker_from_environment, provider_from_environment


def test_tansu_is_the_broker_unless_kafka_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOVSYNC_TEST_BROKER", raising=False)
    assert broker_from_environment() == "tansu"
    monkeypatch.setenv("GOVSYNC_TEST_BROKER", "kafka")
    assert broker_from_environment() == "kafka"


def test_an_unknown_broker_is_refused_with_the_choices(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GOVSYNC_TEST_BROKER", "redpanda")
    with pytest.raises(ConfigError, match="use tansu or kafka"):
        provider_from_environment(tmp_path)


def test_a_broker_cannot_be_named_for_the_testcontainers_stack(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GOVSYNC_TEST_STACK", "testcontainers")
    monkeypatch.setenv("GOVSYNC_TEST_BROKER", "kafka")
    with pytest.raises(ConfigError, match="runs its own Apache Kafka"):
        provider_from_environment(tmp_path)
