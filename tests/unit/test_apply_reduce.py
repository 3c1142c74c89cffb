"""The replica's batch reduction: per topic, only the newest change of each key is applied, so
the order and repetition in which Kafka delivers a batch cannot change what lands."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sync.replica.apply import Delivery, _newest_per_key
from sync.types import ChangeEvent, Lsn, Op, Position, TableRef

CITIZEN_TOPIC, HOUSEHOLD_TOPIC = "population.citizen", "population.household"
WHEN = datetime(2024, 5, 6, tzinfo=UTC)


def change(
    op: Op,
    key: str,
    lsn: int,
    index: int = 1,
    name: str = "An",
    key_field: str = "personal_id",
) -> ChangeEvent:
    position = Position(Lsn(lsn), index)
    after = None if op is Op.DELETE else {key_field: key, "full_name": name}
    return ChangeEvent(
        op=op,
        table=TableRef("public", "citizen"),
        key={key_field: key},
        before=None,
        after=after,
        position=position,
        txid=lsn,
        commit_time=WHEN,
        event_id=ChangeEvent.make_event_id("population", position),
        source="population",
    )


def deliver(event: ChangeEvent, topic: str = CITIZEN_TOPIC, offset: int = 0) -> Delivery:
    return Delivery(event, topic, partition=0, offset=offset)


def reduced(deliveries: list[Delivery]) -> dict[str, dict[tuple[Any, ...], ChangeEvent]]:
    """The reduction as {topic: {key values: event}}, independent of list order."""
    return {
        topic: {tuple(e.key.values()): e for e in events}
        for topic, events in _newest_per_key(deliveries).items()
    }


def test_empty_batch_reduces_to_nothing() -> None:
    assert _newest_per_key([]) == {}


def test_newest_update_of_a_key_wins() -> None:
    old = change(Op.UPDATE, "1", lsn=10, name="An")
    new = change(Op.UPDATE, "1", lsn=20, name="Bình")
    assert _newest_per_key([deliver(old), deliver(new)]) == {CITIZEN_TOPIC: [new]}
    assert _newest_per_key([deliver(new), deliver(old)]) == {CITIZEN_TOPIC: [new]}


def test_index_decides_inside_one_transaction() -> None:
    first = change(Op.UPDATE, "1", lsn=10, index=1, name="An")
    second = change(Op.UPDATE, "1", lsn=10, index=2, name="Bình")
    assert _newest_per_key([deliver(second), deliver(first)]) == {CITIZEN_TOPIC: [second]}


def test_streamed_change_beats_snapshot_read_at_the_same_lsn() -> None:
    snapshot = change(Op.READ, "1", lsn=10, index=0, name="An")
    streamed = change(Op.UPDATE, "1", lsn=10, index=1, name="Bình")
    assert _newest_per_key([deliver(streamed), deliver(snapshot)]) == {CITIZEN_TOPIC: [streamed]}


def test_delete_newer_than_an_update_wins() -> None:
    updated = change(Op.UPDATE, "1", lsn=10)
    deleted = change(Op.DELETE, "1", lsn=11)
    assert _newest_per_key([deliver(deleted), deliver(updated)]) == {CITIZEN_TOPIC: [deleted]}


def test_create_after_a_delete_of_the_same_key_wins() -> None:
    deleted = change(Op.DELETE, "1", lsn=10, index=1)
    recreated = change(Op.CREATE, "1", lsn=10, index=2)
    assert _newest_per_key([deliver(deleted), deliver(recreated)]) == {CITIZEN_TOPIC: [recreated]}


def test_each_key_keeps_its_own_newest_change() -> None:
    a_old, a_new = change(Op.CREATE, "a", lsn=1), change(Op.UPDATE, "a", lsn=5)
    b_only = change(Op.CREATE, "b", lsn=3)
    c_gone = change(Op.DELETE, "c", lsn=4)
    result = reduced([deliver(e) for e in (a_old, b_only, a_new, c_gone)])
    assert result == {CITIZEN_TOPIC: {("a",): a_new, ("b",): b_only, ("c",): c_gone}}


def test_same_key_on_two_topics_is_kept_per_topic() -> None:
    citizen = change(Op.UPDATE, "1", lsn=5)
    household = change(Op.UPDATE, "1", lsn=9)
    result = _newest_per_key([deliver(citizen), deliver(household, topic=HOUSEHOLD_TOPIC)])
    assert result == {CITIZEN_TOPIC: [citizen], HOUSEHOLD_TOPIC: [household]}


def test_redelivered_event_is_kept_once() -> None:
    event = change(Op.UPDATE, "1", lsn=5)
    result = _newest_per_key([deliver(event, offset=1), deliver(event, offset=7)])
    assert result == {CITIZEN_TOPIC: [event]}


def test_composite_keys_are_compared_by_all_their_values() -> None:
    def household(province: str, number: str, lsn: int) -> ChangeEvent:
        position = Position(Lsn(lsn), 1)
        return ChangeEvent(
            op=Op.UPDATE,
            table=TableRef("public", "household"),
            key={"province_code": province, "book_number": number},
            before=None,
            after={"province_code": province, "book_number": number},
            position=position,
            txid=lsn,
            commit_time=WHEN,
            event_id=ChangeEvent.make_event_id("population", position),
            source="population",
        )

    hanoi, hue, hanoi_newer = (
        household("01", "7", 1),
        household("46", "7", 2),
        household("01", "7", 3),
    )
    result = reduced([deliver(e, topic=HOUSEHOLD_TOPIC) for e in (hanoi, hue, hanoi_newer)])
    assert result == {HOUSEHOLD_TOPIC: {("01", "7"): hanoi_newer, ("46", "7"): hue}}


# ---- property ----------------------------------------------------------------------------

_ops = st.sampled_from([Op.CREATE, Op.UPDATE, Op.DELETE, Op.READ])


@st.composite
def batches(draw: st.DrawFn) -> list[Delivery]:
    """Deliveries over a few keys and two topics; positions are unique per (topic, key), as
    they are for changes of one source row."""
    keys = st.sampled_from(["1", "2", "3", "4"])
    topics = st.sampled_from([CITIZEN_TOPIC, HOUSEHOLD_TOPIC])
    positions = st.tuples(st.integers(0, 50), st.integers(0, 5))
    items = draw(
        st.lists(
            st.tuples(topics, keys, positions, _ops),
            min_size=0,
            max_size=25,
            unique_by=lambda item: (item[0], item[1], item[2]),
        )
    )
    return [
        deliver(change(op, key, lsn=lsn, index=index), topic=topic, offset=n)
        for n, (topic, key, (lsn, index), op) in enumerate(items)
    ]


@settings(max_examples=200)
@given(data=st.data(), deliveries=batches())
def test_any_order_and_repetition_reduces_to_the_same_result(
    data: st.DataObject, deliveries: list[Delivery]
) -> None:
    expected = reduced(deliveries)
    repeats = data.draw(st.lists(st.sampled_from(deliveries), max_size=10)) if deliveries else []
    shuffled = data.draw(st.permutations([*deliveries, *repeats]))
    assert reduced(shuffled) == expected


@settings(max_examples=200)
@given(deliveries=batches())
def test_reduction_keeps_exactly_the_newest_position_of_each_key(
    deliveries: list[Delivery],
) -> None:
    newest: dict[tuple[str, str], Position] = {}
    for d in deliveries:
        slot = (d.topic, d.event.key["personal_id"])
        newest[slot] = max(newest.get(slot, d.event.position), d.event.position)
    result = _newest_per_key(deliveries)
    flattened = {
        (topic, e.key["personal_id"]): e.position
        for topic, events in result.items()
        for e in events
    }
    assert flattened == newest
    assert sum(len(events) for events in result.values()) == len(newest)
