"""Fuzzing pgoutput decoding: whatever bytes a slot returns, the message decoder and the change
decoder give a result or a DecodeError, nothing else, and no error quotes a column's value.

Garbage is rejected at the first byte; to get deep, most examples here are real messages (built
as a server writes them, or peeked from one) with a few bytes mutated, and transactions whose
messages are mutated, dropped, repeated or swapped.
"""

from __future__ import annotations

import struct
import traceback
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, currently_in_test_context, event, given, settings
from hypothesis import strategies as st

from connectors.postgres.changes import ChangeDecoder, DecodedBatch
from connectors.postgres.pgoutput import (
    UNCHANGED_TOAST,
    Column,
    ColumnValue,
    Delete,
    Insert,
    Message,
    OldTupleKind,
    Relation,
    ReplicaIdentity,
    Update,
    decode_message,
)
from connectors.postgres.values import ARRAY_ELEMENT_OIDS
from sync.errors import DecodeError
from sync.temporal import Uncarried
from sync.types import Lsn
from tests.unit import test_changes as changes
from tests.unit.test_pgoutput import REAL, VALID_MESSAGES, cstring, tuple_data

# a few seconds in all: cheap examples many times, generated messages (costlier to draw) fewer
FAST = settings(max_examples=250, suppress_health_check=[HealthCheck.too_slow])
FEWER = settings(FAST, max_examples=100)

SEEDS = sorted(VALID_MESSAGES.values()) + sorted(bytes.fromhex(h) for h in REAL.values())

# ---- byte mutations -------------------------------------------------------------------------

