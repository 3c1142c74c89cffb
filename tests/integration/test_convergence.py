"""Shuffled, duplicated and replayed event sequences converge to the same replica.

hypothesis writes a source history over a few keys: creates, updates, deletes, re-creates after
a delete, primary-key changes (a delete of the old key and a create of the new one, as the
connector emits them), several changes of one key in one transaction, and snapshot reads.
Positions are assigned as the connector assigns them: the commit LSN of the transaction and an
index from 1 inside it, index 0 for a snapshot's rows. The events are then delivered to
:class:`sync.replica.Applier` on a real PostgreSQL database in any order (across keys and
within a key, as partitions, restarts and replays interleave them), with duplicates and a full
replay appended (itself in any order), in batches of any size. The replica must equal what the
source holds at the end: the newest row per key, deleted keys absent; under a row filter, the
projection of that.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from sync.contracts import Contract
from sync.policy import Projection
from sync.policy.models import Subscription
from sync.replica import Applier, DeletedKeys, Delivery, ReplicaTable
from sync.stack.providers import StackProvider
from sync.types import ChangeEvent, Lsn, Op, Position, TableRef

pytestmark = [pytest.mark.integration, pytest.mark.brokerless]

TOPIC = "conv.item"
KEYS = ("a", "b", "c", "d")
PROVINCES = ("01", "79")
WHEN = datetime(2025, 7, 1, tzinfo=UTC)
CONTRACT = Contract(
    domain="conv",
    entity="item",
    row_schema={
        "type": "record",
        "name": "Item",
        "namespace": "vn.gov.conv",
        "fields": [
            {"name": "id", "type": "string", "classification": "internal", "doc": "Key."},
            {"name": "value", "type": "long", "classification": "internal", "doc": "A value."},
            {
                "name": "province_code",
                "type": "string",
                "classification": "internal",
                "doc": "Province.",
            },
            {
                "name": "note",
                "type": ["null", "string"],
                "default": None,
                "classification": "internal",
                "doc": "Optional.",
            },
        ],
    },
    key_schema={
        "type": "record",
        "name": "ItemKey",
        "namespace": "vn.gov.conv",
        "fields": [{"name": "id", "type": "string", "doc": "Key."}],
    },
    path=Path("conv/item.avsc"),
)
IN_HANOI = Projection(
    CONTRACT,
    Subscription(
        agency="hanoi",
        topic=TOPIC,
        purpose="Test: the rows of one province.",
        legal_basis={"basis": "public_duty", "reference": "Test."},
        fields=("id", "value", "note"),
        row_filter="province_code == '01'",
    ),
)

Row = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Change:
    """One step of a history hypothesis writes; :func:`play` turns it into events."""

    kind: str  # write, delete, rekey, snapshot
    key: str = ""
    new_key: str = ""
    value: int = 0
    province: str = "01"
    note: str | None = None


changes = st.one_of(
    st.builds(
        Change,
        kind=st.just("write"),
        key=st.sampled_from(KEYS),
        value=st.integers(0, 9),
        province=st.sampled_from(PROVINCES),
        note=st.none() | st.sampled_from(["x", "y"]),
    ),
    st.builds(Change, kind=st.just("delete"), key=st.sampled_from(KEYS)),
    st.builds(
        Change,
        kind=st.just("rekey"),
        key=st.sampled_from(KEYS),
        new_key=st.sampled_from(KEYS),
        value=st.integers(0, 9),
        province=st.sampled_from(PROVINCES),
    ),
    st.builds(Change, kind=st.just("snapshot")),
)
# a history: transactions of one or more changes
histories = st.lists(st.lists(changes, min_size=1, max_size=4), min_size=1, max_size=12)


def play(
    history: Sequence[Sequence[Change]], full_before: bool
) -> tuple[list[ChangeEvent], dict[str, Row]]:
    """The events the connector would emit for ``history``, and the source's final rows.
    ``full_before``: the table has REPLICA IDENTITY FULL (updates and deletes carry the old
    row). A snapshot step ends its transaction and reads every row at a position of its own."""
    rows: dict[str, Row] = {}
    events: list[ChangeEvent] = []
    lsn = Lsn(0x1_0000)
    for transaction in history:
        emitted: list[tuple[Op, str, Row | None, Row | None]] = []
        for change in transaction:
            if change.kind != "snapshot":
                emitted += _step(rows, change, full_before)
                continue
            events += _commit(emitted, lsn)
            emitted, lsn = [], Lsn(lsn + 0x100)
            # a snapshot's rows carry its high watermark's position with index 0
            for key, row in sorted(rows.items()):
                events.append(_event(Op.READ, key, None, dict(row), Position(lsn, 0)))
            lsn = Lsn(lsn + 0x100)
        events += _commit(emitted, lsn)
        lsn = Lsn(lsn + 0x100)
    return events, rows


def _commit(emitted: list[tuple[Op, str, Row | None, Row | None]], lsn: Lsn) -> list[ChangeEvent]:
    """One transaction's changes at its commit LSN, indexed from 1."""
    return [
        _event(op, key, before, after, Position(lsn, index))
        for index, (op, key, before, after) in enumerate(emitted, start=1)
    ]


