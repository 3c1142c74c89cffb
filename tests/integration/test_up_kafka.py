"""``govsync up --broker kafka``: the federation on three Apache Kafka nodes, each topic with
three replicas and two in sync, and a node the supervisor brings back after a SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import psycopg
import pytest
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient, ConfigResource

from sync.kafka import ensure_topics
from sync.stack.description import StackDescription
from sync.stack.ports import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.kafka, pytest.mark.slow]

NODES = ["kafka-1", "kafka-2", "kafka-3"]


def start_up(data_dir: Path) -> subprocess.Popen[bytes]:
    log = open(data_dir.parent / f"{data_dir.name}-up.log", "ab")  # noqa: SIM115 - closed by the OS
    argv = ["up", "--data-dir", str(data_dir), "--citizens", "200", "--broker", "kafka"]
    return subprocess.Popen(
        [sys.executable, "-m", "sync.cli", *argv],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def described(data_dir: Path) -> StackDescription:
    def complete() -> bool:
        path = data_dir / "stack.json"
        return path.exists() and "processor" in {
            p["role"] for p in json.loads(path.read_text())["processes"]
        }

    wait_until(complete, 240, "stack.json naming the processors")
    return StackDescription.read(data_dir)


def replica_counts(admin: AdminClient, topic: str) -> list[tuple[int, int]]:
    """(replicas, in-sync replicas) of each partition of ``topic``."""
    partitions = admin.list_topics(topic, timeout=10).topics[topic].partitions.values()
    return [(len(p.replicas), len(p.isrs)) for p in partitions]


def produce_acknowledged_by_all(bootstrap: str, topic: str, count: int) -> list[KafkaError]:
    """Produce with acks=all and an idempotent producer, as the connector does; the errors."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    errors: list[KafkaError] = []

    def delivered(error: KafkaError | None, _message: object) -> None:
        if error is not None:
            errors.append(error)

    for i in range(count):
        producer.produce(topic, key=str(i).encode(), value=b"x", on_delivery=delivered)
    assert producer.flush(60) == 0, "every message is acknowledged or refused within 60 s"
    return errors


def stop(up: subprocess.Popen[bytes]) -> int:
    """Ctrl-C, as a user stops it: the nodes run in their own sessions, and a SIGKILL of
    ``govsync up`` alone would leave them behind."""
    up.send_signal(signal.SIGINT)
    try:
        return up.wait(120)
    except subprocess.TimeoutExpired:
        up.kill()
        raise


def count(dsn: str, query: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


def test_up_on_kafka_replicates_every_topic_three_times_and_restarts_a_killed_node(
    server_dir: Path,
) -> None:
    data_dir = server_dir / "kafka-federation"
    up = start_up(data_dir)
    try:
        stack = described(data_dir)
        assert stack.broker == "kafka"
        nodes = {p.name: p for p in stack.processes if p.role == "broker"}
        assert sorted(nodes) == NODES
        assert len(stack.bootstrap.split(",")) == 3
        admin = AdminClient({"bootstrap.servers": stack.bootstrap})

        replica = stack.database("vss", "replica").dsn
        wait_until(
            lambda: count(replica, "SELECT count(*) FROM population.citizen") == 200,
            120,
            "the demo citizens in the replica, through the Kafka cluster",
        )

        # the contract topics the federation made, the dead-letter topics the connectors and
        # processors made (no replication factor given) and the consumer offsets: all RF 3
        topics = set(admin.list_topics(timeout=10).topics) - {"__cluster_metadata"}
        assert {"population.citizen", "govsync.dlq.vss", "__consumer_offsets"} <= topics
        assert any(t.startswith("govsync.dlq.connector") for t in topics), sorted(topics)
        for topic in topics:
            assert {r for r, _ in replica_counts(admin, topic)} == {3}, topic
        resource = ConfigResource(ConfigResource.Type.TOPIC, "population.citizen")
        config = admin.describe_configs([resource])[resource].result(timeout=10)
        assert config["min.insync.replicas"].value == "2"
        assert config["unclean.leader.election.enable"].value == "false"

        ensure_topics(stack.bootstrap, ["kafka-check"], 3)
        wait_until(
            lambda: replica_counts(admin, "kafka-check") == [(3, 3)] * 3,
            30,
            "a new topic with three replicas in sync in each partition",
        )
        assert produce_acknowledged_by_all(stack.bootstrap, "kafka-check", 200) == []

        victim = nodes["kafka-2"]
        os.kill(victim.pid, signal.SIGKILL)
        wait_until(
            lambda: StackDescription.read(data_dir).process("kafka-2").pid != victim.pid,
            60,
            "stack.json naming the restarted node",
        )
        assert StackDescription.read(data_dir).process("kafka-2").restarts == 1
        wait_until(
            lambda: replica_counts(admin, "kafka-check") == [(3, 3)] * 3,
            120,
            "the restarted node back in every partition's in-sync replicas",
        )
        assert produce_acknowledged_by_all(stack.bootstrap, "kafka-check", 200) == []
        pids = [p.pid for p in StackDescription.read(data_dir).processes]
    except BaseException:
        stop(up)
        raise
    assert stop(up) == 0
    alive = [
        pid
        for pid in pids
        if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    ]
    assert alive == [], "govsync up leaves no node behind"
