"""The processor worker: a faust-streaming app hosting the subscriptions of one or many agencies.

faust is the framework: it runs the worker (signals, lifecycle, logging), serves /metrics and
runs the lag timer. Each hosted agency is a :class:`SubscriptionService` started with the app:
its own consumer group (so a slow, failing or offline agency never holds up another), read with
confluent-kafka on the hot path (see :mod:`sync.processor.consumer`), applied to its own replica.
Several workers may host an agency: one is its active member and consumes, the others stand by
(see :mod:`sync.processor.membership`).

Offsets: faust-streaming acknowledges an event in a ``finally`` block even when the agent
raised (faust-streaming issue #315) and commits acknowledged offsets on its own schedule, so a
crash could skip events that were never applied. The services therefore commit themselves,
after each batch is settled, exactly the offsets that the replica recorded for it. The committed
position can lag behind what is applied (replays are no-ops), never run ahead of it. The
replica's record is the position of record: a service starts each partition there when it
begins to read it, where Kafka's committed offset is older or missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import faust
from confluent_kafka import Producer
from faust.app.base import BootStrategy
from mode import Service
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from sync.config import ProcessorSettings
from sync.contracts import Contract
from sync.errors import SubscriptionStopped
from sync.kafka.deadletter import DeadLetterPublisher, dead_letter_producer, dead_letter_topic
from sync.metrics import ProcessorMetrics
from sync.policy import Projection
from sync.processor.consumer import MAX_PREFETCH_KIB, SubscriptionConsumer, prefetch_kib
from sync.processor.decode_cache import DecodeCache
from sync.processor.decoding import RawMessage
from sync.processor.membership import LOCK_CHECK_INTERVAL, MemberLock, MembershipLost
from sync.processor.schemas import SchemaCache
from sync.processor.subscription import Subscription
from sync.processor.transactions import TransactionHoldback
from sync.replica import DeletedKeys

log = logging.getLogger(__name__)

LAG_INTERVAL = 5.0  # seconds between lag updates when no batch arrives
STOP_TIMEOUT = 30.0  # seconds a stopping service waits for its batch in flight
PARTITIONS_INTERVAL = 30.0  # seconds between looks for partitions the topics gained
OFFSETS_RETRY_INTERVAL = 1.0  # seconds before asking again for committed offsets Kafka lacked
DECODE_CACHE_BATCHES = 10  # a worker's agencies share this many batches' decoded events


class SubscriptionHost(Service):
    """The worker's agencies, started with the faust app and stopped together: each one's
    batch in flight is finished and its member lock released, all at the same time."""

    def __init__(self, services: Sequence[SubscriptionService]) -> None:
        super().__init__()
        self.services = list(services)

    @property
    def label(self) -> str:
        return f"{len(self.services)} subscription(s)"

    async def on_started(self) -> None:
        for service in self.services:
            service.start(self.crash)

    async def on_stop(self) -> None:
        await asyncio.gather(*(service.stop() for service in self.services))


class SubscriptionService:
    """One agency: stand by until this worker is the agency's active member, then read a
    batch, apply it (or dead-letter what cannot be), commit, repeat, for as long as it holds
    the member lock (see :mod:`sync.processor.membership`). A term ends when the lock is lost:
    the service stops reading at once and stands by again."""

    def __init__(
        self,
        settings: ProcessorSettings,
        subscription: Subscription,
        consumers: Callable[[], SubscriptionConsumer],
        executor: ThreadPoolExecutor,
        metrics: ProcessorMetrics,
    ) -> None:
        self.settings = settings
        self.agency = settings.agency
        self.subscription = subscription
        self.consumers = consumers  # a new consumer per term
        self.consumer: SubscriptionConsumer | None = None
        self.executor = executor
        self.metrics = metrics
        self.positions: dict[tuple[str, int], int] = {}  # next offset per partition, committed
        self._stopping = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._crash: Callable[[BaseException], Awaitable[None]] | None = None
        self._set_role("standby")

    def start(self, crash: Callable[[BaseException], Awaitable[None]]) -> None:
        """Run the loop; ``crash`` stops the whole worker on a defect."""
        self._crash = crash
        self._loop_task = asyncio.create_task(self._run(), name=f"apply-{self.agency}")

    async def stop(self) -> None:
        self._stopping.set()
        if self._loop_task is not None:
            try:
                await asyncio.wait_for(self._loop_task, STOP_TIMEOUT)
            except TimeoutError:
                log.warning("agency %s: batch in flight abandoned at stop", self.agency)
        await self._leave()

    async def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                await self._term()
        except SubscriptionStopped as stopped:
            self.subscription.stop(stopped)
            await self._park()
        except Exception as exc:
            # anything else is a defect: crash the whole worker so that it is restarted
            log.exception("agency %s: subscription failed", self.agency)
            assert self._crash is not None
            await self._crash(exc)

    async def _term(self) -> None:
        """Stand by until the member lock is held, then serve until it is lost or the service
        stops; either way stop reading and forget what was read."""
        try:
            if await self._unless_stopping(self.subscription.activate()):
                self.metrics.member_activations.labels(self.agency).inc()
                log.info("agency %s: active member of %s", self.agency, self.settings.group_id)
                await self._serve(await self._blocking(self.consumers))
            return
        except MembershipLost as lost:
            log.warning("agency %s: %s; standing by", self.agency, lost)
        finally:
            await self._leave()
        # a lock lost again at once (a proxy in front of the replica) must not spin: stand by
        # again after a pause; another worker takes over meanwhile
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), LOCK_CHECK_INTERVAL)

    async def _serve(self, consumer: SubscriptionConsumer) -> None:
        self.consumer = consumer
        self._set_role("active")
        now = time.monotonic()
        confirm_at, discover_at = now + LOCK_CHECK_INTERVAL, now
        while not self._stopping.is_set():
            if time.monotonic() >= discover_at:
                assigned = await self._read_new_partitions(consumer)
                wait = PARTITIONS_INTERVAL if assigned else OFFSETS_RETRY_INTERVAL
                discover_at = time.monotonic() + wait
            messages = await self._blocking(
                consumer.read, self.settings.batch_size, self.settings.batch_seconds
            )
            if messages or self.subscription.holding:
                await self._process(consumer, messages)
            await self.subscription.apply_restrictions()
            if time.monotonic() >= confirm_at:  # a lost lock is noticed even while idle
                await self.subscription.confirm_active()
                confirm_at = time.monotonic() + LOCK_CHECK_INTERVAL

    async def _leave(self) -> None:
        """Stop reading, then close the replica session, releasing the member lock: no offset
        commit of this member follows those of the next active member."""
        consumer, self.consumer = self.consumer, None
        if consumer is not None:
            await self._blocking(consumer.close)
        await self.subscription.close()
        self.subscription.forget()
        for topic, partition in self.positions:
            self.metrics.consumer_lag.remove(self.agency, topic, str(partition))
        self.positions.clear()
        self._set_role("standby")

    async def _unless_stopping(self, work: Awaitable[None]) -> bool:
        """Run ``work`` to its end, or cancel it if the service stops first; True if it ended."""
        task = asyncio.ensure_future(work)
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if task.done():
            task.result()
            return True
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return False

    def _set_role(self, role: str) -> None:
        for name in ("active", "standby"):
            self.metrics.member_role.labels(self.agency, name).set(int(name == role))

    async def _read_new_partitions(self, consumer: SubscriptionConsumer) -> bool:
        """Every partition of the topics not read yet (all at the start of a term): read from
        the replica's recorded offset on. False when they could not be assigned yet (Kafka's
        committed offsets unknown for now)."""
        partitions = await self._blocking(consumer.unassigned)
        if not partitions:
            return True
        recorded = await self.subscription.take_over(partitions)
        return bool(await self._blocking(consumer.assign, partitions, recorded))

    async def _process(self, consumer: SubscriptionConsumer, messages: list[RawMessage]) -> None:
        assigned = consumer.assigned
        # the only member consuming, and it reads every partition: transactions are held
        committable = await self.subscription.handle(messages, whole=True)
        next_offsets = {
            where: offset
            for where, offset in committable.items()
            if where in assigned and offset > self.positions.get(where, -1)
        }
        await self._blocking(consumer.commit, next_offsets)
        self.positions.update(next_offsets)
        self.observe_lag()

    async def _park(self) -> None:
        """Consume and commit nothing more; the worker keeps serving /metrics so operators see
        why, until it is restarted."""
        await self._stopping.wait()

    def observe_lag(self) -> None:
        """Lag per partition from the high watermark the last fetch carried."""
        consumer = self.consumer
        if consumer is None:
            return
        for (topic, partition), next_offset in list(self.positions.items()):
            if (topic, partition) not in consumer.assigned:
                continue
            highwater = consumer.highwater(topic, partition)
            if highwater is not None:
                lag = max(0, highwater - next_offset)
                self.metrics.consumer_lag.labels(self.agency, topic, str(partition)).set(lag)

    async def _blocking(self, function: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)


class _HostBoot(BootStrategy):
    """faust's own Kafka clients stay off: the hosted services read and commit themselves."""

    enable_kafka = False


