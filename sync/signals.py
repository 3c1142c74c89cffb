"""Waiting for the signal that stops a server process: SIGTERM (the supervisor, Kubernetes) or
SIGINT (Ctrl-C)."""

from __future__ import annotations

import asyncio
import signal


async def until_signalled() -> None:
    """Return once the process receives SIGTERM or SIGINT; the handlers go with it."""
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
