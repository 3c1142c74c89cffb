"""``govsync connector run``: one CDC connector, configured by GOVSYNC_* variables."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

import click
from prometheus_client import CollectorRegistry, start_http_server

from sync.config import ConnectorSettings
from sync.errors import Fatal
from sync.metrics import ConnectorMetrics

log = logging.getLogger(__name__)

EXIT_FATAL = 2  # a permanent problem someone must fix; 1 stays for crashes


@click.group()
def connector() -> None:
    """Source connectors (change data capture)."""


@connector.command("run")
def run() -> None:
    """Capture a source database until SIGTERM or SIGINT (settings from GOVSYNC_*)."""
    from connectors.postgres.connector import Connector

    settings = ConnectorSettings()  # type: ignore[call-arg]  # fields come from the environment
    registry = CollectorRegistry()
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.metrics_host, registry=registry)
    worker = Connector(settings, ConnectorMetrics.create(registry))
    _stop_on_signals(worker.stopping)
    try:
        worker.run()
    except Fatal as exc:
        log.error("connector %s cannot run: %s", settings.source, exc)
        if settings.metrics_port:  # let Prometheus scrape the failure before the process goes
            worker.stopping.wait(settings.failure_linger)
        raise SystemExit(EXIT_FATAL) from None


def _stop_on_signals(stopping: threading.Event) -> None:
    def handler(_signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
