"""The faust-streaming worker of one subscribing agency.

Offsets: faust-streaming acknowledges an event in a ``finally`` block even when the agent
raised (faust-streaming issue #315), and commits acknowledged offsets on its own schedule, so a
crash could skip events that were never applied. The topics are therefore declared with
``acks=False`` (faust never commits them) and the agent commits, after each replica commit,
exactly the offsets that the replica recorded in the same transaction as the rows. The consumed
position can lag behind what is applied (replays are no-ops), never run ahead of it.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

import faust
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from sync.config import ProcessorSettings
from sync.contracts import Contract
from sync.errors import SubscriptionStopped
from sync.metrics import ProcessorMetrics
from sync.policy import Projection
from sync.processor.deadletter import DeadLetterPublisher, dead_letter_topic
from sync.processor.schemas import SchemaCache
from sync.processor.subscription import RawMessage, Subscription

log = logging.getLogger(__name__)

LAG_INTERVAL = 5.0  # seconds between lag updates when no batch arrives


def faust_broker_url(bootstrap: str) -> str:
    return ";".join(f"kafka://{server.strip()}" for server in bootstrap.split(","))


def create_app(
    settings: ProcessorSettings,
    contracts: dict[str, Contract],
    registry: CollectorRegistry,
    topic_ids: dict[str, str],
    projections: dict[str, Projection] | None = None,
) -> faust.App:
    """The worker app: one agent consuming every topic of ``contracts`` (keyed by topic); under
    a manifest, ``projections`` (by topic) say what the agency may receive of each."""
    app = faust.App(
        settings.group_id,
        broker=faust_broker_url(settings.bootstrap),
        datadir=str(settings.data_dir),
        web_host=settings.web_host,
        web_bind=settings.web_host,
        broker_credentials=_credentials(settings),
        web_port=settings.web_port or 6066,
        web_enabled=settings.web_port != 0,
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=min(1.0, settings.session_timeout / 3),
        consumer_auto_offset_reset="earliest",
        topic_partitions=settings.partitions,
        topic_disable_leader=True,
        producer_acks=-1,
    )
    metrics = ProcessorMetrics.create(registry)
    subscription = Subscription(
        agency=settings.agency,
        replica_dsn=settings.replica_dsn,
        contracts=contracts,
        group_id=settings.group_id,
        schemas=SchemaCache(settings.registry_url),
        dead_letters=DeadLetterPublisher(
            settings.client_config(), dead_letter_topic(settings.topic_prefix, settings.agency)
        ),
        metrics=metrics,
        topic_ids=topic_ids,
        projections=projections,
    )
    topics = app.topic(
        *contracts,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        acks=False,
    )

    positions: dict[Any, int] = {}  # next offset to read per partition, as committed

    @app.agent(topics, name=f"apply-{settings.agency}")
    async def apply_changes(stream: faust.StreamT[Any]) -> None:
        batches = stream.take_events(  # type: ignore[attr-defined]  # missing from StreamT
            settings.batch_size, within=settings.batch_seconds
        )
        async for events in batches:
            messages = [_raw(event) for event in events]
            try:
                await subscription.handle(messages)
            except SubscriptionStopped as stopped:
                subscription.stop(stopped)
                await _park_until_stopped(app)
                return
            positions.update(await _commit_applied(app, messages))
            _observe_lag(app, metrics, settings.agency, positions)

    @app.timer(LAG_INTERVAL)  # type: ignore[untyped-decorator]
    async def refresh_lag() -> None:
        """Keep the lag current while no batch arrives (a stuck or stopped subscription)."""
        _observe_lag(app, metrics, settings.agency, positions)

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        # aiohttp refuses a charset inside content_type; the exposition format is UTF-8 anyway
        content_type = CONTENT_TYPE_LATEST.split("; charset")[0]
        return web.bytes(generate_latest(registry), content_type=content_type)

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def log_assignment(_app: faust.App, assigned: set[Any], **_: Any) -> None:
        log.info("agency %s assigned %d partitions", settings.agency, len(assigned))

    return app


def _credentials(settings: ProcessorSettings) -> Any:
    """The same TLS / SASL settings the confluent-kafka clients get, for faust's own client."""
    protocol = settings.security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = None
    if protocol.endswith("SSL"):
        context = ssl.create_default_context(
            cafile=str(settings.ssl_ca_location) if settings.ssl_ca_location else None
        )
    if protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=settings.sasl_username,
            password=settings.sasl_password(),
            mechanism=settings.sasl_mechanism,
            ssl_context=context,
        )
    return faust.SSLCredentials(context)


def _raw(event: Any) -> RawMessage:
    message = event.message
    return RawMessage(message.topic, message.partition, message.offset, message.key, message.value)


async def _park_until_stopped(app: faust.App) -> None:
    """Hold the stopped subscription's partitions without consuming or committing anything;
    the worker keeps serving /metrics so operators see why, until it is restarted."""
    while not app.should_stop:
        await asyncio.sleep(1.0)


def _observe_lag(
    app: faust.App, metrics: ProcessorMetrics, agency: str, committed: dict[Any, int]
) -> None:
    """Lag per partition from the high watermark the last fetch carried."""
    for tp, next_offset in list(committed.items()):
        highwater = app.consumer.highwater(tp)
        if highwater is not None:
            lag = max(0, highwater - next_offset)
            metrics.consumer_lag.labels(agency, tp.topic, str(tp.partition)).set(lag)


async def _commit_applied(app: faust.App, messages: list[RawMessage]) -> dict[Any, int]:
    """Commit to Kafka the positions just committed in the replica (next offset to read)."""
    next_offsets: dict[faust.types.TP, int] = {}
    for m in messages:
        tp = faust.types.TP(m.topic, m.partition)
        next_offsets[tp] = max(next_offsets.get(tp, 0), m.offset + 1)
    # faust's public commit() commits acknowledged offsets, which the topics do not record
    # (acks=False); the transport-level commit takes explicit offsets.
    await app.consumer._commit(next_offsets)  # type: ignore[attr-defined]
    return dict(next_offsets)
