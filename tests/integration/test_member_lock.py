"""Only an agency's active member writes to its replica: the member lock is held by the
applier's own session and checked inside each of its transactions, and a standby holds it the
moment that session ends."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime

import psycopg
import pytest
from prometheus_client import CollectorRegistry

from sync.contracts import load_contracts
from sync.metrics import ProcessorMetrics
from sync.processor.membership import MemberLock, MembershipLost
from sync.processor.replica_session import ReplicaSession
from sync.replica import DeletedKeys, Delivery, ReplicaTable
from sync.stack.ports import wait_until
from sync.stack.providers import StackProvider
from sync.types import ChangeEvent, Lsn, Op, Position, TableRef

pytestmark = [pytest.mark.integration, pytest.mark.brokerless]

TOPIC = "population.citizen"
GROUP = "govsync-replica-vss"


def citizen(personal_id: str, lsn: int) -> Delivery:
    position = Position(Lsn(lsn), 1)
    event = ChangeEvent(
        op=Op.CREATE,
        table=TableRef("public", "citizen"),
        key={"personal_id": personal_id},
        before=None,
        after={
            "personal_id": personal_id,
            "full_name": "Nguyễn Văn An",
            "date_of_birth": date(1990, 5, 1),
            "sex": "nam",
            "ethnicity": "Kinh",
            "province_code": "01",
            "district_code": "001",
            "ward_code": "00001",
            "updated_at": datetime(2025, 7, 1, tzinfo=UTC),
        },
        position=position,
        txid=lsn,
        commit_time=datetime(2025, 7, 1, tzinfo=UTC),
        event_id=ChangeEvent.make_event_id("population", position),
        source="population",
    )
    return Delivery(event, TOPIC, 0, lsn)


def member(dsn: str) -> ReplicaSession:
    tables = {TOPIC: ReplicaTable.for_contract(load_contracts()[TOPIC])}
    metrics = ProcessorMetrics.create(CollectorRegistry())
    return ReplicaSession(
        "vss", dsn, tables, GROUP, {}, metrics, MemberLock(GROUP), DeletedKeys(b"m" * 32)
    )


def lock_waiters(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND wait_event = 'advisory'"
        ).fetchone()
    return int(row[0]) if row else 0


def terminate(dsn: str, pid: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


def held_ids(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        return {str(r[0]) for r in conn.execute("SELECT personal_id FROM population.citizen")}


async def until(predicate: Callable[[], bool], what: str) -> None:
    """Wait for a condition read with blocking calls, off the event loop."""
    await asyncio.to_thread(wait_until, predicate, 30, what)


def test_a_standby_holds_the_lock_the_moment_the_active_session_ends(
    stack: StackProvider,
) -> None:
    dsn = stack.create_database(f"member_lock_{uuid.uuid4().hex[:6]}")

    async def scenario() -> None:
        active, standby = member(dsn), member(dsn)
        first = await active.acquire()
        await first.apply([citizen("a", 100)])
        waiting = asyncio.create_task(standby.acquire())
        await until(lambda: lock_waiters(dsn) == 1, "the standby to wait for the lock")
        assert not waiting.done(), "a standby took the lock while the active member held it"

        terminate(dsn, first.conn.info.backend_pid)
        second = await asyncio.wait_for(waiting, 30)
        await second.apply([citizen("b", 200)])
        with pytest.raises(MembershipLost):
            await active.confirm_held()
        with pytest.raises(MembershipLost, match="is gone"):
            await active.applier()  # it does not connect again without the lock
        await standby.confirm_held()
        await standby.close()

    asyncio.run(scenario())
    assert held_ids(dsn) == {"a", "b"}


def test_a_session_that_lost_the_lock_writes_nothing(stack: StackProvider) -> None:
    dsn = stack.create_database(f"member_fence_{uuid.uuid4().hex[:6]}")

    async def scenario() -> None:
        active, standby = member(dsn), member(dsn)
        first = await active.acquire()
        waiting = asyncio.create_task(standby.acquire())
        await until(lambda: lock_waiters(dsn) == 1, "the standby to wait for the lock")
        # the session lives on but its lock is gone, as after DISCARD ALL or behind a
        # transaction-pooling proxy
        await first.conn.execute("SELECT pg_advisory_unlock_all()")
        await first.conn.commit()
        second = await asyncio.wait_for(waiting, 30)
        with pytest.raises(MembershipLost):
            await first.apply([citizen("late", 300)])
        with pytest.raises(MembershipLost):
            await first.record_offsets({(TOPIC, 0): 301})
        await second.apply([citizen("b", 400)])
        await active.close()
        await standby.close()

    asyncio.run(scenario())
    assert held_ids(dsn) == {"b"}, "a member without the lock wrote to the replica"
    with psycopg.connect(dsn) as conn:
        recorded = conn.execute("SELECT next_offset FROM govsync_state.consumed_offsets").fetchall()
    assert recorded == [(401,)]
