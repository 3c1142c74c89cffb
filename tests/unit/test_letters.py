"""The error text of a processor's dead letter: the exception's type and what was wrong,
never a value the message quotes; and which replica errors are one event's doing."""

from __future__ import annotations

import psycopg
import pytest

from sync.errors import ContractError, DecodeError
from sync.processor.letters import MAX_ERROR, dead_letter, error_text
from sync.processor.replica_session import _caused_by_event


@pytest.mark.parametrize(
    ("exc", "text"),
    [
        (
            psycopg.errors.InvalidTextRepresentation(
                'invalid input syntax for type integer: "079099000001"'
            ),
            "InvalidTextRepresentation: invalid input syntax for type integer",
        ),
        (
            psycopg.errors.NumericValueOutOfRange('value "123456789012" is out of range for type'),
            'NumericValueOutOfRange: value "…" is out of range for type',
        ),
        (
            psycopg.DataError("can't parse date '2024-13-45' from the row"),
            'DataError: can\'t parse date "…" from the row',
        ),
        (
            psycopg.DataError("time not supported by Python: hour=25"),
            "DataError: time not supported by Python",
        ),
        (
            psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes"),
            "DataError: PostgreSQL text fields cannot contain NUL (0x00) bytes",
        ),
        (
            ContractError(
                "population.citizen: field 'date_of_birth': year takes a FarDate\nmore",
                field="date_of_birth",
            ),
            "ContractError: population.citizen: field 'date_of_birth': year takes a FarDate",
        ),
        (
            DecodeError("unknown op 'Nguyễn' in change event"),
            'DecodeError: unknown op "…" in change event',
        ),
        (KeyError("079099000001"), "KeyError: unexpected error while applying"),
        (OverflowError(), "OverflowError: unexpected error while applying"),
    ],
)
def test_the_error_text_keeps_what_went_wrong_and_drops_values(exc: Exception, text: str) -> None:
    assert error_text(exc, "applying") == text


def test_the_error_text_is_bounded() -> None:
    assert len(error_text(DecodeError("x" * 1000))) == MAX_ERROR


def test_a_letter_says_where_the_original_is() -> None:
    letter = dead_letter(
        "vss", "unappliable", ValueError("Nguyễn"), ("t", 2, 41), "e-1", "applying"
    )
    assert letter.key == b"t/2/41" and letter.event_id == "e-1" and letter.agency == "vss"
    assert "Nguy" not in letter.to_json().decode()


@pytest.mark.parametrize(
    ("exc", "events"),
    [
        (psycopg.errors.CheckViolation("violates check constraint"), True),
        (psycopg.errors.StringDataRightTruncation("value too long"), True),
        (psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes"), True),
        (psycopg.ProgrammingError("cannot adapt type 'Thing'"), True),
        (psycopg.errors.UndefinedColumn('column "ward_code" does not exist'), False),
        (psycopg.errors.InsufficientPrivilege("permission denied for table citizen"), False),
        (psycopg.errors.RaiseException("replica refuses this batch"), False),
    ],
)
def test_which_replica_errors_an_event_causes(exc: psycopg.Error, events: bool) -> None:
    assert _caused_by_event(exc) is events