def _step(
    rows: dict[str, Row], change: Change, full_before: bool
) -> list[tuple[Op, str, Row | None, Row | None]]:
    key, old = change.key, rows.get(change.key)
    new = {"id": key, "value": change.value, "province_code": change.province, "note": change.note}
    if change.kind == "write":
        rows[key] = new
        return [
            (Op.UPDATE, key, old if full_before else None, new)
            if old
            else (Op.CREATE, key, None, new)
        ]
    if old is None:
        return []  # nothing to delete or re-key
    if change.kind == "delete":
        del rows[key]
        return [(Op.DELETE, key, old if full_before else None, None)]
    if change.new_key in rows:
        return []  # the new key is taken: the source would refuse the update
    moved = {**new, "id": change.new_key}
    del rows[key]
    rows[change.new_key] = moved
    return [
        (Op.DELETE, key, old if full_before else None, None),
        (Op.CREATE, change.new_key, None, moved),
    ]


def _event(op: Op, key: str, before: Row | None, after: Row | None, at: Position) -> ChangeEvent:
    return ChangeEvent(
        op=op,
        table=TableRef("public", "item"),
        key={"id": key},
        before=before,
        after=after,
        position=at,
        txid=int(at.lsn),
        commit_time=WHEN,
        event_id=ChangeEvent.make_event_id("conv", at),
        source="conv",
    )


@st.composite
def deliveries(draw: st.DrawFn, events: list[ChangeEvent]) -> list[list[Delivery]]:
    """``events`` shuffled, some repeated, then a replay of all of them (shuffled again: a
    replay interleaves partitions differently; in source order it would mend what the first
    pass broke), cut into batches of any size."""
    shuffled = draw(st.permutations(events))
    repeated = draw(st.lists(st.sampled_from(events), max_size=len(events))) if events else []
    replay = draw(st.permutations(events))
    stream = [*shuffled, *repeated, *replay]
    batches, start = [], 0
    while start < len(stream):
        size = draw(st.integers(1, 8))
        batches.append(
            [Delivery(e, TOPIC, 0, start + i) for i, e in enumerate(stream[start : start + size])]
        )
        start += size
    return batches


@pytest.fixture(scope="module")
def replica_dsn(stack: StackProvider) -> str:
    return stack.create_database("convergence_replica")


def test_any_delivery_order_converges_to_the_source(replica_dsn: str) -> None:
    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(history=histories, full_before=st.booleans(), data=st.data())
    def check(history: list[list[Change]], full_before: bool, data: st.DataObject) -> None:
        events, rows = play(history, full_before)
        batches = data.draw(deliveries(events))
        assert asyncio.run(apply_all(replica_dsn, batches, None)) == rows

    check()


def test_any_delivery_order_converges_to_the_projection_under_a_row_filter(
    replica_dsn: str,
) -> None:
    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(history=histories, full_before=st.booleans(), data=st.data())
    def check(history: list[list[Change]], full_before: bool, data: st.DataObject) -> None:
        events, rows = play(history, full_before)
        batches = data.draw(deliveries(events))
        expected = {k: p for k, r in rows.items() if (p := IN_HANOI.row(r)) is not None}
        assert asyncio.run(apply_all(replica_dsn, batches, IN_HANOI)) == expected

    check()


async def apply_all(
    dsn: str, batches: list[list[Delivery]], projection: Projection | None
) -> dict[str, Row]:
    """Apply ``batches`` to an empty replica table through ``projection`` (as the processor
    does: a skipped event still counts for its offset); return the replica's rows."""
    table = ReplicaTable.for_contract(projection.contract if projection else CONTRACT)
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        await conn.execute(sql.SQL("DROP SCHEMA IF EXISTS conv CASCADE"))
        await conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table.deleted))
        await conn.commit()
        applier = Applier(conn, {TOPIC: table}, "convergence", deleted_keys=DeletedKeys(b"c" * 32))
        await applier.prepare()
        for batch in batches:
            await applier.apply(list(_projected(batch, projection)))
        names = sql.SQL(", ").join(map(sql.Identifier, table.value_names))
        cursor = await conn.execute(sql.SQL("SELECT {} FROM {}").format(names, table.live))
        found = {
            str(r[0]): dict(zip(table.value_names, r, strict=True)) for r in await cursor.fetchall()
        }
        await conn.commit()
    return found


def _projected(batch: list[Delivery], projection: Projection | None) -> Iterator[Delivery]:
    for d in batch:
        if projection is None:
            yield d
            continue
        event = projection.project_event(d.event)
        if event is None:
            yield dataclasses.replace(d, applies=False)
        else:
            yield dataclasses.replace(d, event=event)
