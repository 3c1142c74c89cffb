"""Faults at random moments under a randomized workload: the connector and the processor are
SIGKILLed and PostgreSQL (source and replica) crashes and restarts, several times; on a stack
whose broker keeps its topics on a local S3 server, the broker is killed and restarted. After
the source goes quiet, the replica must equal its source. Prints the figures."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from sync.kafka import end_offsets, topic_ids
from sync.stack.ports import port_open, wait_until
from sync.stack.providers import EmbeddedProvider, StackProvider
from sync.stack.s3 import s3_server_installed
from tests.fixtures.pipeline import Pipeline, new_pipeline

pytestmark = pytest.mark.integration


class RandomWorkload(threading.Thread):
    """Inserts, updates, primary-key changes, NULLs, long Vietnamese text and deletes in small
    transactions; rides out a database restart by reconnecting."""

    def __init__(self, dsn: str, seed: int) -> None:
        super().__init__(daemon=True)
        self.dsn, self.rng = dsn, random.Random(seed)
        self.stop = threading.Event()
        self.committed = 0
        self.interrupted = 0

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                with psycopg.connect(self.dsn, autocommit=True, connect_timeout=2) as conn:
                    while not self.stop.is_set():
                        with conn.transaction():
                            for _ in range(self.rng.randint(1, 10)):
                                self._change(conn)
                        self.committed += 1
            except psycopg.OperationalError:
                self.interrupted += 1  # the server went away: nothing was committed
                self.stop.wait(0.2)

    def _change(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        n, choice = self.rng.randrange(10**6), self.rng.random()
        victim = "(SELECT personal_id FROM citizen ORDER BY random() LIMIT 1)"
        if choice < 0.35:
            name = "Nguyễn " + "Thị Ngọc Ánh " * self.rng.randint(1, 200)
            conn.execute(
                "INSERT INTO citizen VALUES (%s, %s, '1990-01-01', 'nu', NULL, '01', '001', "
                "'00001', now()) ON CONFLICT DO NOTHING",
                (f"001190{n:06d}", name),
            )
        elif choice < 0.75:
            conn.execute(
                f"UPDATE citizen SET ward_code = %s, ethnicity = NULLIF(%s, 'x'), "
                f"updated_at = now() WHERE personal_id = {victim}",
                (f"{n % 30000:05d}", self.rng.choice(["Kinh", "Tày", "x"])),
            )
        elif choice < 0.85:
            conn.execute(
                f"UPDATE citizen SET personal_id = %s WHERE personal_id = {victim} "
                "AND NOT EXISTS (SELECT 1 FROM citizen WHERE personal_id = %s)",
                (f"079285{n:06d}", f"079285{n:06d}"),
            )
        else:
            conn.execute(f"DELETE FROM citizen WHERE personal_id = {victim}")


def restart_postgres(stack: StackProvider) -> None:
    """Crash the cluster (immediate shutdown, as on power loss) and start it again."""
    assert isinstance(stack, EmbeddedProvider)
    supervisor = stack.federation.supervisor
    managed = supervisor.processes["postgres"]
    managed.popen.send_signal(signal.SIGQUIT)
    managed.popen.wait(30)
    supervisor.poll()  # notices the exit; restarts it after its backoff
    wait_until(
        lambda: (
            not supervisor.poll()
            and supervisor.processes["postgres"].popen.poll() is None
            and _accepts(stack)
        ),
        60,
        "PostgreSQL to restart",
    )


def _accepts(stack: StackProvider) -> bool:
    assert isinstance(stack, EmbeddedProvider)
    with psycopg.connect(stack.federation.postgres.dsn(), connect_timeout=2):
        return True


@pytest.mark.slow
def test_faults_at_random_moments_lose_nothing(
    stack: StackProvider, pipeline_factory: Callable[..., Pipeline]
) -> None:
    if not isinstance(stack, EmbeddedProvider):
        pytest.skip("restarting PostgreSQL is done here through the embedded stack")
    seed = int(os.environ.get("GOVSYNC_FAULT_SEED", "2026"))  # set it to vary the faults
    rng = random.Random(seed)
    pipeline = pipeline_factory(citizens=2_000)
    pipeline.start_connector(snapshot_chunk="250")
    pipeline.start_processor()
    workload = RandomWorkload(pipeline.source_dsn, seed=seed)
    faults = ["kill connector", "kill processor", "restart postgres"] * 2
    rng.shuffle(faults)
    started = time.monotonic()
    workload.start()
    try:
        for fault in faults:
            target = workload.committed + rng.randint(50, 300)
            pipeline.wait_for(lambda t=target: workload.committed >= t, f"writes before {fault}")
            if fault == "restart postgres":
                restart_postgres(stack)
            else:
                pipeline.kill("connector-population" if "connector" in fault else "processor-vss")
    finally:
        workload.stop.set()
        workload.join(30)
    quiet = time.monotonic()
    pipeline.wait_converged(timeout=240)
    converged = time.monotonic() - quiet
    verify = subprocess.run(
        [sys.executable, "-m", "sync.cli", "verify", "--data-dir", str(pipeline.describe())],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    restarts = {name: m.restarts for name, m in pipeline.supervisor.processes.items()}
    print(
        f"\nseed {seed}; faults injected: {len(faults)} ({', '.join(faults)}); "
        f"process restarts {restarts}"
    )
    print(
        f"source transactions committed: {workload.committed} "
        f"(interrupted by the restarts: {workload.interrupted}); "
        f"run {quiet - started:.1f} s, converged {converged:.1f} s after the source went quiet"
    )


TANSU_S3_LOSES_ACKED = (
    "Tansu 0.6 with s3:// storage (on moto's local S3 server) keeps topics, offsets and groups "
    "across a broker restart, but under a live workload it loses acknowledged events: after a "
    "restart it answers DUPLICATE_SEQUENCE_NUMBER for an idempotent batch it never stored "
    "(its persisted producer sequence is ahead of its records), librdkafka counts that as "
    "delivered, the connector moves its slot past it, and the replica never converges (2 of 3 "
    "runs here; 19 of 9,047 acked messages lost over 4 restarts with a bare producer). "
    "GOVSYNC_TEST_BROKER_RESTART=1 runs it anyway, e.g. against a fixed Tansu"
)


@pytest.fixture
def s3_stack() -> Iterator[EmbeddedProvider]:
    """A stack of its own whose broker keeps topics on a local S3 server (the session stack's
    broker keeps them in memory). Server state outside pytest's 0700 temporary tree."""
    if not s3_server_installed():
        pytest.skip(
            "no local S3 server for the broker's s3:// storage, so a broker restart cannot be "
            "tested here: pip install -e '.[s3]' installs moto[server]"
        )
    path = Path(tempfile.mkdtemp(prefix="govsync-s3-"))
    provider = EmbeddedProvider(path / "stack", broker_storage="s3")
    try:
        yield provider
    finally:
        provider.close()
        shutil.rmtree(path, ignore_errors=True)


