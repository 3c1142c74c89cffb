"""The two workloads, each captured by both connectors one after the other from the same
source table, each connector alone with the servers:

- snapshot: N citizens are in the table before either connector starts; each snapshots them
  through its own new slot (govsync's snapshot, Debezium's ``initial``);
- streaming: both connectors first run on the empty table (each makes its slot and
  publication, and Debezium leaves an offset to resume from) and are stopped; then N citizens
  are committed in 1,000-row transactions and each connector in turn streams them from its slot.

The order alternates between the workloads (govsync first, then Debezium first), so neither
always comes second to a warm cache.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from bench.data import insert_rows, prepare_source
from bench.debezium.capture import measure
from bench.debezium.connect import ROLE, DebeziumRun, failure, worker_spec
from bench.debezium.figures import Capture
from bench.debezium.topics import TopicRecords
from bench.endtoend import LOAD_ROWS_PER_TXN, STREAM_ROWS_PER_TXN
from bench.session import PARTITIONS, BenchError, Session
from bench.timing import timed
from sync.stack.ports import free_port
from sync.stack.supervisor import Managed

log = logging.getLogger(__name__)

TABLE = "public.citizen"
PRIMING_TIMEOUT = 120.0


class Comparison:
    """The two connectors on one session."""

    def __init__(self, session: Session, jars: Path, java: str, timeout: float) -> None:
        self.session, self.jars, self.java, self.timeout = session, jars, java, timeout

    def govsync(self, phase: str, source: str, changes: int) -> Capture:
        return measure(
            self.session,
            "govsync",
            "connector",
            lambda: self.session.start_connector(phase, source),
            self.session.topic(phase),
            changes,
            self.timeout,
        )

    def debezium(self, run: DebeziumRun, changes: int) -> Capture:
        return measure(
            self.session,
            "debezium",
            ROLE,
            lambda: self.start_debezium(run),
            run.topic,
            changes,
            self.timeout,
            check=_every(2.0, lambda: _raise_failed(run)),
        )

    def debezium_run(
        self, phase: str, source: str, *, snapshot: bool, heartbeat_ms: int = 0
    ) -> DebeziumRun:
        session = self.session
        return DebeziumRun(
            name=f"debezium-{phase}",
            directory=session.data_dir / "debezium" / phase,
            bootstrap=session.stack.bootstrap,
            dsn=source,
            topic_prefix=f"bench{session.run_id}.debezium_{phase}",
            table=TABLE,
            slot=f"debezium_{phase}",
            publication=f"debezium_{phase}",
            snapshot=snapshot,
            rest_port=free_port(),
            heartbeat_ms=heartbeat_ms,
            partitions=PARTITIONS,
            replication=session.broker.replication or 1,
        )

    def start_debezium(self, run: DebeziumRun) -> Managed:
        spec = worker_spec(run, self.jars, self.java, self.session.logs)
        managed = self.session.supervisor.start(spec)
        self.session.sampler.watch(ROLE, managed.pid, tree=True)
        return managed


def snapshot_workload(comparison: Comparison, changes: int) -> dict[str, Any]:
    phase = "snapshot"
    source = comparison.session.database(f"debezium_{phase}_source")
    with psycopg.connect(source, autocommit=True) as conn:
        prepare_source(conn, comparison.session.contract)
        contract = comparison.session.contract
        load_s = timed(lambda: insert_rows(conn, contract, 0, changes, LOAD_ROWS_PER_TXN))[1]
        conn.execute("VACUUM (ANALYZE) public.citizen")  # hint bits set before either reads
    log.info("snapshot: %d rows loaded in %.1f s", changes, load_s)
    run = comparison.debezium_run(phase, source, snapshot=True)
    govsync = comparison.govsync(phase, source, changes)
    debezium = comparison.debezium(run, changes)
    return _workload(["govsync", "debezium"], load_s, LOAD_ROWS_PER_TXN, govsync, debezium)


def streaming_workload(comparison: Comparison, changes: int) -> dict[str, Any]:
    phase, session = "stream", comparison.session
    source = session.database(f"debezium_{phase}_source")
    with psycopg.connect(source, autocommit=True) as conn:
        prepare_source(conn, session.contract)
    _prime_govsync(session, phase, source)
    _prime_debezium(
        comparison, comparison.debezium_run(phase, source, snapshot=False, heartbeat_ms=200)
    )
    with psycopg.connect(source, autocommit=True) as conn:
        load_s = timed(
            lambda: insert_rows(conn, session.contract, 0, changes, STREAM_ROWS_PER_TXN)
        )[1]
    log.info("streaming: %d rows committed after both slots in %.1f s", changes, load_s)
    debezium = comparison.debezium(comparison.debezium_run(phase, source, snapshot=False), changes)
    govsync = comparison.govsync(phase, source, changes)
    return _workload(["debezium", "govsync"], load_s, STREAM_ROWS_PER_TXN, govsync, debezium)


def _workload(
    order: list[str], load_s: float, per_txn: int, govsync: Capture, debezium: Capture
) -> dict[str, Any]:
    return {
        "order": order,
        "load_seconds": round(load_s, 2),
        "rows_per_transaction": per_txn,
        "govsync": govsync.as_dict(),
        "debezium": debezium.as_dict(),
    }


def _prime_govsync(session: Session, phase: str, source: str) -> None:
    """Its slot, publication and (empty) snapshot, then stop: once the snapshot is done, not
    merely requested, or the next start would snapshot the rows committed meanwhile."""
    connector = session.start_connector(phase, source)
    deadline = time.monotonic() + PRIMING_TIMEOUT
    try:
        while not _snapshot_done(source, f"bench_{phase}"):
            session.check_alive()
            if time.monotonic() > deadline:
                raise BenchError(f"{connector.spec.name} did not finish its empty snapshot")
            time.sleep(0.2)
    finally:
        session.stop(connector)


def _snapshot_done(dsn: str, slot: str) -> bool:
    with psycopg.connect(dsn, autocommit=True) as conn:
        try:
            row = conn.execute(
                "SELECT bool_and(status = 'done') FROM govsync.snapshot_state WHERE slot_name = %s",
                (slot,),
            ).fetchone()
        except psycopg.errors.UndefinedTable:  # the connector has not made its tables yet
            return False
    return bool(row and row[0])


def _prime_debezium(comparison: Comparison, run: DebeziumRun) -> None:
    """Its slot and publication, then a heartbeat whose offset (the slot's start) is stored,
    then stop: the next worker resumes from that offset instead of taking a new one."""
    managed = comparison.start_debezium(run)
    deadline = time.monotonic() + PRIMING_TIMEOUT
    try:
        with TopicRecords({"bootstrap.servers": run.bootstrap}, run.heartbeat_topic) as beats:
            while not (beats.count() and _stored(run.offsets_file)):
                comparison.session.check_alive()
                _raise_failed(run)
                if time.monotonic() > deadline:
                    raise BenchError(f"{run.name} stored no offset in {PRIMING_TIMEOUT:.0f} s")
                time.sleep(0.2)
        time.sleep(1.5)  # one more offset flush: the heartbeat's offset, not an older one
    finally:
        comparison.session.stop(managed)


def _every(seconds: float, action: Callable[[], None]) -> Callable[[], None]:
    """``action``, run at most once per ``seconds``: each status request costs the worker
    CPU inside the measured window."""
    last = -seconds

    def throttled() -> None:
        nonlocal last
        if time.monotonic() - last >= seconds:
            last = time.monotonic()
            action()

    return throttled


def _stored(offsets: Path) -> bool:
    return offsets.exists() and offsets.stat().st_size > 0


def _raise_failed(run: DebeziumRun) -> None:
    trace = failure(run)
    if trace is not None:
        raise BenchError(f"{run.name} failed: {trace[:2000]}")
