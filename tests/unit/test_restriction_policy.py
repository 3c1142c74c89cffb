"""Restrictions in the projection: a subscription on consent or legitimate interest withholds
the people it is given, as if they were outside its row filter; one on other grounds ignores
them; the manifest check refuses a restrictable subscription whose rows could not be found."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from sync.audit.restrictions import check_personal_id
from sync.contracts import load_contracts
from sync.policy import DecisionKind, Projection, Subscription
from sync.policy.checks import person_fields, subscription_problems
from sync.types import Op

CONTRACTS = load_contracts(Path(__file__).resolve().parents[2] / "schemas" / "avro")
CITIZEN = CONTRACTS["population.citizen"]
HOUSEHOLD = CONTRACTS["population.household"]
PERSON, OTHER = "001090000001", "001090000002"


def subscription(basis: str = "consent", **fields: Any) -> Subscription:
    values: dict[str, Any] = {
        "agency": "ios",
        "topic": "population.citizen",
        "purpose": "A survey of people who agreed to take part.",
        "legal_basis": {"basis": basis, "reference": "Law 91/2025/QH15."},
        "fields": ["personal_id", "sex", "province_code"],
    }
    values.update(fields)
    return Subscription.model_validate(values)


def citizen(personal_id: str = PERSON, **changes: Any) -> dict[str, Any]:
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
    }
    return row | changes


def withholding(sub: Subscription, *people: str) -> Projection:
    projection = Projection(CITIZEN, sub, {"k": b"k" * 32})
    projection.withhold(frozenset(people))
    return projection


def test_the_restricted_person_is_skipped_and_others_pass() -> None:
    p = withholding(subscription(), PERSON)
    assert p.decide(None, citizen(), Op.CREATE).kind is DecisionKind.SKIP
    assert p.decide(None, citizen(OTHER), Op.CREATE).kind is DecisionKind.UPSERT
    assert p.row(citizen()) is None


def test_a_change_without_the_old_image_deletes_the_persons_row() -> None:
    p = withholding(subscription(), PERSON)
    decision = p.decide(None, citizen(province_code="79"), Op.UPDATE, key={"personal_id": PERSON})
    assert (decision.kind, decision.row) == (DecisionKind.DELETE, {"personal_id": PERSON})
    # with the old image the replica cannot hold the row: nothing to send
    assert p.decide(citizen(), citizen(sex="nữ"), Op.UPDATE).kind is DecisionKind.SKIP


def test_a_lifted_restriction_lets_the_person_through_again() -> None:
    p = withholding(subscription(), PERSON)
    p.withhold(frozenset())
    assert p.decide(None, citizen(), Op.CREATE).kind is DecisionKind.UPSERT


@pytest.mark.parametrize("basis", ["public_duty", "legal_obligation", "contract"])
def test_other_legal_bases_ignore_restrictions(basis: str) -> None:
    p = withholding(subscription(basis), PERSON)
    assert p.person_fields == ()
    assert p.withholding == frozenset()
    assert p.decide(None, citizen(), Op.CREATE).kind is DecisionKind.UPSERT


def test_legitimate_interest_is_restrictable_too() -> None:
    p = withholding(subscription("legitimate_interest"), PERSON)
    assert p.decide(None, citizen(), Op.CREATE).kind is DecisionKind.SKIP


def test_the_persons_columns_are_found_hashed_as_the_replica_holds_them() -> None:
    sub = subscription(transforms={"personal_id": {"kind": "hash", "key": "k"}})
    p = withholding(sub, PERSON)
    digest = hmac.new(b"k" * 32, PERSON.encode(), hashlib.sha256).hexdigest()
    assert p.person_columns(PERSON) == {"personal_id": digest}
    assert Projection(CITIZEN, subscription()).person_columns(PERSON) == {"personal_id": PERSON}


def test_every_personal_id_field_of_a_row_counts() -> None:
    assert person_fields(HOUSEHOLD) == ("personal_id", "head_personal_id")
    sub = subscription(
        topic="population.household",
        fields=["household_id", "personal_id", "head_personal_id", "province_code"],
    )
    p = Projection(HOUSEHOLD, sub)
    p.withhold(frozenset({PERSON}))
    member_of_restricted_head = {
        "household_id": "h1",
        "personal_id": OTHER,
        "head_personal_id": PERSON,
        "province_code": "01",
    }
    assert p.row(member_of_restricted_head) is None


def test_a_consent_subscription_must_receive_a_personal_id() -> None:
    sub = subscription(fields=["sex", "province_code", "personal_id"])
    assert list(subscription_problems(sub, CITIZEN)) == []
    without = subscription(fields=["household_id", "province_code"], topic="population.household")
    problems = dict(subscription_problems(without, HOUSEHOLD))
    assert "personal_id or head_personal_id" in problems["fields"]
    assert "'consent' lets a data subject object or withdraw" in problems["fields"]


def test_enterprise_rows_name_no_person_to_restrict() -> None:
    sub = subscription(
        topic="business.enterprise", fields=["enterprise_code", "name_vi", "province_code"]
    )
    problems = dict(subscription_problems(sub, CONTRACTS["business.enterprise"]))
    assert "rows name no personal id" in problems["legal_basis.basis"]


@pytest.mark.parametrize("bad", ["12345", "00109000000a", " 001090000001", ""])
def test_personal_ids_are_twelve_digits(bad: str) -> None:
    with pytest.raises(ValueError, match="a personal id is 12 digits"):
        check_personal_id(bad)
    assert check_personal_id(PERSON) == PERSON