def restart_broker(stack: EmbeddedProvider, signum: signal.Signals) -> None:
    """Stop the broker with ``signum`` and let the supervisor start it again."""
    supervisor = stack.federation.supervisor
    managed = supervisor.processes["broker"]
    managed.popen.send_signal(signum)
    managed.popen.wait(30)
    wait_until(
        lambda: (
            not supervisor.poll()
            and supervisor.processes["broker"].popen.poll() is None
            and port_open(stack.federation.broker.port)
        ),
        60,
        "the broker to restart",
    )


@pytest.mark.skipif(
    os.environ.get("GOVSYNC_TEST_BROKER_RESTART") != "1", reason=TANSU_S3_LOSES_ACKED
)
def test_broker_restart_loses_nothing(s3_stack: EmbeddedProvider) -> None:
    seed = int(os.environ.get("GOVSYNC_FAULT_SEED", "2026"))
    rng = random.Random(seed)
    pipeline = new_pipeline(s3_stack, s3_stack.federation.options.data_dir / "pipelines", 1_000)
    bootstrap = s3_stack.bootstrap
    faults = [signal.SIGKILL, signal.SIGTERM, signal.SIGKILL]
    workload = RandomWorkload(pipeline.source_dsn, seed=seed)
    try:
        pipeline.start_connector(snapshot_chunk="250")
        pipeline.start_processor()
        pipeline.wait_converged()
        topic_id = topic_ids(bootstrap, [pipeline.topic])
        started = time.monotonic()
        workload.start()
        try:
            for signum in faults:
                target = workload.committed + rng.randint(50, 200)
                pipeline.wait_for(lambda t=target: workload.committed >= t, "writes")
                before = end_offsets(bootstrap, [pipeline.topic])
                restart_broker(s3_stack, signum)
                after = end_offsets(bootstrap, [pipeline.topic])
                # the same topic, holding at least what it held before the restart
                assert topic_ids(bootstrap, [pipeline.topic]) == topic_id
                assert after.keys() == before.keys()
                assert all(after[p] >= before[p] for p in before), (before, after)
        finally:
            workload.stop.set()
            workload.join(30)
        quiet = time.monotonic()
        pipeline.wait_converged(timeout=120)
        converged = time.monotonic() - quiet
        # the connector and the processor are up: they rode out the restarts or their
        # supervisor restarted them, nobody else did
        running = {n: m.popen.poll() is None for n, m in pipeline.supervisor.processes.items()}
        assert running == {"connector-population": True, "processor-vss": True}
        restarts = {n: m.restarts for n, m in pipeline.supervisor.processes.items()}
    finally:
        pipeline.supervisor.stop_all(drain_timeout=0)
    assert s3_stack.federation.supervisor.processes["broker"].restarts == len(faults)
    print(
        f"\nbroker restarts: {', '.join(s.name for s in faults)}; pipeline process restarts "
        f"{restarts}; source transactions {workload.committed}; run {quiet - started:.1f} s, "
        f"converged {converged:.1f} s after the source went quiet"
    )