class WorkerApp(faust.App):
    BootStrategy = _HostBoot


def create_app(settings: ProcessorSettings, registry: CollectorRegistry) -> faust.App:
    """The worker's faust app: lifecycle, web server and /metrics; it reads no topic itself."""
    app = WorkerApp(
        f"{settings.topic_prefix}govsync-worker",
        broker=faust_broker_url(settings.bootstrap),
        datadir=str(settings.data_dir),
        web_host=settings.web_host,
        web_bind=settings.web_host,
        web_port=settings.web_port or 6066,
        web_enabled=settings.web_port != 0,
        topic_disable_leader=True,
    )

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        # aiohttp refuses a charset inside content_type; the exposition format is UTF-8 anyway
        content_type = CONTENT_TYPE_LATEST.split("; charset")[0]
        return web.bytes(generate_latest(registry), content_type=content_type)

    return app


@dataclass
class WorkerResources:
    """What the agencies of one worker share: metrics, one thread per agency for blocking
    Kafka calls, the registry's schemas, the dead-letter producer and the decoded events."""

    metrics: ProcessorMetrics
    executor: ThreadPoolExecutor
    schemas: SchemaCache
    dead_letters: Producer
    decoded: DecodeCache | None = None
    prefetch_kib: int = MAX_PREFETCH_KIB  # each agency's share of the worker's prefetch

    @classmethod
    def create(
        cls, settings: ProcessorSettings, agencies: int, registry: CollectorRegistry
    ) -> WorkerResources:
        metrics = ProcessorMetrics.create(registry)
        return cls(
            metrics,
            ThreadPoolExecutor(agencies + 1, thread_name_prefix="govsync-kafka"),
            SchemaCache(settings.registry_config()),
            dead_letter_producer(settings.client_config()),
            DecodeCache(DECODE_CACHE_BATCHES * settings.batch_size, metrics.decode_cache_lookups)
            if agencies > 1
            else None,
            prefetch_kib(settings.prefetch_mib, agencies),
        )


