"""A source table without a primary key, REPLICA IDENTITY FULL and a unique index on its
contract's key: snapshot and stream reach the topic keyed by the declared key, with the whole
old row on updates and deletes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sync.types import Op
from tests.fixtures.capture import Capture, Decoder, fold

pytestmark = pytest.mark.integration

DDL = """
CREATE TABLE parcel (sheet int NOT NULL, lot int NOT NULL, owner_name text, area_m2 float8);
ALTER TABLE parcel REPLICA IDENTITY FULL;
CREATE UNIQUE INDEX parcel_sheet_lot ON parcel (sheet, lot);
CREATE TABLE survey (id bigint PRIMARY KEY, surveyor text NOT NULL, note text);
INSERT INTO parcel SELECT g % 5, g, 'Nguyễn Văn ' || g, g * 10.5 FROM generate_series(1, 40) g;
"""


def source_rows(capture: Capture) -> dict[tuple[Any, ...], dict[str, Any]]:
    with capture.source() as conn:
        rows = conn.execute("SELECT sheet, lot, owner_name, area_m2 FROM parcel").fetchall()
    names = ("sheet", "lot", "owner_name", "area_m2")
    return {(r[0], r[1]): dict(zip(names, r, strict=True)) for r in rows}


def test_a_table_without_primary_key_is_captured_by_its_declared_key(
    capture_factory: Callable[[str], Capture],
) -> None:
    capture = capture_factory(DDL)
    capture.start_connector(snapshot_chunk="7")
    topic = capture.reader("cadastre.parcel")
    decoder = Decoder(capture.stack.registry_url, capture.contract("parcel"))
    key = ("sheet", "lot")

    def converged(messages: list[tuple[bytes | None, bytes | None]]) -> bool:
        return fold([decoder.event(k, v) for k, v in messages], key) == source_rows(capture)

    topic.read_until(converged, "the snapshot to reach the topic")
    snapshot = len(topic.messages)
    with capture.source() as conn:
        conn.execute("INSERT INTO parcel VALUES (9, 100, 'Trần Thị Mai', 250)")
        conn.execute("UPDATE parcel SET owner_name = 'Lê Văn Hùng' WHERE sheet = 1 AND lot = 1")
        conn.execute("UPDATE parcel SET lot = 101 WHERE sheet = 2 AND lot = 2")  # key change
        conn.execute("DELETE FROM parcel WHERE sheet = 3 AND lot = 3")
    topic.read_until(converged, "the changes to reach the topic")

    assert snapshot == 40
    changes = [decoder.event(k, v) for k, v in topic.messages[snapshot:]]
    by_op = {(e.op, tuple(e.key[k] for k in key)): e for e in changes}
    assert set(by_op) == {
        (Op.CREATE, (9, 100)),
        (Op.UPDATE, (1, 1)),
        (Op.DELETE, (2, 2)),
        (Op.CREATE, (2, 101)),
        (Op.DELETE, (3, 3)),
    }
    updated = by_op[(Op.UPDATE, (1, 1))]
    assert updated.before is not None and updated.before["owner_name"] == "Nguyễn Văn 1"
    assert updated.after is not None and updated.after["owner_name"] == "Lê Văn Hùng"
    deleted = by_op[(Op.DELETE, (3, 3))]
    assert deleted.before == {"sheet": 3, "lot": 3, "owner_name": "Nguyễn Văn 3", "area_m2": 31.5}
    moved = by_op[(Op.DELETE, (2, 2))]
    assert moved.before is not None and moved.before["owner_name"] == "Nguyễn Văn 2"
    assert "captured by its contract's key (sheet, lot)" in capture.log()
