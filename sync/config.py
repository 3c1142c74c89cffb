"""Settings for each kind of govsync process, read from ``GOVSYNC_*`` environment variables.

Built once at the edge (the CLI) and passed down; nothing below the CLI reads the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

_COMMON = SettingsConfigDict(env_prefix="GOVSYNC_", frozen=True, extra="ignore")


class KafkaSettings(BaseSettings):
    model_config = _COMMON

    bootstrap: str = Field(description="Kafka bootstrap servers, host:port[,host:port]")
    registry_url: str = Field(description="Confluent-compatible schema registry URL")
    topic_prefix: str = Field(default="", description="Prefix for every topic and subject")
    partitions: int = Field(default=3, ge=1, description="Partitions of topics govsync creates")
    replication_factor: int | None = Field(
        default=None,
        ge=1,
        description="Replication factor of topics govsync creates; unset: the broker's "
        "default.replication.factor",
    )
    security_protocol: str = Field(
        default="PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
    )
    sasl_mechanism: str = Field(default="SCRAM-SHA-512", description="SASL mechanism")
    sasl_username: str = Field(default="", description="This process's Kafka principal")
    sasl_password_file: Path | None = Field(
        default=None, description="File holding the principal's password (never the password)"
    )
    ssl_ca_location: Path | None = Field(default=None, description="CA certificate of brokers")
    registry_username: str = Field(
        default="", description="This process's user on the schema registry (HTTP Basic)"
    )
    dead_letter_retention_months: int = Field(
        default=12,
        ge=12,
        description="Months the dead-letter topics govsync creates keep their letters (of 31 "
        "days); at least 12 (Decree 53/2022)",
    )
    registry_password_file: Path | None = Field(
        default=None, description="File holding its registry password (never the password)"
    )
    registry_ca_location: Path | None = Field(
        default=None, description="CA certificate of an HTTPS registry"
    )

    def registry_config(self) -> dict[str, Any]:
        """Settings for confluent-kafka's SchemaRegistryClient."""
        config: dict[str, Any] = {"url": self.registry_url, "timeout": 10}
        if self.registry_username:
            password = ""
            if self.registry_password_file is not None:
                password = self.registry_password_file.read_text(encoding="utf-8").strip()
            config["basic.auth.user.info"] = f"{self.registry_username}:{password}"
        if self.registry_ca_location is not None:
            config["ssl.ca.location"] = str(self.registry_ca_location)
        return config

    def client_config(self) -> dict[str, str]:
        """Connection settings for confluent-kafka clients (producers, consumers, admin)."""
        config = {"bootstrap.servers": self.bootstrap, "security.protocol": self.security_protocol}
        if self.security_protocol.startswith("SASL"):
            config |= {
                "sasl.mechanism": self.sasl_mechanism,
                "sasl.username": self.sasl_username,
                "sasl.password": self.sasl_password(),
            }
        if self.ssl_ca_location is not None:
            config["ssl.ca.location"] = str(self.ssl_ca_location)
        return config

    def sasl_password(self) -> str:
        if self.sasl_password_file is None:
            return ""
        return self.sasl_password_file.read_text(encoding="utf-8").strip()


