"""Run the registry as a process: create its tables, serve HTTP, stop cleanly on a signal.

:func:`serve` blocks until SIGTERM or SIGINT, then stops accepting requests, lets requests in
flight finish, and closes the parser processes and the database connections, so a supervisor
can stop and restart the registry at any time. Tables are created idempotently on every start.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Mapping

from aiohttp import web
from prometheus_client import CollectorRegistry, ProcessCollector

from sync.config import RegistrySettings
from sync.registry.app import create_app
from sync.registry.limits import SchemaLimits
from sync.registry.parser_pool import ParserPool
from sync.registry.store import PgStore

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT = 10.0  # seconds requests in flight get to finish after a signal


def serve(
    settings: RegistrySettings,
    *,
    users: Mapping[str, str] | None = None,
    readonly: frozenset[str] = frozenset(),
) -> None:
    """Serve the registry on the settings' host and port over its store until signalled.

    ``users`` (name -> password) turns on HTTP basic auth for the API.
    """
    asyncio.run(_serve(settings, users, readonly))


async def _serve(
    settings: RegistrySettings, users: Mapping[str, str] | None, readonly: frozenset[str]
) -> None:
    store = PgStore(settings.registry_dsn)
    limits = SchemaLimits.from_settings(settings)
    try:
        await store.setup()
        metrics = CollectorRegistry()
        ProcessCollector(registry=metrics)
        with ParserPool(limits, workers=settings.registry_parse_workers) as parser:
            app = create_app(
                store, parser=parser, metrics_registry=metrics, users=users, readonly=readonly
            )
            await _run(app, settings.host, settings.port, parser)
    finally:
        await store.close()
    log.info("schema registry stopped")


async def _run(app: web.Application, host: str, port: int, parser: ParserPool) -> None:
    # Requests are counted in /metrics; one log line per request only when debugging.
    access_log = logging.getLogger("aiohttp.access") if log.isEnabledFor(logging.DEBUG) else None
    runner = web.AppRunner(
        app, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT, access_log=access_log
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        log.info("schema registry listening on %s", ", ".join(map(str, runner.addresses)))
        warm_up = asyncio.create_task(parser.warm_up())
        await _until_signalled()
        log.info("schema registry stopping")
        warm_up.cancel()
    finally:
        await runner.cleanup()


async def _until_signalled() -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
