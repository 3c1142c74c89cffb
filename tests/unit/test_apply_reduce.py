"""The replica's batch reduction: per topic, only the newest change of each key is applied, so
the order and repetition in which Kafka delivers a batch cannot change what lands."""

from __future__ import annotations

import dataclasses
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


# ---- truncates ---------------------------------------------------------------------------


def truncate(lsn: int, index: int = 1) -> ChangeEvent:
    return dataclasses.replace(change(Op.TRUNCATE, "", lsn, index), key={}, after=None)


def test_a_truncate_goes_first_and_drops_the_older_changes_of_its_topic() -> None:
    older = change(Op.UPDATE, "1", lsn=10)
    same_transaction_before = change(Op.CREATE, "2", lsn=20, index=1)
    cut = truncate(lsn=20, index=2)
    same_transaction_after = change(Op.CREATE, "3", lsn=20, index=3)
    newer = change(Op.UPDATE, "1", lsn=30)
    batch = [newer, same_transaction_after, cut, older, same_transaction_before]
    (first, *rest) = _newest_per_key([deliver(e) for e in batch])[CITIZEN_TOPIC]
    assert first == cut
    assert sorted(e.position for e in rest) == [same_transaction_after.position, newer.position]


def test_copies_of_a_truncate_from_every_partition_count_once() -> None:
    cut = truncate(lsn=20)
    copies = [Delivery(cut, CITIZEN_TOPIC, partition=p, offset=7 + p) for p in range(3)]
    late = Delivery(change(Op.CREATE, "1", lsn=10), CITIZEN_TOPIC, partition=2, offset=1)
    assert _newest_per_key([copies[0], late, *copies[1:]]) == {CITIZEN_TOPIC: [cut]}


def test_the_newest_of_several_truncates_stands_for_all() -> None:
    first, between, second = truncate(lsn=10), change(Op.CREATE, "1", lsn=15), truncate(lsn=20)
    result = _newest_per_key([deliver(e) for e in (first, between, second)])
    assert result == {CITIZEN_TOPIC: [second]}


def test_a_truncate_leaves_other_topics_alone() -> None:
    household = change(Op.CREATE, "1", lsn=10)
    cut = truncate(lsn=20)
    result = _newest_per_key([deliver(household, topic=HOUSEHOLD_TOPIC), deliver(cut)])
    assert result == {HOUSEHOLD_TOPIC: [household], CITIZEN_TOPIC: [cut]}


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


# ---- the reduction against a model of the replica ---------------------------------------

Replica = dict[tuple[str, str], Position]  # (topic, key) -> position of the row held


def apply_one_by_one(deliveries: list[Delivery]) -> Replica:
    """What an empty replica holds after each event is applied alone, in the given order, under
    the applier's guards: an older row loses, deletes are remembered, and a truncate empties
    its topic's table and makes every older change a no-op."""
    live: Replica = {}
    deleted: Replica = {}
    truncated: dict[str, Position] = {}
    for d in deliveries:
        topic, event = d.topic, d.event
        if topic in truncated and event.position < truncated[topic]:
            continue
        if event.op is Op.TRUNCATE:
            truncated[topic] = event.position
            for state in (live, deleted):
                for slot in [s for s, at in state.items() if s[0] == topic and at < event.position]:
                    del state[slot]
            continue
        slot = (topic, event.key["personal_id"])
        held, tomb = live.get(slot), deleted.get(slot)
        if event.op is Op.DELETE:
            if held is not None and held < event.position:
                del live[slot]
            elif held is not None:
                continue  # the row held is newer: nothing to remember
            if tomb is None or tomb < event.position:
                deleted[slot] = event.position
        else:
            if (tomb is None or tomb < event.position) and (held is None or held < event.position):
                live[slot] = event.position
            if tomb is not None and tomb < event.position:
                del deleted[slot]
    return live


@st.composite
def batches_with_truncates(draw: st.DrawFn) -> list[Delivery]:
    """Row changes as in :func:`batches`, and truncates at their own positions (index 9, which
    no row change of the batch uses), each copied to one to three partitions."""
    changes = draw(batches())
    topics = st.sampled_from([CITIZEN_TOPIC, HOUSEHOLD_TOPIC])
    cuts = draw(
        st.lists(
            st.tuples(topics, st.integers(0, 50), st.integers(1, 3)), max_size=3, unique_by=str
        )
    )
    copies = [
        Delivery(truncate(lsn, index=9), topic, partition=p, offset=100 + p)
        for topic, lsn, partitions in cuts
        for p in range(partitions)
    ]
    return [*changes, *copies]


@settings(max_examples=300)
@given(data=st.data(), deliveries=batches_with_truncates())
def test_applying_the_reduced_batch_equals_applying_every_event_alone_in_any_order(
    data: st.DataObject, deliveries: list[Delivery]
) -> None:
    in_order = apply_one_by_one(deliveries)
    shuffled = data.draw(st.permutations(deliveries))
    assert apply_one_by_one(shuffled) == in_order
    reduction = _newest_per_key(shuffled)
    reduced_batch = [deliver(e, topic=topic) for topic, events in reduction.items() for e in events]
    assert apply_one_by_one(reduced_batch) == in_order
    for topic, events in reduction.items():
        cuts = [
            d.event.position for d in deliveries if d.topic == topic and d.event.op is Op.TRUNCATE
        ]
        if cuts:  # the newest truncate first, once, and nothing it supersedes
            assert events[0].op is Op.TRUNCATE and events[0].position == max(cuts)
            assert all(e.position > max(cuts) for e in events[1:])
