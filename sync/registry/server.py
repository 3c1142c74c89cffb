"""Run the registry as a process: create its tables, serve HTTP, stop cleanly on a signal.

:func:`serve` blocks until SIGTERM or SIGINT, then stops accepting requests, lets requests in
flight finish, and closes the parser processes and the database connections, so a supervisor
can stop and restart the registry at any time. Tables are created idempotently on every start.
"""

from __future__ import annotations

import asyncio
import logging
import ssl

from aiohttp import web
from prometheus_client import CollectorRegistry, ProcessCollector

from sync.config import RegistrySettings
from sync.registry.access import AccessPolicy
from sync.registry.app import create_app
from sync.registry.limits import SchemaLimits
from sync.registry.parser_pool import ParserPool
from sync.registry.store import PgStore
from sync.signals import until_signalled

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT = 10.0  # seconds requests in flight get to finish after a signal


def serve(settings: RegistrySettings, *, access: AccessPolicy | None = None) -> None:
    """Serve the registry on the settings' host and port over its store until signalled.

    ``access`` names the users and their roles (none: auth is off). With a TLS certificate in
    the settings the listener speaks HTTPS only, and with a client CA it also verifies client
    certificates, whose common name then names the user.
    """
    asyncio.run(_serve(settings, access))


def tls_context(settings: RegistrySettings) -> ssl.SSLContext | None:
    """The listener's TLS context, or None for plain HTTP."""
    if settings.registry_tls_cert is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.registry_tls_cert, settings.registry_tls_key)
    if settings.registry_tls_client_ca is not None:
        context.load_verify_locations(settings.registry_tls_client_ca)
        context.verify_mode = ssl.CERT_OPTIONAL  # without a certificate, HTTP Basic
    return context


async def _serve(settings: RegistrySettings, access: AccessPolicy | None) -> None:
    store = PgStore(settings.registry_dsn)
    limits = SchemaLimits.from_settings(settings)
    tls = tls_context(settings)
    try:
        await store.setup()
        metrics = CollectorRegistry()
        ProcessCollector(registry=metrics)
        with ParserPool(limits, workers=settings.registry_parse_workers) as parser:
            app = create_app(store, parser=parser, metrics_registry=metrics, access=access)
            await _run(app, (settings.host, settings.port, tls), parser)
    finally:
        await store.close()
    log.info("schema registry stopped")


async def _run(
    app: web.Application,
    listener: tuple[str, int, ssl.SSLContext | None],
    parser: ParserPool,
) -> None:
    host, port, tls = listener
    # Requests are counted in /metrics; one log line per request only when debugging.
    access_log = logging.getLogger("aiohttp.access") if log.isEnabledFor(logging.DEBUG) else None
    runner = web.AppRunner(
        app, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT, access_log=access_log
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, ssl_context=tls)
        await site.start()
        log.info("schema registry listening on %s", ", ".join(map(str, runner.addresses)))
        warm_up = asyncio.create_task(parser.warm_up())
        await until_signalled()
        log.info("schema registry stopping")
        warm_up.cancel()
    finally:
        await runner.cleanup()
