"""Source schema changes seen in relation messages: a column added flows on under a new
registered version; a required column dropped stops that table only, and once the source fits
the contract again a restart snapshots it and deletes the rows that vanished meanwhile."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from sync.types import Lsn, Op
from tests.fixtures.capture import Capture, Decoder, fold

pytestmark = pytest.mark.integration

DDL = """
CREATE TABLE parcel (sheet int NOT NULL, lot int NOT NULL, owner_name text, area_m2 float8,
                     PRIMARY KEY (sheet, lot));
CREATE TABLE survey (id bigint PRIMARY KEY, surveyor text NOT NULL, note text);
INSERT INTO survey VALUES (1, 'Phạm Minh', NULL), (2, 'Vũ Thu', 'đợt 1'), (3, 'Lý Hoa', NULL);
"""


def current_lsn(capture: Capture) -> Lsn:
    with capture.source() as conn:
        row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
    assert row is not None
    return Lsn.parse(row[0])


def confirmed_flush(capture: Capture) -> Lsn:
    with capture.source() as conn:
        row = conn.execute(
            "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s",
            (f"govsync_{capture.name}",),
        ).fetchone()
    return Lsn.parse(row[0]) if row and row[0] else Lsn(0)


def surveys(capture: Capture) -> dict[tuple[Any, ...], dict[str, Any]]:
    with capture.source() as conn:
        rows = conn.execute("SELECT id, surveyor, note FROM survey").fetchall()
    return {(r[0],): {"id": r[0], "surveyor": r[1], "note": r[2]} for r in rows}


def test_an_added_column_is_registered_and_carried_by_the_next_events(
    capture_factory: Callable[[str], Capture],
) -> None:
    # a column the contract leaves out on purpose when capture begins stays unpublished
    capture = capture_factory(DDL + "; ALTER TABLE survey ADD COLUMN internal_memo text")
    capture.start_connector()
    topic = capture.reader("cadastre.survey")
    capture.wait_snapshots_done()
    with capture.source() as conn:
        conn.execute("INSERT INTO survey VALUES (4, 'Hà Anh', NULL)")
        conn.execute("ALTER TABLE survey ADD COLUMN team text")
        conn.execute("INSERT INTO survey VALUES (5, 'Đinh Lan', NULL, 'mật', 'Đội 3')")
        conn.execute("UPDATE survey SET team = 'Đội 1' WHERE id = 1")
    topic.read_until(lambda m: len(m) >= 6, "the snapshot and three changes")

    contract = capture.contract("survey")
    decoder = Decoder(capture.stack.registry_url, contract)
    written = {}
    for key, value in topic.messages:  # partitions interleave: find each change by its key
        event = decoder.event(key, value)
        written[(event.op, event.key["id"])] = decoder.written(value)
    v1, snapshot_read = written[(Op.READ, 1)]
    v2, added = written[(Op.CREATE, 5)]
    assert v1 != v2 == written[(Op.UPDATE, 1)][0]
    assert "team" not in snapshot_read["after"]
    assert added["after"]["team"] == "Đội 3"
    assert written[(Op.UPDATE, 1)][1]["after"]["team"] == "Đội 1"
    # a change committed before the ALTER but published with it carries null
    assert written[(Op.CREATE, 4)][1]["after"].get("team") is None

    registry = SchemaRegistryClient({"url": capture.stack.registry_url})
    subject = f"{capture.prefix}{contract.value_subject}"
    assert registry.get_versions(subject) == [1, 2]
    row = json.loads(registry.get_latest_version(subject).schema.schema_str or "")["fields"][0]
    field = next(f for f in row["type"][1]["fields"] if f["name"] == "team")
    assert field["type"] == ["null", "string"] and field["default"] is None
    assert field["classification"] == "sensitive_personal"

    # a reader on the reviewed contract (a processor) resolves the new version: team is ignored
    resolved = [decoder.event(k, v) for k, v in topic.messages]
    (event,) = [e for e in resolved if e.op is Op.CREATE and e.key["id"] == 5]
    assert event.after == {"id": 5, "surveyor": "Đinh Lan", "note": None}

    changes = "govsync_connector_schema_changes_total"
    assert capture.metric(changes, table="public.survey", outcome="evolved") == 1
    assert capture.metric("govsync_connector_table_stopped", table="public.survey") == 0
    assert f"registered as schema id {v2} of cadastre.survey-value" in capture.log()
    assert all("internal_memo" not in record["after"] for _id, record in written.values())

    # a restarted connector keeps carrying the added column under the same version
    capture.supervisor.stop("connector-cadastre")
    with capture.source() as conn:
        conn.execute("UPDATE survey SET team = 'Đội 4' WHERE id = 5")
    capture.start_connector()
    topic.read_until(lambda m: len(m) >= 7, "the change made while the connector was down")
    schema_id, record = decoder.written(topic.messages[-1][1])
    assert (schema_id, record["after"]["team"]) == (v2, "Đội 4")
    assert registry.get_versions(subject) == [1, 2]


def test_a_dropped_required_column_stops_only_that_table_until_fixed(
    capture_factory: Callable[[str], Capture],
) -> None:
    capture = capture_factory(DDL)
    capture.start_connector()
    parcels, survey_topic = capture.reader("cadastre.parcel"), capture.reader("cadastre.survey")
    capture.wait_snapshots_done()
    with capture.source() as conn:
        conn.execute("ALTER TABLE survey DROP COLUMN surveyor")
        conn.execute("INSERT INTO survey VALUES (10, 'mới')")
        conn.execute("DELETE FROM survey WHERE id = 2")
        conn.execute("INSERT INTO parcel VALUES (1, 1, 'Trần Bình', 120.5)")
    after = current_lsn(capture)
    parcels.read_until(lambda m: len(m) == 1, "the other table's change")
    parcels.read_until(lambda _m: confirmed_flush(capture) >= after, "the slot to advance")

    assert capture.metric("govsync_connector_table_stopped", table="public.survey") == 1
    assert capture.metric("govsync_connector_table_stopped", table="public.parcel") == 0
    changes = "govsync_connector_schema_changes_total"
    assert capture.metric(changes, table="public.survey", outcome="stopped") == 1
    produced = "govsync_connector_events_produced_total"
    assert capture.metric(produced, topic=f"{capture.prefix}cadastre.survey") == 3  # snapshot
    log = capture.log()
    assert "capture of public.survey stopped by a source schema change" in log
    assert "column surveyor was dropped; the contract requires it" in log
    with capture.source() as conn:
        kept = conn.execute("SELECT key FROM govsync.stopped_key ORDER BY key").fetchall()
    assert [k for (k,) in kept] == [{"id": 2}, {"id": 10}]

    # the source is made to fit the contract again; a restarted connector snapshots the
    # table and deletes what vanished while it was stopped
    with capture.source() as conn:
        conn.execute("ALTER TABLE survey ADD COLUMN surveyor text NOT NULL DEFAULT 'chưa rõ'")
    capture.supervisor.stop("connector-cadastre")
    capture.start_connector()
    decoder = Decoder(capture.stack.registry_url, capture.contract("survey"))
    expected = surveys(capture)
    survey_topic.read_until(
        lambda m: fold([decoder.event(k, v) for k, v in m], ("id",)) == expected,
        "the stopped table's topic to equal its source again",
    )
    events = [decoder.event(k, v) for k, v in survey_topic.messages]
    assert [(e.op, e.key["id"]) for e in events if e.op is Op.DELETE] == [(Op.DELETE, 2)]
    assert capture.metric("govsync_connector_table_stopped", table="public.survey") == 0
    with capture.source() as conn:
        assert conn.execute("SELECT count(*) FROM govsync.stopped_key").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM govsync.stopped_table").fetchone() == (0,)
