"""Faults across the whole embedded federation (``govsync up`` in-process): a randomized workload
runs on all five source databases while, at random moments, connectors and processors are
SIGKILLed and the PostgreSQL cluster crashes and restarts. After the sources go quiet,
``govsync verify`` must prove every replica equal to its policy projection, no dead letter may
exist, and no subscriber may hold a field outside its subscription. Prints the figures.

``GOVSYNC_FAULT_SEED`` picks the seed (printed either way); ``GOVSYNC_FAULT_LOAD_SECONDS`` how
long the workload runs."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
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
from sync.policy import DEMO_MANIFEST, load_manifest
from sync.stack.federation import EmbeddedFederation, FederationOptions
from sync.stack.ports import wait_until
from sync.temporal import register_pg_adapters
from tests.reliability.federation_workload import SourceWorkload

pytestmark = pytest.mark.integration

CITIZENS = 400
BOOKKEEPING = {"_source_lsn", "_source_index", "_source_commit_time"}
# restarting the cluster restarts the sources and the replicas at once: they share it
FAULTS = ["SIGKILL connector"] * 3 + ["SIGKILL processor"] * 3 + ["restart PostgreSQL"] * 2
BROKER_RESTART_NOT_INJECTED = (
    "broker restart not injected: the embedded Tansu loses its topics across a restart with "
    "memory:// storage, and acknowledged events with s3:// storage "
    "(test_faults.py::test_broker_restart_loses_nothing says how); Apache Kafka is needed"
)


@pytest.fixture
def federation(server_dir: Path) -> Iterator[EmbeddedFederation]:
    options = FederationOptions(server_dir / "federation-faults", citizens=CITIZENS)
    with EmbeddedFederation(options) as running:
        yield running


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


def restart_postgres(federation: EmbeddedFederation) -> float:
    """Crash the cluster (immediate shutdown, as on power loss) and let the supervisor start it
    again. Sources and replicas share it, so this is a source and a replica restart at once."""
    managed, crashed = federation.supervisor.processes["postgres"], time.monotonic()
    managed.popen.send_signal(signal.SIGQUIT)
    managed.popen.wait(30)

    def accepting() -> bool:
        if federation.supervisor.processes["postgres"].popen.poll() is not None:
            return False
        with psycopg.connect(federation.postgres.dsn(), connect_timeout=2):
            return True

    supervised_wait(federation, accepting, 60, "PostgreSQL to restart")
    return time.monotonic() - crashed


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
    manifest = load_manifest(DEMO_MANIFEST, load_contracts())
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


def inject_faults(
    federation: EmbeddedFederation, rng: random.Random, load_seconds: float
) -> list[tuple[str, str]]:
    """The faults of ``FAULTS`` in random order at random moments of the load, which lasts
    ``load_seconds``; returns each fault done with what it hit, in order."""
    faults = list(FAULTS)
    rng.shuffle(faults)
    moments = sorted(rng.uniform(3, load_seconds - 3) for _ in faults)
    targets = {
        "SIGKILL connector": [f"connector-{s}" for s in federation.sources],
        "SIGKILL processor": [f"processor-{a}" for a in federation.subscribers],
    }
    started, done = time.monotonic(), []
    for fault, moment in [*zip(faults, moments, strict=True), ("end of load", load_seconds)]:
        supervised_wait(
            federation, lambda m=moment: time.monotonic() - started >= m, load_seconds, fault
        )
        if fault == "restart PostgreSQL":
            down = restart_postgres(federation)
            done.append((fault, f"at {moment:.0f} s, accepting again {down:.1f} s later"))
        elif fault in targets:
            target = rng.choice(targets[fault])
            kill(federation, target)
            done.append((fault, f"{target} at {moment:.0f} s"))
    return done


def print_load(done: list[tuple[str, str]], workloads: list[SourceWorkload]) -> None:
    kinds = Counter(fault for fault, _ in done)
    print(f"faults injected: {len(done)} {dict(kinds)}; {BROKER_RESTART_NOT_INJECTED}")
    for fault, detail in done:
        print(f"  {fault} {detail}")
    for w in workloads:
        print(
            f"source {w.agency}: {w.transactions} transactions committed, {w.changes} rows "
            f"changed; {w.interrupted} interrupted by the restarts, {w.rolled_back} rolled back "
            "on a taken key"
        )
        print(f"  committed changes by kind: {dict(w.kinds)}")
        print(f"  values generated: {dict(w.make.made)}")


def assert_every_replica_equal(
    federation: EmbeddedFederation, reports: list[dict[str, Any]]
) -> None:
    assert {r["agency"] for r in reports} == set(federation.subscribers)
    for report in reports:
        subscribed = federation.subscribers[report["agency"]]
        assert len(report["tables"]) == len(subscribed), f"{report['agency']}: all verified"
        assert all(t["equal"] for t in report["tables"]), report


def test_faults_across_the_federation_lose_nothing_and_leak_nothing(
    federation: EmbeddedFederation,
) -> None:
    seed = int(os.environ.get("GOVSYNC_FAULT_SEED", str(random.SystemRandom().randrange(10**6))))
    load_seconds = float(os.environ.get("GOVSYNC_FAULT_LOAD_SECONDS", "60"))
    print(f"\nseed {seed} (GOVSYNC_FAULT_SEED={seed} repeats the faults' kinds and moments)")
    rng = random.Random(seed)
    with workloads_running(federation, rng) as workloads:
        done = inject_faults(federation, rng, load_seconds)
    print_load(done, workloads)
    assert [w.error for w in workloads if w.error] == [], "every workload ran to the end"
    assert all(w.transactions > 100 for w in workloads), "every source was busy"
    edges = sum(w.make.made["date or time beyond Python's range"] for w in workloads)
    assert edges > 0, "infinite, BC and far-future dates and times were committed"
    quiet = time.monotonic()
    reports = converge(federation, timeout=150)
    converged = time.monotonic() - quiet
    restarts = {n: m.restarts for n, m in federation.supervisor.processes.items() if m.restarts}
    rows = sum(t["source_rows"] for r in reports for t in r["tables"])
    print(
        f"converged {converged:.1f} s after the sources went quiet; verify compared {rows} "
        f"projected source rows over {len(reports)} replicas; restarts seen by the supervisor: "
        f"{restarts}"
    )
    assert_every_replica_equal(federation, reports)
    # every value the workload commits is one the contracts carry (docs/value-mapping.md):
    # none is dead-lettered by design, so any dead letter is a failure
    assert dead_letters(federation) == 0, "no event was dead-lettered"
    assert_minimized(federation)
