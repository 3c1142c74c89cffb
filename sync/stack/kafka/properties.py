"""What one node of the embedded Kafka cluster is told: its ``server.properties``, its log4j2
configuration and its JVM options.

Every node is a combined KRaft controller and broker on 127.0.0.1 with a static quorum
(``controller.quorum.voters``): the cluster is formed from its configuration alone, with no
voter to add after it starts. Durability is the production one (``deploy/``): replication
factor 3, ``min.insync.replicas=2``, no unclean leader election, and the same for the internal
topics, so an ``acks=all`` write survives the loss of any one node.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sync.stack.ports import LOOPBACK

# Three JVMs on 2 cores and 24 GiB: a small fixed-floor heap each; G1 with Kafka's own settings
# (kafka-run-class.sh) keeps pauses short. Class data sharing is on by default in Java 17.
HEAP = ("-Xms256m", "-Xmx512m")
GC = (
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
)


@dataclass(frozen=True)
class KafkaNode:
    """One combined controller and broker: its id, its ports and its directory. A secure
    cluster's nodes talk to each other on a listener of their own, ``internal_port``."""

    node_id: int
    broker_port: int
    controller_port: int
    directory: Path
    internal_port: int = 0

    @property
    def name(self) -> str:
        return f"kafka-{self.node_id}"

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.broker_port}"

    @property
    def voter(self) -> str:
        return f"{self.node_id}@{LOOPBACK}:{self.controller_port}"

    @property
    def log_dir(self) -> Path:
        return self.directory / "data"

    @property
    def config_file(self) -> Path:
        return self.directory / "server.properties"

    @property
    def log4j_file(self) -> Path:
        return self.directory / "log4j2.properties"

    @property
    def formatted(self) -> bool:
        """``kafka-storage format`` writes meta.properties; a node is formatted only once."""
        return (self.log_dir / "meta.properties").exists()


@dataclass(frozen=True)
class Durability:
    """Replication of every topic, internal ones included."""

    replication: int = 3
    min_insync: int = 2


def server_properties(
    node: KafkaNode, voters: Sequence[KafkaNode], durability: Durability = Durability()
) -> dict[str, str]:
    """The node's ``server.properties`` as keys and values, in the order they are written."""
    rf, isr = str(durability.replication), str(durability.min_insync)
    internal_partitions = "10"  # 50 by default: fewer make the first group join faster
    return {
        "process.roles": "broker,controller",
        "node.id": str(node.node_id),
        "controller.quorum.voters": ",".join(v.voter for v in voters),
        "listeners": (
            f"PLAINTEXT://{LOOPBACK}:{node.broker_port},CONTROLLER://{LOOPBACK}:{node.controller_port}"
        ),
        "advertised.listeners": f"PLAINTEXT://{node.address}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(node.log_dir),
        "default.replication.factor": rf,
        "min.insync.replicas": isr,
        "unclean.leader.election.enable": "false",
        "offsets.topic.replication.factor": rf,
        "offsets.topic.num.partitions": internal_partitions,
        "transaction.state.log.replication.factor": rf,
        "transaction.state.log.min.isr": isr,
        "transaction.state.log.num.partitions": internal_partitions,
        "share.coordinator.state.topic.replication.factor": rf,
        "share.coordinator.state.topic.min.isr": isr,
        # topics a client creates by producing get govsync's partition count, not 1
        "num.partitions": "3",
        # a group's first join is not held back 3 s waiting for more members
        "group.initial.rebalance.delay.ms": "0",
        "num.network.threads": "2",
        "num.io.threads": "4",
        "num.recovery.threads.per.data.dir": "1",
    }


def render_properties(properties: dict[str, str]) -> str:
    return "".join(f"{key}={value}\n" for key, value in properties.items())


def log4j2_properties() -> str:
    """INFO to standard output (the supervisor's log file); the chattiest classes at WARN."""
    return (
        "status = warn\n"
        "appender.out.type = Console\n"
        "appender.out.name = STDOUT\n"
        "appender.out.layout.type = PatternLayout\n"
        "appender.out.layout.pattern = [%d] %p %m (%c)%n\n"
        "rootLogger.level = INFO\n"
        "rootLogger.appenderRef.out.ref = STDOUT\n"
        "logger.state.name = state.change.logger\n"
        "logger.state.level = WARN\n"
        "logger.request.name = kafka.request.logger\n"
        "logger.request.level = WARN\n"
        "logger.cleaner.name = kafka.log.LogCleaner\n"
        "logger.cleaner.level = WARN\n"
    )


def jvm_options(node: KafkaNode) -> list[str]:
    return [
        *HEAP,
        *GC,
        "-Djava.awt.headless=true",
        "-XX:+ExitOnOutOfMemoryError",
        f"-Dlog4j2.configurationFile={node.log4j_file}",
        f"-Dkafka.logs.dir={node.directory / 'logs'}",
    ]
