"""The connector's fast decoding path gives exactly what the reference decoder (the code before it,
in ``tests/reference``) gives: the same values of the same types for every type and edge value,
the same events, and the same DecodeError for what does not decode.

Texts are drawn as PostgreSQL prints values under the connector's session settings (ISO
DateStyle, hex bytea, extra_float_digits 3, any time zone), with the edge values (infinity, BC,
years past 9999, 24:00:00, NaN, offsets of old local mean times), and as text no server prints.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.postgres import pgoutput
from connectors.postgres.changes import ChangeDecoder, DecodedBatch
from connectors.postgres.pgoutput import UNCHANGED_TOAST, ColumnValue, decode_message
from connectors.postgres.pgoutput_scan import scan_change
from connectors.postgres.values import ARRAY_ELEMENT_OIDS, TupleLoader, read_text
from sync.errors import DecodeError
from sync.types import Lsn, TableRef
from tests.reference.compare import assert_same_batch, assert_same_value
from tests.reference.decoder import ReferenceDecoder, decode_message_strictly
from tests.unit import test_changes as changes
from tests.unit.test_pgoutput import tuple_data
from tests.unit.test_pgoutput_fuzz import SEEDS, mutated, transaction, value_texts

MANY = settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
FEWER = settings(MANY, max_examples=150)

# ---- texts as PostgreSQL prints them ------------------------------------------------------------

_plain = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"))


def _fraction(micros: int) -> str:
    return f".{micros:06d}".rstrip("0") if micros else ""


def _time_text(moment: time | datetime) -> str:
    return f"{moment:%H:%M:%S}" + _fraction(moment.microsecond)


def _float_text(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value).removesuffix(".0")


def _offset_text(seconds: int) -> str:
    sign, seconds = ("-" if seconds < 0 else "+"), abs(seconds)
    text = f"{sign}{seconds // 3600:02d}"
    if seconds % 3600:
        text += f":{seconds // 60 % 60:02d}"
    return text + (f":{seconds % 60:02d}" if seconds % 60 else "")


def _timestamptz_text(moment: datetime, offset: int) -> str:
    local = moment + timedelta(seconds=offset)
    return f"{local:%Y-%m-%d} {_time_text(local)}{_offset_text(offset)}"


_dates = st.dates().map(date.isoformat)
_times = st.times().map(_time_text)
_timestamps = st.datetimes().map(lambda d: f"{d:%Y-%m-%d} {_time_text(d)}")
_offsets = st.sampled_from([0, 7 * 3600, 19800, -12600, 1050, 25200 + 30, -14 * 3600, 14 * 3600])
_timestamptzs = st.builds(
    _timestamptz_text,
    st.datetimes(datetime(1, 1, 2), datetime(9999, 12, 30)),
    _offsets,
)
EDGES = {
    1082: ["infinity", "-infinity", "4714-11-24 BC", "0044-03-15 BC", "10000-01-01",
           "5874897-12-31", "0001-01-01", "9999-12-31", "2024-02-29", "2023-02-29"],
    1083: ["24:00:00", "00:00:00", "23:59:59.999999", "23:59:60"],
    1114: ["infinity", "-infinity", "0044-03-15 12:00:00.5 BC", "10000-01-01 00:00:00",
           "294247-01-10 04:00:54.775806", "294276-12-31 23:59:59.999999", "0001-01-01 00:00:00",
           "2024-01-01 24:00:00", "9999-12-31 23:59:59.999999"],
    1184: ["infinity", "-infinity", "0001-01-01 00:00:00+05", "9999-12-31 23:00:00-05",
           "4714-11-24 00:00:00+00 BC", "1900-01-01 05:21:10+05:21:10", "0001-01-01 00:30:00+01",
           "294276-12-31 23:59:59.999999+00", "0044-03-15 12:17:30+00:17:30 BC",
           "2024-06-30 23:59:59.999999+14", "9999-12-31 23:59:59.999999+00"],
    700: ["NaN", "Infinity", "-Infinity", "3.4028235e+38", "-1.4e-45", "-0"],
    701: ["NaN", "Infinity", "-Infinity", "1.7976931348623157e+308", "5e-324", "-0"],
    1700: ["NaN", "Infinity", "-Infinity", "0.000", "-0.001", "99999999999.999", "1e5"],
    20: ["-9223372036854775808", "9223372036854775807"],
    21: ["-32768", "32767"],
    23: ["-2147483648", "2147483647"],
    26: ["4294967295"],
    17: ["\\x", "\\x00ff10", "ab\\\\c\\001\\377"],
    1042: ["ab   ", ""],
}  # fmt: skip
PRINTED: dict[int, st.SearchStrategy[str]] = {
    16: st.sampled_from(["t", "f"]),
    17: st.binary(max_size=40).map(lambda b: "\\x" + b.hex()),
    19: _plain,
    20: st.integers(-(2**63), 2**63 - 1).map(str),
    21: st.integers(-(2**15), 2**15 - 1).map(str),
    23: st.integers(-(2**31), 2**31 - 1).map(str),
    25: _plain,
    26: st.integers(0, 2**32 - 1).map(str),
    114: _plain,
    700: st.floats(width=32).map(_float_text),
    701: st.floats().map(_float_text),
    1042: _plain,
    1043: _plain,
    1082: _dates,
    1083: _times,
    1114: _timestamps,
    1184: _timestamptzs,
    1700: st.decimals(allow_nan=False, allow_infinity=False).map(str),
    2950: st.uuids().map(str),
    3802: _plain,
    1186: st.just("1 day 02:00:00"),  # interval: kept as text
    600: st.just("(1,2)"),  # point: kept as text
    16402: _plain,  # an enum: kept as text
}


def _array_literal(items: Sequence[str | None]) -> str:
    def element(item: str | None) -> str:
        if item is None:
            return "NULL"
        special = item == "" or item.upper() == "NULL" or any(c in item for c in '{},"\\ \t\n')
        if not special:
            return item
        return '"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"'

    return "{" + ",".join(element(item) for item in items) + "}"


for _array, _element in ARRAY_ELEMENT_OIDS.items():
    PRINTED[_array] = st.lists(st.none() | PRINTED[_element], max_size=4).map(_array_literal)

TYPE_OIDS = sorted(PRINTED)


def printed(type_oid: int) -> st.SearchStrategy[str]:
    """Text of ``type_oid`` as a server prints it, its edge values, or text none prints."""
    edges = EDGES.get(type_oid, [])
    strange = value_texts | _plain
    return st.one_of(PRINTED[type_oid], *([st.sampled_from(edges)] if edges else []), strange)


column_texts = st.sampled_from(TYPE_OIDS).flatmap(
    lambda oid: st.tuples(st.just(oid), st.none() | printed(oid))
)

# ---- values: a whole tuple at once against read_text one by one ----------------------------


@MANY
@given(st.lists(column_texts, max_size=12))
def test_a_tuple_loads_as_read_text_reads_each_value(columns: list[tuple[int, str | None]]) -> None:
    loader = TupleLoader([oid for oid, _ in columns])
    values = loader.load([None if text is None else text.encode() for _, text in columns])
    for i, ((oid, text), value) in enumerate(zip(columns, values, strict=True)):
        expected = None if text is None else read_text(oid, text)
        assert_same_value(value, expected, f"column {i} of type oid {oid}")


@MANY
@given(st.sampled_from(TYPE_OIDS).flatmap(lambda oid: st.tuples(st.just(oid), printed(oid))))
def test_each_type_and_edge_value_alone(column: tuple[int, str]) -> None:
    oid, text = column
    (value,) = TupleLoader([oid]).load([text.encode()])
    assert_same_value(value, read_text(oid, text), f"type oid {oid}")


@pytest.mark.parametrize("oid", TYPE_OIDS)
@pytest.mark.parametrize("raw", [b"\xff", b"2024-01-0\xe9", b"\xed\xa0\x80", b"ok\x00\xc3"])
def test_text_that_is_not_utf8_is_refused(oid: int, raw: bytes) -> None:
    with pytest.raises(ValueError):
        raw.decode()
    with pytest.raises(ValueError):
        TupleLoader([25, oid]).load([b"fine", raw])


def test_a_timestamptz_its_offset_pushes_past_year_9999_is_carried_as_the_reference_does() -> None:
    """psycopg keeps the offset of such a value; the fast path must not."""
    for text in ("9999-12-31 23:00:00-05", "0001-01-01 00:00:00+05"):
        (value,) = TupleLoader([1184]).load([text.encode()])
        assert_same_value(value, read_text(1184, text))


def test_text_of_another_shape_than_iso_is_not_read_by_psycopg() -> None:
    """psycopg takes any non-digit as a separator: 2024/02/29 would be a date."""
    oids = [1082, 1083, 1114, 1184, 2950]
    texts = ["2024/02/29", "1:2:3", "2024-01-02T03:04:05", "2024-01-02 03:04:05 +07", "A0EEBC99"]
    values = TupleLoader(oids).load([t.encode() for t in texts])
    for oid, text, value in zip(oids, texts, values, strict=True):
        assert_same_value(value, read_text(oid, text), text)


# ---- messages: scan_change and the Begin/Commit shortcut against the strict reader -------------


def _strict(data: bytes) -> pgoutput.Message | DecodeError:
    try:
        return decode_message_strictly(data)
    except DecodeError as exc:
        return exc


@MANY
@given(st.sampled_from(SEEDS).flatmap(mutated) | st.sampled_from(SEEDS))
def test_scan_change_reads_what_the_strict_reader_reads(data: bytes) -> None:
    scanned, strict = scan_change(data), _strict(data)
    if scanned is None:
        if isinstance(strict, pgoutput.Insert | pgoutput.Update | pgoutput.Delete):
            values = [*(getattr(strict, "old", None) or ()), *(getattr(strict, "new", None) or ())]
            assert any(isinstance(v, bytes) for v in values), "only binary values are left"
        return
    kind, oid, old_kind, old, new = scanned
    if isinstance(strict, DecodeError):  # the values are left for the loader to read as UTF-8
        assert "invalid UTF-8" in str(strict)
        with pytest.raises(UnicodeDecodeError):
            for value in [*(old or ()), *(new or ())]:
                if isinstance(value, bytes):
                    value.decode()
        return
    assert isinstance(strict, pgoutput.Insert | pgoutput.Update | pgoutput.Delete)
    assert (kind, oid) == (data[:1].decode(), strict.relation_oid)

    def texts(values: list[bytes | object] | None) -> tuple[object, ...] | None:
        if values is None:
            return None
        return tuple(v.decode() if isinstance(v, bytes) else v for v in values)

    assert texts(new) == getattr(strict, "new", None)
    assert texts(old) == getattr(strict, "old", None)
    assert old_kind == getattr(strict, "old_kind", None)


@MANY
@given(st.integers(0, 2**64 - 1), st.integers(-(2**63), 2**63 - 1), st.integers(0, 2**32 - 1))
def test_begin_and_commit_decode_as_the_strict_reader_decodes_them(
    lsn: int, micros: int, xid: int
) -> None:
    for data in (
        b"B" + struct.pack("!QqI", lsn, micros, xid),
        b"C" + struct.pack("!BQQq", xid & 0xFF, lsn, lsn // 2, micros),
    ):
        strict = _strict(data)
        if isinstance(strict, DecodeError):
            with pytest.raises(DecodeError) as info:
                decode_message(data)
            assert (str(info.value), info.value.fields) == (str(strict), strict.fields)
        else:
            assert decode_message(data) == strict
            assert decode_message(data).commit_time.tzinfo is strict.commit_time.tzinfo


# ---- whole streams: the decoder against the reference decoder ----------------------------------

KEYS = {changes.CITIZEN: ("personal_id",), TableRef("public", "other"): ("id",)}


def _outcome(decoder: ChangeDecoder | ReferenceDecoder, messages: Sequence[bytes]) -> object:
    try:
        return decoder.decode((Lsn(0x1000 + i), m) for i, m in enumerate(messages))
    except DecodeError as exc:
        return exc


def assert_decodes_as_the_reference(messages: Sequence[bytes]) -> DecodedBatch | None:
    new = _outcome(ChangeDecoder("population", KEYS), messages)
    old = _outcome(ReferenceDecoder("population", KEYS), messages)
    if isinstance(old, DecodeError):
        assert isinstance(new, DecodeError), "the reference refused what the fast path took"
        assert (str(new), new.fields) == (str(old), old.fields)
        return None
    assert isinstance(new, DecodedBatch), f"the fast path refused: {new}"
    assert isinstance(old, DecodedBatch)
    assert_same_batch(new, old)
    return new


_kinds = st.sampled_from([b"I", b"U", b"UK", b"UO", b"D", b"DO"])
_cell = st.one_of(st.none(), st.just(UNCHANGED_TOAST), st.just("7"))


@st.composite
def streams(draw: st.DrawFn) -> list[bytes]:
    """Transactions of changes to a citizen table of random column types (a random relation,
    sent again with other types now and then) and to a table that is not captured."""
    messages: list[bytes] = []
    for _ in range(draw(st.integers(1, 3))):
        oids = draw(st.lists(st.sampled_from(TYPE_OIDS), min_size=1, max_size=6))
        identity = draw(st.sampled_from([b"d", b"f"]))
        columns = [(1, "personal_id", changes.TEXT)] + [
            (0, f"c{i}", oid) for i, oid in enumerate(oids)
        ]
        messages.append(changes.begin(xid=draw(st.integers(1, 2**32 - 1))))
        messages.append(changes.relation(identity=identity, columns=columns))
        for _ in range(draw(st.integers(0, 6))):
            kind = draw(_kinds)
            key = draw(st.sampled_from(["1", "2", "ba\u0301"]))
            row = [key] + [
                draw(st.none() | st.just(UNCHANGED_TOAST) | printed(oid)) for oid in oids
            ]
            old = [draw(st.sampled_from(["1", "2"]))] + [
                draw(st.none() | printed(oid)) for oid in oids
            ]
            oid = draw(st.sampled_from([changes.CITIZEN_OID, changes.AUDIT_OID]))
            if kind == b"I":
                messages.append(changes.insert(*row, oid=oid))
            elif kind == b"U":
                messages.append(changes.update(row, oid=oid))
            elif kind in (b"UK", b"UO"):
                messages.append(changes.update(row, old=old, kind=kind[1:], oid=oid))
            else:
                messages.append(changes.delete(*old, kind=b"K" if kind == b"D" else b"O", oid=oid))
        if draw(st.booleans()):
            other = changes.relation(changes.AUDIT_OID, name="uncaptured", columns=columns)
            messages.insert(1, other)
        messages.append(changes.commit())
    return messages


@FEWER
@given(streams())
def test_streams_decode_as_the_reference_decodes_them(messages: list[bytes]) -> None:
    assert_decodes_as_the_reference(messages)


@MANY
@given(st.data())
def test_mutated_transactions_decode_or_fail_as_the_reference(data: st.DataObject) -> None:
    messages = transaction()
    for index in data.draw(st.sets(st.integers(0, len(messages) - 1), min_size=1, max_size=3)):
        messages[index] = data.draw(mutated(messages[index]))
    assert_decodes_as_the_reference(messages)


@FEWER
@given(st.lists(st.sampled_from(transaction()), max_size=12))
def test_messages_in_any_order_decode_or_fail_as_the_reference(messages: list[bytes]) -> None:
    assert_decodes_as_the_reference(messages)


def _change(*values: ColumnValue, kind: bytes = b"I") -> bytes:
    return kind + struct.pack("!I", changes.CITIZEN_OID) + b"N" + tuple_data(*values)


@pytest.mark.parametrize(
    "message",
    [
        _change("1", "An", b"\x00binary", None),  # binary value: not requested
        _change("1", "An", None),  # fewer values than columns
        _change("1", "An", None, None, None),  # more
        _change("1", "An", "1990-02-28", None) + b"\x00",  # trailing byte
        _change("1", "An", "1990-02-28", None)[:-2],  # truncated
        _change("1", "An", "1990-02-28", None, kind=b"X"),
    ],
)
def test_what_the_fast_path_does_not_take_fails_as_in_the_reference(message: bytes) -> None:
    assert_decodes_as_the_reference(
        [changes.begin(), changes.relation(), message, changes.commit()]
    )


def test_text_that_is_not_utf8_fails_as_in_the_reference() -> None:
    body = tuple_data("1", "An", None, None).replace(b"An", b"A\xff")
    message = b"I" + struct.pack("!I", changes.CITIZEN_OID) + b"N" + body
    assert (
        assert_decodes_as_the_reference(
            [changes.begin(), changes.relation(), message, changes.commit()]
        )
        is None
    )


def test_a_relation_sent_again_with_other_types_is_read_with_them() -> None:
    date_column = ((1, "personal_id", changes.TEXT), (0, "when", 1082))
    text_column = ((1, "personal_id", changes.TEXT), (0, "when", changes.TEXT))
    batch = assert_decodes_as_the_reference(
        [
            changes.begin(),
            changes.relation(columns=date_column),
            changes.insert("1", "2024-02-29"),
            changes.relation(columns=text_column),
            changes.insert("2", "2024-02-29"),
            changes.commit(),
        ]
    )
    assert batch is not None
    first, second = (event.after for event in batch.events)
    assert first == {"personal_id": "1", "when": date(2024, 2, 29)}
    assert second == {"personal_id": "2", "when": "2024-02-29"}


def test_unchanged_toast_is_taken_from_the_old_row_as_in_the_reference() -> None:
    columns = ((1, "personal_id", changes.TEXT), (0, "big", changes.TEXT), (0, "n", 23))
    old = ("1", "a long text", "5")
    batch = assert_decodes_as_the_reference(
        [
            changes.begin(),
            changes.relation(identity=b"f", columns=columns),
            changes.update(("1", UNCHANGED_TOAST, "6"), old=old, kind=b"O"),
            changes.update(("1", UNCHANGED_TOAST, "6")),
            changes.commit(),
        ]
    )
    assert batch is not None
    assert batch.events[0].after == {"personal_id": "1", "big": "a long text", "n": 6}


def test_the_session_time_zone_makes_no_difference() -> None:
    """A timestamptz printed in any zone is the same instant in UTC, whatever zone the
    decoding process runs in."""
    columns = ((1, "personal_id", changes.TEXT), (0, "at", 1184))
    texts = ["2024-06-30 17:00:00.5+07", "2024-06-30 10:00:00.5+00", "2024-06-30 05:30:00.5-04:30"]
    batch = assert_decodes_as_the_reference(
        [changes.begin(), changes.relation(columns=columns)]
        + [changes.insert(str(i), text) for i, text in enumerate(texts)]
        + [changes.commit()]
    )
    assert batch is not None
    instants = {event.after["at"] for event in batch.events if event.after}
    assert instants == {datetime(2024, 6, 30, 10, 0, 0, 500000, tzinfo=UTC)}


@pytest.mark.parametrize("name", ["citizen", "sample"])
def test_the_benchmark_workloads_decode_as_the_reference_decodes_them(name: str) -> None:
    from bench.connector_stages import workload

    keys = {TableRef("public", name): ("personal_id",) if name == "citizen" else ("id",)}
    messages = [(Lsn(lsn), data) for lsn, data in workload(name, 600, 100)]
    new = ChangeDecoder("bench", keys).decode(messages)
    assert len(new.events) == 600
    assert_same_batch(new, ReferenceDecoder("bench", keys).decode(messages))
