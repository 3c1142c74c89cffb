"""``govsync registry serve`` and ``govsync registry audit``: the Confluent-compatible schema
registry, and its record of who changed what."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from sync.config import RegistrySettings
from sync.registry.access import User, UsersFileError
from sync.registry.access import read_users as read_users_file


def read_users(path: Path) -> list[User]:
    """The users in ``path``; errors name the line, never its password."""
    try:
        return read_users_file(path)
    except UsersFileError as exc:
        raise click.BadParameter(str(exc)) from None


@click.group()
def registry() -> None:
    """The schema registry."""


dsn_option = click.option(
    "--dsn",
    envvar="GOVSYNC_REGISTRY_DSN",
    required=True,
    help="PostgreSQL store (libpq connection string).",
)


@registry.command("serve")
@dsn_option
@click.option("--host", envvar="GOVSYNC_HOST", default="127.0.0.1", show_default=True)
@click.option("--port", envvar="GOVSYNC_PORT", default=8081, show_default=True, type=int)
@click.option(
    "--users",
    "users_file",
    envvar="GOVSYNC_REGISTRY_USERS",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Turn on auth with the users in FILE, one 'name:password:role' per line ('#' starts "
    "a comment; a password may contain ':'; an empty one: a client certificate only). Roles: "
    "admin; reviewer=PREFIX[,PREFIX...] (writes the subjects starting with a prefix); "
    "readonly; metrics (/metrics only, which is otherwise open only with "
    "GOVSYNC_REGISTRY_METRICS_OPEN=true). Keep the file readable only by the registry's "
    "user. [env: GOVSYNC_REGISTRY_USERS]",
)
def serve(dsn: str, host: str, port: int, users_file: Path | None) -> None:
    """Serve the registry until SIGTERM or SIGINT. TLS, client certificates, limits and
    parser workers come from the GOVSYNC_REGISTRY_* variables."""
    from sync.registry.access import AccessPolicy
    from sync.registry.server import serve as serve_registry

    settings = RegistrySettings(registry_dsn=dsn, host=host, port=port)
    users = read_users(users_file) if users_file else []
    serve_registry(
        settings, access=AccessPolicy.of(users, metrics_open=settings.registry_metrics_open)
    )


@registry.command("audit")
@dsn_option
@click.option("--subject", "subject_prefix", help="Only subjects starting with PREFIX.")
@click.option("--user", "principal", help="Only what this user (or certificate) did.")
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"]),
    help="Only writes from this time on (UTC unless an offset is given).",
)
@click.option("--limit", default=100, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def audit(
    dsn: str,
    subject_prefix: str | None,
    principal: str | None,
    since: datetime | None,
    limit: int,
    as_json: bool,
) -> None:
    """The newest writes to the registry, oldest first: who, from where, what, when."""
    from sync.registry.audit import read_audit

    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    entries = read_audit(
        dsn, subject_prefix=subject_prefix, principal=principal, since=since, limit=limit
    )
    if as_json:
        click.echo(json.dumps([e.as_dict() for e in entries], indent=2))
        return
    table = Table("at (UTC)", "who", "from", "action", "subject", "detail")
    for e in entries:
        detail = ", ".join(f"{k}={v}" for k, v in e.detail.items())
        at = e.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(at, e.principal, e.address or "", e.action, e.subject or "(global)", detail)
    Console().print(table)
