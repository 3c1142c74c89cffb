"""What the federation fault tests do to a running federation and what they check after:
waiting while the supervisor restarts what died, a workload thread per source, ``govsync
verify`` until the replicas converge, dead letters, minimisation, and a watch that no replica
row ever goes back to an older version of itself."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from sync.contracts import load_contracts
from sync.errors import StackError
from sync.kafka.lag import end_offsets
from sync.policy import FEDERATION_FILE, load_manifest
from sync.stack.federation import EmbeddedFederation
from sync.stack.ports import wait_until
from sync.temporal import register_pg_adapters
from tests.reliability.federation_workload import SourceWorkload

BOOKKEEPING = {"_source_lsn", "_source_index", "_source_commit_time"}


def supervised_wait(
    federation: EmbeddedFederation, predicate: Callable[[], bool], timeout: float, what: str
) -> None:
    """Wait for ``predicate`` while the supervisor restarts whatever died (this thread owns
    the supervisor, as ``govsync up`` does)."""

    def check() -> bool:
        federation.supervisor.poll()
        return predicate()

    wait_until(check, timeout, what, 0.1)


def kill(federation: EmbeddedFederation, name: str) -> None:
    """SIGKILL a process of the federation, once its previous restart (if any) is done."""
    processes = federation.supervisor.processes
    supervised_wait(federation, lambda: processes[name].popen.poll() is None, 60, f"{name} up")
    os.kill(processes[name].pid, signal.SIGKILL)


def verify(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sync.cli", "verify", "--data-dir", str(data_dir), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )


def converge(federation: EmbeddedFederation, timeout: float) -> list[dict[str, Any]]:
    """Run ``govsync verify`` until it exits 0; its report then. Fails with the last report."""
    last: list[subprocess.CompletedProcess[str]] = []

    def equal() -> bool:
        federation.supervisor.poll()
        last[:] = [verify(federation.options.data_dir)]
        return last[0].returncode == 0

    try:
        wait_until(equal, timeout, "govsync verify to report every replica equal", 1.0)
    except StackError:
        pytest.fail("replicas did not converge: " + (last[0].stdout + last[0].stderr)[-4000:])
    return list(json.loads(last[0].stdout))


def replica_columns(dsn: str) -> dict[str, set[str]]:
    """Every table a replica database holds outside govsync's own state: topic -> columns."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT c.table_schema, c.table_name, c.column_name FROM information_schema.columns c "
            "JOIN information_schema.tables t USING (table_schema, table_name) "
            "WHERE t.table_type = 'BASE TABLE' AND c.table_schema NOT IN "
            "('pg_catalog', 'information_schema', 'govsync_state')"
        ).fetchall()
    held: dict[str, set[str]] = {}
    for schema, table, column in rows:
        held.setdefault(f"{schema}.{table}", set()).add(column)
    return held


def text_values(dsn: str) -> Iterator[str]:
    """Every value of every table in the database (govsync's own state too), as text."""
    with psycopg.connect(dsn) as conn:
        register_pg_adapters(conn)  # infinite and BC dates as PostgreSQL prints them
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema "
            "NOT IN ('pg_catalog', 'information_schema') AND table_type = 'BASE TABLE'"
        ).fetchall()
        for schema, table in tables:
            query = sql.SQL("SELECT * FROM {}").format(sql.Identifier(schema, table))
            for row in conn.execute(query):
                yield from (str(v) for v in row if v is not None)


def source_values(federation: EmbeddedFederation, columns: set[str]) -> set[str]:
    """The values of ``columns`` in every source table that has them."""
    found: set[str] = set()
    for agency in federation.sources:
        with psycopg.connect(federation.source_dsn(agency)) as conn:
            rows = conn.execute(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = 'public' AND column_name = ANY(%s)",
                (sorted(columns),),
            ).fetchall()
            for table, column in rows:
                query = sql.SQL("SELECT DISTINCT {} FROM {} WHERE {} IS NOT NULL").format(
                    sql.Identifier(column), sql.Identifier("public", table), sql.Identifier(column)
                )
                found |= {str(r[0]) for r in conn.execute(query)}
    return found


