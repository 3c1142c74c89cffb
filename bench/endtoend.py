"""End-to-end throughput for a backlog: the source holds N changes before the pipeline starts,
then the connector and a processor run as real processes until the replica holds N rows.

- snapshot: the rows are in the table before the slot exists, so the connector's snapshot
  carries them;
- streaming: the connector first runs on the empty table (slot created, empty snapshot done) and
  is stopped; N changes are then committed in transactions of 1,000 that insert, update, delete
  and re-key citizens (see ``bench.workload``), so they reach the replica through the
  replication slot. Rates count source changes; a key change is one change and two events.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import psycopg

from bench.convergence import Convergence, Watch, converge
from bench.data import insert_rows, prepare_source
from bench.session import BenchError, Session
from bench.sizes import Sizes
from bench.timing import Figure, timed
from bench.workload import Streamed, count_rekeyed, stream_mixed
from sync.stack.status import scrape
from sync.stack.supervisor import Managed

log = logging.getLogger(__name__)

AGENCY = "vss"
STREAM_ROWS_PER_TXN = 1_000  # inserts-only streams (the Debezium comparison's)
LOAD_ROWS_PER_TXN = 100_000
PRODUCED = "govsync_connector_events_produced_total"
ASSIGNED = re.compile(r"reads [1-9][0-9]* partitions")  # the processor once it holds partitions


@dataclass
class Pipeline:
    phase: str
    source_dsn: str
    replica_dsn: str
    connector: Managed
    processor: Managed


def snapshot_backlog(session: Session, sizes: Sizes) -> Figure:
    phase, n = "snapshot", sizes.backlog
    source, replica = session.database(f"{phase}_source"), session.database(f"{phase}_replica")
    with psycopg.connect(source, autocommit=True) as conn:
        prepare_source(conn, session.contract)
        load_s = timed(lambda: insert_rows(conn, session.contract, 0, n, LOAD_ROWS_PER_TXN))[1]
    log.info("snapshot backlog: %d rows loaded in %.1f s", n, load_s)
    processor = session.start_processor(phase, AGENCY, replica)
    wait_assigned(processor, session)
    figure, connector = _run(session, phase, source, replica, sizes)
    session.stop(connector, processor)
    return {**figure, "load_seconds": round(load_s, 2)}


def streaming_backlog(session: Session, sizes: Sizes) -> tuple[Figure, Pipeline]:
    """The figure, and the pipeline, left running for the latency measurements."""
    phase, n = "stream", sizes.backlog
    source, replica = session.database(f"{phase}_source"), session.database(f"{phase}_replica")
    with psycopg.connect(source, autocommit=True) as conn:
        prepare_source(conn, session.contract)
    first = session.start_connector(phase, source)
    _wait_snapshot_done(source, f"bench_{phase}", session)
    session.stop(first)
    with psycopg.connect(source, autocommit=True) as conn:
        streamed, load_s = timed(lambda: stream_mixed(conn, session.contract, n))
    log.info("streaming backlog: %s committed after the slot in %.1f s", streamed, load_s)
    processor = session.start_processor(phase, AGENCY, replica)
    wait_assigned(processor, session)
    figure, connector = _run(session, phase, source, replica, sizes, streamed)
    rekeyed = count_rekeyed(replica, session.contract)
    if rekeyed != streamed.key_changes:
        raise BenchError(f"the replica holds {rekeyed} re-keyed rows, not {streamed.key_changes}")
    pipeline = Pipeline(phase, source, replica, connector, processor)
    return {**figure, "load_seconds": round(load_s, 2)}, pipeline


def _run(
    session: Session,
    phase: str,
    source: str,
    replica: str,
    sizes: Sizes,
    streamed: Streamed | None = None,
) -> tuple[Figure, Managed]:
    """Start the connector (the processor already runs and holds its partitions) and wait
    for the replica: for the backlog's rows, or the rows ``streamed`` left."""
    started = time.perf_counter()
    connector = session.start_connector(phase, source)
    url = connector.spec.metrics_url
    assert url is not None
    progress = {"produced": lambda: int(metric_total(url, PRODUCED))}
    target = streamed.rows if streamed else None
    converged = wait_replicas(session, [(AGENCY, replica)], sizes, started, progress, target)
    figure = converged.summary()
    if streamed is not None:
        figure |= _per_change(converged, streamed)
    log.info(
        "%s backlog: %d changes in %.1f s (%.0f changes/s)",
        phase,
        figure.get("changes", sizes.backlog),
        figure["seconds"],
        figure["rate"],
    )
    return figure, connector


def _per_change(converged: Convergence, streamed: Streamed) -> Figure:
    """Rates per source change rather than per replica row, and when every event was
    produced."""
    assert converged.done_at is not None
    drain = converged.done_at - (converged.first_row_at or 0.0)
    produced = converged.progress.get("produced", [])
    return {
        "changes": streamed.changes,
        "workload": streamed.summary(),
        "rate": streamed.changes / converged.done_at,
        "drain_rate": streamed.changes / drain if drain > 0 else None,
        "progress_done_s": {
            "produced": next((t for t, v in produced if v >= streamed.events), None)
        },
    }


def wait_replicas(
    session: Session,
    replicas: list[tuple[str, str]],
    sizes: Sizes,
    started: float,
    progress: Mapping[str, Callable[[], int]] | None = None,
    target: int | None = None,
) -> Convergence:
    """Until every replica holds ``target`` rows (the backlog unless given)."""
    watch = Watch(
        replicas,
        session.contract,
        target or sizes.backlog,
        timeout=sizes.converge_timeout,
        interval=sizes.poll_interval,
        check=session.check_alive,
        cpu=session.sampler.cpu_seconds,
        progress=progress or {},
    )
    return converge(watch, started)


def metric_total(url: str, name: str) -> float:
    return sum(value for _, value in scrape(url, timeout=1.0).get(name, []))


def wait_assigned(processor: Managed, session: Session, timeout: float = 60) -> None:
    """Until the processor's log says it holds partitions (its consumer group has formed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        session.check_alive()
        text = processor.spec.log_path.read_text(errors="replace")
        if ASSIGNED.search(text):
            return
        time.sleep(0.1)
    log.warning("%s did not report its partitions within %.0f s", processor.spec.name, timeout)


def cpu_used(session: Session, before: dict[str, float]) -> dict[str, float]:
    after = session.sampler.cpu_seconds()
    return {role: round(after[role] - before.get(role, 0.0), 2) for role in sorted(after)}


def _wait_snapshot_done(dsn: str, slot: str, session: Session, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        session.check_alive()
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                # done, not merely requested: a connector stopped before its empty snapshot
                # is done snapshots the backlog on its next start, then streams it as well
                row = conn.execute(
                    "SELECT count(*) FROM govsync.snapshot_state "
                    "WHERE slot_name = %s AND status = 'done'",
                    (slot,),
                ).fetchone()
            if row and int(str(row[0])) > 0:
                return
        except psycopg.errors.UndefinedTable:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"the connector did not finish the empty snapshot of slot {slot}")
