"""Processors draining a full topic: one subscriber alone, then two subscribers (two processor
processes for two agencies, each with its own replica database) at the same time. The topic is
the snapshot run's, already holding the whole backlog, so the connector takes no part. Each run
is timed until every replica holds the first ``Sizes.drained`` events."""

from __future__ import annotations

import logging
import time

from bench.endtoend import wait_replicas
from bench.session import Session
from bench.sizes import Sizes
from bench.timing import Figure

log = logging.getLogger(__name__)


def subscribers(session: Session, sizes: Sizes, phase: str) -> dict[str, Figure]:
    return {
        "1": drain(session, sizes, phase, ["solo"]),
        "2": drain(session, sizes, phase, ["pair_a", "pair_b"]),
    }


def drain(session: Session, sizes: Sizes, phase: str, agencies: list[str]) -> Figure:
    """Start a processor per agency on ``phase``'s topic and wait for every replica."""
    replicas = [(agency, session.database(f"{phase}_{agency}")) for agency in agencies]
    started = time.perf_counter()
    processes = [session.start_processor(phase, agency, dsn) for agency, dsn in replicas]
    try:
        result = wait_replicas(session, replicas, sizes, started, target=sizes.drained)
    finally:
        session.stop(*processes)
    figure = result.summary()
    figure["subscribers"] = len(agencies)
    figure["aggregate_rate"] = figure["rate"] * len(agencies)
    figure["per_subscriber_seconds"] = {
        name: next(t for t, count in series if count >= sizes.drained)
        for name, series in result.series.items()
    }
    log.info(
        "%d subscriber(s) applied %d events each in %.1f s",
        len(agencies),
        sizes.drained,
        figure["seconds"],
    )
    return figure
