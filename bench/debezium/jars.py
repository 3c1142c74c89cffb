"""Kafka Connect's and Debezium's jars, fetched by ``pom.xml`` beside this module into the
cache the broker's jars use (``$GOVSYNC_KAFKA_CACHE`` or ``~/.cache/govsync``)."""

from __future__ import annotations

from pathlib import Path

from sync.stack.kafka.jars import cached_jars_dir, ensure_maven_jars, pom_property

POM = Path(__file__).with_name("pom.xml")
CONNECTOR_JAR = "debezium-connector-postgres-*.jar"


def debezium_version() -> str:
    return pom_property(POM, "debezium.version")


def connect_version() -> str:
    """Kafka Connect's version: the broker's, pinned in both poms."""
    return pom_property(POM, "kafka.version")


def jars_dir() -> Path:
    return cached_jars_dir(POM, f"debezium-{debezium_version()}")


def ensure_jars() -> Path:
    """The directory of the worker's jars, fetched with Maven on first use."""
    what = f"Kafka Connect {connect_version()} and Debezium {debezium_version()}"
    return ensure_maven_jars(POM, jars_dir(), CONNECTOR_JAR, what)