class ConnectorSettings(KafkaSettings):
    """One CDC connector: a source database and the contracts of the tables it publishes."""

    source: str = Field(description="Source agency code, e.g. population")
    source_dsn: str = Field(description="libpq connection string of the source database")
    tables: tuple[str, ...] = Field(default=(), description="Entities to capture; all if empty")
    slot: str = Field(default="", description="Replication slot name; govsync_<source> if empty")
    max_changes: int = Field(default=20_000, ge=1, description="Changes read per poll")
    poll_interval: float = Field(
        default=0.01,
        gt=0,
        description="Seconds before polling again after a poll that found nothing (doubling "
        "while the source stays idle): a change committed meanwhile waits this long at most",
    )
    max_idle_wait: float = Field(
        default=0.4,
        gt=0,
        description="Longest wait, in seconds, between polls of a source that stays idle: the "
        "wait doubles from poll_interval up to it, and bounds the latency of the first change "
        "after a quiet spell",
    )
    snapshot_chunk: int = Field(default=5_000, ge=1)
    metrics_port: int = Field(default=0, description="Port of /metrics; 0 disables it")
    metrics_host: str = Field(default="127.0.0.1", description="Address /metrics listens on")
    max_message_bytes: int = Field(
        default=1_000_000,
        ge=1_000,
        description="Largest message the producer sends (its message.max.bytes); a change "
        "above it goes to the connector's dead-letter topic. At most the topics' limit",
    )
    failure_linger: float = Field(
        default=30.0,
        ge=0,
        description="Seconds /metrics keeps serving a fatal error before the process exits",
    )
    schemas_dir: Path | None = None

    @property
    def slot_name(self) -> str:
        return self.slot or f"govsync_{self.source}"

    @property
    def publication(self) -> str:
        return self.slot_name


def processor_group_id(topic_prefix: str, agency: str) -> str:
    """The consumer group an agency's processor commits its offsets in."""
    return f"{topic_prefix}govsync-replica-{agency}"


class ProcessorSettings(KafkaSettings):
    """One subscribing agency's processor: which topics, which replica."""

    agency: str = Field(
        description="Subscribing agency code; a worker hosting several: a comma-separated "
        "list, or * for every subscribing agency of the manifest"
    )
    replica_dsn: str = Field(
        description="libpq connection string of the agency's replica; {agency} in it stands "
        "for the agency's code"
    )
    topics: tuple[str, ...] = Field(
        default=(), description="Contract topics (without prefix) to apply, when no manifest"
    )
    manifest: Path | None = Field(
        default=None, description="Federation manifest: the agency's subscriptions and policy"
    )
    hash_keys_file: Path | None = Field(
        default=None, description="JSON file: hash key name -> secret (at least 32 bytes)"
    )
    web_port: int = Field(default=0, description="Port of the worker's web server and /metrics")
    web_host: str = Field(default="127.0.0.1", description="Address the web server listens on")
    data_dir: Path = Field(default=Path("."), description="Worker state directory")
    batch_size: int = Field(default=2_000, ge=1)
    batch_seconds: float = Field(default=0.1, gt=0)
    fetch_wait_ms: int = Field(
        default=25,
        ge=1,
        le=1_000,
        description="Longest time, in milliseconds, the broker holds a fetch of a partition "
        "with nothing new (the consumer's fetch.wait.max.ms): bounds the latency a quiet "
        "partition adds; lower means more fetch requests while idle",
    )
    prefetch_mib: int = Field(
        default=64,
        ge=1,
        description="MiB of messages a worker queues ahead of its agencies, shared among them "
        "(each gets between 1 and 4 MiB): the worker's memory grows with it",
    )
    schemas_dir: Path | None = None
    audit_dsn: str | None = Field(
        default=None,
        description="libpq connection string of the federation's disclosure audit store "
        "(operator-owned, never the replica); required under a manifest unless unaudited",
    )
    # deny by default: without a manifest a processor refuses to start, and under one it
    # refuses to run without the audit; these two say, for development and tests, otherwise
    unrestricted: bool = Field(
        default=False,
        description="Development and tests only: without a manifest, apply every field of "
        "GOVSYNC_TOPICS (no filter, no pseudonym, no audit)",
    )
    unaudited: bool = Field(
        default=False,
        description="Development and tests only: apply under a manifest without recording "
        "the disclosures in the audit",
    )

    @property
    def group_id(self) -> str:
        return processor_group_id(self.topic_prefix, self.agency)

    def for_agency(self, code: str) -> ProcessorSettings:
        """The settings of one hosted agency."""
        return self.model_copy(
            update={"agency": code, "replica_dsn": self.replica_dsn.replace("{agency}", code)}
        )


