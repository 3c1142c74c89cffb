"""Who a contract change reaches: each changed field's receiving subscriptions, and how."""

from __future__ import annotations

from pathlib import Path

from sync.contracts import load_contracts
from sync.contracts.diff import Change, Kind
from sync.policy import FEDERATION_FILE, load_manifest
from sync.policy.affected import changed_field, reach

CONTRACTS = load_contracts(Path(__file__).resolve().parents[2] / "schemas" / "avro")
MANIFEST = load_manifest(FEDERATION_FILE, CONTRACTS)
CITIZEN = CONTRACTS["population.citizen"]


def change(path: str, kind: Kind = Kind.BECAME_NULLABLE) -> Change:
    return Change(kind, path, "a change")


def test_each_changed_field_names_every_subscription_it_reaches_and_how() -> None:
    changes = [change("district_code"), change("district_code", Kind.DEFAULT_CHANGED)]
    (district,) = reach(MANIFEST, CITIZEN.topic, CITIZEN.field_names, changes)
    assert district.field == "district_code" and len(district.changes) == 2
    assert {(r.agency, r.how) for r in district.receivers} == {
        ("gdt", "receives"),
        ("vss", "receives"),
        ("gso", "receives"),
        ("hanoi", "receives"),
        ("hcmc", "receives"),
    }


def test_a_transformed_or_filtered_field_says_so() -> None:
    found = reach(
        MANIFEST,
        CITIZEN.topic,
        CITIZEN.field_names,
        [change("after.personal_id"), change("province_code")],
    )
    how = {(r.field, x.agency): x.how for r in found for x in r.receivers}
    assert how["personal_id", "gso"] == "receives hashed"
    assert how["personal_id", "hanoi"] == "receives"
    assert how["province_code", "hanoi"] == "receives"


def test_a_field_no_agency_sees_reaches_no_one() -> None:
    (ethnicity,) = reach(MANIFEST, CITIZEN.topic, CITIZEN.field_names, [change("ethnicity")])
    assert ethnicity.receivers == ()


def test_changes_outside_the_row_fields_are_left_out() -> None:
    names = set(CITIZEN.field_names)
    assert changed_field("", names) is None
    assert changed_field("source.lsn", names) is None
    assert changed_field("before.ward_code", names) == "ward_code"
