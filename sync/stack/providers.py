"""Stack providers: who runs the servers a pipeline needs (PostgreSQL, a Kafka-protocol broker,
a Confluent-compatible registry). The embedded provider starts them from wheels, with Tansu or
a three-node Apache Kafka cluster (jars from Maven Central) as the broker; the testcontainers
provider starts Apache Kafka, PostgreSQL and Confluent's Schema Registry in Docker. govsync's
own processes run the same way on any of them."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Literal, Protocol

import psycopg
from psycopg import sql

from sync.errors import ConfigError
from sync.stack.federation import EmbeddedFederation, FederationOptions

log = logging.getLogger(__name__)


class StackProvider(Protocol):
    name: str
    bootstrap: str
    registry_url: str

    def create_database(self, name: str) -> str:
        """Create an empty database on the logical-WAL PostgreSQL server; returns its DSN."""
        ...

    def close(self) -> None: ...


BrokerChoice = Literal["tansu", "kafka"]


class EmbeddedProvider:
    name = "embedded"

    def __init__(
        self,
        data_dir: Path,
        broker_storage: Literal["memory", "s3"] = "memory",
        broker: BrokerChoice = "tansu",
    ) -> None:
        options = FederationOptions(
            data_dir, with_pipeline=False, broker_storage=broker_storage, broker=broker
        )
        self.federation = EmbeddedFederation(options)
        self.federation.__enter__()
        self.bootstrap = self.federation.broker.bootstrap
        self.registry_url = self.federation.registry_url

    def create_database(self, name: str) -> str:
        return self.federation.create_database(name)

    def close(self) -> None:
        self.federation.stop()

    def discard(self) -> None:
        """Kill every server at once, for a stack whose data is deleted next."""
        self.federation.supervisor.kill_all()


class TestcontainersProvider:
    """Apache Kafka, PostgreSQL (wal_level=logical) and Confluent's Schema Registry in Docker."""

    name = "testcontainers"
    KAFKA_IMAGE = "apache/kafka:3.8.0"
    POSTGRES_IMAGE = "postgres:16"
    REGISTRY_IMAGE = "confluentinc/cp-schema-registry:7.7.1"

    def __init__(self) -> None:
        try:
            from testcontainers.core.container import DockerContainer
            from testcontainers.core.network import Network
            from testcontainers.core.waiting_utils import wait_for_logs
            from testcontainers.kafka import KafkaContainer
            from testcontainers.postgres import PostgresContainer
        except ImportError as exc:
            raise ConfigError(
                "the testcontainers stack needs the dev extra: pip install -e '.[dev]'"
            ) from exc

        self._network = Network().create()
        self._kafka = KafkaContainer(self.KAFKA_IMAGE).with_network(self._network)
        self._kafka.with_network_aliases("kafka").start()
        self._postgres = PostgresContainer(self.POSTGRES_IMAGE, driver=None)
        self._postgres.with_command("postgres -c wal_level=logical -c max_replication_slots=32")
        self._postgres.start()
        self._registry: Any = (
            DockerContainer(self.REGISTRY_IMAGE)
            .with_network(self._network)
            .with_env("SCHEMA_REGISTRY_HOST_NAME", "registry")
            .with_env("SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS", "PLAINTEXT://kafka:9092")
            .with_env("SCHEMA_REGISTRY_LISTENERS", "http://0.0.0.0:8081")
            .with_exposed_ports(8081)
        )
        self._registry.start()
        wait_for_logs(self._registry, "Server started", timeout=120)
        self.bootstrap = self._kafka.get_bootstrap_server()
        host = self._registry.get_container_host_ip()
        self.registry_url = f"http://{host}:{self._registry.get_exposed_port(8081)}"

    def _admin_dsn(self, dbname: str) -> str:
        p = self._postgres
        return (
            f"host={p.get_container_host_ip()} port={p.get_exposed_port(5432)} "
            f"user={p.username} password={p.password} dbname={dbname}"
        )

    def create_database(self, name: str) -> str:
        with psycopg.connect(self._admin_dsn(self._postgres.dbname), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self._admin_dsn(name)

    def close(self) -> None:
        for container in (self._registry, self._postgres, self._kafka):
            container.stop()
        self._network.remove()


def docker_reachable() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception:  # noqa: BLE001 - no engine, no socket, no permission: all mean no
        return False
    return True


def provider_from_environment(data_dir: Path) -> StackProvider:
    """``GOVSYNC_TEST_STACK``: ``embedded``, ``testcontainers``, or ``auto`` (the default:
    testcontainers when a Docker engine answers, else embedded). ``GOVSYNC_TEST_BROKER``:
    ``tansu`` or ``kafka``, the embedded stack's broker; naming one makes ``auto`` embedded
    (testcontainers always runs Apache Kafka, a single broker)."""
    choice = os.environ.get("GOVSYNC_TEST_STACK", "auto")
    if choice not in ("auto", "embedded", "testcontainers"):
        raise ConfigError(f"GOVSYNC_TEST_STACK={choice!r}: use auto, embedded or testcontainers")
    named = "GOVSYNC_TEST_BROKER" in os.environ
    broker = broker_from_environment()
    if named and choice == "testcontainers":
        raise ConfigError(
            f"GOVSYNC_TEST_BROKER={broker} picks the embedded stack's broker; "
            "GOVSYNC_TEST_STACK=testcontainers runs its own Apache Kafka"
        )
    if choice == "testcontainers" or (choice == "auto" and not named and docker_reachable()):
        return TestcontainersProvider()
    return EmbeddedProvider(data_dir, broker=broker)


def broker_from_environment() -> BrokerChoice:
    """``GOVSYNC_TEST_BROKER``: the embedded broker the tests run on, ``tansu`` (the default)
    or ``kafka``; also for tests that start a federation of their own."""
    broker = os.environ.get("GOVSYNC_TEST_BROKER", "tansu")
    if broker == "kafka":
        return "kafka"
    if broker == "tansu":
        return "tansu"
    raise ConfigError(f"GOVSYNC_TEST_BROKER={broker!r}: use tansu or kafka")
