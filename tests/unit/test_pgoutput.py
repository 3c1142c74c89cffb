"""pgoutput protocol version 1 decoding, byte for byte, with no server.

Messages are built here with struct.pack from the protocol documentation; a few are real bytes
peeked from a PostgreSQL 18 slot, to pin the decoder to what a server actually sends.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import pickle
import struct
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.postgres.pgoutput import (
    PG_EPOCH,
    UNCHANGED_TOAST,
    Begin,
    Column,
    ColumnValue,
    Commit,
    Delete,
    Insert,
    LogicalMessage,
    OldTupleKind,
    Origin,
    Relation,
    RelationCache,
    ReplicaIdentity,
    Truncate,
    TypeMessage,
    Update,
    decode_message,
    row_from_tuple,
)
from sync.errors import DecodeError
from sync.types import Lsn

WHEN = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)


def micros(moment: datetime) -> int:
    return (moment - PG_EPOCH) // timedelta(microseconds=1)


def cstring(text: str) -> bytes:
    return text.encode() + b"\0"


def tuple_data(*values: ColumnValue) -> bytes:
    out = struct.pack("!h", len(values))
    for value in values:
        if value is None:
            out += b"n"
        elif value is UNCHANGED_TOAST:
            out += b"u"
        elif isinstance(value, bytes):
            out += b"b" + struct.pack("!i", len(value)) + value
        else:
            encoded = value.encode()
            out += b"t" + struct.pack("!i", len(encoded)) + encoded
    return out


def begin(final_lsn: int = 0x16_B374D848, xid: int = 4242) -> bytes:
    return b"B" + struct.pack("!QqI", final_lsn, micros(WHEN), xid)


def commit() -> bytes:
    return b"C" + struct.pack("!BQQq", 0, 0x16_B374D848, 0x16_B374D878, micros(WHEN))


def column(flags: int, name: str, type_oid: int, typmod: int = -1) -> bytes:
    return struct.pack("!B", flags) + cstring(name) + struct.pack("!Ii", type_oid, typmod)


def relation(oid: int = 16385, namespace: str = "population", identity: bytes = b"d") -> bytes:
    columns = [column(1, "id", 23), column(0, "name", 1043, 104), column(0, "photo", 17)]
    head = b"R" + struct.pack("!I", oid) + cstring(namespace) + cstring("citizen") + identity
    return head + struct.pack("!h", len(columns)) + b"".join(columns)


def insert(*values: ColumnValue) -> bytes:
    return b"I" + struct.pack("!I", 16385) + b"N" + tuple_data(*values)


def truncate(options: int, *oids: int) -> bytes:
    return b"T" + struct.pack(f"!iB{len(oids)}I", len(oids), options, *oids)


def logical_message() -> bytes:
    head = b"M" + struct.pack("!BQ", 1, 0x2000) + cstring("govsync")
    return head + struct.pack("!i", 5) + b"hello"


def update(old_marker: bytes = b"", old: bytes = b"") -> bytes:
    return b"U" + struct.pack("!I", 16385) + old_marker + old + b"N" + tuple_data("7", "b", None)


VALID_MESSAGES = {
    "begin": begin(),
    "commit": commit(),
    "origin": b"O" + struct.pack("!Q", 0xABCDEF) + cstring("upstream"),
    "relation": relation(),
    "type": b"Y" + struct.pack("!I", 16402) + cstring("public") + cstring("mood"),
    "insert": insert("7", None, UNCHANGED_TOAST, b"\x00\x01"),
    "update": update(),
    "update-key": update(b"K", tuple_data("6", None, None)),
    "update-full": update(b"O", tuple_data("6", "a", b"")),
    "delete": b"D" + struct.pack("!I", 16385) + b"K" + tuple_data("7", None, None),
    "truncate": truncate(3, 16385, 16390),
    "message": logical_message(),
}


# ---- each message type ------------------------------------------------------------------


def test_begin() -> None:
    message = decode_message(begin(xid=0xFFFFFFF0))
    assert message == Begin(Lsn(0x16_B374D848), WHEN, 0xFFFFFFF0)
    assert str(message.final_lsn) == "16/B374D848"
    assert message.commit_time.tzinfo is UTC


def test_commit() -> None:
    message = decode_message(commit())
    assert message == Commit(0, Lsn(0x16_B374D848), Lsn(0x16_B374D878), WHEN)


def test_commit_time_before_the_postgres_epoch() -> None:
    data = b"C" + struct.pack("!BQQq", 0, 1, 2, -1)
    message = decode_message(data)
    assert isinstance(message, Commit)
    assert message.commit_time == datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


def test_origin() -> None:
    assert decode_message(VALID_MESSAGES["origin"]) == Origin(Lsn(0xABCDEF), "upstream")


def test_relation() -> None:
    message = decode_message(relation())
    assert message == Relation(
        16385,
        "population",
        "citizen",
        ReplicaIdentity.DEFAULT,
        (Column(1, "id", 23, -1), Column(0, "name", 1043, 104), Column(0, "photo", 17, -1)),
    )
    assert message.key_columns == ("id",)
    assert message.column_names == ("id", "name", "photo")
    assert message.columns[0].is_key and not message.columns[1].is_key
    assert message.schema == "population"


def test_relation_in_pg_catalog_has_an_empty_namespace() -> None:
    message = decode_message(relation(namespace="", identity=b"f"))
    assert isinstance(message, Relation)
    assert (message.namespace, message.schema) == ("", "pg_catalog")
    assert message.replica_identity is ReplicaIdentity.FULL


def test_relation_with_unknown_replica_identity() -> None:
    with pytest.raises(DecodeError, match=r"Relation message: unknown replica identity 'x'"):
        decode_message(relation(identity=b"x"))


def test_type() -> None:
    assert decode_message(VALID_MESSAGES["type"]) == TypeMessage(16402, "public", "mood")


def test_insert_values_of_every_kind() -> None:
    message = decode_message(insert("7", None, UNCHANGED_TOAST, b"\x00\x01", ""))
    assert message == Insert(16385, ("7", None, UNCHANGED_TOAST, b"\x00\x01", ""))


def test_unchanged_toast_is_not_null() -> None:
    message = decode_message(insert(None, UNCHANGED_TOAST))
    assert isinstance(message, Insert)
    null, toast = message.new
    assert null is None
    assert toast is UNCHANGED_TOAST
    assert toast is not None and toast != null
    assert repr(toast) == "UNCHANGED_TOAST"


def test_unchanged_toast_stays_a_singleton() -> None:
    assert copy.deepcopy(UNCHANGED_TOAST) is UNCHANGED_TOAST
    assert pickle.loads(pickle.dumps(UNCHANGED_TOAST)) is UNCHANGED_TOAST


def test_text_values_are_utf8() -> None:
    message = decode_message(insert("héllo ✓", "line\nbreak"))
    assert isinstance(message, Insert)
    assert message.new == ("héllo ✓", "line\nbreak")


def test_update_without_old_tuple() -> None:
    assert decode_message(update()) == Update(16385, None, None, ("7", "b", None))


def test_update_with_old_key() -> None:
    message = decode_message(VALID_MESSAGES["update-key"])
    assert message == Update(16385, OldTupleKind.KEY, ("6", None, None), ("7", "b", None))


def test_update_with_full_old_row() -> None:
    message = decode_message(VALID_MESSAGES["update-full"])
    assert message == Update(16385, OldTupleKind.FULL, ("6", "a", b""), ("7", "b", None))


def test_update_needs_a_new_tuple() -> None:
    data = b"U" + struct.pack("!I", 16385) + b"K" + tuple_data("6") + b"K" + tuple_data("7")
    with pytest.raises(DecodeError, match=r"Update message: expected 'N', found 'K' at byte 14"):
        decode_message(data)


def test_delete_with_key_and_with_full_row() -> None:
    assert decode_message(VALID_MESSAGES["delete"]) == Delete(
        16385, OldTupleKind.KEY, ("7", None, None)
    )
    full = b"D" + struct.pack("!I", 16385) + b"O" + tuple_data("7", "a", None)
    assert decode_message(full) == Delete(16385, OldTupleKind.FULL, ("7", "a", None))


def test_delete_without_old_tuple_is_invalid() -> None:
    data = b"D" + struct.pack("!I", 16385) + b"N" + tuple_data("7")
    with pytest.raises(DecodeError, match=r"Delete message: expected 'K' or 'O', found 'N'"):
        decode_message(data)


@pytest.mark.parametrize(
    ("options", "cascade", "restart_identity"),
    [(0, False, False), (1, True, False), (2, False, True), (3, True, True)],
)
def test_truncate_options(options: int, cascade: bool, restart_identity: bool) -> None:
    message = decode_message(truncate(options, 16385, 16390))
    assert message == Truncate(options, (16385, 16390))
    assert (message.cascade, message.restart_identity) == (cascade, restart_identity)


def test_logical_message() -> None:
    message = decode_message(logical_message())
    assert message == LogicalMessage(1, Lsn(0x2000), "govsync", b"hello")
    assert message.transactional


def test_messages_are_frozen() -> None:
    message = decode_message(begin())
    assert isinstance(message, Begin)
    with pytest.raises(dataclasses.FrozenInstanceError):
        message.xid = 1  # type: ignore[misc]


# ---- bytes peeked from a PostgreSQL 18 slot -------------------------------------------------

REAL = {
    "begin": "4200000000023b7b00000303ecd288412800000305",
    "type": "59000040127075626c6963006d6f6f6400",
    "commit": "430000000000023b7b0000000000023b7b30000303ecd2884128",
    "relation": "520000401f7075626c696300743200640002016b0000000019ffffffff00760000000017ffffffff",
    "update-key": "550000401f4b00027400000001616e4e0002740000000163740000000131",
    "update": "550000401f4e0002740000000162740000000135",
    "delete": "440000401f4b00027400000001636e",
    "message": "4d0100000000023bdf50706678000000000568656c6c6f",
    "truncate": "5400000001000000401f",
    "origin": "4f0000000000abcdef6465765f6f726967696e00",
}


def test_real_transaction_frame() -> None:
    first = decode_message(bytes.fromhex(REAL["begin"]))
    last = decode_message(bytes.fromhex(REAL["commit"]))
    assert isinstance(first, Begin) and isinstance(last, Commit)
    assert first.final_lsn == last.commit_lsn == Lsn.parse("0/23B7B00")
    assert last.end_lsn == Lsn.parse("0/23B7B30")
    assert first.commit_time == last.commit_time
    assert first.xid == 773


def test_real_relation_and_row_changes() -> None:
    rel = decode_message(bytes.fromhex(REAL["relation"]))
    assert rel == Relation(
        16415,
        "public",
        "t2",
        ReplicaIdentity.DEFAULT,
        (Column(1, "k", 25, -1), Column(0, "v", 23, -1)),
    )
    key_change = decode_message(bytes.fromhex(REAL["update-key"]))
    assert key_change == Update(16415, OldTupleKind.KEY, ("a", None), ("c", "1"))
    assert decode_message(bytes.fromhex(REAL["update"])) == Update(16415, None, None, ("b", "5"))
    assert decode_message(bytes.fromhex(REAL["delete"])) == Delete(
        16415, OldTupleKind.KEY, ("c", None)
    )


def test_real_other_messages() -> None:
    assert decode_message(bytes.fromhex(REAL["type"])) == TypeMessage(16402, "public", "mood")
    assert decode_message(bytes.fromhex(REAL["truncate"])) == Truncate(0, (16415,))
    assert decode_message(bytes.fromhex(REAL["origin"])) == Origin(Lsn(0xABCDEF), "dev_origin")
    assert decode_message(bytes.fromhex(REAL["message"])) == LogicalMessage(
        1, Lsn.parse("0/23BDF50"), "pfx", b"hello"
    )


# ---- malformed input ----------------------------------------------------------------------


def test_empty_message() -> None:
    with pytest.raises(DecodeError, match="empty pgoutput message at byte 0"):
        decode_message(b"")


def test_unknown_message_type() -> None:
    with pytest.raises(DecodeError, match=r"unknown pgoutput message type 'S' at byte 0") as info:
        decode_message(b"S" + struct.pack("!IB", 1, 1))
    assert info.value.fields == {"message_type": "S", "offset": 0}


@pytest.mark.parametrize("name", sorted(VALID_MESSAGES))
def test_every_truncation_raises_decode_error(name: str) -> None:
    data = VALID_MESSAGES[name]
    for end in range(1, len(data)):
        with pytest.raises(DecodeError, match=r"pgoutput \w+ message: .* at byte \d+"):
            decode_message(data[:end])


@pytest.mark.parametrize("name", sorted(VALID_MESSAGES))
def test_trailing_bytes_are_rejected(name: str) -> None:
    data = VALID_MESSAGES[name]
    with pytest.raises(DecodeError, match=rf"1 unexpected trailing bytes at byte {len(data)}"):
        decode_message(data + b"\0")


def test_truncation_error_names_type_and_offset() -> None:
    with pytest.raises(DecodeError) as info:
        decode_message(begin()[:10])
    assert str(info.value) == (
        "pgoutput Begin message: truncated, 8 bytes needed but 1 left at byte 9"
    )
    assert info.value.fields == {"message_type": "Begin", "offset": 9}


def test_truncated_column_value() -> None:
    data = insert("hello")[:-2]
    with pytest.raises(DecodeError, match=r"Insert message: truncated, 5 bytes needed but 3 left"):
        decode_message(data)


def test_unknown_column_kind() -> None:
    data = b"I" + struct.pack("!I", 16385) + b"N" + struct.pack("!h", 1) + b"x"
    with pytest.raises(
        DecodeError, match=r"expected 'n' or 't' or 'u' or 'b', found 'x' at byte 8"
    ):
        decode_message(data)


def test_negative_length() -> None:
    data = b"I" + struct.pack("!I", 16385) + b"N" + struct.pack("!h", 1) + b"t" + b"\xff" * 4
    with pytest.raises(DecodeError, match=r"Insert message: negative count -1 at byte 9"):
        decode_message(data)


def test_invalid_utf8() -> None:
    data = b"I" + struct.pack("!I", 16385) + b"N" + struct.pack("!hci", 1, b"t", 2) + b"a\xff"
    with pytest.raises(DecodeError, match=r"Insert message: invalid UTF-8 .* at byte 14"):
        decode_message(data)


def test_unterminated_string() -> None:
    with pytest.raises(DecodeError, match=r"Origin message: unterminated string at byte 9"):
        decode_message(b"O" + struct.pack("!Q", 1) + b"no-terminator")


@given(st.binary(max_size=64))
def test_arbitrary_bytes_raise_only_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_message(data)


@given(st.sampled_from(sorted(VALID_MESSAGES)), st.data())
def test_corrupted_bytes_raise_only_decode_error(name: str, draw: st.DataObject) -> None:
    data = bytearray(VALID_MESSAGES[name])
    index = draw.draw(st.integers(1, len(data) - 1))
    data[index] = draw.draw(st.integers(0, 255))
    with contextlib.suppress(DecodeError):
        decode_message(bytes(data))


# ---- relations and rows ---------------------------------------------------------------------


def citizen(oid: int = 16385, *names: str) -> Relation:
    columns = tuple(Column(int(i == 0), name, 25, -1) for i, name in enumerate(names or ("id",)))
    return Relation(oid, "population", "citizen", ReplicaIdentity.DEFAULT, columns)


def test_relation_cache() -> None:
    cache = RelationCache()
    assert 16385 not in cache and len(cache) == 0
    cache.add(citizen(16385, "id"))
    cache.add(citizen(16385, "id", "name"))  # after ALTER TABLE, a newer Relation replaces it
    assert 16385 in cache and len(cache) == 1
    assert cache.get(16385).column_names == ("id", "name")


def test_relation_cache_unknown_oid() -> None:
    with pytest.raises(DecodeError, match="relation oid 99 before any Relation message") as info:
        RelationCache().get(99)
    assert info.value.fields == {"relation_oid": 99}


def test_row_from_tuple() -> None:
    rel = citizen(16385, "id", "name", "photo")
    row = row_from_tuple(rel, ("7", UNCHANGED_TOAST, None))
    assert row == {"id": "7", "name": UNCHANGED_TOAST, "photo": None}


def test_row_from_tuple_with_wrong_width() -> None:
    with pytest.raises(DecodeError, match=r"tuple of 1 columns for population.citizen, .* has 2"):
        row_from_tuple(citizen(16385, "id", "name"), ("7",))
