"""A source transaction reaches the replica whole: its events are spread over partitions by
key, but no reader of the replica ever sees part of it."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import psycopg
import pytest

from tests.fixtures.pipeline import Pipeline

pytestmark = pytest.mark.integration

TRANSACTIONS, ROWS_EACH = 20, 15


class ReplicaWatcher(threading.Thread):
    """Reads, again and again, how many rows of each transaction the replica holds."""

    def __init__(self, dsn: str) -> None:
        super().__init__(daemon=True)
        self.dsn = dsn
        self.stop = threading.Event()
        self.seen: list[Counter[str]] = []

    def run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.stop.is_set():
                rows = conn.execute(
                    "SELECT ward_code, count(*) FROM population.citizen "
                    "WHERE ward_code LIKE 'tx%%' GROUP BY ward_code"
                ).fetchall()
                self.seen.append(Counter({str(ward): int(n) for ward, n in rows}))


def test_no_reader_sees_part_of_a_transaction(
    pipeline_factory: Callable[..., Pipeline],
) -> None:
    pipeline = pipeline_factory(citizens=TRANSACTIONS * ROWS_EACH)
    pipeline.start_connector()
    # batches far smaller than a transaction: without holding back, each batch would commit
    # part of one
    pipeline.start_processor(batch_size="4")
    pipeline.wait_converged()
    ids = sorted(pipeline.source_rows())
    watcher = ReplicaWatcher(pipeline.replica_dsn)
    watcher.start()
    try:
        with pipeline.source() as conn:
            for n in range(TRANSACTIONS):
                chosen = ids[n * ROWS_EACH : (n + 1) * ROWS_EACH]
                with conn.transaction():
                    for personal_id in chosen:  # one statement each: keys on every partition
                        conn.execute(
                            "UPDATE citizen SET ward_code = %s WHERE personal_id = %s",
                            (f"tx{n:03d}", personal_id),
                        )
        pipeline.wait_converged()
    finally:
        watcher.stop.set()
        watcher.join(10)
    partial = [
        (ward, count) for seen in watcher.seen for ward, count in seen.items() if count != ROWS_EACH
    ]
    assert not partial, f"a reader saw part of a transaction: {partial[:5]}"
    assert len(watcher.seen) >= 10, "the watcher looked while the transactions arrived"
    assert watcher.seen[-1] == Counter({f"tx{n:03d}": ROWS_EACH for n in range(TRANSACTIONS)})
