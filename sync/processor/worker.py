"""Run a processor worker in the foreground until SIGTERM or SIGINT: one agency, a list of
agencies, or every subscribing agency of the manifest, each in its own consumer group."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

import faust
from prometheus_client import CollectorRegistry

from sync.config import ProcessorSettings
from sync.contracts import Contract, load_contracts
from sync.errors import ConfigError
from sync.kafka import ensure_topics, topic_ids
from sync.kafka.deadletter import dead_letter_topic, dead_letter_topic_config
from sync.policy import Manifest, Projection, load_manifest, read_hash_keys
from sync.processor.app import (
    SubscriptionHost,
    SubscriptionService,
    WorkerResources,
    add_lag_timer,
    create_app,
    create_service,
)
from sync.replica import DeletedKeys, deletes_key_name

log = logging.getLogger(__name__)


def run_worker(settings: ProcessorSettings, loglevel: str = "INFO") -> None:
    registry = CollectorRegistry()
    kafka = settings.client_config()
    hosted = [settings.for_agency(code) for code in agencies_of(settings)]
    subscribed = {agency.agency: subscriptions_of(agency) for agency in hosted}
    check_policy(settings)  # after the manifest proved valid, before any client starts
    deleted_keys = {agency.agency: deleted_keys_of(agency) for agency in hosted}
    shared = WorkerResources.create(settings, len(hosted), registry)
    topics = {topic for contracts, _ in subscribed.values() for topic in contracts}
    dead_letters = {dead_letter_topic(a.topic_prefix, a.agency) for a in hosted}
    ensure_topics(kafka, sorted(topics), settings.partitions)
    retention = dead_letter_topic_config(settings.dead_letter_retention_months)
    ensure_topics(kafka, sorted(dead_letters), settings.partitions, config=retention)
    ids = topic_ids(kafka, sorted(topics))
    services: list[SubscriptionService] = []
    for agency in hosted:
        contracts, projections = subscribed[agency.agency]
        services.append(
            create_service(agency, contracts, shared, ids, deleted_keys[agency.agency], projections)
        )
    app = create_app(settings, registry)
    add_lag_timer(app, services)
    host = SubscriptionHost(services)
    worker = faust.Worker(app, host, loglevel=loglevel, redirect_stdouts=False)
    worker.execute_from_commandline()


def check_policy(settings: ProcessorSettings) -> None:
    """Deny by default: a processor applies only what a manifest grants, and records every
    disclosure in the audit, unless a development setting says otherwise out loud."""
    if settings.manifest is None:
        if not settings.unrestricted:
            raise ConfigError(
                "no manifest (GOVSYNC_MANIFEST): a processor applies only what the federation "
                "manifest grants its agency; GOVSYNC_UNRESTRICTED=true applies every field of "
                "GOVSYNC_TOPICS instead, for development and tests only"
            )
        log.warning(
            "GOVSYNC_UNRESTRICTED: %s receives every field of %s, with no filter, no "
            "pseudonym and no audit (development only)",
            settings.agency,
            ", ".join(settings.topics) or "no topic",
        )
        return
    if settings.unrestricted:
        raise ConfigError("GOVSYNC_UNRESTRICTED is for a processor without a manifest")
    if settings.audit_dsn is None:
        if not settings.unaudited:
            raise ConfigError(
                "GOVSYNC_AUDIT_DSN is unset: every disclosure under a manifest is recorded in "
                "the audit; GOVSYNC_UNAUDITED=true runs without it, for development and tests "
                "only"
            )
        log.warning(
            "GOVSYNC_UNAUDITED: disclosures to %s are not audited (development only)",
            settings.agency,
        )


def deleted_keys_of(settings: ProcessorSettings) -> DeletedKeys:
    """The secret one hosted agency's remembered deletes are hashed under: its entry
    ``remembered-deletes.<agency>`` in GOVSYNC_HASH_KEYS_FILE. A worker in a development mode
    (unrestricted or unaudited) without it makes one in GOVSYNC_DATA_DIR and keeps it there;
    any other refuses to start."""
    path = settings.hash_keys_file
    found = read_hash_keys(path)
    name = deletes_key_name(settings.agency)
    if name not in found and (settings.unrestricted or settings.unaudited):
        found = {name: _development_key(settings.data_dir / f"{name}.key")}
        log.warning(
            "%s: remembered deletes are hashed under a key made in %s (development only)",
            settings.agency,
            settings.data_dir,
        )
    where = f"GOVSYNC_HASH_KEYS_FILE ({path})" if path else "GOVSYNC_HASH_KEYS_FILE (unset)"
    return DeletedKeys.from_secrets(settings.agency, found, where)


def _development_key(path: Path) -> bytes:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(32), encoding="utf-8")
    return path.read_text(encoding="utf-8").strip().encode()


def agencies_of(settings: ProcessorSettings) -> list[str]:
    """GOVSYNC_AGENCY: one code, a comma-separated list, or ``*`` for every agency with a
    subscription in the manifest."""
    codes = [code.strip() for code in settings.agency.split(",") if code.strip()]
    if codes == ["*"]:
        codes = sorted(_subscribers(_manifest(settings)))
    if not codes:
        raise ConfigError("GOVSYNC_AGENCY names no agency")
    if len(codes) > 1 and "{agency}" not in settings.replica_dsn:
        raise ConfigError(
            "GOVSYNC_REPLICA_DSN must contain {agency} when a worker hosts several agencies "
            "(each agency has its own replica)"
        )
    if len(set(codes)) != len(codes):
        raise ConfigError(f"GOVSYNC_AGENCY names an agency twice: {settings.agency!r}")
    return codes


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


def _manifest(settings: ProcessorSettings) -> Manifest:
    if settings.manifest is None:
        raise ConfigError("GOVSYNC_AGENCY=* needs a manifest (GOVSYNC_MANIFEST)")
    return load_manifest(settings.manifest, load_contracts(settings.schemas_dir))


def _subscribers(manifest: Manifest) -> set[str]:
    return {a.code for a in manifest.agencies if manifest.subscriptions_of(a.code)}