# counts and lengths a mutation writes over a 2- or 4-byte field: the edges a decoder trips on
_EDGES = (0, 1, 2, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with one to three mutations after its type byte, which is kept so that the
    decoder reads past it."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(1, max(1, len(out))))
        kind = draw(st.sampled_from(["byte", "field", "insert", "delete", "cut", "repeat"]))
        if kind == "byte" and at < len(out):
            out[at] = draw(st.integers(0, 255))
        elif kind == "field":
            size = draw(st.sampled_from([2, 4]))
            value = draw(st.sampled_from(_EDGES)) & (2 ** (8 * size) - 1)
            out[at : at + size] = value.to_bytes(size, "big")
        elif kind == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del out[at : at + draw(st.integers(1, 8))]
        elif kind == "cut":
            del out[at:]
        else:
            out[at:at] = out[at : at + draw(st.integers(1, 16))]
    return bytes(out)


def outcome(label: str) -> None:
    """Counted in hypothesis' statistics (``--hypothesis-show-statistics``): how deep it got."""
    if currently_in_test_context():
        event(label)


def decode_or_reject(data: bytes) -> Message | None:
    """The message, or None when the decoder refused it with a DecodeError (the only exception
    allowed: anything else fails the test as it is)."""
    try:
        message = decode_message(data)
    except DecodeError as exc:
        assert str(exc).startswith(("pgoutput ", "empty pgoutput", "unknown pgoutput"))
        what = str(exc.fields.get("message_type", ""))
        outcome(f"rejected: {what if len(what) > 1 else 'type byte'}")
        return None
    outcome(f"decoded: {type(message).__name__}")
    return message


def test_every_seed_decodes() -> None:
    """The mutations start from valid messages, or they would only fuzz the error paths."""
    assert all(decode_or_reject(seed) is not None for seed in SEEDS)


@FAST
@given(st.binary(max_size=256))
def test_random_bytes(data: bytes) -> None:
    decode_or_reject(data)


@FAST
@given(st.sampled_from(sorted({seed[:1] for seed in SEEDS})), st.binary(max_size=64))
def test_known_type_byte_then_random_bytes(kind: bytes, body: bytes) -> None:
    decode_or_reject(kind + body)


@FAST
@given(st.sampled_from(SEEDS).flatmap(mutated))
def test_mutated_real_messages(data: bytes) -> None:
    decode_or_reject(data)


# ---- generated messages ---------------------------------------------------------------------

names = st.text(st.characters(exclude_characters="\0", codec="utf-8"), max_size=12)
oids = st.integers(0, 2**32 - 1)
values: st.SearchStrategy[ColumnValue] = st.one_of(
    st.none(), st.just(UNCHANGED_TOAST), st.text(max_size=20), st.binary(max_size=20)
)
tuples = st.lists(values, max_size=6).map(tuple)
columns = st.builds(Column, st.integers(0, 255), names, oids, st.integers(-(2**31), 2**31 - 1))


def encode_column(column: Column) -> bytes:
    typmod = struct.pack("!Ii", column.type_oid, column.type_modifier)
    return struct.pack("!B", column.flags) + cstring(column.name) + typmod


RowMessage = Relation | Insert | Update | Delete


def encode(message: RowMessage) -> bytes:
    """The bytes pgoutput writes for ``message`` (protocol version 1)."""
    if isinstance(message, Relation):
        head = b"R" + struct.pack("!I", message.oid) + cstring(message.namespace)
        head += cstring(message.name) + message.replica_identity.encode()
        body = b"".join(encode_column(c) for c in message.columns)
        return head + struct.pack("!h", len(message.columns)) + body
    oid = struct.pack("!I", message.relation_oid)
    if isinstance(message, Insert):
        return b"I" + oid + b"N" + tuple_data(*message.new)
    if isinstance(message, Delete):
        return b"D" + oid + message.old_kind.encode() + tuple_data(*message.old)
    old = b""
    if message.old_kind is not None and message.old is not None:
        old = message.old_kind.encode() + tuple_data(*message.old)
    return b"U" + oid + old + b"N" + tuple_data(*message.new)


kinds = st.sampled_from(OldTupleKind)
generated_messages: st.SearchStrategy[RowMessage] = st.one_of(
    st.builds(
        Relation,
        oids,
        names,
        names,
        st.sampled_from(ReplicaIdentity),
        st.lists(columns, max_size=5).map(tuple),
    ),
    st.builds(Insert, oids, tuples),
    st.builds(Update, oids, st.none(), st.none(), tuples),
    st.builds(lambda oid, kind, old, new: Update(oid, kind, old, new), oids, kinds, tuples, tuples),
    st.builds(Delete, oids, kinds, tuples),
)


@FEWER
@given(generated_messages)
def test_generated_messages_decode_to_themselves(message: RowMessage) -> None:
    assert decode_message(encode(message)) == message


@FEWER
@given(generated_messages.map(encode).flatmap(mutated))
def test_mutated_generated_messages(data: bytes) -> None:
    decode_or_reject(data)


# ---- the change decoder ---------------------------------------------------------------------

PII = "PII"  # in every value below, so that an error quoting one is caught


def personal_row(personal_id: str = "1") -> tuple[ColumnValue, ...]:
    return (f"{PII}-{personal_id}", f"{PII} Nguyễn Văn An", "1990-02-28", f"{PII} ghi chú")


def transaction() -> list[bytes]:
    return [
        changes.begin(),
        changes.relation(),
        changes.insert(*personal_row("1")),
        changes.update(personal_row("2"), old=(f"{PII}-1", None, None, None)),
        changes.update(personal_row("2")),
        changes.delete(f"{PII}-2", None, None, None),
        changes.truncate(changes.CITIZEN_OID),
        changes.commit(),
    ]


def decode(messages: Sequence[bytes]) -> DecodedBatch:
    """``messages`` decoded by a fresh decoder, at positions 0/1000, 0/1001..."""
    source = ChangeDecoder("population", {changes.CITIZEN: ("personal_id",)})
    return source.decode((Lsn(0x1000 + i), message) for i, message in enumerate(messages))


def decode_stream(messages: Sequence[bytes]) -> DecodedBatch | None:
    """The batch, or None after a DecodeError that names the message's position and quotes
    no value (nor does any error chained to it, nor its traceback)."""
    try:
        batch = decode(messages)
    except DecodeError as exc:
        assert_quotes_no_value(exc)
        assert Lsn.parse(exc.fields["lsn"]) - 0x1000 in range(len(messages))
        outcome("rejected")
        return None
    outcome(f"decoded {len(batch.events)} events")
    return batch


def assert_quotes_no_value(exc: BaseException) -> None:
    printed = "".join(traceback.format_exception(exc))
    error: BaseException | None = exc
    while error is not None:
        fields = getattr(error, "fields", {})
        for text in (str(error), repr(fields), printed):
            assert PII not in text and "1990-02" not in text, text
        error = error.__cause__ or error.__context__


def test_the_transaction_decodes() -> None:
    batch = decode_stream(transaction())
    assert batch is not None and len(batch.events) == 6


@FAST
@given(st.data())
def test_transaction_with_mutated_messages(data: st.DataObject) -> None:
    messages = transaction()
    for index in data.draw(st.sets(st.integers(0, len(messages) - 1), min_size=1, max_size=3)):
        messages[index] = data.draw(mutated(messages[index]))
    decode_stream(messages)


@FAST
@given(st.lists(st.sampled_from(transaction()), max_size=12))
def test_messages_in_any_order(messages: list[bytes]) -> None:
    """Dropped, repeated and swapped messages: a change before its Begin or Relation."""
    decode_stream(messages)


# ---- values never stop a batch ----------------------------------------------------------------

TYPE_OIDS = sorted({16, 17, 20, 21, 23, 25, 700, 701, 1082, 1083, 1114, 1184, 1700, 2950})
TYPE_OIDS += [*sorted(ARRAY_ELEMENT_OIDS), 600, 1186]  # arrays; point, interval: kept as text

_VALUE_PIECES = ["{", "}", ",", '"', "\\", "NULL", "\\x", "ff", "-", ":", ".", "+", " BC", "e9"]
_VALUE_PIECES += ["0", "9", "2024", "-02-29", " 24:00:00", "infinity", "NaN", "t", "é", PII]
value_texts = st.one_of(
    st.lists(st.sampled_from(_VALUE_PIECES), max_size=12).map("".join),
    st.text(max_size=30).map(lambda text: text + PII),
    st.integers(1, 5000).map(lambda depth: "{" * depth + PII + "}" * depth),
)


def one_value(type_oid: int, text: str) -> list[bytes]:
    columns = ((1, "personal_id", changes.TEXT), (0, "value", type_oid))
    relation = changes.relation(columns=columns)
    return [changes.begin(), relation, changes.insert(f"{PII}-1", text), changes.commit()]


@FAST
@given(st.sampled_from(TYPE_OIDS), value_texts)
def test_any_text_of_any_type_is_a_value(type_oid: int, text: str) -> None:
    """Text that does not read as its type stays with its change, as Uncarried, whose
    reason quotes nothing of it; the rest of the batch flows."""
    batch = decode_stream(one_value(type_oid, text))
    assert batch is not None and len(batch.events) == 1
    after = batch.events[0].after
    assert after is not None
    value = after["value"]
    if isinstance(value, Uncarried):
        assert value.text == text and PII not in repr(value)
        outcome(f"uncarried {type_oid}")


def test_an_array_nested_past_the_recursion_limit_is_uncarried() -> None:
    text = "{" * 100_000 + "}" * 100_000
    batch = decode_stream(one_value(1009, text))
    assert batch is not None
    after = batch.events[0].after
    assert after is not None
    assert isinstance(after["value"], Uncarried) and after["value"].text == text


def test_a_change_without_its_key_column_names_table_column_and_position() -> None:
    relation = changes.relation(columns=((0, "id", changes.TEXT), (0, "full_name", changes.TEXT)))
    messages = [changes.begin(), relation, changes.insert("7", f"{PII} An"), changes.commit()]
    with pytest.raises(DecodeError) as info:
        decode(messages)
    assert str(info.value) == (
        "change of public.citizen without its key column personal_id (key: personal_id) "
        "(message at 0/1002)"
    )
    assert info.value.fields == {
        "table": "public.citizen",
        "column": "personal_id",
        "lsn": "0/1002",
    }
    assert_quotes_no_value(info.value)


def test_a_truncated_message_names_its_position() -> None:
    messages = transaction()
    messages[2] = messages[2][:-3]
    with pytest.raises(DecodeError) as info:
        decode(messages)
    assert str(info.value) == (
        "pgoutput Insert message: truncated, 12 bytes needed but 9 left at byte 63 "
        "(message at 0/1002)"
    )
    assert info.value.fields == {"message_type": "Insert", "offset": 63, "lsn": "0/1002"}
