"""Projections: a subscriber never receives a field outside its allow-list, transforms do what
they say (masking, keyed hashing, years), and a row that moves out of a filter becomes a delete
for the subscriber that had it and an upsert for the one that now has it."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync.contracts import Contract, columns_of, load_contracts
from sync.errors import ConfigError, ContractError
from sync.policy import (
    FEDERATION_FILE,
    DecisionKind,
    ManifestError,
    Projection,
    Subscription,
    load_manifest,
    project_row,
    project_schema,
)
from sync.policy.transforms import Hash, Mask, Year, base_type
from sync.types import ChangeEvent, Lsn, Op, Position, TableRef

REPO = Path(__file__).resolve().parents[2]
CONTRACTS = load_contracts(REPO / "schemas" / "avro")
CITIZEN = CONTRACTS["population.citizen"]
MANIFEST = load_manifest(FEDERATION_FILE, CONTRACTS)
SECRETS = {"gso_pseudonym": b"g" * 32}


def citizen(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "personal_id": "001090000001",
        "full_name": "Nguyễn Văn An",
        "date_of_birth": date(1990, 5, 1),
        "sex": "nam",
        "ethnicity": "Kinh",
        "province_code": "01",
        "district_code": "001",
        "ward_code": "00001",
        "updated_at": datetime(2025, 7, 1, tzinfo=UTC),
    }
    row.update(changes)
    return row


def projection(agency: str, topic: str = "population.citizen") -> Projection:
    return Projection(CONTRACTS[topic], MANIFEST.subscription(agency, topic), SECRETS)


def subscription(**fields: Any) -> Subscription:
    values: dict[str, Any] = {
        "agency": "test",
        "topic": "population.citizen",
        "purpose": "testing",
        "legal_basis": {"basis": "public_duty", "reference": "a test"},
        "fields": ["personal_id", "full_name", "province_code"],
    }
    values.update(fields)
    return Subscription.model_validate(values)


# --- schemas ---------------------------------------------------------------------------------


@pytest.mark.parametrize("sub", MANIFEST.subscriptions, ids=lambda s: f"{s.agency}-{s.topic}")
def test_every_demo_projection_is_a_valid_avro_schema_of_allowed_fields(sub: Subscription) -> None:
    p = Projection(CONTRACTS[sub.topic], sub, SECRETS)
    fastavro.parse_schema(p.schema)
    fastavro.parse_schema(p.key_schema)
    names = [f["name"] for f in p.schema["fields"]]
    assert set(names) == set(sub.fields)
    assert names == [n for n in CONTRACTS[sub.topic].field_names if n in sub.fields]
    assert p.schema["namespace"] == f"vn.gov.subscriber.{sub.agency}.{CONTRACTS[sub.topic].domain}"
    for field in p.schema["fields"]:
        assert field["doc"] and field["classification"]
    columns_of(p.contract)  # the replica table can be created from it


def test_transformed_types_docs_and_columns() -> None:
    p = projection("gso")
    fields = {f["name"]: f for f in p.schema["fields"]}
    assert fields["personal_id"]["type"] == "string"
    assert fields["personal_id"]["govsync.transform"] == {"kind": "hash", "key": "gso_pseudonym"}
    assert "HMAC-SHA256" in fields["personal_id"]["doc"]
    assert fields["date_of_birth"]["type"] == "int"
    assert fields["personal_id"]["classification"] == "personal"  # pseudonyms stay personal data
    columns = {c.name: c for c in columns_of(p.contract)}
    assert columns["date_of_birth"].sql_type == "integer"
    assert columns["personal_id"].sql_type == "text" and columns["personal_id"].in_key
    assert "full_name" not in columns and "ethnicity" not in columns


def test_a_nullable_field_stays_nullable_when_transformed() -> None:
    p = projection("hanoi", "insurance.insured_person")
    card = next(f for f in p.schema["fields"] if f["name"] == "health_insurance_card_number")
    assert card["type"] == ["null", "string"] and card["default"] is None
    nullable_date = {"name": "d", "type": ["null", {"type": "int", "logicalType": "date"}]}
    assert Year(kind="year").output_type(nullable_date["type"]) == ["null", "int"]
    assert Hash(kind="hash", key="k").output_type(["null", "long"]) == ["null", "string"]


# --- rows ------------------------------------------------------------------------------------


def test_project_row_keeps_allowed_fields_and_applies_the_filter() -> None:
    sub = subscription(row_filter="province_code == '01'")
    assert project_row(citizen(), sub, {}) == {
        "personal_id": "001090000001",
        "full_name": "Nguyễn Văn An",
        "province_code": "01",
    }
    assert project_row(citizen(province_code="79"), sub, {}) is None
    assert project_row(citizen(province_code=None), sub, {}) is None  # unknown is not a pass


def test_pseudonymised_row_for_statistics() -> None:
    row = projection("gso").row(citizen())
    assert row is not None
    expected = hmac.new(SECRETS["gso_pseudonym"], b"001090000001", hashlib.sha256).hexdigest()
    assert row == {
        "personal_id": expected,
        "date_of_birth": 1990,
        "sex": "nam",
        "province_code": "01",
        "district_code": "001",
    }


MASKED = [
    (4, "0123456789", "******6789"),
    (4, "6789", "****"),  # no longer than keep: masked whole
    (4, "abc", "***"),
    (0, "secret", "******"),
    (2, "Nguyễn", "****ễn"),
    (4, "", ""),
    (4, None, None),
]


@pytest.mark.parametrize(("keep", "value", "masked"), MASKED)
def test_mask(keep: int, value: str | None, masked: str | None) -> None:
    assert Mask(kind="mask", keep=keep).bind({})(value) == masked


def test_hash_is_keyed_deterministic_and_hex() -> None:
    one = Hash(kind="hash", key="one").bind({"one": b"1" * 32})
    other = Hash(kind="hash", key="other").bind({"other": b"2" * 32})
    assert one("001090000001") == one("001090000001")
    assert one("001090000001") != one("001090000002")
    assert one("001090000001") != other("001090000001")
    assert len(one("x")) == 64 and int(one("x"), 16) >= 0
    assert one(12345) == one("12345")
    assert one(None) is None


def test_hash_secrets_are_required_and_long_enough_and_never_shown() -> None:
    with pytest.raises(ConfigError, match="no secret for hash key 'gso_pseudonym'"):
        Projection(CITIZEN, MANIFEST.subscription("gso", "population.citizen"), {})
    short = b"short-secret-value"
    with pytest.raises(ConfigError, match="at least 32") as caught:
        Hash(kind="hash", key="k").bind({"k": short})
    assert short.decode() not in str(caught.value)


YEARS = [
    (date(1990, 5, 1), 1990),
    (datetime(2025, 1, 1, 3, 0, tzinfo=timezone(timedelta(hours=7))), 2024),  # UTC year
    (datetime(2025, 1, 1, 3, 0), 2025),  # a local timestamp keeps its year
    (None, None),
]


@pytest.mark.parametrize(("value", "year"), YEARS)
def test_year(value: date | None, year: int | None) -> None:
    assert Year(kind="year").bind({})(value) == year


def test_a_value_a_transform_cannot_take_names_the_field_not_the_value() -> None:
    p = projection("gso")
    with pytest.raises(ContractError) as caught:
        p.row(citizen(date_of_birth="1990-05-01"))
    assert caught.value.field == "date_of_birth"
    assert "1990-05-01" not in str(caught.value)


# --- decisions -------------------------------------------------------------------------------


def test_a_move_is_a_delete_for_the_old_province_and_an_upsert_for_the_new() -> None:
    hanoi, hcmc = projection("hanoi"), projection("hcmc")
    before, after = citizen(province_code="01"), citizen(province_code="79")
    left = hanoi.decide(before, after, Op.UPDATE)
    assert (left.kind, left.row, left.reason) == (
        DecisionKind.DELETE,
        {"personal_id": "001090000001"},
        "moved_out",
    )
    arrived = hcmc.decide(before, after, Op.UPDATE)
    assert arrived.kind is DecisionKind.UPSERT
    assert arrived.row is not None and arrived.row["province_code"] == "79"
    assert "ethnicity" not in arrived.row


def test_decisions_for_rows_outside_the_filter() -> None:
    hanoi = projection("hanoi")
    outside, inside = citizen(province_code="79"), citizen(province_code="01")
    assert hanoi.decide(None, outside, Op.CREATE).kind is DecisionKind.SKIP
    assert hanoi.decide(None, outside, Op.READ).kind is DecisionKind.SKIP
    assert hanoi.decide(outside, outside, Op.UPDATE).kind is DecisionKind.SKIP
    assert hanoi.decide(outside, None, Op.DELETE).kind is DecisionKind.SKIP
    deleted = hanoi.decide(inside, None, Op.DELETE)
    assert (deleted.kind, deleted.row) == (DecisionKind.DELETE, {"personal_id": "001090000001"})


def test_without_the_old_image_the_subscriber_may_hold_the_row_so_it_gets_the_delete() -> None:
    hanoi = projection("hanoi")
    key = {"personal_id": "001090000001"}
    gone = hanoi.decide(None, None, Op.DELETE, key=key)
    assert (gone.kind, gone.row, gone.reason) == (DecisionKind.DELETE, key, "deleted")
    moved = hanoi.decide(None, citizen(province_code="79"), Op.UPDATE, key=key)
    assert (moved.kind, moved.reason) == (DecisionKind.DELETE, "may_have_moved_out")
    partial = hanoi.decide({"personal_id": "001090000001"}, None, Op.DELETE)
    assert partial.kind is DecisionKind.DELETE


def test_a_hashed_key_is_deleted_under_the_same_pseudonym_it_was_upserted_with() -> None:
    gso = projection("gso")
    upsert = gso.decide(None, citizen(), Op.CREATE)
    delete = gso.decide(citizen(), None, Op.DELETE, key={"personal_id": "001090000001"})
    assert upsert.row is not None and delete.row is not None
    assert delete.kind is DecisionKind.DELETE
    assert delete.row == gso.key_of(upsert.row)
    assert delete.row["personal_id"] != "001090000001"


def test_a_truncate_is_not_a_row_decision() -> None:
    with pytest.raises(ValueError, match="truncate"):
        projection("hanoi").decide(None, None, Op.TRUNCATE)


def event(op: Op, before: dict[str, Any] | None, after: dict[str, Any] | None) -> ChangeEvent:
    position = Position(Lsn(0x16B374D848), 3)
    return ChangeEvent(
        op=op,
        table=TableRef("public", "citizen"),
        key={"personal_id": "001090000001"},
        before=before,
        after=after,
        position=position,
        txid=7,
        commit_time=datetime(2025, 7, 1, tzinfo=UTC),
        event_id=ChangeEvent.make_event_id("population", position),
        source="population",
    )


def test_a_projected_event_keeps_every_other_field_of_the_change() -> None:
    source = dataclasses.replace(
        event(Op.UPDATE, citizen(), citizen(province_code="79")), tx_events={"t": 2}
    )
    kept = {f.name for f in dataclasses.fields(ChangeEvent)} - {"op", "key", "before", "after"}
    for moved in (
        projection("hcmc").project_event(source),
        projection("hanoi").project_event(source),
    ):
        assert moved is not None
        for name in kept:
            assert getattr(moved, name) == getattr(source, name), name
    deleted = projection("hanoi").project_event(source)
    assert deleted is not None and deleted.op is Op.DELETE and deleted.after is None


def test_project_event_never_carries_the_old_image() -> None:
    hanoi = projection("hanoi")
    upserted = hanoi.project_event(event(Op.UPDATE, citizen(), citizen(full_name="Nguyễn An")))
    assert upserted is not None and upserted.op is Op.UPDATE
    assert upserted.before is None and upserted.after is not None
    assert upserted.after["full_name"] == "Nguyễn An" and "ethnicity" not in upserted.after
    assert upserted.key == {"personal_id": "001090000001"}
    assert upserted.position == event(Op.UPDATE, None, None).position
    moved = hanoi.project_event(event(Op.UPDATE, citizen(), citizen(province_code="79")))
    assert moved is not None and moved.op is Op.DELETE
    assert (moved.before, moved.after) == (None, None)
    assert hanoi.project_event(event(Op.CREATE, None, citizen(province_code="79"))) is None


@pytest.mark.parametrize("agency", ["hanoi", "gso", "vss"])
def test_a_truncate_reaches_every_subscriber_as_it_is(agency: str) -> None:
    truncate = dataclasses.replace(event(Op.TRUNCATE, None, None), key={})
    assert projection(agency).project_event(truncate) == truncate


def test_a_subscription_that_does_not_fit_its_contract_is_refused() -> None:
    with pytest.raises(ManifestError, match="unknown field 'blood_type'") as caught:
        Projection(CITIZEN, subscription(fields=["personal_id", "blood_type"]))
    assert caught.value.path == "fields[1]"
    with pytest.raises(ManifestError, match=r"population\.household"):
        Projection(CONTRACTS["population.household"], subscription())


def test_filter_sql_for_verify() -> None:
    sql = projection("hanoi").filter_sql()
    assert sql is not None and sql.as_string(None) == "(\"province_code\" = '01')"
    assert projection("gso").filter_sql() is None


# --- minimisation, as a property -------------------------------------------------------------


def _values_of(avro_type: Any) -> st.SearchStrategy[Any]:
    base = base_type(avro_type)
    logical = base.get("logicalType") if isinstance(base, dict) else None
    if logical == "date":
        strategy: st.SearchStrategy[Any] = st.dates()
    elif logical and "timestamp" in logical:
        strategy = st.datetimes(timezones=st.just(UTC))
    elif logical == "decimal":
        strategy = st.decimals(places=0, allow_nan=False, allow_infinity=False)
    elif base in ("int", "long"):
        strategy = st.integers()
    else:
        strategy = st.text(max_size=12)
    return st.none() | strategy if isinstance(avro_type, list) else strategy


def _transform_for(avro_type: Any, is_key: bool) -> st.SearchStrategy[Any]:
    options: list[Any] = [None]
    for candidate in (Hash(kind="hash", key="k"), Mask(kind="mask"), Year(kind="year")):
        if candidate.problem(avro_type) is None and (not is_key or isinstance(candidate, Hash)):
            options.append(candidate)
    return st.sampled_from(options)


@st.composite
def policies(draw: st.DrawFn) -> tuple[Contract, Subscription, dict[str, Any], dict[str, Any]]:
    contract = draw(st.sampled_from(sorted(CONTRACTS.values(), key=lambda c: c.topic)))
    types = {f["name"]: f["type"] for f in contract.row_schema["fields"]}
    others = [n for n in types if n not in contract.key_fields]
    allowed = [*contract.key_fields, *draw(st.lists(st.sampled_from(others), unique=True))]
    transforms = {}
    for name in allowed:
        transform = draw(_transform_for(types[name], name in contract.key_fields))
        if transform is not None:
            transforms[name] = transform
    sub = Subscription(
        agency="prop",
        topic=contract.topic,
        purpose="property test",
        legal_basis={"basis": "public_duty", "reference": "a test"},
        fields=tuple(draw(st.permutations(allowed))),
        transforms=transforms,
    )
    row = {name: draw(_values_of(avro_type)) for name, avro_type in types.items()}
    row.update(draw(st.dictionaries(st.text(min_size=1, max_size=8), st.integers(), max_size=3)))
    before = {name: draw(_values_of(avro_type)) for name, avro_type in types.items()}
    return contract, sub, row, before


@settings(max_examples=300, deadline=None)
@given(policies(), st.sampled_from([Op.CREATE, Op.UPDATE, Op.DELETE, Op.READ]))
def test_nothing_outside_the_allow_list_ever_leaves(
    policy: tuple[Contract, Subscription, dict[str, Any], dict[str, Any]], op: Op
) -> None:
    contract, sub, row, before = policy
    allowed = set(sub.fields)
    secrets = {"k": b"k" * 32}
    assert {f["name"] for f in project_schema(contract, sub)["fields"]} <= allowed
    projected = project_row(row, sub, secrets)
    assert projected is not None and set(projected) == allowed
    p = Projection(contract, sub, secrets)
    assert set(p.row(row) or {}) == allowed
    assert {f["name"] for f in p.key_schema["fields"]} <= allowed
    after = None if op is Op.DELETE else row
    decision = p.decide(before, after, op, key={k: row[k] for k in contract.key_fields})
    assert decision.row is not None and set(decision.row) <= allowed
    assert p.decide(before, after, op) == p.decide(before, after, op)  # deterministic
    fastavro.parse_schema(p.schema)


def test_a_field_outside_the_allow_list_is_dropped() -> None:
    enterprise = CONTRACTS["business.enterprise"]
    sub = MANIFEST.subscription("gdt", "business.enterprise")
    row: dict[str, Any] = {name: None for name in enterprise.field_names}
    row.update(enterprise_code="0101234567", charter_capital_vnd=Decimal("5000000000"))
    projected = Projection(enterprise, sub).row(row)
    assert projected is not None and "charter_capital_vnd" not in projected
