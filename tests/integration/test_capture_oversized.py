"""A change too large for a message is dead-lettered by the connector, with its position and
no values, counted, and capture goes on: the slot advances past it and later changes flow."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from sync.types import Lsn, Op
from tests.fixtures.capture import Capture, Decoder

pytestmark = pytest.mark.integration

DDL = """
CREATE TABLE parcel (sheet int NOT NULL, lot int NOT NULL, owner_name text, area_m2 float8,
                     PRIMARY KEY (sheet, lot));
CREATE TABLE survey (id bigint PRIMARY KEY, surveyor text NOT NULL, note text);
"""
LIMIT = 100_000
HUGE_NOTE = "Biên bản đo đạc " * 20_000  # about 400 kB as UTF-8


def confirmed_flush(capture: Capture) -> Lsn:
    with capture.source() as conn:
        row = conn.execute(
            "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s",
            (f"govsync_{capture.name}",),
        ).fetchone()
    return Lsn.parse(row[0]) if row and row[0] else Lsn(0)


def test_an_oversized_change_is_dead_lettered_and_capture_goes_on(
    capture_factory: Callable[[str], Capture],
) -> None:
    capture = capture_factory(DDL)
    connector = capture.start_connector(max_message_bytes=str(LIMIT))
    topic = capture.reader("cadastre.survey")
    dead = capture.reader("govsync.dlq.connector.cadastre", partitions=1)
    capture.wait_snapshots_done()
    with capture.source() as conn:
        conn.execute("INSERT INTO survey VALUES (1, 'Phạm Minh', 'ok')")
        conn.execute("INSERT INTO survey VALUES (2, 'Đỗ Quang Hải', %s)", (HUGE_NOTE,))
        conn.execute("INSERT INTO survey VALUES (3, 'Vũ Thu', 'ok')")
        conn.execute("UPDATE survey SET note = 'rút gọn' WHERE id = 2")
        after = Lsn.parse(conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0])  # type: ignore[index]

    dead.read_until(lambda m: len(m) >= 1, "the dead letter")
    topic.read_until(lambda m: len(m) >= 3, "the changes around the oversized one")
    decoder = Decoder(capture.stack.registry_url, capture.contract("survey"))
    events = [decoder.event(k, v) for k, v in topic.messages]
    # keys sit in different partitions, read in no set order between them
    assert sorted((e.key["id"], e.op.value) for e in events) == [
        (1, Op.CREATE.value),
        (2, Op.UPDATE.value),
        (3, Op.CREATE.value),
    ]

    assert len(dead.messages) == 1
    key, raw = dead.messages[0]
    assert raw is not None and "Đỗ" not in raw.decode() and "Biên" not in raw.decode()
    letter = json.loads(raw)
    assert key == letter["event_id"].encode()
    assert letter["table"] == "public.survey" and letter["op"] == "c"
    assert letter["reason"] == "too_large" and letter["limit_bytes"] == LIMIT
    assert letter["size_bytes"] > LIMIT and letter["topic"] == f"{capture.prefix}cadastre.survey"
    # each insert commits alone: the oversized one commits between rows 1 and 3
    lsn_of = {e.key["id"]: e.position.lsn for e in events if e.op is Op.CREATE}
    assert letter["index"] == 1 and lsn_of[1] < Lsn.parse(letter["lsn"]) < lsn_of[3]

    dead_lettered = "govsync_connector_events_dead_lettered_total"
    assert capture.metric(dead_lettered, table="public.survey", reason="too_large") == 1
    assert capture.metric("govsync_connector_events_produced_total") == 3
    # the slot moves past every change, the oversized one included
    topic.read_until(lambda _m: confirmed_flush(capture) >= after, "the slot to advance")
    assert connector.popen.poll() is None and connector.restarts == 0
    log = capture.log()
    assert f"of public.survey (event {letter['event_id']})" in log
    assert "Đỗ Quang Hải" not in log and "Biên bản" not in log
