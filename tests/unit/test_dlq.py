"""Folding the records of a dead-letter topic into one letter per event, and choosing what to
replay."""

from __future__ import annotations

import json

import pytest

from sync.errors import ConfigError
from sync.processor.dlq import Coordinates, Status, fold
from sync.processor.replay import select

TOPIC = "population.citizen"


def letter(offset: int, ts_ms: int, reason: str = "unappliable", error: str = "E") -> tuple:
    body = {
        "agency": "vss",
        "reason": reason,
        "error": error,
        "topic": TOPIC,
        "partition": 0,
        "offset": offset,
        "event_id": f"population:{offset}",
        "ts_ms": ts_ms,
    }
    return f"{TOPIC}/0/{offset}".encode(), json.dumps(body).encode()


def marker(offset: int, ts_ms: int, resolution: str, error: str = "") -> tuple:
    body = {"resolution": resolution, "error": error, "ts_ms": ts_ms}
    return f"{TOPIC}/0/{offset}".encode(), json.dumps(body).encode()


def test_the_last_record_about_an_event_decides_its_status() -> None:
    letters = fold(
        [
            letter(7, 100),
            letter(9, 110),
            letter(8, 120),
            marker(7, 200, "replayed"),
            letter(9, 210, error="again"),
            marker(9, 211, "failed_again", "again"),
        ]
    )
    assert [(x.original.offset, x.status, x.letters) for x in letters] == [
        (7, Status.REPLAYED, 1),
        (8, Status.OPEN, 1),
        (9, Status.FAILED_AGAIN, 2),
    ]
    nine = letters[2]
    assert (nine.first_ts_ms, nine.ts_ms, nine.error) == (110, 211, "again")


def test_a_letter_dead_lettered_again_by_the_processor_is_open_again() -> None:
    [one] = fold([letter(3, 1), marker(3, 2, "replayed"), letter(3, 3)])
    assert one.status is Status.OPEN and one.letters == 2


def test_records_that_are_not_ours_are_skipped() -> None:
    assert fold([(b"junk", b"{}"), (f"{TOPIC}/0/1".encode(), b"not json"), (None, None)]) == []


def test_coordinates_round_trip_and_refuse_malformed_text() -> None:
    place = Coordinates.parse("p1.population.citizen/2/42")
    assert place == Coordinates("p1.population.citizen", 2, 42)
    assert str(place) == "p1.population.citizen/2/42"
    for bad in ("population.citizen/42", "population.citizen/a/1", "/0/1"):
        with pytest.raises(ConfigError, match="TOPIC/PARTITION/OFFSET"):
            Coordinates.parse(bad)


def test_select_takes_unresolved_letters_by_offset_and_reason() -> None:
    letters = fold(
        [letter(1, 1), letter(2, 1, reason="decode_error"), letter(3, 1), marker(3, 2, "replayed")]
    )
    assert [x.original.offset for x in select(letters)] == [1, 2]
    assert [x.original.offset for x in select(letters, reason="decode_error")] == [2]
    assert select(letters, [Coordinates(TOPIC, 0, 3)]) == []  # replayed already
    with pytest.raises(ConfigError, match=r"no dead letter for population\.citizen/0/5"):
        select(letters, [Coordinates(TOPIC, 0, 5)])
