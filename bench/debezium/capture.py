"""One measured capture: start a connector, poll its topic's watermarks until every change is
in Kafka, read the CPU its process tree used, stop it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from bench.debezium.figures import Capture
from bench.debezium.topics import TopicRecords
from bench.sampler import MACHINE
from bench.session import BenchError, Session
from sync.stack.supervisor import Managed

log = logging.getLogger(__name__)

POLL = 0.2  # seconds between two reads of the watermarks
# their CPU while records flowed is kept beside the connector's; MACHINE: every process's
SERVERS = ("postgres", "broker", MACHINE)


def measure(
    session: Session,
    connector: str,
    role: str,
    start: Callable[[], Managed],
    topic: str,
    changes: int,
    timeout: float,
    check: Callable[[], None] = lambda: None,
) -> Capture:
    """``start`` starts the connector (its sampler ``role``), alone on the stack; ``check``
    raises when it cannot finish (the session's own check runs too)."""
    with TopicRecords({"bootstrap.servers": session.stack.bootstrap}, topic) as records:
        before = session.sampler.cpu_seconds()
        started = time.perf_counter()
        managed = start()
        try:
            first_at, at_first, seconds, count = _until_all(
                session, records, changes, started, timeout, check
            )
            done = session.sampler.cpu_seconds()
        finally:
            session.stop(managed)
        record_bytes = records.mean_record_bytes()
    log.info(
        "%s: %d changes in Kafka in %.1f s (first after %.1f s)",
        connector,
        count,
        seconds,
        first_at,
    )

    def used(reading: dict[str, float], since: dict[str, float], name: str) -> float:
        return round(reading.get(name, 0.0) - since.get(name, 0.0), 3)

    return Capture(
        connector=connector,
        changes=count,
        seconds=round(seconds, 3),
        first_record_s=round(first_at, 3),
        cpu_seconds=used(done, before, role),
        cpu_to_first=used(at_first, before, role),
        other_cpu={name: used(done, at_first, name) for name in SERVERS},
        record_bytes=round(record_bytes, 1) if record_bytes else None,
    )


def _until_all(
    session: Session,
    records: TopicRecords,
    changes: int,
    started: float,
    timeout: float,
    check: Callable[[], None],
) -> tuple[float, dict[str, float], float, int]:
    """When the first record came, the CPU readings then, when all had come, and how many."""
    first_at: float | None = None
    at_first: dict[str, float] = {}
    while True:
        session.check_alive()
        check()
        count = records.count()
        now = time.perf_counter() - started
        if count and first_at is None:
            first_at, at_first = now, session.sampler.cpu_seconds()
        if count >= changes and first_at is not None:
            return first_at, at_first, now, count
        if now > timeout:
            raise BenchError(
                f"{records.topic} holds {count} of {changes} changes after {now:.0f} s"
            )
        time.sleep(POLL)
