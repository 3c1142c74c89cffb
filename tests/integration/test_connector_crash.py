"""A connector killed with SIGKILL mid-stream and restarted loses nothing."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable

import psycopg
import pytest

from tests.fixtures.pipeline import Pipeline

pytestmark = pytest.mark.integration


class Workload(threading.Thread):
    """Inserts, updates and deletes citizens in small transactions until stopped."""

    def __init__(self, dsn: str, seed: int) -> None:
        super().__init__(daemon=True)
        self.dsn, self.rng = dsn, random.Random(seed)
        self.stop = threading.Event()
        self.committed = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                while not self.stop.is_set():
                    with conn.transaction():
                        for _ in range(self.rng.randint(1, 20)):
                            self._change(conn)
                    self.committed += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def _change(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        n = self.rng.randrange(10**6)
        choice = self.rng.random()
        if choice < 0.5:
            conn.execute(
                "INSERT INTO citizen VALUES (%s, 'Lê Văn Tải', '1985-03-04', 'nam', NULL, "
                "'79', '760', '22800', now()) ON CONFLICT DO NOTHING",
                (f"079085{n:06d}",),
            )
        elif choice < 0.85:
            conn.execute(
                "UPDATE citizen SET ward_code = %s, updated_at = now() WHERE personal_id = "
                "(SELECT personal_id FROM citizen ORDER BY random() LIMIT 1)",
                (f"{n % 30000:05d}",),
            )
        else:
            conn.execute(
                "DELETE FROM citizen WHERE personal_id = "
                "(SELECT personal_id FROM citizen ORDER BY random() LIMIT 1)"
            )


def test_sigkilled_connector_resumes_from_its_slot_and_loses_nothing(
    pipeline_factory: Callable[..., Pipeline],
) -> None:
    pipeline = pipeline_factory(citizens=500)
    pipeline.start_connector()
    pipeline.start_processor()
    pipeline.wait_converged()
    workload = Workload(pipeline.source_dsn, seed=7)
    workload.start()
    try:
        for round_ in range(3):
            start = workload.committed
            pipeline.wait_for(
                lambda s=start: workload.committed > s + 20,
                f"the workload to commit more (round {round_})",
            )
            killed = pipeline.kill("connector-population")
            pipeline.wait_for(
                lambda k=killed: pipeline.supervisor.processes["connector-population"].pid != k,
                "the supervisor to restart the connector",
            )
    finally:
        workload.stop.set()
        workload.join(30)
    assert workload.error is None
    assert workload.committed > 60
    assert pipeline.supervisor.processes["connector-population"].restarts == 3
    pipeline.wait_converged(timeout=120)
