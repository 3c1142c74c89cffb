"""A dead letter the broker has not acknowledged holds the position: the offset of the
undecodable event is neither committed nor recorded by the replica while the dead-letter
broker is down, and moves on once the broker is up and took the letter."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest
from confluent_kafka import Consumer, Message, Producer, TopicPartition
from prometheus_client import CollectorRegistry

from sync.config import ProcessorSettings
from sync.kafka import topic_ids
from sync.kafka.deadletter import dead_letter_producer, dead_letter_topic
from sync.metrics import ProcessorMetrics
from sync.processor.app import SubscriptionService, WorkerResources, create_service
from sync.processor.dlq import read_letters
from sync.processor.schemas import SchemaCache
from sync.replica import DeletedKeys
from sync.stack.broker import EmbeddedBroker
from sync.stack.ports import free_port, port_open
from sync.stack.supervisor import ProcessSpec, Supervisor
from tests.fixtures.pipeline import TOPIC, Pipeline

pytestmark = pytest.mark.integration


class InProcessWorker:
    """One agency's service on an event loop of its own, as the worker runs it."""

    def __init__(self, service: SubscriptionService) -> None:
        self.service = service
        self.crashed: list[BaseException] = []
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._run(self._start())

    async def _start(self) -> None:
        async def crash(exc: BaseException) -> None:
            self.crashed.append(exc)

        self.service.start(crash)

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(60)

    def close(self) -> None:
        try:
            self._run(self.service.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.service.executor.shutdown()


@pytest.fixture
def dead_letter_broker(tmp_path: Path) -> Iterator[tuple[EmbeddedBroker, Callable[[], None]]]:
    """A broker of its own for the dead letters, not started yet: call the second item to
    start it."""
    broker = EmbeddedBroker(free_port())
    supervisor = Supervisor()
    spec = ProcessSpec(
        name="dead-letter-broker",
        role="broker",
        argv=broker.argv(),
        log_path=tmp_path / "dead-letter-broker.log",
        env=broker.env(),
        ready=lambda: port_open(broker.port),
    )

    def start() -> None:
        supervisor.start(spec)

    try:
        yield broker, start
    finally:
        supervisor.stop_all(drain_timeout=0)


def committed(pipeline: Pipeline, group: str, partition: int) -> int:
    consumer = Consumer({"bootstrap.servers": pipeline.stack.bootstrap, "group.id": group})
    try:
        [tp] = consumer.committed([TopicPartition(pipeline.topic, partition)], 10)
        return int(tp.offset)
    finally:
        consumer.close()


def recorded(pipeline: Pipeline, group: str, partition: int) -> int:
    with psycopg.connect(pipeline.replica_dsn) as conn:
        try:
            row = conn.execute(
                "SELECT next_offset FROM govsync_state.consumed_offsets "
                "WHERE group_id = %s AND partition = %s",
                (group, partition),
            ).fetchone()
        except psycopg.errors.UndefinedTable:
            return -1
    return int(row[0]) if row else -1


def produce_bad_message(pipeline: Pipeline) -> int:
    """An undecodable message on partition 0; returns its offset."""
    offsets: list[int] = []

    def delivered(error: Any, message: Message) -> None:
        assert error is None
        offsets.append(int(message.offset() or 0))

    producer = Producer({"bootstrap.servers": pipeline.stack.bootstrap})
    producer.produce(
        pipeline.topic, key=b"not-avro", value=b"\x01", partition=0, on_delivery=delivered
    )
    producer.flush(10)
    [offset] = offsets
    return offset


def test_an_unacknowledged_dead_letter_holds_the_offset_until_the_broker_takes_it(
    pipeline_factory: Callable[..., Pipeline],
    dead_letter_broker: tuple[EmbeddedBroker, Callable[[], None]],
) -> None:
    pipeline = pipeline_factory(citizens=20)
    pipeline.start_connector()
    pipeline.wait_for(
        lambda: bool(topic_ids({"bootstrap.servers": pipeline.stack.bootstrap}, [pipeline.topic])),
        "the topic",
    )
    bad = produce_bad_message(pipeline)
    broker, start_broker = dead_letter_broker
    settings = ProcessorSettings(  # type: ignore[call-arg]
        agency="vss",
        replica_dsn=pipeline.replica_dsn,
        bootstrap=pipeline.stack.bootstrap,
        registry_url=pipeline.stack.registry_url,
        topic_prefix=f"{pipeline.name}.",
        topics=(TOPIC,),
    )
    registry = CollectorRegistry()
    shared = WorkerResources(
        ProcessorMetrics.create(registry),
        ThreadPoolExecutor(2),
        SchemaCache(pipeline.stack.registry_url),
        # a letter is given up on after 2 s, and published again
        dead_letter_producer({"bootstrap.servers": broker.bootstrap, "message.timeout.ms": 2000}),
    )
    ids = topic_ids(settings.client_config(), [pipeline.topic])
    keys = DeletedKeys(b"d" * 32)
    service = create_service(settings, {pipeline.topic: pipeline.contract}, shared, ids, keys)
    worker = InProcessWorker(service)
    group = settings.group_id
    try:

        def retries() -> float:
            return (
                registry.get_sample_value(
                    "govsync_processor_apply_retries_total", {"agency": "vss"}
                )
                or 0.0
            )

        pipeline.wait_for(lambda: retries() >= 3, "the letter to be published again, three times")
        assert committed(pipeline, group, 0) <= bad, "committed past an unacknowledged letter"
        assert recorded(pipeline, group, 0) <= bad, "recorded past an unacknowledged letter"
        assert worker.crashed == []

        start_broker()
        pipeline.wait_for(
            lambda: committed(pipeline, group, 0) > bad and recorded(pipeline, group, 0) > bad,
            "the offset to move once the letter is acknowledged",
        )
        topic = dead_letter_topic(settings.topic_prefix, "vss")
        [letter] = read_letters({"bootstrap.servers": broker.bootstrap}, topic)
        assert (letter.original.topic, letter.original.partition, letter.original.offset) == (
            pipeline.topic,
            0,
            bad,
        )
        assert letter.reason == "decode_error" and letter.letters == 1
        pipeline.wait_converged()
        assert worker.crashed == []
    finally:
        worker.close()
