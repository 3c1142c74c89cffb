"""The core types (LSNs, positions, event ids) and the error tree's contract: picklable errors
that keep their fields, and the one retry-or-dead-letter decision."""

from __future__ import annotations

import pickle
from typing import TypeVar

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.errors import (
    ConfigError,
    ContractError,
    DecodeError,
    Fatal,
    GovsyncError,
    RegistryError,
    RegistryUnavailable,
    ReplicaUnavailable,
    Retryable,
    SourceNotReady,
    StackError,
    is_retryable,
)
from sync.types import ChangeEvent, Lsn, Position, TableRef

# ---- Lsn ---------------------------------------------------------------------------------


def test_lsn_parses_postgres_notation() -> None:
    lsn = Lsn.parse("16/B374D848")
    assert lsn == 0x16_B374D848
    assert isinstance(lsn, Lsn)


def test_lsn_prints_like_postgres() -> None:
    assert str(Lsn(0x16_B374D848)) == "16/B374D848"
    assert str(Lsn(0)) == "0/0"
    assert repr(Lsn(0x16_B374D848)) == "Lsn('16/B374D848')"


@pytest.mark.parametrize("text", ["0/0", "16/B374D848", "0/1", "1/0", "FFFFFFFF/FFFFFFFF"])
def test_lsn_text_round_trip(text: str) -> None:
    assert str(Lsn.parse(text)) == text


def test_lsn_parse_accepts_lower_case_hex() -> None:
    assert Lsn.parse("16/b374d848") == Lsn.parse("16/B374D848")


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_every_64_bit_lsn_survives_str_and_parse(value: int) -> None:
    assert Lsn.parse(str(Lsn(value))) == value


@pytest.mark.parametrize("text", ["16B374D848", "", "16/", "B374D848"])
def test_lsn_parse_rejects_text_without_two_halves(text: str) -> None:
    with pytest.raises(ValueError, match=r"not an LSN: .*expected the form 16/B374D848"):
        Lsn.parse(text)


def test_lsn_parse_error_quotes_the_text() -> None:
    with pytest.raises(ValueError, match="'garbage'"):
        Lsn.parse("garbage")


def test_lsn_parse_rejects_non_hex_digits() -> None:
    with pytest.raises(ValueError):
        Lsn.parse("XY/12")


def test_lsns_compare_as_wal_positions() -> None:
    assert Lsn.parse("1/0") > Lsn.parse("0/FFFFFFFF")
    assert sorted([Lsn.parse("A/1"), Lsn.parse("2/FF"), Lsn.parse("A/0")]) == [
        Lsn.parse("2/FF"),
        Lsn.parse("A/0"),
        Lsn.parse("A/1"),
    ]


# ---- Position ----------------------------------------------------------------------------


def test_snapshot_row_sorts_before_streamed_change_at_the_same_lsn() -> None:
    lsn = Lsn.parse("16/B374D848")
    snapshot, streamed = Position(lsn, 0), Position(lsn, 1)
    assert snapshot < streamed
    assert max(streamed, snapshot) == streamed


def test_lsn_dominates_the_index() -> None:
    earlier = Position(Lsn.parse("16/B374D848"), 999_999)
    later = Position(Lsn.parse("16/B374D849"), 0)
    assert earlier < later


def test_index_orders_changes_inside_one_transaction() -> None:
    lsn = Lsn(100)
    assert sorted([Position(lsn, 3), Position(lsn, 1), Position(lsn, 2)]) == [
        Position(lsn, 1),
        Position(lsn, 2),
        Position(lsn, 3),
    ]


@given(
    st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**31 - 1)),
    st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**31 - 1)),
)
def test_position_order_is_the_order_of_its_version(a: tuple[int, int], b: tuple[int, int]) -> None:
    pa, pb = Position(Lsn(a[0]), a[1]), Position(Lsn(b[0]), b[1])
    assert (pa < pb) == (a < b)
    assert (pa == pb) == (a == b)
    assert pa.as_version() == a


def test_positions_are_hashable_and_equal_by_value() -> None:
    assert {Position(Lsn(5), 1), Position(Lsn(5), 1)} == {Position(Lsn(5), 1)}