def create_service(
    settings: ProcessorSettings,
    contracts: dict[str, Contract],
    shared: WorkerResources,
    topic_ids: dict[str, str],
    deleted_keys: DeletedKeys,
    projections: dict[str, Projection] | None = None,
) -> SubscriptionService:
    """One agency's service: ``contracts`` keyed by topic; under a manifest, ``projections``
    (by topic) say what the agency may receive of each; ``deleted_keys`` hashes the keys its
    replica remembers deletes by."""
    metrics = shared.metrics
    subscription = Subscription(
        agency=settings.agency,
        replica_dsn=settings.replica_dsn,
        contracts=contracts,
        group_id=settings.group_id,
        schemas=shared.schemas,
        dead_letters=DeadLetterPublisher(
            shared.dead_letters, dead_letter_topic(settings.topic_prefix, settings.agency)
        ),
        metrics=metrics,
        topic_ids=topic_ids,
        projections=projections,
        audit_dsn=settings.audit_dsn,
        transactions=TransactionHoldback(contracts),
        lock=MemberLock(settings.group_id),
        decode_cache=shared.decoded,
    )
    subscription.replica.deleted_keys = deleted_keys

    def consumer() -> SubscriptionConsumer:
        return SubscriptionConsumer(
            settings.client_config(),
            settings.group_id,
            contracts,
            settings.fetch_wait_ms,
            shared.prefetch_kib,
        )

    return SubscriptionService(settings, subscription, consumer, shared.executor, metrics)


def add_lag_timer(app: faust.App, services: Sequence[SubscriptionService]) -> None:
    @app.timer(LAG_INTERVAL)  # type: ignore[untyped-decorator]
    async def refresh_lag() -> None:
        """Keep the lag current while no batch arrives (a stuck or stopped subscription)."""
        started = time.monotonic()
        for service in services:
            service.observe_lag()
        log.debug("lag of %d agencies in %.3f s", len(services), time.monotonic() - started)


def faust_broker_url(bootstrap: str) -> str:
    return ";".join(f"kafka://{server.strip()}" for server in bootstrap.split(","))
