"""The watermark window: which events a chunk's reads replace, and where the reads go."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from connectors.postgres.snapshot import WATERMARK_TABLE, Chunk, window
from sync.types import ChangeEvent, Lsn, Op, Position, TableRef

CITIZEN = TableRef("public", "citizen")
WHEN = datetime(2026, 1, 1, tzinfo=UTC)


def change(pid: str, lsn: int, table: TableRef = CITIZEN) -> ChangeEvent:
    position = Position(Lsn(lsn), 1)
    return ChangeEvent(
        Op.UPDATE,
        table,
        {"personal_id": pid},
        None,
        {"personal_id": pid, "full_name": "mới"},
        position,
        7,
        WHEN,
        ChangeEvent.make_event_id("population", position),
        "population",
    )


def mark(kind: str, lsn: int, chunk_id: str = "c1", slot: str = "s") -> ChangeEvent:
    row: dict[str, Any] = {"id": lsn, "slot_name": slot, "chunk_id": chunk_id, "kind": kind}
    position = Position(Lsn(lsn), 1)
    return ChangeEvent(
        Op.CREATE, WATERMARK_TABLE, {"id": lsn}, None, row, position, 8, WHEN, "x", "population"
    )


def chunk(*pids: str) -> Chunk:
    rows = {(p,): {"personal_id": p, "full_name": "cũ"} for p in pids}
    return Chunk("c1", CITIZEN, ("personal_id",), rows, (pids[-1],), final=False)


def test_reads_go_where_the_high_watermark_committed_at_index_zero() -> None:
    c = chunk("a", "b")
    out = window(
        [change("z", 10), mark("low", 20), mark("high", 30), change("a", 40)], c, "population", "s"
    )
    assert [(e.op, e.key["personal_id"], e.position) for e in out] == [
        (Op.UPDATE, "z", Position(Lsn(10), 1)),
        (Op.READ, "a", Position(Lsn(30), 0)),
        (Op.READ, "b", Position(Lsn(30), 0)),
        (Op.UPDATE, "a", Position(Lsn(40), 1)),
    ]
    assert c.closed and c.emitted == 2


def test_a_key_changed_inside_the_window_is_not_read() -> None:
    c = chunk("a", "b")
    out = window([mark("low", 20), change("a", 25), mark("high", 30)], c, "population", "s")
    assert [(e.op, e.key["personal_id"]) for e in out] == [(Op.UPDATE, "a"), (Op.READ, "b")]


def test_a_change_before_the_low_watermark_keeps_its_key_in_the_chunk() -> None:
    c = chunk("a")
    out = window([change("a", 15), mark("low", 20), mark("high", 30)], c, "population", "s")
    assert [e.op for e in out] == [Op.UPDATE, Op.READ]


def test_watermarks_of_another_chunk_or_slot_are_dropped_and_ignored() -> None:
    c = chunk("a")
    events = [mark("low", 20, chunk_id="old"), mark("high", 30, slot="other"), change("a", 35)]
    out = window(events, c, "population", "s")
    assert [e.op for e in out] == [Op.UPDATE]
    assert not c.inside and not c.closed


def test_without_a_chunk_only_watermarks_are_dropped() -> None:
    out = window([mark("low", 1), change("a", 2), mark("high", 3)], None, "population", "s")
    assert [e.key["personal_id"] for e in out] == ["a"]


def test_the_window_spans_batches() -> None:
    c = chunk("a", "b")
    first = window([mark("low", 20), change("b", 21)], c, "population", "s")
    second = window([mark("high", 30)], c, "population", "s")
    assert [e.op for e in first] == [Op.UPDATE]
    assert [(e.op, e.key["personal_id"]) for e in second] == [(Op.READ, "a")]


def truncate(lsn: int) -> ChangeEvent:
    position = Position(Lsn(lsn), 1)
    return ChangeEvent(Op.TRUNCATE, CITIZEN, {}, None, None, position, 9, WHEN, "t", "population")


def test_a_truncate_inside_the_window_drops_the_chunks_reads() -> None:
    # the chunk may have been selected before the truncate: its rows are gone at the source
    c = chunk("a", "b")
    out = window([mark("low", 20), truncate(25), mark("high", 30)], c, "population", "s")
    assert [(e.op, e.position) for e in out] == [(Op.TRUNCATE, Position(Lsn(25), 1))]
    assert c.closed and c.emitted == 0


def test_a_truncate_outside_the_window_leaves_the_chunk_alone() -> None:
    c = chunk("a", "b")
    out = window([truncate(15), mark("low", 20), mark("high", 30)], c, "population", "s")
    assert [(e.op, e.position.lsn) for e in out] == [
        (Op.TRUNCATE, 15),
        (Op.READ, 30),
        (Op.READ, 30),
    ]
