"""The whole benchmark, phase after phase, on one session."""

from __future__ import annotations

import dataclasses
import logging
import time
from datetime import UTC, datetime
from typing import Any

from bench.baseline import naive_baseline
from bench.ceilings import measure_ceilings
from bench.endtoend import snapshot_backlog, streaming_backlog
from bench.latency import latency_steps
from bench.machine import describe_machine, load_average
from bench.scaling import solo, subscribers
from bench.session import Session
from bench.sizes import Sizes

log = logging.getLogger(__name__)


def run_benchmark(session: Session, sizes: Sizes, started: datetime) -> dict[str, Any]:
    clock = time.perf_counter()
    results: dict[str, Any] = {
        "mode": sizes.mode,
        "broker": session.broker_name,
        "started": started.strftime("%Y-%m-%d %H:%M UTC"),
        "sizes": dataclasses.asdict(sizes),
        "machine": describe_machine(session.postgres_dsn(), session.broker),
    }
    results["ceilings"] = measure_ceilings(session, sizes.ceiling_rows)
    results["end_to_end"] = {"snapshot": snapshot_backlog(session, sizes)}
    streaming, pipeline = streaming_backlog(session, sizes)
    results["end_to_end"]["streaming"] = streaming
    results["latency"] = latency_steps(session, pipeline, sizes)
    session.stop(pipeline.connector, pipeline.processor)
    results["solo"] = solo(session, sizes, "snapshot")
    results["subscribers"] = subscribers(session, sizes, "snapshot")
    log.info("naive baseline for at most %.0f s", sizes.baseline_seconds)
    results["baseline"] = naive_baseline(session, "snapshot", sizes.baseline_seconds, sizes.backlog)
    results["memory"] = session.sampler.peaks()
    results["machine"]["load_average_end"] = load_average()
    results["duration_s"] = round(time.perf_counter() - clock, 1)
    return results


def utc_now() -> datetime:
    return datetime.now(UTC)
