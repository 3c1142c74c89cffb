"""The secure Apache Kafka cluster with the ACLs rendered from the demo manifest, tried with real
clients over SASL_SSL: the statistics office's processor reads what its agency subscribes to
and nothing else, writes its own dead letters and no other agency's; the population
connector creates and writes its own dead-letter topic and cannot write the land source's
topics; a client that does not trust the cluster's CA, or has a wrong password, is refused."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Producer,
)
from confluent_kafka import TopicPartition as Partition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from sync.contracts import load_contracts
from sync.kafka import ensure_topics
from sync.kafka.deadletter import connector_dead_letter_topic, dead_letter_topic
from sync.policy import FEDERATION_FILE, load_manifest
from sync.stack.kafka import KafkaCluster
from sync.stack.kafka.acls import connector_user, federation_acls, processor_user
from sync.stack.ports import wait_until
from sync.stack.supervisor import Supervisor

pytestmark = pytest.mark.kafka

SUBSCRIBED = "population.citizen"  # the statistics office subscribes to it
NOT_SUBSCRIBED = "land.land_parcel"  # it does not; Hanoi does, and the land source writes it
GSO, HANOI = processor_user("gso"), processor_user("hanoi")
POPULATION = connector_user("population")
DEADLINE = 60.0  # seconds; the machine may be busy with other test runs

Config = dict[str, str]


@pytest.fixture(scope="module")
def cluster(server_dir: Path) -> Iterator[KafkaCluster]:
    """Three secure nodes with the demo federation's principals; two data topics and Hanoi's
    dead-letter topic created, and one record on each data topic, by the admin."""
    contracts = load_contracts()
    principals = federation_acls(load_manifest(FEDERATION_FILE, contracts), contracts)
    root = server_dir / "kafka-secure"
    cluster = KafkaCluster.create(root / "kafka", security=principals)
    supervisor = Supervisor()
    try:
        cluster.start(supervisor, root / "logs")
        admin = cluster.client_config()
        ensure_topics(admin, [SUBSCRIBED, NOT_SUBSCRIBED, dead_letter_topic("", "hanoi")], 1)
        for topic in (SUBSCRIBED, NOT_SUBSCRIBED):
            assert deliver(admin, topic, b"seed") is None
        for user in (GSO, POPULATION):  # credentials reach every broker through the metadata
            wait_until(lambda u=user: connects(cluster.client_config(u)), DEADLINE, user)  # type: ignore[misc]
        yield cluster
    finally:
        supervisor.kill_all()  # the state is thrown away: a graceful stop buys nothing


def connects(config: Config) -> bool:
    admin = AdminClient({**config, "socket.timeout.ms": 5000})
    return bool(admin.list_topics(timeout=10).brokers)


def deliver(config: Config, topic: str, value: bytes = b"letter") -> KafkaError | None:
    """Produce one record as govsync's producers do (idempotent, acks=all); the broker's
    answer: None once it is stored, else the error."""
    producer = Producer({**config, "enable.idempotence": True, "acks": "all"})
    reports: list[KafkaError | None] = []
    producer.produce(topic, value, on_delivery=lambda error, _message: reports.append(error))
    deadline = time.monotonic() + DEADLINE
    while not reports and time.monotonic() < deadline:
        producer.poll(0.2)
    assert reports, f"no delivery report for {topic} within {DEADLINE:.0f} s"
    return reports[0]


def consumer(config: Config, group: str) -> Consumer:
    return Consumer(
        {**config, "group.id": group, "enable.auto.commit": False, "auto.offset.reset": "earliest"}
    )


def first_outcome(reader: Consumer) -> KafkaError | bytes:
    """The first record's value, or the first error that is not a partition's end."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        message = reader.poll(0.5)
        if message is None:
            continue
        error = message.error()
        if error is None:
            return message.value() or b""
        if error.code() != KafkaError._PARTITION_EOF:
            return error
    raise AssertionError(f"neither a record nor an error within {DEADLINE:.0f} s")


