"""A TRUNCATE of a captured table reaches every subscriber's replica, and nothing older brings
its rows back: not a lagging partition, not a replay of the whole topic."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
import pytest
from confluent_kafka import Consumer, TopicPartition
from psycopg import sql

from sync.contracts import load_contracts
from sync.kafka import end_offsets, group_lag
from sync.policy import FEDERATION_FILE
from sync.replica import Applier, ApplyResult, DeletedKeys, Delivery, ReplicaTable
from sync.stack.providers import StackProvider
from sync.stack.status import scrape
from sync.types import ChangeEvent, Lsn, Op, Position, TableRef
from tests.fixtures.capture import Decoder
from tests.fixtures.pipeline import Pipeline

pytestmark = pytest.mark.integration

HANOI_NEW = ("001099000001", "Nguyễn Thị Ánh Tuyết", date(1990, 5, 6), "nu", "Kinh", "01")
SAIGON_NEW = ("079099000002", "Trần Văn Bình", date(1985, 1, 2), "nam", "Kinh", "79")
NEW_IDS = {HANOI_NEW[0], SAIGON_NEW[0]}


def insert_citizen(conn: psycopg.Connection[tuple[object, ...]], row: tuple[object, ...]) -> None:
    conn.execute(
        "INSERT INTO citizen (personal_id, full_name, date_of_birth, sex, ethnicity, "
        "province_code, district_code, ward_code, updated_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, '001', '00031', now())",
        row,
    )


def truncate_and_insert(pipeline: Pipeline) -> None:
    """TRUNCATE the captured table and insert new rows, in one source transaction."""
    with pipeline.source() as conn, conn.transaction():
        conn.execute("TRUNCATE citizen")
        insert_citizen(conn, HANOI_NEW)
        insert_citizen(conn, SAIGON_NEW)


def ops_per_partition(pipeline: Pipeline) -> dict[int, list[Op]]:
    """Every event of the pipeline's topic, by partition, in offset order."""
    ends = {
        p: end for (_, p), end in end_offsets(pipeline.stack.bootstrap, [pipeline.topic]).items()
    }
    decoder = Decoder(pipeline.stack.registry_url, pipeline.contract)
    consumer = Consumer(
        {"bootstrap.servers": pipeline.stack.bootstrap, "group.id": f"{pipeline.name}-reader"}
    )
    consumer.assign([TopicPartition(pipeline.topic, p, 0) for p, end in ends.items() if end])
    ops: dict[int, list[Op]] = {p: [] for p in ends}
    try:
        while sum(len(found) for found in ops.values()) < sum(ends.values()):
            message = consumer.poll(10)
            assert message is not None, "every event up to the topic's end can be read"
            assert message.error() is None, message.error()
            partition = message.partition()
            assert partition is not None
            ops[partition].append(decoder.event(message.key(), message.value()).op)
    finally:
        consumer.close()
    return ops


