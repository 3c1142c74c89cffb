"""Run one agency's processor worker in the foreground until SIGTERM or SIGINT."""

from __future__ import annotations

import faust
from prometheus_client import CollectorRegistry

from sync.config import ProcessorSettings
from sync.contracts import load_contracts
from sync.errors import ConfigError
from sync.kafka import ensure_topics, topic_ids
from sync.processor.app import create_app
from sync.processor.deadletter import dead_letter_topic


def run_worker(settings: ProcessorSettings, loglevel: str = "INFO") -> None:
    available = load_contracts(settings.schemas_dir)
    unknown = [t for t in settings.topics if t not in available]
    if unknown:
        raise ConfigError(f"agency {settings.agency!r} subscribes to unknown topics {unknown}")
    contracts = {settings.topic_prefix + t: available[t] for t in settings.topics}
    dlq = dead_letter_topic(settings.topic_prefix, settings.agency)
    kafka = settings.client_config()
    ensure_topics(kafka, [*contracts, dlq], settings.partitions)
    app = create_app(settings, contracts, CollectorRegistry(), topic_ids(kafka, contracts))
    worker = faust.Worker(app, loglevel=loglevel, redirect_stdouts=False)
    worker.execute_from_commandline()
