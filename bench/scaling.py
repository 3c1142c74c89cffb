"""Processors draining a full topic: one subscriber alone (against the naive baseline), then
1, 10 and 85 subscribers hosted by one worker process, and 85 shared by two workers. Each
subscriber has its own consumer group and replica database. The topic is the snapshot run's,
already holding the whole backlog, so the connector takes no part. Each run is timed until
every replica holds its events.

The cost of a subscriber is the worker's CPU per event applied per subscriber, and its memory:
the target is 85 subscribers at no more than twice the cost of 10."""

from __future__ import annotations

import logging
import time

import psutil

from bench.convergence import Watch, converge
from bench.endtoend import wait_replicas
from bench.session import Session
from bench.sizes import Sizes
from bench.timing import Figure

log = logging.getLogger(__name__)

SCALES = ((1, 1), (10, 1), (85, 1), (85, 2))  # (subscribers, worker processes)


def solo(session: Session, sizes: Sizes, phase: str) -> Figure:
    """One subscriber draining ``Sizes.drained`` events: what the naive baseline is held to."""
    return drain(session, sizes, phase, "solo", 1, 1, sizes.drained)


def subscribers(session: Session, sizes: Sizes, phase: str) -> dict[str, Figure]:
    return {
        label(n, workers): drain(session, sizes, phase, f"s{n}w{workers}", n, workers)
        for n, workers in SCALES
    }


def label(subscribers: int, workers: int) -> str:
    return f"{subscribers}" if workers == 1 else f"{subscribers} on {workers} workers"


def drain(
    session: Session,
    sizes: Sizes,
    phase: str,
    run: str,
    count: int,
    workers: int,
    target: int | None = None,
) -> Figure:
    """Start ``workers`` processes, each hosting the same ``count`` agencies (one worker is
    each agency's active member, the others stand by), and wait for every replica."""
    target = target or sizes.scaled
    agencies = [f"{run}_{i:02d}" for i in range(count)]
    replicas = [(agency, session.database(f"{phase}_{agency}")) for agency in agencies]
    template = session.replica_template(f"{phase}_")
    started = time.perf_counter()
    processes = [
        session.start_processor(phase, ",".join(agencies), template, name=f"processor-{run}-{w}")
        for w in range(workers)
    ]
    try:
        if count == 1:
            result = wait_replicas(session, replicas, sizes, started, target=target)
        else:  # counting 85 replicas every 0.2 s would cost more than the drain
            watch = Watch(
                replicas,
                session.contract,
                target,
                timeout=sizes.converge_timeout,
                interval=max(1.0, sizes.poll_interval),
                check=session.check_alive,
                cpu=session.sampler.cpu_seconds,
            )
            result = converge(watch, started)
        rss = [psutil.Process(p.pid).memory_info().rss for p in processes]
    finally:
        session.stop(*processes)
    figure = result.summary()
    if count > 2:
        figure["series"] = {}  # too many lines to plot
    applied = target * count
    processor_cpu = figure["cpu_seconds"].get("processor", 0.0)
    figure.update(
        subscribers=count,
        workers=workers,
        aggregate_rate=figure["rate"] * count,
        aggregate_drain_rate=(figure["drain_rate"] or 0.0) * count,
        cpu_us_per_event=processor_cpu / applied * 1e6 if applied else None,
        worker_rss=max(rss),
    )
    log.info(
        "%d subscriber(s) on %d worker(s) applied %d events each in %.1f s",
        count,
        workers,
        target,
        figure["seconds"],
    )
    return figure
