"""The embedded federation behind ``govsync up``: one PostgreSQL cluster (a source database
for each of the five agencies, a subscribing agency's replica database, the registry's store),
a broker (Tansu, or a three-node Apache Kafka cluster), the registry, one connector per source
agency and the subscriber's processor.

Everything a process needs is passed to it as ``GOVSYNC_*`` environment variables, the same way
a container would get it, so the embedded stack exercises the production entry points. On a
secure Kafka cluster each connector and processor gets its own principal (its password file and
the cluster's CA), allowed only what the manifest grants it (:mod:`sync.stack.kafka.acls`).
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import psycopg
from psycopg import sql

from sync.config import processor_group_id
from sync.contracts import Contract, load_contracts
from sync.errors import ConfigError
from sync.kafka import ensure_topics, group_lag
from sync.kafka.topics import KafkaClient
from sync.policy import FEDERATION_FILE, load_manifest
from sync.replica import deletes_key_name
from sync.stack.audit_setup import prepare_audit
from sync.stack.broker import Broker, EmbeddedBroker
from sync.stack.console_users import prepare_console_users
from sync.stack.demo import load_demo, sources
from sync.stack.description import DatabaseEntry, StackDescription
from sync.stack.kafka import KafkaCluster
from sync.stack.kafka.acls import connector_user, federation_acls, processor_user
from sync.stack.kafka.security import KafkaSecurity
from sync.stack.ports import free_port
from sync.stack.postgres import EmbeddedPostgres
from sync.stack.registry_users import CONSOLE, RegistryUsers, prepare_registry_users
from sync.stack.s3 import EmbeddedS3
from sync.stack.specs import (
    KafkaEndpoints,
    connector_spec,
    console_spec,
    processor_spec,
    registry_spec,
)
from sync.stack.supervisor import ProcessSpec, Supervisor

log = logging.getLogger(__name__)

REGISTRY_DB = "govsync_registry"
AUDIT_DB = "govsync_audit"  # the disclosure audit, the operator's, never a subscriber's


@dataclass
class FederationOptions:
    data_dir: Path
    citizens: int = 3_000
    partitions: int = 3
    with_pipeline: bool = True  # start the connector and the processor too
    # memory: topics die with the broker; s3: they live on a local S3 server (moto), so the
    # broker survives its own restart
    broker_storage: Literal["memory", "s3"] = "memory"
    # tansu: one embedded broker, no JVM; kafka: three Apache Kafka nodes, replication factor 3
    broker: Literal["tansu", "kafka"] = "tansu"
    # kafka only: clients authenticate with SCRAM over TLS, each process as its own principal
    secure: bool = False


@dataclass
class EmbeddedFederation:
    """Starts, describes and stops the embedded stack. Use as a context manager."""

    options: FederationOptions
    supervisor: Supervisor = field(init=False)
    postgres: EmbeddedPostgres = field(init=False)
    broker: Broker = field(init=False)
    registry_url: str = field(init=False, default="")
    console_url: str | None = field(init=False, default=None)
    registry_users: RegistryUsers = field(init=False)
    description: StackDescription | None = field(init=False, default=None)
    # source agency -> the entities its database publishes (from the contracts)
    sources: dict[str, list[str]] = field(init=False, default_factory=sources)
    # subscribing agency -> its topics, from the demo federation manifest
    subscribers: dict[str, tuple[str, ...]] = field(init=False, default_factory=dict)
    _ready: bool = field(init=False, default=False)
    _hash_key_names: frozenset[str] = field(init=False, default=frozenset())

    def __post_init__(self) -> None:
        self.options.data_dir = self.options.data_dir.resolve()
        self.supervisor = Supervisor(on_change=self._describe)
        self.postgres = EmbeddedPostgres(self.options.data_dir / "postgres", free_port())
        self.broker = self._new_broker()
        manifest = load_manifest(FEDERATION_FILE, load_contracts())
        self.subscribers = {
            a.code: tuple(s.topic for s in manifest.subscriptions_of(a.code))
            for a in manifest.agencies
            if manifest.subscriptions_of(a.code)
        }
        self._hash_key_names = frozenset().union(
            *(manifest.hash_keys(a) for a in self.subscribers),
            (deletes_key_name(a) for a in self.subscribers),  # every replica remembers deletes
        )

    def _new_broker(self) -> Broker:
        if self.options.broker == "kafka":
            if self.options.broker_storage != "memory":
                raise ConfigError(
                    "broker storage is a Tansu setting: the Kafka cluster keeps its logs on disk"
                )
            principals = None
            if self.options.secure:
                contracts = load_contracts()
                principals = federation_acls(load_manifest(FEDERATION_FILE, contracts), contracts)
            return KafkaCluster.create(self.options.data_dir / "kafka", security=principals)
        if self.options.secure:
            raise ConfigError("security is a setting of the Apache Kafka cluster (--broker kafka)")
        s3 = EmbeddedS3(free_port()) if self.options.broker_storage == "s3" else None
        return EmbeddedBroker(free_port(), s3)

    @property
    def security(self) -> KafkaSecurity | None:
        """A secure cluster's CA and credentials; None when clients connect in plaintext."""
        return self.broker.security if isinstance(self.broker, KafkaCluster) else None

    @property
    def admin(self) -> KafkaClient:
        """How the federation itself connects to the broker: as the admin on a secure
        cluster."""
        if isinstance(self.broker, KafkaCluster):
            return self.broker.client_config()
        return self.broker.bootstrap

    def credentials(self, user: str) -> dict[str, str]:
        """The ``GOVSYNC_*`` settings that connect a process as ``user``; none on plaintext."""
        return {} if self.security is None else self.security.client_env(user)

    @property
    def hash_keys_file(self) -> Path:
        """The secrets of the manifest's keyed hashes and of each replica's remembered deletes:
        each made once per data directory (a name the file lacks is added, the others kept),
        readable by its owner only, never printed."""
        path = self.options.data_dir / "hash_keys.json"
        if not path.exists():
            path.touch(mode=0o600)
        keys = json.loads(path.read_text() or "{}")
        missing = sorted(self._hash_key_names - set(keys))
        if missing:
            keys |= {n: secrets.token_hex(32) for n in missing}
            path.write_text(json.dumps(keys))
        return path

    def __enter__(self) -> EmbeddedFederation:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def logs(self) -> Path:
        return self.options.data_dir / "logs"

    def start(self) -> StackDescription:
        self.options.data_dir.mkdir(parents=True, exist_ok=True)
        # readers wait for the new description: it is written once everything is ready
        (self.options.data_dir / "stack.json").unlink(missing_ok=True)
        self._ready = False
        self._start_postgres()
        self._create_databases()
        self._start_broker()
        self._start_registry()
        if self.options.with_pipeline:
            self._load_demo()
            audit = prepare_audit(
                self.postgres.dsn(AUDIT_DB), self.subscribers, self.options.data_dir / "audit"
            )
            topics = [c.topic for c in load_contracts().values()]
            ensure_topics(self.admin, topics, self.options.partitions, self.broker.replication)
            if isinstance(self.broker, KafkaCluster) and self.security is not None:
                self.broker.wait_group_coordinators()
            for agency, entities in self.sources.items():
                spec = connector_spec(
                    self.kafka, agency, self.source_dsn(agency), self.logs, tables=entities
                )
                spec.env |= self.credentials(connector_user(agency))
                spec.env |= self.registry_users.env(connector_user(agency))
                self.supervisor.start(spec)
            for agency, subscribed in self.subscribers.items():
                spec = processor_spec(
                    self.kafka,
                    agency,
                    self.replica_dsn(agency),
                    subscribed,
                    self.logs,
                    self.options.data_dir / "processors" / agency,
                    manifest=FEDERATION_FILE,
                    hash_keys_file=self.hash_keys_file,
                    audit_dsn=audit.writer_dsns[agency],  # its own chain, nothing else
                )
                spec.env["GOVSYNC_AUDIT_SIGNING_KEY_FILE"] = str(audit.signing_keys[agency])
                spec.env |= self.credentials(processor_user(agency))
                spec.env |= self.registry_users.env(processor_user(agency))
                if self.security is not None:  # the lag of its group, asked as the admin
                    spec.drained = self._drained(agency, subscribed)
                self.supervisor.start(spec)
            self._start_console(audit.reader_dsn)
        self._ready = True
        self._describe()
        assert self.description is not None
        return self.description

    def _drained(self, agency: str, topics: tuple[str, ...]) -> Callable[[], bool]:
        group = processor_group_id(self.kafka.topic_prefix, agency)
        prefixed = [self.kafka.topic_prefix + topic for topic in topics]
        return lambda: not any(group_lag(self.admin, group, prefixed).values())

    def source_dsn(self, agency: str) -> str:
        return self.postgres.dsn(agency)

    def replica_dsn(self, agency: str) -> str:
        return self.postgres.dsn(f"replica_{agency}")

    @property
    def kafka(self) -> KafkaEndpoints:
        return KafkaEndpoints(
            self.broker.bootstrap,
            self.registry_url,
            self.options.partitions,
            replication=self.broker.replication,
        )

    def stop(self) -> None:
        """Stop everything, connectors first, the database last; leaves no process behind.
        Processors drain before the broker stops: its topics may be in memory only."""
        self.supervisor.stop_all()

    def _start_postgres(self) -> None:
        if self.postgres.initialise():
            log.info("created PostgreSQL cluster in %s", self.postgres.data_dir)
        self.supervisor.start(
            ProcessSpec(
                name="postgres",
                role="database",
                argv=self.postgres.argv(),
                log_path=self.logs / "postgres.log",
                user=self.postgres.run_as,
                ready=lambda: _can_connect(self.postgres.dsn()),
                ready_timeout=60,
                stop_timeout=30,
            )
        )

    def _create_databases(self) -> None:
        wanted = [
            *self.sources,
            *(f"replica_{a}" for a in self.subscribers),
            REGISTRY_DB,
            AUDIT_DB,
        ]
        with psycopg.connect(self.postgres.dsn(), autocommit=True) as conn:
            existing = {r[0] for r in conn.execute("SELECT datname FROM pg_database")}
            for name in wanted:
                if name not in existing:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def create_database(self, name: str) -> str:
        """Create a database in the cluster (tests use this for isolation); returns its DSN."""
        with psycopg.connect(self.postgres.dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.postgres.dsn(name)

    def _start_broker(self) -> None:
        self.broker.start(self.supervisor, self.logs)

    def _start_registry(self) -> None:
        """With the pipeline (``govsync up``) every process authenticates to the registry as
        in a deployment; a bare stack (the tests') serves anyone."""
        users = None
        if self.options.with_pipeline:
            self.registry_users = prepare_registry_users(
                self.options.data_dir / "registry", self.sources, self.subscribers
            )
            users = self.registry_users.users_file
        spec, self.registry_url = registry_spec(self.postgres.dsn(REGISTRY_DB), self.logs, users)
        self.supervisor.start(spec)

    def _start_console(self, audit_reader_dsn: str) -> None:
        """The web console, reading the registry as its own user and the audit as the data
        protection officer's reader role; its users' passwords are in DIR/console/passwords."""
        users = prepare_console_users(self.options.data_dir / "console")
        spec, self.console_url = console_spec(
            self.registry_url,
            users.users_file,
            self.logs,
            manifest=FEDERATION_FILE,
            audit_dsn=audit_reader_dsn,
        )
        spec.env |= self.registry_users.env(CONSOLE)
        self.supervisor.start(spec)

    def _load_demo(self) -> None:
        contracts = load_contracts().values()
        for agency, entities in self.sources.items():
            own = [c for c in contracts if _source_of(c) == agency and c.entity in entities]
            with psycopg.connect(self.source_dsn(agency), autocommit=True) as conn:
                loaded = load_demo(conn, own, self.options.citizens)
            if any(loaded.values()):
                log.info("loaded demo data into %s: %s", agency, loaded)

    def _describe(self) -> None:
        """Write stack.json: when the stack is ready, and after every restart since."""
        if not self._ready or not self.supervisor.processes.get("postgres"):
            return
        databases = [
            *(DatabaseEntry(a, "source", self.source_dsn(a), a) for a in self.sources),
            *(
                DatabaseEntry(a, "replica", self.replica_dsn(a), f"replica_{a}")
                for a in self.subscribers
            ),
            DatabaseEntry("govsync", "registry", self.postgres.dsn(REGISTRY_DB), REGISTRY_DB),
            DatabaseEntry("govsync", "audit", self.postgres.dsn(AUDIT_DB), AUDIT_DB),
        ]
        processes = self.supervisor.entries()
        self.description = StackDescription(
            data_dir=str(self.options.data_dir),
            bootstrap=self.broker.bootstrap,
            registry_url=self.registry_url,
            postgres_port=self.postgres.port,
            databases=databases,
            processes=processes,
            broker_storage=self.broker.storage,
            broker=self.options.broker,
            manifest=str(FEDERATION_FILE),
            hash_keys_file=str(self.hash_keys_file),
            console_url=self.console_url,
        )
        self.description.write(self.options.data_dir)

    def supervise(self, should_stop: Callable[[], bool], report: Callable[[str], None]) -> None:
        """Watch the processes until ``should_stop``; restarts are reported through ``report``."""
        while not should_stop():
            for message in self.supervisor.poll():
                report(message)
            time.sleep(0.2)


def _can_connect(dsn: str) -> bool:
    with psycopg.connect(dsn, connect_timeout=2):
        return True


def _source_of(contract: Contract) -> str:
    return str(contract.row_schema.get("govsync.source", contract.domain))
