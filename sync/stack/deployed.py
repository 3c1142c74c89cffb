"""A deployed federation as a :class:`StackDescription`: what ``govsync --federation FILE``
operates on, the way ``stack.json`` describes the embedded one.

Every address comes from the federation file's ``deployment`` section; no password does.
libpq finds the database passwords (``PGPASSFILE``, ``PGPASSWORD``, a service file), and
``GOVSYNC_HASH_KEYS_FILE`` names the hash keys verify needs to pseudonymise as the processors
do. Processes are known by their metrics pages only (no pid): one is up when its page answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from psycopg import conninfo

from sync.contracts import load_contracts
from sync.errors import ConfigError
from sync.policy import load_manifest
from sync.stack.description import DatabaseEntry, ProcessEntry, StackDescription


def describe_federation(path: Path, environ: Mapping[str, str]) -> StackDescription:
    """The deployment ``path`` describes, its secrets named by ``environ``."""
    manifest = load_manifest(path, load_contracts())
    deployment = manifest.deployment
    missing = [
        name
        for name, value in (
            ("kafka.bootstrap", deployment.kafka.bootstrap),
            ("registry", deployment.registry),
            ("postgres", deployment.postgres),
            ("metrics", deployment.metrics),
        )
        if not value
    ]
    if missing or deployment.postgres is None or deployment.metrics is None:
        raise ConfigError(
            f"{path}: deployment.{', deployment.'.join(missing)} not set: "
            "--federation takes every address from there"
        )
    databases, processes = [], []
    for source in manifest.sources:
        dsn = deployment.postgres.sources.format(source=source.name)
        databases.append(DatabaseEntry(source.name, "source", dsn, _dbname(dsn)))
        url = deployment.metrics.connector.format(source=source.name)
        processes.append(ProcessEntry(f"connector-{source.name}", "connector", 0, url))
    for agency in manifest.agencies:
        if not manifest.subscriptions_of(agency.code):
            continue
        for role, template in (
            ("replica", deployment.postgres.replicas),
            ("audit-writer", deployment.postgres.audit),
        ):
            dsn = template.format(agency=agency.code)
            databases.append(DatabaseEntry(agency.code, role, dsn, _dbname(dsn)))
        url = deployment.metrics.processor.format(agency=agency.code)
        processes.append(ProcessEntry(f"processor-{agency.code}", "processor", 0, url))
    if deployment.postgres.audit_reader:  # what `govsync audit` reads
        dsn = deployment.postgres.audit_reader
        databases.append(DatabaseEntry("", "audit", dsn, _dbname(dsn)))
    return StackDescription(
        data_dir="",
        bootstrap=deployment.kafka.bootstrap,
        registry_url=deployment.registry,
        postgres_port=0,
        databases=databases,
        processes=processes,
        broker_storage="",
        broker="kafka",
        manifest=str(path),
        hash_keys_file=environ.get("GOVSYNC_HASH_KEYS_FILE") or None,
    )


def _dbname(dsn: str) -> str:
    return str(conninfo.conninfo_to_dict(dsn).get("dbname", ""))