def connection_errors(config: Config, expected: int) -> set[int]:
    """The error codes a client reports while it tries to connect (it asks nothing else),
    until ``expected`` is among them or the deadline passes."""
    errors: list[KafkaError] = []
    producer = Producer({**config, "error_cb": errors.append})
    deadline = time.monotonic() + DEADLINE
    while expected not in {e.code() for e in errors} and time.monotonic() < deadline:
        producer.poll(0.2)
    return {error.code() for error in errors}


def test_a_processor_reads_its_agencys_subscription_and_commits_in_its_own_group(
    cluster: KafkaCluster,
) -> None:
    reader = consumer(cluster.client_config(GSO), "govsync-replica-gso")
    try:
        # as the processor reads: partitions assigned, offsets committed in its group
        reader.assign([Partition(SUBSCRIBED, 0, OFFSET_BEGINNING)])
        assert first_outcome(reader) == b"seed"
        reader.commit(offsets=[Partition(SUBSCRIBED, 0, 1)], asynchronous=False)
    finally:
        reader.close()


def test_a_processor_cannot_read_a_topic_its_agency_does_not_subscribe_to(
    cluster: KafkaCluster,
) -> None:
    reader = consumer(cluster.client_config(GSO), "govsync-replica-gso")
    try:
        described = reader.list_topics(NOT_SUBSCRIBED, timeout=DEADLINE).topics[NOT_SUBSCRIBED]
        # an assigned partition whose topic cannot even be described is never fetched, and
        # reports nothing: a subscription says why
        reader.subscribe([NOT_SUBSCRIBED])
        outcome = first_outcome(reader)
    finally:
        reader.close()
    assert described.error is not None
    assert described.error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert isinstance(outcome, KafkaError), "the statistics office read the land parcels"
    assert outcome.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_a_processor_cannot_commit_in_another_agencys_group(cluster: KafkaCluster) -> None:
    admin = AdminClient({**cluster.client_config(GSO)})

    def commit(group: str) -> None:
        offsets = ConsumerGroupTopicPartitions(group, [Partition(SUBSCRIBED, 0, 1)])
        admin.alter_consumer_group_offsets([offsets])[group].result(timeout=DEADLINE)

    commit("govsync-replica-gso")
    with pytest.raises(KafkaException) as refused:
        commit("govsync-replica-hanoi")
    assert refused.value.args[0].code() == KafkaError.GROUP_AUTHORIZATION_FAILED


def test_a_processor_writes_its_own_dead_letters_and_not_another_agencys(
    cluster: KafkaCluster,
) -> None:
    gso = cluster.client_config(GSO)
    ensure_topics(gso, [dead_letter_topic("", "gso")], 1)  # as the worker does at start
    assert deliver(gso, dead_letter_topic("", "gso")) is None
    refused = deliver(gso, dead_letter_topic("", "hanoi"))
    assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_a_connector_creates_and_writes_its_own_dead_letters_not_another_sources_topics(
    cluster: KafkaCluster,
) -> None:
    population = cluster.client_config(POPULATION)
    own = connector_dead_letter_topic("", "population")
    ensure_topics(population, [own], 1)  # as the connector does at start
    assert deliver(population, own) is None
    assert deliver(population, SUBSCRIBED) is None  # its own source's topic
    refused = deliver(population, NOT_SUBSCRIBED)
    assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    other = connector_dead_letter_topic("", "land")
    admin = AdminClient({**population})
    futures = admin.create_topics([NewTopic(other, 1)], operation_timeout=15)
    with pytest.raises(KafkaException) as not_created:
        futures[other].result(timeout=DEADLINE)
    assert not_created.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_a_client_that_does_not_trust_the_cluster_ca_is_refused(cluster: KafkaCluster) -> None:
    untrusting = {k: v for k, v in cluster.client_config(GSO).items() if k != "ssl.ca.location"}
    assert KafkaError._SSL in connection_errors(untrusting, KafkaError._SSL)


def test_a_client_with_a_wrong_password_is_refused(cluster: KafkaCluster) -> None:
    wrong = {**cluster.client_config(GSO), "sasl.password": "not-the-password"}
    assert KafkaError._AUTHENTICATION in connection_errors(wrong, KafkaError._AUTHENTICATION)
