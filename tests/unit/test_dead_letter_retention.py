"""The dead-letter retention setting: 12 months at least, as topic configuration."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sync.config import ConnectorSettings, ProcessorSettings
from sync.errors import ConfigError
from sync.kafka.deadletter import dead_letter_topic_config

DAY_MS = 24 * 3600 * 1000


def test_the_default_keeps_letters_at_least_a_year() -> None:
    config = dead_letter_topic_config()
    assert config["cleanup.policy"] == "delete"
    assert int(config["retention.ms"]) >= 366 * DAY_MS
    assert int(dead_letter_topic_config(24)["retention.ms"]) >= 2 * 366 * DAY_MS


def test_less_than_12_months_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"at least 12 months .* 6 was asked"):
        dead_letter_topic_config(6)
    with pytest.raises(ValidationError, match="dead_letter_retention_months"):
        ProcessorSettings(
            agency="vss",
            replica_dsn="dbname=r",
            bootstrap="k:9092",
            registry_url="http://r:8081",
            dead_letter_retention_months=11,
        )
    with pytest.raises(ValidationError, match="dead_letter_retention_months"):
        ConnectorSettings(
            source="population",
            source_dsn="dbname=s",
            bootstrap="k:9092",
            registry_url="http://r:8081",
            dead_letter_retention_months=0,
        )
