"""``govsync registry serve``: the Confluent-compatible schema registry."""

from __future__ import annotations

import click

from sync.config import RegistrySettings


@click.group()
def registry() -> None:
    """The schema registry."""


@registry.command("serve")
@click.option(
    "--dsn",
    envvar="GOVSYNC_REGISTRY_DSN",
    required=True,
    help="PostgreSQL store (libpq connection string).",
)
@click.option("--host", envvar="GOVSYNC_HOST", default="127.0.0.1", show_default=True)
@click.option("--port", envvar="GOVSYNC_PORT", default=8081, show_default=True, type=int)
def serve(dsn: str, host: str, port: int) -> None:
    """Serve the registry until SIGTERM or SIGINT."""
    from sync.registry.server import serve as serve_registry

    settings = RegistrySettings(registry_dsn=dsn, host=host, port=port)
    serve_registry(settings.registry_dsn, settings.host, settings.port)