def verify(data_dir: Path) -> dict[str, bool]:
    done = subprocess.run(
        [sys.executable, "-m", "sync.cli", "verify", "--data-dir", str(data_dir), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode in (0, 1), done.stderr
    return {report["agency"]: report["equal"] for report in json.loads(done.stdout)}


def watermark(dsn: str) -> tuple[str, int] | None:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT _source_lsn::text, _source_index FROM govsync_state.truncations "
            "WHERE replica_table = 'population.citizen'"
        ).fetchone()
    return (str(row[0]), int(row[1])) if row else None


def held_ids(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        return {r[0] for r in conn.execute("SELECT personal_id FROM population.citizen")}


def remembered_deletes(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM govsync_state.population__citizen__deleted"
        ).fetchone()
    return int(row[0]) if row else 0


def truncates_counted(metrics_url: str) -> float:
    return sum(
        v for _, v in scrape(metrics_url).get("govsync_processor_truncates_applied_total", [])
    )


def test_a_truncate_reaches_every_subscriber_and_a_replay_resurrects_nothing(
    stack: StackProvider, pipeline_factory: Callable[..., Pipeline], tmp_path: Path
) -> None:
    pipeline = pipeline_factory(citizens=300)
    keys = tmp_path / "hash_keys.json"
    keys.write_text(json.dumps({"gso_pseudonym": "k" * 40}))
    hanoi = stack.create_database(f"{pipeline.name}_hanoi")
    pipeline.start_connector()
    vss_metrics = pipeline.start_processor().spec.metrics_url
    pipeline.start_processor(
        "hanoi", hanoi, manifest=str(FEDERATION_FILE), hash_keys_file=str(keys)
    )
    assert vss_metrics
    pipeline.wait_converged()
    with pipeline.source() as conn:  # a delete remembered before the truncate
        victim = conn.execute("SELECT min(personal_id) FROM citizen").fetchone()
        assert victim is not None
        conn.execute("DELETE FROM citizen WHERE personal_id = %s", victim)
    pipeline.wait_converged()
    assert remembered_deletes(pipeline.replica_dsn) == 1

    truncate_and_insert(pipeline)

    pipeline.wait_converged()
    assert set(pipeline.replica_rows()) == NEW_IDS
    pipeline.wait_for(
        lambda: held_ids(hanoi) == {HANOI_NEW[0]},
        "Hanoi's replica to hold only its new resident",
    )
    # one copy of the truncate in every partition, between the old events and the new ones
    ops = ops_per_partition(pipeline)
    assert len(ops) == 3
    for partition, found in ops.items():
        assert found.count(Op.TRUNCATE) == 1, f"partition {partition}: {found.count(Op.TRUNCATE)}"
        after = found[found.index(Op.TRUNCATE) + 1 :]
        assert set(after) <= {Op.CREATE}, f"partition {partition} after the truncate: {after}"
    assert sum(found.count(Op.CREATE) for found in ops.values()) == 2
    mark = watermark(pipeline.replica_dsn)
    assert mark is not None and mark[1] == 1, "the truncate was the transaction's first change"
    assert watermark(hanoi) == mark
    assert remembered_deletes(pipeline.replica_dsn) == 0, "the watermark covers older deletes"
    pipeline.wait_for(
        lambda: truncates_counted(vss_metrics) == 1, "the processor to count the truncate"
    )
    assert verify(pipeline.describe()) == {"vss": True}
    equal = verify(pipeline.describe({"hanoi": hanoi}, FEDERATION_FILE, keys))
    assert equal == {"hanoi": True}

    # the whole topic again, pre-truncate rows included, into a fresh replica
    fresh = stack.create_database(f"{pipeline.name}_fresh")
    pipeline.start_processor("replay", fresh)
    group = f"{pipeline.name}.govsync-replica-replay"
    pipeline.wait_for(
        lambda: not any(group_lag(stack.bootstrap, group, [pipeline.topic]).values()),
        "the replay group to reach the end of the topic",
        90,
    )
    assert pipeline.replica_rows(fresh) == pipeline.replica_rows() == pipeline.source_rows()
    assert watermark(fresh) == mark


def test_a_truncate_of_a_table_that_is_not_captured_changes_nothing(
    pipeline_factory: Callable[..., Pipeline],
) -> None:
    pipeline = pipeline_factory(citizens=100)
    with pipeline.source() as conn:
        conn.execute("CREATE TABLE scratch (id integer PRIMARY KEY)")
        conn.execute("INSERT INTO scratch SELECT generate_series(1, 10)")
    pipeline.start_connector()
    pipeline.start_processor()
    pipeline.wait_converged()
    with pipeline.source() as conn:
        # published, so pgoutput sends the truncate; but no contract captures it
        conn.execute(
            sql.SQL("ALTER PUBLICATION {} ADD TABLE scratch").format(sql.Identifier(pipeline.slot))
        )
        conn.execute("TRUNCATE scratch")
        insert_citizen(conn, HANOI_NEW)  # after the truncate in the log
    pipeline.wait_converged()
    assert len(pipeline.replica_rows()) == 101
    assert all(Op.TRUNCATE not in found for found in ops_per_partition(pipeline).values())
    assert watermark(pipeline.replica_dsn) is None


# ---- the applier alone, with a partition that lags behind ---------------------------------

TOPIC = "population.citizen"
CITIZEN = load_contracts()[TOPIC]


def change(op: Op, lsn: int, personal_id: str = "") -> ChangeEvent:
    position = Position(Lsn(lsn), 1)
    row = {
        "personal_id": personal_id,
        "full_name": "Nguyễn Văn An",
        "date_of_birth": date(1990, 5, 1),
        "sex": "nam",
        "ethnicity": "Kinh",
        "province_code": "01",
        "district_code": "001",
        "ward_code": "00001",
        "updated_at": datetime(2025, 7, 1, tzinfo=UTC),
    }
    return ChangeEvent(
        op=op,
        table=TableRef("public", "citizen"),
        key={} if op is Op.TRUNCATE else {"personal_id": personal_id},
        before=None,
        after=row if op in (Op.CREATE, Op.UPDATE) else None,
        position=position,
        txid=lsn,
        commit_time=datetime(2025, 7, 1, tzinfo=UTC),
        event_id=ChangeEvent.make_event_id("population", position),
        source="population",
    )


def test_after_a_truncate_a_lagging_partition_is_a_no_op_until_it_catches_up(
    stack: StackProvider,
) -> None:
    dsn = stack.create_database(f"truncate_apply_{uuid.uuid4().hex[:6]}")
    cut = change(Op.TRUNCATE, 200)
    batches = [
        # partition 0 is ahead: rows, then the truncate's first copy and a newer row
        [Delivery(change(Op.CREATE, 100, "a"), TOPIC, 0, 0)],
        [Delivery(change(Op.CREATE, 110, "b"), TOPIC, 1, 0)],
        [Delivery(cut, TOPIC, 0, 1), Delivery(change(Op.CREATE, 300, "c"), TOPIC, 0, 2)],
        # partition 1 lags: its older changes, then its copy of the truncate
        [Delivery(change(Op.CREATE, 150, "d"), TOPIC, 1, 1)],
        [Delivery(change(Op.UPDATE, 160, "b"), TOPIC, 1, 2)],
        [Delivery(change(Op.DELETE, 170, "e"), TOPIC, 1, 3)],
        [Delivery(cut, TOPIC, 1, 4), Delivery(change(Op.CREATE, 400, "d"), TOPIC, 1, 5)],
    ]

    async def apply_each() -> list[ApplyResult]:
        async with await psycopg.AsyncConnection.connect(dsn) as conn:
            tables = {TOPIC: ReplicaTable.for_contract(CITIZEN)}
            applier = Applier(conn, tables, "g", deleted_keys=DeletedKeys(b"t" * 32))
            await applier.prepare()
            return [await applier.apply(batch) for batch in batches]

    results = asyncio.run(apply_each())
    assert [r.truncated for r in results] == [[], [], [TOPIC], [], [], [], []]
    assert held_ids(dsn) == {"c", "d"}
    assert remembered_deletes(dsn) == 0, "a delete older than the truncate is not remembered"
    assert watermark(dsn) == (str(cut.position.lsn), 1)
