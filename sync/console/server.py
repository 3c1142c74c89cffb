"""Run the console as a process: serve until SIGTERM or SIGINT, then let requests in flight
finish and stop."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from confluent_kafka.schema_registry import SchemaRegistryClient

from sync.console.app import Console, create_app
from sync.console.backends import RegistryView
from sync.console.settings import ConsoleSettings
from sync.console.users import read_users
from sync.contracts import load_contracts
from sync.policy import load_manifest
from sync.signals import until_signalled

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT = 5.0


def console_of(settings: ConsoleSettings) -> Console:
    """The console the settings describe; a users file or manifest that cannot be used raises
    before anything listens."""
    manifest = None
    if settings.manifest is not None:
        manifest = load_manifest(settings.manifest, load_contracts())
    return Console(
        users=read_users(settings.console_users),
        registry=RegistryView(SchemaRegistryClient(settings.registry_config())),
        audit_dsn=settings.audit_dsn,
        manifest=manifest,
        topic_prefix=settings.topic_prefix,
    )


def serve(settings: ConsoleSettings) -> None:
    asyncio.run(_serve(create_app(console_of(settings)), settings.host, settings.port))


async def _serve(app: web.Application, host: str, port: int) -> None:
    # no access log: a page's address names subjects only, but the log is not the place
    runner = web.AppRunner(
        app, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT, access_log=None
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        log.info("console listening on %s", ", ".join(map(str, runner.addresses)))
        await until_signalled()
        log.info("console stopping")
    finally:
        await runner.cleanup()