def assert_minimized(federation: EmbeddedFederation) -> None:
    """Each replica holds the tables of its subscriptions with exactly their allowed fields;
    the statistics office holds no name, no personal id and no insurance number."""
    manifest = load_manifest(FEDERATION_FILE, load_contracts())
    for agency in federation.subscribers:
        allowed = {s.topic: set(s.fields) for s in manifest.subscriptions_of(agency)}
        held = replica_columns(federation.replica_dsn(agency))
        assert set(held) == set(allowed), f"{agency} holds tables of its subscriptions only"
        for topic, columns in held.items():
            assert columns - BOOKKEEPING == allowed[topic], f"{agency} {topic}: allowed fields"
    identifiers = source_values(federation, {"personal_id", "insurance_number"})
    names = source_values(federation, {"full_name"})
    lengths = {len(i) for i in identifiers}
    for value in text_values(federation.replica_dsn("gso")):
        assert value not in names, "the statistics office holds a name"
        for run in re.findall(r"[0-9]{10,}", value):
            windows = {run[i : i + n] for n in lengths for i in range(len(run) - n + 1)}
            assert not windows & identifiers, "the statistics office holds a raw identifier"


def dead_letters(federation: EmbeddedFederation) -> int:
    topics = [f"govsync.dlq.{a}" for a in federation.subscribers]
    topics += [f"govsync.dlq.connector.{s}" for s in federation.sources]
    return sum(end_offsets(federation.broker.bootstrap, topics).values())


@contextmanager
def workloads_running(
    federation: EmbeddedFederation, rng: random.Random
) -> Iterator[list[SourceWorkload]]:
    """A workload thread per source database, stopped (and joined) on the way out."""
    contracts = load_contracts().values()
    workloads = [
        SourceWorkload(
            agency,
            federation.source_dsn(agency),
            [c for c in contracts if c.domain == agency and c.entity in entities],
            seed=rng.randrange(2**32),
        )
        for agency, entities in federation.sources.items()
    ]
    for workload in workloads:
        workload.start()
    try:
        yield workloads
    finally:
        for workload in workloads:
            workload.stop.set()
        for workload in workloads:
            workload.join(30)


def assert_every_replica_equal(
    federation: EmbeddedFederation, reports: list[dict[str, Any]]
) -> None:
    assert {r["agency"] for r in reports} == set(federation.subscribers)
    for report in reports:
        subscribed = federation.subscribers[report["agency"]]
        assert len(report["tables"]) == len(subscribed), f"{report['agency']}: all verified"
        assert all(t["equal"] for t in report["tables"]), report


PRIMARY_KEYS = """
SELECT n.nspname, c.relname,
       array_agg(a.attname ORDER BY array_position(i.indkey::int2[], a.attnum))
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY (i.indkey::int2[])
WHERE i.indisprimary AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'govsync_state')
  AND EXISTS (SELECT 1 FROM pg_attribute s WHERE s.attrelid = c.oid AND s.attname = '_source_lsn')
GROUP BY n.nspname, c.relname
"""


class RegressionWatch(threading.Thread):
    """Reads every replica table over and over and remembers, per row key, the newest source
    position (``_source_lsn``, ``_source_index``) seen; a row found at an older position than
    before has regressed: a subscriber saw a newer version of the row and then an older one.
    Rides out database restarts by reconnecting."""

    def __init__(self, federation: EmbeddedFederation, interval: float = 0.5) -> None:
        super().__init__(daemon=True, name="regression-watch")
        self.dsns = {a: federation.replica_dsn(a) for a in federation.subscribers}
        self.interval = interval
        self.stop = threading.Event()
        self.newest: dict[tuple[str, str, tuple[object, ...]], tuple[int, int]] = {}
        self.regressions: list[str] = []
        self.reads = 0

    def __enter__(self) -> RegressionWatch:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.join(30)
        self.read_all()  # once more, after the last change

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            self.read_all()

    def read_all(self) -> None:
        for agency, dsn in self.dsns.items():
            try:
                with psycopg.connect(dsn, connect_timeout=2) as conn:
                    self._read(agency, conn)
            except psycopg.Error:
                continue  # the cluster restarting, or a table made meanwhile: next time
        self.reads += 1

    def _read(self, agency: str, conn: psycopg.Connection[tuple[Any, ...]]) -> None:
        for schema, table, keys in conn.execute(PRIMARY_KEYS).fetchall():
            query = sql.SQL(
                "SELECT {}, (_source_lsn - '0/0'::pg_lsn)::bigint, _source_index FROM {}"
            ).format(sql.SQL(", ").join(map(sql.Identifier, keys)), sql.Identifier(schema, table))
            name = f"{schema}.{table}"
            for *key, lsn, index in conn.execute(query):
                seen = self.newest.setdefault((agency, name, tuple(key)), (lsn, index))
                if (lsn, index) < seen:
                    self.regressions.append(
                        f"{agency} {name} {key}: at source position {lsn}/{index} after {seen}"
                    )
                else:
                    self.newest[(agency, name, tuple(key))] = (lsn, index)
