"""``govsync audit keygen`` and ``govsync audit prune``: a worker's signing key, and the
retention of audit entries (kept at least 12 months, then cut at a signed checkpoint)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import click
from confluent_kafka import KafkaException

from sync.audit.checkpoints import Anchors, CheckpointPublisher, read_checkpoints
from sync.audit.prune import prune as prune_chains
from sync.audit.signing import Checkpoint, Signer, TrustedKeys
from sync.audit.timestamp import TimeStampAuthority
from sync.cli.audit import dsn_option, reaching_store, trusted_keys_option
from sync.config import AuditSettings
from sync.errors import AuditError, ConfigError


@click.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def keygen(path: Path) -> None:
    """Write a new Ed25519 signing key to PATH (readable by its owner only) and print its
    public key, for the verifiers' trusted keys file. One key per worker."""
    try:
        signer = Signer.generate(path)
    except FileExistsError:
        raise click.ClickException(f"{path} exists: a signing key is never overwritten") from None
    click.echo(f"key id {signer.key_id}", err=True)
    click.echo(signer.public_pem(), nl=False)


@click.command()
@dsn_option
@click.option(
    "--before",
    required=True,
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Remove entries recorded before this day (UTC); refused inside the retention period.",
)
@click.option("--agency", "agencies", multiple=True, help="Only this agency's chain (repeat).")
@click.option(
    "--signing-key",
    envvar="GOVSYNC_AUDIT_SIGNING_KEY_FILE",
    show_envvar=True,
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The key that signs each cut.",
)
@trusted_keys_option
@click.option(
    "--bootstrap",
    envvar="GOVSYNC_BOOTSTRAP",
    help="Kafka servers: check the chains against their checkpoints and publish each cut.",
)
def prune(
    dsn: str,
    before: datetime,
    agencies: tuple[str, ...],
    signing_key: Path,
    trusted_keys: Path | None,
    bootstrap: str | None,
) -> None:
    """Remove audit entries older than --before, after verifying each chain, leaving a signed
    checkpoint at the cut so `govsync audit verify` still passes. Entries are kept at least
    GOVSYNC_AUDIT_RETENTION_MONTHS (12 or more) months."""
    if trusted_keys is None:
        raise click.UsageError("prune verifies each chain first: give --trusted-keys")
    settings = AuditSettings(bootstrap=bootstrap or "")
    try:
        signer = Signer.from_file(signing_key)
        keys = TrustedKeys.from_file(trusted_keys)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    kafka = settings.client_config() if settings.bootstrap else None
    anchors = _anchors(kafka, settings.checkpoint_topic, keys)
    day: date = before.date()
    with reaching_store():
        try:
            cuts = prune_chains(
                dsn, day, signer, keys, settings.audit_retention_months, agencies, anchors
            )
        except AuditError as exc:
            raise click.ClickException(str(exc)) from None
    for cut in cuts:
        click.echo(
            f"agency {cut.checkpoint.agency}: {cut.removed} entries removed, chain cut at "
            f"seq {cut.checkpoint.seq} sha256 {cut.checkpoint.head.hex()}"
        )
    if not cuts:
        click.echo(f"no audit entry recorded before {day.isoformat()}")
    if kafka is not None and cuts:
        _publish(kafka, settings, [c.checkpoint for c in cuts])


def _anchors(
    kafka: dict[str, str] | None, topic: str, keys: TrustedKeys
) -> dict[str, dict[int, bytes]]:
    if kafka is None:
        return {}
    try:
        checkpoints, _ = read_checkpoints(kafka, topic)
    except (AuditError, KafkaException) as exc:
        raise click.ClickException(f"cannot read the audit checkpoints: {exc}") from None
    found = Anchors.of(checkpoints, keys)
    if found.conflicts:
        raise click.ClickException(f"not pruning: {found.conflicts[0]}")
    return found.heads


def _publish(kafka: dict[str, str], settings: AuditSettings, cuts: list[Checkpoint]) -> None:
    publisher = CheckpointPublisher.create(kafka, settings.checkpoint_topic)
    tsa = TimeStampAuthority(settings.audit_tsa_url) if settings.audit_tsa_url else None
    try:
        for cut in cuts:
            stamped = cut.stamped(tsa.stamp(cut.statement()).token) if tsa else cut
            publisher.publish(stamped)
    except AuditError as exc:
        raise click.ClickException(f"cuts made but not all published: {exc}") from None
    finally:
        publisher.close()
    click.echo(f"{len(cuts)} cut checkpoint(s) published to {settings.checkpoint_topic}")
