"""``govsync processor run``: one subscribing agency's worker, configured by GOVSYNC_*."""

from __future__ import annotations

import click

from sync.config import ProcessorSettings


@click.group()
def processor() -> None:
    """Subscription processors (faust-streaming workers)."""


@processor.command("run")
def run() -> None:
    """Apply the agency's topics to its replica until SIGTERM or SIGINT."""
    from sync.processor.worker import run_worker

    run_worker(ProcessorSettings())  # type: ignore[call-arg]  # fields come from the environment
