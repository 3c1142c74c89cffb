"""The embedded Kafka cluster's configuration, as the nodes read it: durability (replication
factor 3, min ISR 2, no unclean election), listeners on loopback, one static quorum; and the
jar cache: where it is, and the error a machine without Maven or Java gets."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from sync.errors import StackError
from sync.stack.kafka import KafkaCluster
from sync.stack.kafka import cluster as cluster_module
from sync.stack.kafka.jars import ensure_jars, jars_dir, java_binary, kafka_version
from sync.stack.kafka.properties import render_properties, server_properties


def read_properties(text: str) -> dict[str, str]:
    """What java.util.Properties reads from the simple ``key=value`` lines we write."""
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


@pytest.fixture
def cluster(tmp_path: Path) -> KafkaCluster:
    return KafkaCluster.create(tmp_path / "kafka")


def rendered(cluster: KafkaCluster, index: int) -> dict[str, str]:
    node = cluster.nodes[index]
    return read_properties(render_properties(server_properties(node, cluster.nodes)))


def test_topics_and_internal_topics_keep_three_replicas_and_two_in_sync(
    cluster: KafkaCluster,
) -> None:
    config = rendered(cluster, 0)
    assert config["default.replication.factor"] == "3"
    assert config["min.insync.replicas"] == "2"
    assert config["unclean.leader.election.enable"] == "false"
    assert config["offsets.topic.replication.factor"] == "3"
    assert config["transaction.state.log.replication.factor"] == "3"
    assert config["transaction.state.log.min.isr"] == "2"
    assert config["share.coordinator.state.topic.replication.factor"] == "3"
    assert config["share.coordinator.state.topic.min.isr"] == "2"


def test_every_node_is_a_controller_and_a_broker_of_one_static_quorum(
    cluster: KafkaCluster,
) -> None:
    voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in cluster.nodes)
    for index, node in enumerate(cluster.nodes):
        config = rendered(cluster, index)
        assert config["process.roles"] == "broker,controller"
        assert config["node.id"] == str(node.node_id)
        assert config["controller.quorum.voters"] == voters
        assert config["controller.listener.names"] == "CONTROLLER"
        assert config["log.dirs"] == str(node.log_dir)
    assert [n.node_id for n in cluster.nodes] == [1, 2, 3]


def test_each_node_listens_and_advertises_on_loopback_with_its_own_ports(
    cluster: KafkaCluster,
) -> None:
    for index, node in enumerate(cluster.nodes):
        config = rendered(cluster, index)
        assert config["listeners"] == (
            f"PLAINTEXT://127.0.0.1:{node.broker_port},"
            f"CONTROLLER://127.0.0.1:{node.controller_port}"
        )
        assert config["advertised.listeners"] == f"PLAINTEXT://127.0.0.1:{node.broker_port}"
        assert config["inter.broker.listener.name"] == "PLAINTEXT"
    ports = [p for n in cluster.nodes for p in (n.broker_port, n.controller_port)]
    assert len(set(ports)) == 6
    assert cluster.bootstrap == ",".join(f"127.0.0.1:{n.broker_port}" for n in cluster.nodes)


def test_the_cluster_id_is_made_once_and_kept(cluster: KafkaCluster) -> None:
    first = cluster.cluster_id
    assert len(first) == 22  # Kafka's Uuid: 16 bytes in URL-safe base64, unpadded
    assert KafkaCluster(cluster.root, cluster.nodes).cluster_id == first


def test_a_cluster_id_never_reads_as_a_command_line_option(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = iter([uuid.UUID(bytes=b"\xfb" + bytes(15)), uuid.UUID(bytes=bytes(16))])
    monkeypatch.setattr(cluster_module.uuid, "uuid4", lambda: next(ids))
    assert cluster_module._new_cluster_id() == "AAAAAAAAAAAAAAAAAAAAAA"  # the first was "-wAA…"


def test_the_jar_cache_is_outside_the_repository_and_named_by_the_pin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOVSYNC_KAFKA_CACHE", str(tmp_path / "cache"))
    assert kafka_version().startswith("4.")
    assert jars_dir().parent == tmp_path / "cache"
    assert jars_dir().name.startswith(f"kafka-{kafka_version()}-")


def test_without_maven_the_error_names_the_command_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOVSYNC_KAFKA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(StackError, match="Maven, which is not installed") as raised:
        ensure_jars()
    assert "dependency:copy-dependencies" in str(raised.value)
    assert not jars_dir().exists()


def test_without_java_the_error_says_which_version_is_needed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jdk"))
    with pytest.raises(StackError, match="Java 17 or newer"):
        java_binary()
