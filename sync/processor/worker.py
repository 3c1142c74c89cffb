"""Run one agency's processor worker in the foreground until SIGTERM or SIGINT."""

from __future__ import annotations

import faust
from prometheus_client import CollectorRegistry

from sync.config import ProcessorSettings
from sync.contracts import Contract, load_contracts
from sync.errors import ConfigError
from sync.kafka import ensure_topics, topic_ids
from sync.policy import Projection, load_manifest, read_hash_keys
from sync.processor.app import create_app
from sync.processor.deadletter import dead_letter_topic


def run_worker(settings: ProcessorSettings, loglevel: str = "INFO") -> None:
    contracts, projections = subscriptions_of(settings)
    kafka = settings.client_config()
    dlq = dead_letter_topic(settings.topic_prefix, settings.agency)
    ensure_topics(kafka, [*contracts, dlq], settings.partitions)
    app = create_app(
        settings, contracts, CollectorRegistry(), topic_ids(kafka, contracts), projections
    )
    worker = faust.Worker(app, loglevel=loglevel, redirect_stdouts=False)
    worker.execute_from_commandline()


def subscriptions_of(
    settings: ProcessorSettings,
) -> tuple[dict[str, Contract], dict[str, Projection]]:
    """The source contracts the agency reads, and, under a manifest, what it may receive of
    each, both by (prefixed) topic."""
    available = load_contracts(settings.schemas_dir)
    if settings.manifest is None:
        unknown = [t for t in settings.topics if t not in available]
        if unknown:
            raise ConfigError(f"agency {settings.agency!r} subscribes to unknown topics {unknown}")
        return {settings.topic_prefix + t: available[t] for t in settings.topics}, {}
    manifest = load_manifest(settings.manifest, available)
    subscriptions = manifest.subscriptions_of(settings.agency)
    if not subscriptions:
        raise ConfigError(f"{settings.manifest}: agency {settings.agency!r} subscribes to nothing")
    secrets = read_hash_keys(settings.hash_keys_file)
    contracts, projections = {}, {}
    for subscription in subscriptions:
        topic = settings.topic_prefix + subscription.topic
        contracts[topic] = available[subscription.topic]
        projections[topic] = Projection(available[subscription.topic], subscription, secrets)
    return contracts, projections
