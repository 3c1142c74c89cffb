"""The click group; each command lives in its own module and stays thin."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from sync.cli import (
    audit,
    audit_keys,
    audit_report,
    connector,
    console,
    dlq,
    manifest,
    processor,
    registry,
    restrict,
    schemas,
    schemas_scaffold,
    snapshot,
    status,
    up,
    verify,
)


@click.group()
@click.option("--log-level", default="INFO", show_default=True, help="Logging level.")
@click.option(
    "--federation",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar="GOVSYNC_FEDERATION",
    help="Operate on the deployment this federation file describes (its deployment section "
    "names every address; passwords come from PGPASSFILE and GOVSYNC_HASH_KEYS_FILE) "
    "instead of the embedded stack's stack.json: status, verify, snapshot.",
)
def cli(log_level: str, federation: Path | None) -> None:
    """govsync: inter-agency data sync from source databases to subscriber replicas."""
    logging.basicConfig(
        level=log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # the registry client logs every HTTP request at INFO
    for noisy in ("httpx", "httpx2"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


cli.add_command(up.up)
cli.add_command(connector.connector)
cli.add_command(processor.processor)
cli.add_command(registry.registry)
cli.add_command(status.status)
cli.add_command(verify.verify)
cli.add_command(snapshot.snapshot)
cli.add_command(schemas.schemas)
cli.add_command(manifest.manifest)
schemas.schemas.add_command(schemas_scaffold.scaffold)
cli.add_command(audit.audit)
audit.audit.add_command(audit_keys.keygen)
audit.audit.add_command(audit_keys.prune)
audit.audit.add_command(audit_report.report)
cli.add_command(dlq.dlq)
cli.add_command(restrict.restrict)
cli.add_command(console.console)
