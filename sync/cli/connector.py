"""``govsync connector run``: one CDC connector, configured by GOVSYNC_* variables."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import click
from prometheus_client import CollectorRegistry, start_http_server

from sync.config import ConnectorSettings
from sync.metrics import ConnectorMetrics


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
    worker.run()


def _stop_on_signals(stopping: threading.Event) -> None:
    def handler(_signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