class RegistrySettings(BaseSettings):
    """The schema registry: its store, its listener, and the bounds on what it parses."""

    model_config = _COMMON

    registry_dsn: str = Field(description="libpq connection string of the registry's store")
    host: str = "127.0.0.1"
    port: int = 8081
    registry_parse_workers: int = Field(
        default=2,
        ge=0,
        description="Processes that parse schemas and check compatibility, away from the "
        "server's event loop; 0: one thread of the server's own process",
    )
    registry_max_body_bytes: int = Field(
        default=4 * 1024 * 1024, ge=1024, description="Largest schema request body and text"
    )
    registry_max_fields: int = Field(
        default=2_000, ge=1, description="Most record fields in one schema, records together"
    )
    registry_max_union_branches: int = Field(
        default=256, ge=2, description="Most branches in one union"
    )
    registry_max_depth: int = Field(
        default=128,
        ge=8,
        le=256,
        description="Deepest JSON nesting of a schema (Avro's parser recurses, near 300 fails)",
    )
    registry_max_name_length: int = Field(
        default=512, ge=16, description="Longest name, namespace, alias, field or symbol"
    )
    registry_max_references: int = Field(
        default=100, ge=0, description="Most schemas one schema depends on, transitively"
    )
    registry_tls_cert: Path | None = Field(
        default=None, description="PEM certificate (chain) of an HTTPS-only listener"
    )
    registry_tls_key: Path | None = Field(
        default=None, description="Its private key, when not in the certificate file"
    )
    registry_tls_client_ca: Path | None = Field(
        default=None,
        description="CA whose client certificates name users (by common name); without a "
        "certificate a client uses HTTP Basic",
    )
    registry_metrics_open: bool = Field(
        default=False,
        description="Serve /metrics without credentials even when users are configured",
    )


class DeadLetterSettings(KafkaSettings):
    """What ``govsync dlq list`` needs: the agency and the broker, from the processor's own
    variables; it reads no replica and no registry."""

    registry_url: str = Field(default="", description="Not needed to list dead letters")
    agency: str = Field(description="Subscribing agency code")


class AuditSettings(KafkaSettings):
    """The disclosure audit's signing key, external checkpoints and retention. A processor
    signs and publishes only with a signing key; ``govsync audit`` commands read the rest."""

    bootstrap: str = Field(
        default="", description="Kafka bootstrap servers; no checkpoints published when empty"
    )
    registry_url: str = Field(default="", description="Not needed by the audit")
    audit_signing_key_file: Path | None = Field(
        default=None,
        description="This worker's Ed25519 private key (PEM), its identity in the audit; "
        "kept outside the audit database. Unset: entries are written unsigned",
    )
    audit_trusted_keys_file: Path | None = Field(
        default=None, description="PEM public keys whose audit signatures verify accepts"
    )
    audit_checkpoint_topic: str = Field(
        default="govsync.audit.checkpoints",
        description="Topic (after the topic prefix) signed chain heads are published to",
    )
    audit_checkpoint_seconds: float = Field(
        default=5.0,
        ge=0,
        description="At most one checkpoint per agency this often; entries after the last "
        "checkpoint are protected by signatures alone",
    )
    audit_tsa_url: str | None = Field(
        default=None, description="RFC 3161 time-stamping authority that stamps checkpoints"
    )
    audit_tsa_seconds: float = Field(
        default=3600.0,
        ge=0,
        description="At most one time-stamped checkpoint per agency this often",
    )
    audit_tsa_ca_file: Path | None = Field(
        default=None, description="CA certificate(s) the time-stamping authority chains to"
    )
    audit_retention_months: int = Field(
        default=12,
        ge=12,
        description="Months audit entries are kept before `govsync audit prune` may remove "
        "them; at least 12 (Decree 53/2022)",
    )

    @property
    def checkpoint_topic(self) -> str:
        return self.topic_prefix + self.audit_checkpoint_topic
