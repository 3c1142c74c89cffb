"""``govsync processor run``: one subscribing agency's worker, configured by GOVSYNC_*."""

from __future__ import annotations

import logging

import click

from sync.cli.connector import EXIT_FATAL
from sync.config import ProcessorSettings
from sync.errors import ConfigError

log = logging.getLogger(__name__)


@click.group()
def processor() -> None:
    """Subscription processors (faust-streaming workers)."""


@processor.command("run")
def run() -> None:
    """Apply the agency's topics to its replica until SIGTERM or SIGINT."""
    from sync.processor.worker import run_worker

    settings = ProcessorSettings()  # type: ignore[call-arg]  # fields come from the environment
    try:
        run_worker(settings)
    except ConfigError as exc:  # a manifest, a contract or a setting someone must fix
        log.error("processor for %s cannot run: %s", settings.agency, exc)
        raise SystemExit(EXIT_FATAL) from None
