"""pgoutput messages -> ChangeEvents: transactions released at commit, positions, key changes,
old images, unchanged TOAST values and value conversion, with bytes built as a server sends them."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import pytest

from connectors.postgres.changes import UNCHANGED, ChangeDecoder, DecodedBatch
from connectors.postgres.pgoutput import PG_EPOCH, UNCHANGED_TOAST, ColumnValue
from sync.errors import DecodeError
from sync.temporal import Uncarried
from sync.types import ChangeEvent, Lsn, Op, Position, TableRef
from tests.unit.test_pgoutput import REAL, tuple_data

CITIZEN_OID, AUDIT_OID = 16385, 16390
TEXT, DATE = 25, 1082
CITIZEN = TableRef("public", "citizen")
WHEN = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
COMMIT_LSN = Lsn.parse("16/B374D848")
END_LSN = Lsn.parse("16/B374D878")

# ---- pgoutput bytes ----------------------------------------------------------------------


def _micros(moment: datetime) -> int:
    return (moment - PG_EPOCH) // timedelta(microseconds=1)


def _cstring(text: str) -> bytes:
    return text.encode() + b"\0"


def _tuple(values: Sequence[ColumnValue]) -> bytes:
    return tuple_data(*values)


def begin(final_lsn: Lsn = COMMIT_LSN, xid: int = 4242, when: datetime = WHEN) -> bytes:
    return b"B" + struct.pack("!QqI", final_lsn, _micros(when), xid)


def commit(commit_lsn: Lsn = COMMIT_LSN, end_lsn: Lsn = END_LSN) -> bytes:
    return b"C" + struct.pack("!BQQq", 0, commit_lsn, end_lsn, _micros(WHEN))


def relation(
    oid: int = CITIZEN_OID,
    namespace: str = "public",
    name: str = "citizen",
    identity: bytes = b"d",
    columns: Sequence[tuple[int, str, int]] = (
        (1, "personal_id", TEXT),
        (0, "full_name", TEXT),
        (0, "date_of_birth", DATE),
        (0, "notes", TEXT),
    ),
) -> bytes:
    head = b"R" + struct.pack("!I", oid) + _cstring(namespace) + _cstring(name) + identity
    body = b"".join(
        struct.pack("!B", flags) + _cstring(col) + struct.pack("!Ii", oid_, -1)
        for flags, col, oid_ in columns
    )
    return head + struct.pack("!h", len(columns)) + body


def insert(*values: ColumnValue, oid: int = CITIZEN_OID) -> bytes:
    return b"I" + struct.pack("!I", oid) + b"N" + _tuple(values)


def update(
    new: Sequence[ColumnValue],
    old: Sequence[ColumnValue] | None = None,
    kind: bytes = b"K",
    oid: int = CITIZEN_OID,
) -> bytes:
    old_part = b"" if old is None else kind + _tuple(old)
    return b"U" + struct.pack("!I", oid) + old_part + b"N" + _tuple(new)


def delete(*old: ColumnValue, kind: bytes = b"K", oid: int = CITIZEN_OID) -> bytes:
    return b"D" + struct.pack("!I", oid) + kind + _tuple(old)


def row(
    personal_id: str = "001099012345",
    full_name: ColumnValue = "Nguyễn Văn An",
    date_of_birth: ColumnValue = "1990-02-28",
    notes: ColumnValue = "ghi chú",
) -> tuple[ColumnValue, ...]:
    return (personal_id, full_name, date_of_birth, notes)


def key_only(personal_id: str) -> tuple[ColumnValue, ...]:
    return (personal_id, None, None, None)


def decoded(personal_id: str = "001099012345", **changes: object) -> dict[str, object]:
    values: dict[str, object] = {
        "personal_id": personal_id,
        "full_name": "Nguyễn Văn An",
        "date_of_birth": date(1990, 2, 28),
        "notes": "ghi chú",
    }
    values.update(changes)
    return values


def decoder(**extra_tables: tuple[str, ...]) -> ChangeDecoder:
    keys = {CITIZEN: ("personal_id",)}
    keys.update({TableRef("public", name): cols for name, cols in extra_tables.items()})
    return ChangeDecoder("population", keys)


def run(messages: Sequence[bytes], source: ChangeDecoder | None = None) -> DecodedBatch:
    source = source or decoder()
    return source.decode((Lsn(i), m) for i, m in enumerate(messages, start=1))


def transaction(*changes: bytes) -> list[bytes]:
    return [begin(), relation(), *changes, commit()]


def only(batch: DecodedBatch) -> ChangeEvent:
    assert len(batch.events) == 1, batch.events
    return batch.events[0]


# ---- transactions ------------------------------------------------------------------------


def test_insert_becomes_a_create_event() -> None:
    event = only(run(transaction(insert(*row()))))
    assert event.op is Op.CREATE
    assert event.table == CITIZEN
    assert event.key == {"personal_id": "001099012345"}
    assert event.before is None
    assert event.after == decoded()
    assert event.txid == 4242
    assert event.commit_time == WHEN
    assert event.source == "population"
    assert event.event_id == ChangeEvent.make_event_id("population", event.position)


def test_events_are_released_only_at_commit() -> None:
    source = decoder()
    first = run([begin(), relation(), insert(*row())], source)
    assert first.events == []
    assert first.end_lsn is None
    assert not first.captured


def test_a_batch_of_only_a_commit_still_moves_end_lsn() -> None:
    batch = run([commit()])
    assert batch.events == []
    assert batch.end_lsn == END_LSN


def test_end_lsn_is_the_commits_end_lsn() -> None:
    batch = run(transaction(insert(*row())))
    assert batch.end_lsn == END_LSN
    assert isinstance(batch.end_lsn, Lsn)


def test_events_of_an_unfinished_transaction_after_a_commit_are_held_back() -> None:
    second_lsn = Lsn.parse("16/B3750000")
    batch = run(
        [
            *transaction(insert(*row("1"))),
            begin(second_lsn, xid=4243),
            insert(*row("2")),
        ]
    )
    assert [e.key["personal_id"] for e in batch.events] == ["1"]
    assert batch.end_lsn == END_LSN


def test_positions_are_the_commit_lsn_and_indexes_from_one() -> None:
    batch = run(transaction(insert(*row("1")), insert(*row("2")), insert(*row("3"))))
    assert [e.position for e in batch.events] == [
        Position(COMMIT_LSN, 1),
        Position(COMMIT_LSN, 2),
        Position(COMMIT_LSN, 3),
    ]
    assert [e.key["personal_id"] for e in batch.events] == ["1", "2", "3"]


def test_each_transaction_numbers_its_changes_from_one() -> None:
    second_commit, second_end = Lsn.parse("17/10"), Lsn.parse("17/40")
    batch = run(
        [
            *transaction(insert(*row("1")), insert(*row("2"))),
            begin(second_commit, xid=4243),
            insert(*row("3")),
            commit(second_commit, second_end),
        ]
    )
    assert [e.position for e in batch.events] == [
        Position(COMMIT_LSN, 1),
        Position(COMMIT_LSN, 2),
        Position(second_commit, 1),
    ]
    assert [e.txid for e in batch.events] == [4242, 4242, 4243]
    assert batch.end_lsn == second_end
    assert batch.events == sorted(batch.events, key=lambda e: e.position)


def test_relation_is_remembered_across_batches() -> None:
    source = decoder()
    run(transaction(insert(*row("1"))), source)
    batch = run([begin(), insert(*row("2")), commit()], source)
    assert only(batch).key == {"personal_id": "2"}


def test_change_before_its_relation_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match=f"relation oid {CITIZEN_OID}"):
        run([begin(), insert(*row()), commit()])


def test_row_change_outside_a_transaction_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="outside a transaction"):
        run([relation(), insert(*row())])


def test_captured_counts_changes_per_table() -> None:
    audit = relation(AUDIT_OID, name="audit", columns=((1, "id", TEXT),))
    batch = run(
        [
            begin(),
            relation(),
            audit,
            insert(*row("1")),
            insert("a1", oid=AUDIT_OID),
            update(row("1", full_name="Trần Thị Bình")),
            delete(*key_only("1")),
            commit(),
        ],
        decoder(audit=("id",)),
    )
    assert batch.captured == {"public.citizen": 3, "public.audit": 1}
    assert len(batch.events) == 4


def test_tables_without_key_columns_are_skipped() -> None:
    other = relation(AUDIT_OID, name="audit", columns=((1, "id", TEXT),))
    batch = run(
        [
            begin(),
            relation(),
            other,
            insert("x", oid=AUDIT_OID),
            insert(*row()),
            delete("x", oid=AUDIT_OID),
            commit(),
        ]
    )
    event = only(batch)
    assert event.table == CITIZEN
    assert event.position == Position(COMMIT_LSN, 1)
    assert batch.captured == {"public.citizen": 1}


def test_same_table_name_in_another_schema_is_not_captured() -> None:
    batch = run(
        [begin(), relation(AUDIT_OID, namespace="staging"), insert(*row(), oid=AUDIT_OID), commit()]
    )
    assert batch.events == []
    assert batch.end_lsn == END_LSN


# ---- updates and deletes -----------------------------------------------------------------


def test_update_without_old_tuple_is_an_update_without_before() -> None:
    event = only(run(transaction(update(row(full_name="Nguyễn Văn Bình")))))
    assert event.op is Op.UPDATE
    assert event.before is None
    assert event.after == decoded(full_name="Nguyễn Văn Bình")
    assert event.key == {"personal_id": "001099012345"}


def test_primary_key_change_is_a_delete_of_the_old_key_then_a_create() -> None:
    batch = run(transaction(update(row("079203000002"), old=key_only("001099012345"))))
    gone, created = batch.events
    assert gone.op is Op.DELETE
    assert gone.key == {"personal_id": "001099012345"}
    assert gone.after is None
    assert gone.before is None  # a key-only old tuple is not a before image
    assert created.op is Op.CREATE
    assert created.key == {"personal_id": "079203000002"}
    assert created.before is None
    assert created.after == decoded("079203000002")
    assert [gone.position.index, created.position.index] == [1, 2]
    assert gone.event_id != created.event_id


def test_primary_key_change_keeps_following_indexes_consecutive() -> None:
    batch = run(
        transaction(
            insert(*row("1")),
            update(row("2"), old=key_only("1")),
            insert(*row("3")),
        )
    )
    assert [(e.op, e.key["personal_id"], e.position.index) for e in batch.events] == [
        (Op.CREATE, "1", 1),
        (Op.DELETE, "1", 2),
        (Op.CREATE, "2", 3),
        (Op.CREATE, "3", 4),
    ]


def test_primary_key_change_under_replica_identity_full_keeps_the_old_row() -> None:
    batch = run(
        [
            begin(),
            relation(identity=b"f"),
            update(row("2"), old=row("1"), kind=b"O"),
            commit(),
        ]
    )
    gone, created = batch.events
    assert (gone.op, created.op) == (Op.DELETE, Op.CREATE)
    assert gone.before == decoded("1")
    assert gone.key == {"personal_id": "1"}


def test_update_with_old_key_tuple_of_the_same_key_is_an_update() -> None:
    event = only(run(transaction(update(row(full_name="B"), old=key_only("001099012345")))))
    assert event.op is Op.UPDATE
    assert event.after == decoded(full_name="B")


def test_delete_with_key_only_old_tuple_has_no_before_image() -> None:
    event = only(run(transaction(delete(*key_only("001099012345")))))
    assert event.op is Op.DELETE
    assert event.key == {"personal_id": "001099012345"}
    assert event.before is None
    assert event.after is None


def test_delete_under_replica_identity_full_keeps_the_before_image() -> None:
    batch = run([begin(), relation(identity=b"f"), delete(*row(), kind=b"O"), commit()])
    event = only(batch)
    assert event.op is Op.DELETE
    assert event.before == decoded()


# ---- TOAST -------------------------------------------------------------------------------


def test_unchanged_toast_without_previous_image_is_marked_for_lookup() -> None:
    event = only(run(transaction(update(row(notes=UNCHANGED_TOAST)))))
    assert event.after is not None and event.after["notes"] is UNCHANGED
    assert event.after["full_name"] == "Nguyễn Văn An"


def test_unchanged_toast_with_key_only_old_tuple_is_marked_for_lookup() -> None:
    batch = run(transaction(update(row("2", notes=UNCHANGED_TOAST), old=key_only("1"))))
    created = batch.events[-1]
    assert created.op is Op.CREATE and created.after is not None
    assert created.after["notes"] is UNCHANGED


def test_unchanged_toast_is_filled_from_a_full_old_tuple() -> None:
    long_notes = "hồ sơ " * 1000
    batch = run(
        [
            begin(),
            relation(identity=b"f"),
            update(
                row(full_name="Lê Thị Cúc", notes=UNCHANGED_TOAST),
                old=row(full_name="Lê Thị Cúc Cũ", notes=long_notes),
                kind=b"O",
            ),
            commit(),
        ]
    )
    event = only(batch)
    assert event.op is Op.UPDATE
    assert event.after is not None
    assert event.after["notes"] == long_notes
    assert event.after["full_name"] == "Lê Thị Cúc"


def test_null_is_not_mistaken_for_unchanged_toast() -> None:
    event = only(run(transaction(update(row(notes=None)))))
    assert event.after is not None
    assert event.after["notes"] is None


# ---- values ------------------------------------------------------------------------------


def test_values_are_converted_from_text_by_type_oid() -> None:
    event = only(run(transaction(insert(*row(date_of_birth="2024-02-29")))))
    assert event.after is not None
    assert event.after["date_of_birth"] == date(2024, 2, 29)
    assert type(event.after["date_of_birth"]) is date
    assert event.after["full_name"] == "Nguyễn Văn An"


def test_null_values_stay_none() -> None:
    event = only(run(transaction(insert(*row(full_name=None, date_of_birth=None)))))
    assert event.after == decoded(full_name=None, date_of_birth=None)


def test_unparseable_value_stays_with_its_change_only() -> None:
    """Text that does not parse as its type does not stop the batch: the value is marked
    uncarried (the connector dead-letters that change), never quoted."""
    events = run(
        transaction(insert(*row(date_of_birth="not a date")), insert(*row(personal_id="002")))
    ).events
    assert len(events) == 2
    bad = events[0].after["date_of_birth"] if events[0].after else None
    assert isinstance(bad, Uncarried) and "not a date" not in bad.reason
    assert events[1].after is not None and type(events[1].after["date_of_birth"]) is date


def test_binary_value_is_a_decode_error_naming_the_column() -> None:
    with pytest.raises(DecodeError, match="full_name"):
        run(transaction(insert(*row(full_name=b"\x00\x01"))))


def test_relation_after_alter_table_is_used_for_later_changes() -> None:
    source = decoder()
    run(transaction(insert(*row("1"))), source)
    widened = relation(
        columns=(
            (1, "personal_id", TEXT),
            (0, "full_name", TEXT),
            (0, "date_of_birth", DATE),
            (0, "notes", TEXT),
            (0, "issued_on", DATE),
        )
    )
    batch = run([begin(), widened, insert(*row("2"), "2021-07-01"), commit()], source)
    event = only(batch)
    assert event.after is not None
    assert event.after["issued_on"] == date(2021, 7, 1)


# ---- truncate ----------------------------------------------------------------------------

HOUSEHOLD_OID = 16400
HOUSEHOLD = TableRef("public", "household")


def truncate(*oids: int, options: int = 0) -> bytes:
    return b"T" + struct.pack(f"!iB{len(oids)}I", len(oids), options, *oids)


def test_truncate_of_a_captured_table_is_a_truncate_event_at_its_place_in_the_transaction() -> None:
    batch = run(transaction(insert(*row("1")), truncate(CITIZEN_OID), insert(*row("2"))))
    assert [(e.op, e.position) for e in batch.events] == [
        (Op.CREATE, Position(COMMIT_LSN, 1)),
        (Op.TRUNCATE, Position(COMMIT_LSN, 2)),
        (Op.CREATE, Position(COMMIT_LSN, 3)),
    ]
    event = batch.events[1]
    assert (event.table, event.key, event.before, event.after) == (CITIZEN, {}, None, None)
    assert (event.txid, event.commit_time, event.source) == (4242, WHEN, "population")
    assert event.event_id == ChangeEvent.make_event_id("population", Position(COMMIT_LSN, 2))
    assert batch.captured == {"public.citizen": 3}


@pytest.mark.parametrize("options", [0, 1, 2, 3], ids=["plain", "cascade", "restart", "both"])
def test_one_truncate_of_several_tables_is_one_event_per_captured_table(options: int) -> None:
    household = relation(HOUSEHOLD_OID, name="household", columns=((1, "id", TEXT),))
    audit = relation(AUDIT_OID, name="audit", columns=((1, "id", TEXT),))
    batch = run(
        [
            begin(),
            relation(),
            audit,
            household,
            truncate(CITIZEN_OID, AUDIT_OID, HOUSEHOLD_OID, options=options),
            commit(),
        ],
        decoder(household=("id",)),
    )
    assert [(e.op, e.table, e.position) for e in batch.events] == [
        (Op.TRUNCATE, CITIZEN, Position(COMMIT_LSN, 1)),
        (Op.TRUNCATE, HOUSEHOLD, Position(COMMIT_LSN, 2)),
    ]
    assert len({e.event_id for e in batch.events}) == 2


def test_truncate_of_only_uncaptured_tables_gives_no_event() -> None:
    audit = relation(AUDIT_OID, name="audit", columns=((1, "id", TEXT),))
    batch = run([begin(), audit, truncate(AUDIT_OID), commit()])
    assert batch.events == []
    assert batch.end_lsn == END_LSN


def test_truncate_outside_a_transaction_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="truncate outside a transaction"):
        run([relation(), truncate(CITIZEN_OID)])


def test_truncate_bytes_from_a_real_server() -> None:
    # as PostgreSQL sent them for `TRUNCATE t2` (see test_pgoutput.REAL)
    batch = run(
        [begin(), bytes.fromhex(REAL["relation"]), bytes.fromhex(REAL["truncate"]), commit()],
        decoder(t2=("k",)),
    )
    event = only(batch)
    assert (event.op, event.table, event.key) == (Op.TRUNCATE, TableRef("public", "t2"), {})
    assert event.position == Position(COMMIT_LSN, 1)
