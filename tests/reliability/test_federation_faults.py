"""Faults across the whole embedded federation (``govsync up`` in-process): a randomized workload
runs on all five source databases while, at random moments, connectors and processors are
SIGKILLed and the PostgreSQL cluster crashes and restarts. After the sources go quiet,
``govsync verify`` must prove every replica equal to its policy projection, no dead letter may
exist, and no subscriber may hold a field outside its subscription. Prints the figures.

``GOVSYNC_FAULT_SEED`` picks the seed (printed either way); ``GOVSYNC_FAULT_LOAD_SECONDS`` how
long the workload runs."""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from sync.stack.federation import EmbeddedFederation, FederationOptions
from sync.stack.providers import broker_from_environment
from tests.reliability.federation_checks import (
    assert_every_replica_equal,
    assert_minimized,
    converge,
    dead_letters,
    kill,
    supervised_wait,
    workloads_running,
)
from tests.reliability.federation_workload import SourceWorkload

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CITIZENS = 400
# restarting the cluster restarts the sources and the replicas at once: they share it
FAULTS = ["SIGKILL connector"] * 3 + ["SIGKILL processor"] * 3 + ["restart PostgreSQL"] * 2
BROKER_FAULTS_ELSEWHERE = (
    "broker faults are test_kafka_faults.py's: the embedded Tansu loses its topics across a "
    "restart with memory:// storage, and acknowledged events with s3:// storage "
    "(test_faults.py::test_broker_restart_loses_nothing says how)"
)


@pytest.fixture
def federation(server_dir: Path) -> Iterator[EmbeddedFederation]:
    options = FederationOptions(
        server_dir / "federation-faults", citizens=CITIZENS, broker=broker_from_environment()
    )
    with EmbeddedFederation(options) as running:
        yield running


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
    print(f"faults injected: {len(done)} {dict(kinds)}; {BROKER_FAULTS_ELSEWHERE}")
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
