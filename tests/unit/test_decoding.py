"""Decoding and projecting a batch: whatever one message makes a decoder, a lookup or a
transform raise, that message becomes a dead letter with a reason and no values, and the
rest of the batch goes on; only a retryable error stops the batch, to be decoded again."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from sync.contracts import EventCodec, load_contracts
from sync.errors import ContractError, DecodeError, RegistryUnavailable
from sync.policy import FEDERATION_FILE, Projection, load_manifest
from sync.processor.decoding import BatchDecoder, RawMessage
from sync.types import ChangeEvent, Lsn, Op, Position, TableRef

CONTRACTS = load_contracts(Path(__file__).resolve().parents[2] / "schemas" / "avro")
TOPIC = "population.citizen"
CITIZEN = CONTRACTS[TOPIC]
MANIFEST = load_manifest(FEDERATION_FILE, CONTRACTS)
SECRETS = {"gso_pseudonym": b"g" * 32}
KEY_ID, VALUE_ID = 7, 8
CODEC = EventCodec(CITIZEN)
SCHEMAS: dict[int, Mapping[str, Any]] = {KEY_ID: CITIZEN.key_schema, VALUE_ID: CODEC.value_schema}


def lookup(schema_id: int) -> Mapping[str, Any]:
    try:
        return SCHEMAS[schema_id]
    except KeyError:
        raise DecodeError(f"unknown schema id {schema_id}") from None


def message(offset: int, personal_id: str = "001090000001", **changes: Any) -> RawMessage:
    row: dict[str, Any] = {
        "personal_id": personal_id,
        "full_name": "Nguyễn Văn An",
        "date_of_birth": date(1990, 5, 1),
        "sex": "nam",
        "ethnicity": "Kinh",
        "province_code": "01",
        "district_code": "001",
        "ward_code": "00001",
        "updated_at": datetime(2025, 7, 1, tzinfo=UTC),
        **changes,
    }
    position = Position(Lsn(0x1000 + offset), 0)
    event = ChangeEvent(
        op=Op.CREATE,
        table=TableRef("public", "citizen"),
        key={"personal_id": personal_id},
        before=None,
        after=row,
        position=position,
        txid=0,
        commit_time=datetime(2025, 7, 1, tzinfo=UTC),
        event_id=ChangeEvent.make_event_id("population", position),
        source="population",
    )
    key, value = CODEC.encode(event, KEY_ID, VALUE_ID)
    return RawMessage(TOPIC, 0, offset, key, value)


def decoder(agency: str = "vss", audited: bool = False) -> BatchDecoder:
    projections = {}
    if agency != "vss":
        subscription = MANIFEST.subscription(agency, TOPIC)
        projections[TOPIC] = Projection(CITIZEN, subscription, SECRETS)
    return BatchDecoder(agency, {TOPIC: CITIZEN}, projections, audited)


def test_an_undecodable_message_is_a_dead_letter_and_the_batch_goes_on() -> None:
    batch = decoder().decode(
        [message(1), RawMessage(TOPIC, 0, 2, b"not-avro", b"\x01"), message(3, "001090000003")],
        lookup,
    )
    assert [d.offset for d in batch.deliveries] == [1, 3]
    [letter] = batch.letters
    assert (letter.reason, letter.topic, letter.partition, letter.offset) == (
        "decode_error",
        TOPIC,
        0,
        2,
    )
    assert letter.agency == "vss" and letter.error.startswith("DecodeError: ")


def test_an_unexpected_exception_while_decoding_names_its_type_not_its_text() -> None:
    def exploding(schema_id: int) -> Mapping[str, Any]:
        if schema_id == VALUE_ID:
            raise RuntimeError("schema of 001090000001 born 294247-01-10")
        return lookup(schema_id)

    batch = decoder().decode([message(5)], exploding)
    [letter] = batch.letters
    assert letter.reason == "decode_error" and letter.offset == 5
    assert letter.error == "RuntimeError: unexpected error while decoding"
    assert batch.deliveries == []


def test_a_message_of_a_topic_without_codec_is_a_dead_letter() -> None:
    stray = RawMessage("population.unknown", 1, 9, b"k", b"v")
    batch = decoder().decode([stray, message(10)], lookup)
    assert [(x.topic, x.reason) for x in batch.letters] == [("population.unknown", "decode_error")]
    assert [d.offset for d in batch.deliveries] == [10]
    assert decoder().schema_ids([stray, message(10)]) == {KEY_ID, VALUE_ID}


def test_a_retryable_lookup_failure_stops_the_batch_to_be_decoded_again() -> None:
    def unreachable(schema_id: int) -> Mapping[str, Any]:
        raise RegistryUnavailable("registry unreachable")

    with pytest.raises(RegistryUnavailable):
        decoder().decode([message(1)], unreachable)


class FailingOn:
    """A projection that fails on one citizen as a transform meeting an odd value would."""

    def __init__(self, projection: Projection, personal_id: str, error: Exception) -> None:
        self.projection = projection
        self.subscription = projection.subscription
        self.personal_id = personal_id
        self.error = error

    def project_event(self, event: ChangeEvent) -> ChangeEvent | None:
        if event.key["personal_id"] == self.personal_id:
            raise self.error
        return self.projection.project_event(event)


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (
            ContractError(
                f"{TOPIC}: field 'date_of_birth': year takes a date, not FarDate",
                contract=TOPIC,
                field="date_of_birth",
            ),
            f"ContractError: {TOPIC}: field 'date_of_birth': year takes a date, not FarDate",
        ),
        (
            ZeroDivisionError("001090000002 / 0"),
            "ZeroDivisionError: unexpected error while projecting",
        ),
    ],
)
def test_a_projection_that_raises_makes_a_projection_error(error: Exception, text: str) -> None:
    gso = decoder("gso", audited=True)
    gso.projections[TOPIC] = FailingOn(gso.projections[TOPIC], "001090000002", error)  # type: ignore[assignment]
    batch = gso.decode([message(1), message(2, "001090000002")], lookup)
    [letter] = batch.letters
    assert (letter.reason, letter.offset, letter.error) == ("projection_error", 2, text)
    assert letter.event_id, "decoded: its event id is known"
    [delivered] = batch.deliveries
    assert delivered.event.after is not None and delivered.event.after["date_of_birth"] == 1990
    assert list(batch.disclosures) == [(TOPIC, 0, 1)], "the failed one discloses nothing"
    assert batch.disclosures[(TOPIC, 0, 1)].subjects == ("001090000001",), "the real id"


def test_a_change_outside_the_filter_is_counted_and_delivered_only_for_its_offset() -> None:
    batch = decoder("hcmc").decode([message(1), message(2, province_code="79")], lookup)
    assert [(d.offset, d.applies) for d in batch.deliveries] == [(1, False), (2, True)]
    assert batch.filtered == {TOPIC: 1}
    assert batch.letters == [] and batch.disclosures == {}, "not audited"
