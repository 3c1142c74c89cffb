"""End-to-end latency at fixed offered loads, on a running pipeline.

A paced writer commits small transactions at the offered rate (every 10 ms, as many rows as
the rate asks for). Latency is the processor's own measure: its
``govsync_processor_end_to_end_latency_seconds`` histogram observes, for every applied event,
the time from the source commit (carried in the event) to the replica commit. The histogram is
scraped before and after each load, once the replica holds every row written, and the bucket
difference gives the percentiles of that load alone. A probe consumer (see ``probe``) measures
the share up to the broker.
"""

from __future__ import annotations

import logging
import time

import psycopg

from bench.data import count_rows, insert_statement
from bench.endtoend import AGENCY, Pipeline, cpu_used
from bench.histogram import (
    Buckets,
    buckets_of,
    difference,
    fraction_at_most,
    percentiles,
    total,
)
from bench.probe import BrokerProbe, exact_percentiles
from bench.session import PARTITIONS, Session
from bench.sizes import Sizes
from bench.timing import Figure
from sync.contracts import Contract
from sync.stack.status import scrape

log = logging.getLogger(__name__)

HISTOGRAM = "govsync_processor_end_to_end_latency_seconds"
TICK = 0.01
LIMITS = {"at_most_100ms": 0.1, "at_most_500ms": 0.5}  # seconds; bucket bounds of the histogram


def latency_steps(session: Session, pipeline: Pipeline, sizes: Sizes) -> list[Figure]:
    probe = BrokerProbe(
        session.stack.bootstrap,
        session.stack.registry_url,
        session.topic(pipeline.phase),
        session.contract,
        PARTITIONS,
    )
    probe.start()
    written = sizes.backlog  # no citizen numbered from here on is in the source
    held = count_rows(pipeline.replica_dsn, session.contract)
    steps = []
    try:
        for offered in sizes.latency_rates:
            figure = _one_load(session, pipeline, sizes, probe, offered, written, held)
            written += figure["rows"]
            held += figure["rows"]
            steps.append(figure)
    finally:
        probe.stop()
    return steps


def _one_load(
    session: Session,
    pipeline: Pipeline,
    sizes: Sizes,
    probe: BrokerProbe,
    offered: int,
    first: int,
    held: int,
) -> Figure:
    """Insert citizens from number ``first`` on at ``offered`` rows/s into a replica that holds
    ``held`` rows, and read the latency of their events once it holds them all."""
    url = pipeline.processor.spec.metrics_url
    assert url is not None
    before = buckets_of(scrape(url), HISTOGRAM, agency=AGENCY)
    cpu_before = session.sampler.cpu_seconds()
    window_start = time.time()
    figure = paced_write(
        pipeline.source_dsn, session.contract, first, offered, sizes.latency_seconds
    )
    window_end = time.time()
    figure["cpu_seconds"] = cpu_used(session, cpu_before)
    _wait_total(session, pipeline, held + figure["rows"], sizes)
    observed = _observed(url, before, figure["rows"])
    figure |= percentiles(observed)
    figure["observed"] = int(total(observed))
    figure |= {name: fraction_at_most(limit, observed) for name, limit in LIMITS.items()}
    figure["buckets"] = [[bound, count] for bound, count in observed]
    to_broker = probe.latencies(window_start, window_end)
    figure["to_broker"] = exact_percentiles(to_broker)
    figure["to_broker_events"] = len(to_broker)
    log.info("offered %d/s: %s", offered, {k: figure.get(k) for k in ("p50", "p95", "p99")})
    return figure


def paced_write(dsn: str, contract: Contract, first: int, offered: int, seconds: float) -> Figure:
    """Insert citizens from number ``first`` at ``offered`` rows/s for ``seconds``."""
    per_txn = max(1, round(offered * TICK))
    interval = per_txn / offered
    statement = insert_statement(contract)
    rows, late = 0, 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        started = time.perf_counter()
        due = started
        while due - started < seconds:
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            elif delay < -interval:
                late += 1
            conn.execute(statement, {"first": first + rows, "last": first + rows + per_txn - 1})
            rows += per_txn
            due += interval
        elapsed = time.perf_counter() - started
    return {
        "offered": offered,
        "rows": rows,
        "rows_per_txn": per_txn,
        "seconds": round(elapsed, 2),
        "achieved": rows / elapsed,
        "late_commits": late,
    }


def _observed(url: str, before: Buckets, events: int, timeout: float = 10) -> Buckets:
    """The histogram's buckets since ``before``, once they count ``events``: the processor
    observes them right after its replica commit, which the caller saw."""
    deadline = time.monotonic() + timeout
    while True:
        observed = difference(before, buckets_of(scrape(url), HISTOGRAM, agency=AGENCY))
        if total(observed) >= events or time.monotonic() > deadline:
            return observed
        time.sleep(0.05)


def _wait_total(session: Session, pipeline: Pipeline, expected: int, sizes: Sizes) -> None:
    deadline = time.monotonic() + sizes.converge_timeout
    while count_rows(pipeline.replica_dsn, session.contract) < expected:
        session.check_alive()
        if time.monotonic() > deadline:
            raise TimeoutError(f"the replica did not reach {expected} rows")
        time.sleep(0.1)