# ---- ChangeEvent / TableRef --------------------------------------------------------------


def test_event_id_is_stable_for_the_same_change() -> None:
    position = Position(Lsn.parse("16/B374D848"), 3)
    first = ChangeEvent.make_event_id("population", position)
    again = ChangeEvent.make_event_id("population", Position(Lsn(0x16_B374D848), 3))
    assert first == again == "population:00000016B374D848:3"


def test_event_id_differs_by_source_lsn_and_index() -> None:
    base = Position(Lsn(0x10), 1)
    ids = {
        ChangeEvent.make_event_id("population", base),
        ChangeEvent.make_event_id("tax", base),
        ChangeEvent.make_event_id("population", Position(Lsn(0x11), 1)),
        ChangeEvent.make_event_id("population", Position(Lsn(0x10), 2)),
    }
    assert len(ids) == 4


def test_event_ids_sort_like_positions_within_a_source() -> None:
    # fixed-width hex keeps lexical order equal to WAL order
    small = ChangeEvent.make_event_id("p", Position(Lsn(0xF), 1))
    big = ChangeEvent.make_event_id("p", Position(Lsn(0x10), 1))
    assert small < big


def test_table_ref_prints_schema_qualified() -> None:
    assert str(TableRef("public", "citizen")) == "public.citizen"


# ---- errors ------------------------------------------------------------------------------


E = TypeVar("E", bound=BaseException)


def roundtrip(err: E) -> E:
    copy: E = pickle.loads(pickle.dumps(err))
    return copy


def test_registry_error_pickles_with_status_code_and_message() -> None:
    err = roundtrip(RegistryError(404, 40401, "Subject 'population.citizen-value' not found."))
    assert type(err) is RegistryError
    assert err.http_status == 404
    assert err.error_code == 40401
    assert err.message == "Subject 'population.citizen-value' not found."
    assert str(err) == err.message


def test_contract_error_pickles_with_contract_and_field() -> None:
    err = roundtrip(ContractError("bad key", contract="citizen.avsc", field="personal_id"))
    assert type(err) is ContractError
    assert (err.contract, err.field, err.message) == ("citizen.avsc", "personal_id", "bad key")
    assert str(err) == "bad key"
    assert isinstance(err, Fatal)


def test_source_not_ready_pickles_with_source() -> None:
    err = roundtrip(SourceNotReady("wal_level is replica", source="population"))
    assert type(err) is SourceNotReady
    assert err.source == "population"
    assert str(err) == "wal_level is replica"


def test_error_with_free_form_fields_pickles_them() -> None:
    err = roundtrip(DecodeError("truncated at byte 9", message_type="Begin", offset=9))
    assert type(err) is DecodeError
    assert err.fields == {"message_type": "Begin", "offset": 9}
    assert str(err) == "truncated at byte 9"


@pytest.mark.parametrize(
    "err",
    [
        Retryable("later"),
        RegistryUnavailable("registry unreachable"),
        ReplicaUnavailable("replica down"),
        psycopg.OperationalError("connection refused"),
        ConnectionResetError("reset by peer"),
        TimeoutError("timed out"),
    ],
    ids=type,
)
def test_transient_errors_are_retryable(err: BaseException) -> None:
    assert is_retryable(err)


@pytest.mark.parametrize(
    "err",
    [
        Fatal("never"),
        ConfigError("bad setting"),
        ContractError("bad contract"),
        DecodeError("bad bytes"),
        StackError("cannot start"),
        RegistryError(409, 409, "incompatible"),
        GovsyncError("plain"),
        ValueError("bad value"),
        KeyError("missing"),
        psycopg.errors.UniqueViolation("duplicate key"),
    ],
    ids=type,
)
def test_permanent_errors_are_not_retryable(err: BaseException) -> None:
    assert not is_retryable(err)


def test_retryable_survives_pickling_as_retryable() -> None:
    assert is_retryable(roundtrip(RegistryUnavailable("registry unreachable")))
    assert not is_retryable(roundtrip(RegistryError(500, 50001, "store failed")))
