"""Run the registry as a process: create its tables, serve HTTP, stop cleanly on a signal.

:func:`serve` blocks until SIGTERM or SIGINT, then stops accepting requests, lets requests in
flight finish, and closes the database connections, so a supervisor can stop and restart the
registry at any time. Tables are created idempotently on every start.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Mapping

from aiohttp import web
from prometheus_client import CollectorRegistry, ProcessCollector

from sync.registry.app import create_app
from sync.registry.store import PgStore

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT = 10.0  # seconds requests in flight get to finish after a signal


def serve(
    dsn: str,
    host: str,
    port: int,
    *,
    users: Mapping[str, str] | None = None,
    readonly: frozenset[str] = frozenset(),
) -> None:
    """Serve the registry on ``host``:``port`` over the database at ``dsn`` until signalled.

    ``users`` (name -> password) turns on HTTP basic auth for the API.
    """
    asyncio.run(_serve(dsn, host, port, users, readonly))


async def _serve(
    dsn: str, host: str, port: int, users: Mapping[str, str] | None, readonly: frozenset[str]
) -> None:
    store = PgStore(dsn)
    try:
        await store.setup()
        metrics = CollectorRegistry()
        ProcessCollector(registry=metrics)
        app = create_app(store, metrics_registry=metrics, users=users, readonly=readonly)
        # Requests are counted in /metrics; one log line per request only when debugging.
        access_log = (
            logging.getLogger("aiohttp.access") if log.isEnabledFor(logging.DEBUG) else None
        )
        runner = web.AppRunner(
            app, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT, access_log=access_log
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port)
            await site.start()
            log.info("schema registry listening on %s", ", ".join(map(str, runner.addresses)))
            await _until_signalled()
            log.info("schema registry stopping")
        finally:
            await runner.cleanup()
    finally:
        await store.close()
    log.info("schema registry stopped")


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
