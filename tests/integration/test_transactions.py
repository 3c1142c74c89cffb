"""A source transaction reaches the replica whole: its events are spread over partitions by
key, but no reader of the replica ever sees part of it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

from sync.contracts import load_contracts
from sync.stack.demo import source_table_ddl
from tests.fixtures.pipeline import Pipeline
from tests.fixtures.replica_watch import ReplicaWatcher

pytestmark = pytest.mark.integration

TRANSACTIONS, ROWS_EACH = 20, 15


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
    assert watcher.seen[-1] == Counter({f"ctx{n:03d}": ROWS_EACH for n in range(TRANSACTIONS)})


def test_a_transaction_over_two_tables_reaches_the_replica_whole(
    pipeline_factory: Callable[..., Pipeline],
) -> None:
    pipeline = pipeline_factory(citizens=TRANSACTIONS * ROWS_EACH)
    with pipeline.source() as conn:
        conn.execute(source_table_ddl(load_contracts()["population.household"]))
    pipeline.start_connector(tables='["citizen", "household"]')
    pipeline.start_processor(
        topics='["population.citizen", "population.household"]', batch_size="4"
    )
    pipeline.wait_converged()
    ids = sorted(pipeline.source_rows())
    watcher = ReplicaWatcher(pipeline.replica_dsn, ("citizen", "household"))
    watcher.start()
    try:
        with pipeline.source() as conn:
            for n in range(TRANSACTIONS):
                ward = f"tx{n:03d}"
                with conn.transaction():  # citizens move, and their households register
                    for personal_id in ids[n * ROWS_EACH : (n + 1) * ROWS_EACH]:
                        conn.execute(
                            "UPDATE citizen SET ward_code = %s WHERE personal_id = %s",
                            (ward, personal_id),
                        )
                        conn.execute(
                            "INSERT INTO household VALUES (%s, %s, %s, 'chủ hộ', 'Hà Nội', "
                            "'01', '001', %s, '2026-01-01', now())",
                            (f"HH{n:03d}", personal_id, ids[n * ROWS_EACH], ward),
                        )
        pipeline.wait_for(
            lambda: (
                bool(watcher.seen)
                and watcher.seen[-1]
                == Counter(
                    {f"{kind}tx{n:03d}": ROWS_EACH for n in range(TRANSACTIONS) for kind in "ch"}
                )
            ),
            "every transaction to reach both replica tables",
        )
    finally:
        watcher.stop.set()
        watcher.join(10)
    partial = [
        (label, seen[f"c{label[1:]}"], seen[f"h{label[1:]}"])
        for seen in watcher.seen
        for label in seen
        if (seen[f"c{label[1:]}"], seen[f"h{label[1:]}"]) != (ROWS_EACH, ROWS_EACH)
    ]
    assert not partial, f"a reader saw part of a transaction: {partial[:5]}"
    assert len(watcher.seen) >= 10
