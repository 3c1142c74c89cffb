"""A source transaction reaches the replica whole: its events are spread over partitions by
key, but no reader of the replica ever sees part of it."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import psycopg
import pytest
from psycopg import sql

from sync.contracts import load_contracts
from sync.stack.demo import source_table_ddl
from tests.fixtures.pipeline import Pipeline

pytestmark = pytest.mark.integration

TRANSACTIONS, ROWS_EACH = 20, 15


class ReplicaWatcher(threading.Thread):
    """Reads, again and again and each time in one snapshot, how many rows of each
    transaction's label (the ward it writes) every watched table holds: ``seen`` counts
    them by table initial and label (``ctx007``: citizens of transaction 7)."""

    def __init__(self, dsn: str, tables: tuple[str, ...] = ("citizen",)) -> None:
        super().__init__(daemon=True)
        self.dsn, self.tables = dsn, tables
        self.stop = threading.Event()
        self.seen: list[Counter[str]] = []

    def run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            while not self.stop.is_set():
                seen: Counter[str] = Counter()
                with conn.transaction():
                    for table in self.tables:
                        for ward, n in self._labels(conn, table):
                            seen[f"{table[0]}{ward}"] = int(str(n))
                self.seen.append(seen)

    @staticmethod
    def _labels(
        conn: psycopg.Connection[tuple[object, ...]], table: str
    ) -> list[tuple[object, ...]]:
        query = sql.SQL(
            "SELECT ward_code, count(*) FROM {} WHERE ward_code LIKE 'tx%%' GROUP BY ward_code"
        ).format(sql.Identifier("population", table))
        try:
            with conn.transaction():  # the table appears with its first event
                return conn.execute(query).fetchall()
        except psycopg.errors.UndefinedTable:
            return []


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
