"""Holding back the events of a source transaction until all of them are there."""

from __future__ import annotations

from datetime import UTC, datetime

from sync.processor.transactions import TransactionHoldback
from sync.replica import Delivery
from sync.types import ChangeEvent, Lsn, Op, Position, TableRef

CITIZEN, HOUSEHOLD, LAND = "population.citizen", "population.household", "land.land_parcel"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def delivery(
    lsn: int,
    index: int,
    topic: str = CITIZEN,
    partition: int = 0,
    offset: int = 0,
    counts: dict[str, int] | None = None,
) -> Delivery:
    position = Position(Lsn(lsn), index)
    event = ChangeEvent(
        op=Op.UPDATE,
        table=TableRef("public", topic.split(".")[1]),
        key={"id": f"{lsn}-{index}"},
        before=None,
        after={"id": f"{lsn}-{index}"},
        position=position,
        txid=lsn,
        commit_time=datetime(2026, 1, 1, tzinfo=UTC),
        event_id=ChangeEvent.make_event_id("population", position),
        source="population",
        tx_events=counts if counts is not None else {CITIZEN: 1},
    )
    return Delivery(event, topic, partition, offset)


def test_a_transaction_of_one_event_needs_no_wait() -> None:
    holdback = TransactionHoldback([CITIZEN])
    one = delivery(100, 1)
    assert holdback.admit([one]) == [one]
    assert not holdback.holding


def test_a_transaction_over_two_partitions_and_two_topics_is_released_whole() -> None:
    counts = {CITIZEN: 2, HOUSEHOLD: 1}
    holdback = TransactionHoldback([CITIZEN, HOUSEHOLD])
    first = delivery(100, 1, CITIZEN, 0, 10, counts)
    second = delivery(100, 2, HOUSEHOLD, 2, 7, counts)
    third = delivery(100, 3, CITIZEN, 1, 4, counts)
    other = delivery(200, 1, CITIZEN, 0, 11)
    assert holdback.admit([first, other]) == [other]
    assert holdback.held_from() == {(CITIZEN, 0): 10}, "commit stops at the held event"
    assert holdback.admit([second]) == []
    assert holdback.held_from() == {(CITIZEN, 0): 10, (HOUSEHOLD, 2): 7}
    assert sorted(d.offset for d in holdback.admit([third])) == [4, 7, 10]
    assert not holdback.holding and holdback.held_from() == {}


def test_only_the_topics_this_subscriber_reads_are_waited_for() -> None:
    counts = {CITIZEN: 2, LAND: 5}
    holdback = TransactionHoldback([CITIZEN])
    first, second = delivery(100, 1, counts=counts), delivery(100, 2, partition=1, counts=counts)
    assert holdback.admit([first]) == []
    assert holdback.admit([second]) == [first, second]


def test_a_duplicate_is_not_counted_twice() -> None:
    counts = {CITIZEN: 2}
    holdback = TransactionHoldback([CITIZEN])
    first = delivery(100, 1, counts=counts)
    assert holdback.admit([first, first]) == []
    assert holdback.holding


def test_an_incomplete_transaction_is_released_after_the_wait() -> None:
    clock = Clock()
    holdback = TransactionHoldback([CITIZEN], max_wait=10.0, clock=clock)
    first = delivery(100, 1, counts={CITIZEN: 3})
    holdback.admit([first])
    clock.now = 9.9
    assert holdback.expired() == ([], 0)
    clock.now = 10.0
    assert holdback.expired() == ([first], 1)
    assert not holdback.holding


def test_too_large_or_shared_transactions_are_not_held() -> None:
    holdback = TransactionHoldback([CITIZEN], max_events=100)
    big = delivery(100, 1, counts={CITIZEN: 101})
    assert holdback.admit([big]) == [big]
    shared = delivery(200, 1, counts={CITIZEN: 2})
    assert holdback.admit([shared], whole=False) == [shared]
    assert not holdback.holding


def test_events_from_partitions_read_elsewhere_now_are_forgotten() -> None:
    counts = {CITIZEN: 3}
    holdback = TransactionHoldback([CITIZEN])
    holdback.admit([delivery(100, 1, partition=0, counts=counts)])
    holdback.admit([delivery(100, 2, partition=1, offset=3, counts=counts)])
    holdback.keep_only([(CITIZEN, 1)])
    assert holdback.held_from() == {(CITIZEN, 1): 3}
    holdback.keep_only([])
    assert not holdback.holding


def test_a_late_copy_of_a_released_transaction_passes_at_once() -> None:
    counts = {CITIZEN: 2}
    holdback = TransactionHoldback([CITIZEN])
    first, second = delivery(100, 1, counts=counts), delivery(100, 2, partition=1, counts=counts)
    assert holdback.admit([first, second]) == [first, second]
    copy = delivery(100, 2, partition=2, offset=9, counts=counts)  # a truncate's other copy
    assert holdback.admit([copy]) == [copy]
    assert not holdback.holding
