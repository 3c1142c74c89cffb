"""One worker's agencies decode each message once between them: agencies in step take the
event another decoded, a bounded cache forgets the oldest first (a lagging agency decodes for
itself), and an event is served only for the same topic, partition, offset, bytes and codec."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from sync.contracts import Contract, EventCodec, load_contracts
from sync.errors import DecodeError
from sync.metrics import ProcessorMetrics
from sync.policy import Projection
from sync.policy.models import Subscription
from sync.processor.decode_cache import DecodeCache
from sync.processor.decoding import BatchDecoder, RawMessage
from sync.types import ChangeEvent, Lsn, Op, Position, TableRef

CITIZEN = load_contracts()["population.citizen"]
KEY_ID, VALUE_ID = 1, 2
WRITERS = {KEY_ID: CITIZEN.key_schema, VALUE_ID: EventCodec(CITIZEN).value_schema}
lookup = WRITERS.__getitem__
NOW = datetime(2026, 12, 2, tzinfo=UTC)


def citizen(n: int, province: str = "01") -> ChangeEvent:
    row: dict[str, Any] = {f["name"]: None for f in CITIZEN.row_schema["fields"]}
    row |= {"personal_id": f"{n:012d}", "full_name": f"Nguyễn Văn {n}", "sex": "nam"}
    row |= {"province_code": province, "district_code": "001", "ward_code": "00001"}
    row |= {"date_of_birth": date(1990, 1, n % 28 + 1), "updated_at": NOW}
    return ChangeEvent(
        op=Op.CREATE,
        table=TableRef("public", "citizen"),
        key={"personal_id": row["personal_id"]},
        before=None,
        after=row,
        position=Position(Lsn(0x16B374D848), n + 1),
        txid=901,
        commit_time=NOW,
        event_id="",
        source="population",
        tx_events={CITIZEN.topic: 10},
    )


def message(n: int, offset: int | None = None, topic: str = CITIZEN.topic, **kw: Any) -> RawMessage:
    key, value = EventCodec(CITIZEN).encode(citizen(n, **kw), KEY_ID, VALUE_ID)
    return RawMessage(topic, 0, n if offset is None else offset, key, value)


def decode(cache: DecodeCache, m: RawMessage, codec: EventCodec | None = None) -> ChangeEvent:
    codec = codec or cache.codec(CITIZEN)
    return cache.decode(m.coordinates, m.key, m.value, codec, lookup)


def test_agencies_in_step_decode_each_message_once() -> None:
    cache = DecodeCache(100)
    messages = [message(n) for n in range(5)]
    first = [decode(cache, m) for m in messages]
    second = [decode(cache, m) for m in messages]
    assert (cache.hits, cache.misses) == (5, 5)
    assert all(a is b for a, b in zip(first, second, strict=True))
    assert first[3].key == {"personal_id": "000000000003"}


def test_the_cache_holds_at_most_its_bound_and_forgets_the_oldest_first() -> None:
    cache = DecodeCache(3)
    messages = [message(n) for n in range(5)]
    for m in messages:
        decode(cache, m)
    assert len(cache) == 3
    decode(cache, messages[4])  # among the newest three: kept
    assert cache.hits == 1
    lagging = decode(cache, messages[0])  # forgotten: the lagging agency decodes it again
    assert cache.misses == 6 and lagging.key == {"personal_id": "000000000000"}
    assert len(cache) == 3
    decode(cache, messages[2])  # evicted to make room for message 0, the oldest then kept
    assert cache.misses == 7


def test_nothing_is_kept_without_room() -> None:
    cache = DecodeCache(0)
    decode(cache, message(1))
    decode(cache, message(1))
    assert (len(cache), cache.hits, cache.misses) == (0, 0, 2)
    with pytest.raises(ValueError):
        DecodeCache(-1)


def test_the_same_coordinates_on_another_topic_are_another_message() -> None:
    cache = DecodeCache(10)
    here = decode(cache, message(1, offset=7))
    there = decode(cache, message(2, offset=7, topic="other." + CITIZEN.topic))
    assert cache.hits == 0
    assert (here.key["personal_id"], there.key["personal_id"]) == ("000000000001", "000000000002")


def test_a_new_message_at_old_coordinates_is_decoded_anew() -> None:
    """After a topic is deleted and created again, offset 0 holds another message."""
    cache = DecodeCache(10)
    old = decode(cache, message(1, offset=0))
    new_value = message(2, offset=0)
    new_key = message(1, offset=0, province="79")  # the same key, another value
    assert decode(cache, new_value).key == {"personal_id": "000000000002"}
    assert decode(cache, new_key).after["province_code"] == "79"  # type: ignore[index]
    assert cache.hits == 0 and cache.misses == 3 and len(cache) == 1
    assert old.after["province_code"] == "01"  # type: ignore[index]
    assert decode(cache, new_key) is not old and cache.hits == 1


def test_an_event_is_served_only_through_the_codec_that_decoded_it() -> None:
    cache = DecodeCache(10)
    same = copy.deepcopy(CITIZEN)
    assert cache.codec(same) is cache.codec(CITIZEN)  # an equal contract shares the codec
    changed = copy.deepcopy(CITIZEN)
    changed.row_schema["fields"] = [
        f for f in changed.row_schema["fields"] if f["name"] != "ethnicity"
    ]
    other = cache.codec(changed)
    assert other is not cache.codec(CITIZEN)
    m = message(1)
    decode(cache, m)
    through_other = decode(cache, m, other)
    assert cache.hits == 0 and "ethnicity" not in through_other.after  # type: ignore[operator]


def test_what_does_not_decode_is_never_kept() -> None:
    cache = DecodeCache(10)
    broken = RawMessage(CITIZEN.topic, 0, 1, b"\x00\x00\x00\x00\x01", b"\x00\x00\x00\x00\x02\x09")
    for _ in range(2):
        with pytest.raises(DecodeError):
            decode(cache, broken)
    assert (len(cache), cache.misses) == (0, 2)


def _agency(code: str, contract: Contract, cache: DecodeCache, row_filter: str) -> BatchDecoder:
    subscription = Subscription.model_validate(
        {
            "agency": code,
            "topic": contract.topic,
            "purpose": "Tests of the decode cache.",
            "legal_basis": {"basis": "public_duty", "reference": "Law No. 1/2025/QH15."},
            "fields": ["personal_id", "full_name", "province_code"],
            "row_filter": row_filter,
        }
    )
    projection = Projection(contract, subscription)
    return BatchDecoder(code, {contract.topic: contract}, {contract.topic: projection}, True, cache)


def test_each_agency_projects_the_shared_event_for_itself() -> None:
    cache = DecodeCache(100)
    hanoi = _agency("hanoi", load_contracts()["population.citizen"], cache, "province_code == '01'")
    hcmc = _agency("hcmc", load_contracts()["population.citizen"], cache, "province_code == '79'")
    batch = [message(1), message(2, province="79"), RawMessage(CITIZEN.topic, 0, 3, None, b"")]
    for_hanoi = hanoi.decode(batch, lookup)
    for_hcmc = hcmc.decode(batch, lookup)
    assert (cache.hits, cache.misses) == (2, 4)  # the broken one is decoded by each
    applied = [
        [d.event.key["personal_id"] for d in b.deliveries if d.applies]
        for b in (for_hanoi, for_hcmc)
    ]
    assert applied == [["000000000001"], ["000000000002"]]
    assert [len(b.letters) for b in (for_hanoi, for_hcmc)] == [1, 1]
    assert set(for_hanoi.disclosures) == {(CITIZEN.topic, 0, 1)}
    assert set(for_hcmc.disclosures) == {(CITIZEN.topic, 0, 2)}
    # the shared event is untouched by either projection
    shared = decode(cache, batch[0])
    assert shared.after["full_name"] == "Nguyễn Văn 1" and "sex" in shared.after  # type: ignore[index,operator]


def test_hits_and_misses_are_exported() -> None:
    registry = CollectorRegistry()
    metrics = ProcessorMetrics.create(registry)
    cache = DecodeCache(10, metrics.decode_cache_lookups)
    for m in (message(1), message(1), message(2)):
        decode(cache, m)
    name = "govsync_processor_decode_cache_lookups_total"
    assert registry.get_sample_value(name, {"result": "hit"}) == 1
    assert registry.get_sample_value(name, {"result": "miss"}) == 2
