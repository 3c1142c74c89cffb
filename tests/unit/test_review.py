"""Contract review without a registry: the words :func:`diff` uses for each kind of change,
the verdict per compatibility level, and the compatibility rules the registry shares."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from sync.contracts import envelope_schema, load_contracts
from sync.contracts.avro_types import describe
from sync.contracts.compatibility import (
    LEVELS,
    InvalidSchema,
    Level,
    can_read,
    canonical_json,
    check,
    parse,
)
from sync.contracts.diff import Change, Kind, diff
from sync.contracts.review import Part, find_subject
from sync.contracts.verdicts import verdicts
from sync.errors import ContractError, RegistryError
from sync.registry import avro_rules
from sync.registry.model import Compatibility

GOOD = Path(__file__).resolve().parents[1] / "fixtures" / "contracts" / "good"


def record(*fields: dict[str, Any], name: str = "Person", **extra: Any) -> dict[str, Any]:
    return {
        "type": "record",
        "name": name,
        "namespace": "vn.gov.test",
        "doc": "A person.",
        "fields": list(fields),
        **extra,
    }


def f(name: str, avro_type: Any, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": avro_type, **extra}


ID = f("id", "long", doc="Id.", classification="internal")


def only(changes: list[Change]) -> Change:
    assert len(changes) == 1, [str(c) for c in changes]
    return changes[0]


def words(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return [str(c) for c in diff(old, new)]


# -- diff wording ------------------------------------------------------------------------------


def test_identical_schemas_have_no_changes() -> None:
    schema = record(ID, f("name", "string"))
    assert diff(schema, json.loads(json.dumps(schema))) == []
    assert diff(json.dumps(schema), json.dumps(schema, indent=2)) == []


def test_field_added_with_default() -> None:
    change = only(diff(record(ID), record(ID, f("email", ["null", "string"], default=None))))
    assert change.kind is Kind.FIELD_ADDED
    assert str(change) == "email: field added with default null (type null | string)"


def test_field_added_without_default() -> None:
    change = only(diff(record(ID), record(ID, f("born", {"type": "int", "logicalType": "date"}))))
    assert change.kind is Kind.FIELD_ADDED_WITHOUT_DEFAULT
    assert str(change) == (
        "born: field added without a default (type int (date)): the new schema cannot read "
        "data written before it"
    )


def test_field_removed_with_and_without_default() -> None:
    old = record(ID, f("nickname", "string", default=""), f("name", "string"))
    changes = diff(old, record(ID))
    assert [(c.kind, c.path) for c in changes] == [
        (Kind.FIELD_REMOVED, "nickname"),
        (Kind.FIELD_REMOVED_WITHOUT_DEFAULT, "name"),
    ]
    assert str(changes[0]) == (
        'nickname: field removed (type string); it had default "", which readers of the old '
        "schema use for new data"
    )
    assert str(changes[1]) == (
        "name: field removed (type string); it had no default, so readers of the old schema "
        "cannot read new data"
    )


@pytest.mark.parametrize(("old", "new"), [("int", "long"), ("float", "double"), ("int", "double")])
def test_type_widened(old: str, new: str) -> None:
    change = only(diff(record(ID, f("n", old)), record(ID, f("n", new))))
    assert change.kind is Kind.TYPE_WIDENED
    assert str(change).startswith(f"n: type widened {old} -> {new}: the new schema reads old data")


def test_type_narrowed_and_changed() -> None:
    narrowed = only(diff(record(ID, f("n", "long")), record(ID, f("n", "int"))))
    assert (narrowed.kind, narrowed.message) == (
        Kind.TYPE_CHANGED,
        "type narrowed long -> int: the new schema cannot read old data",
    )
    changed = only(diff(record(ID, f("code", "string")), record(ID, f("code", "int"))))
    assert str(changed) == "code: type changed string -> int"
    decimal = {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}
    wider = {**decimal, "precision": 12}
    logical = only(diff(record(ID, f("amount", decimal)), record(ID, f("amount", wider))))
    assert str(logical) == ("amount: type changed bytes (decimal 10,2) -> bytes (decimal 12,2)")


def test_default_changed_added_and_removed() -> None:
    old = record(ID, f("a", "string", default="x"), f("b", "int"), f("c", "int", default=1))
    new = record(ID, f("a", "string", default="y"), f("b", "int", default=0), f("c", "int"))
    assert words(old, new) == [
        'a: default changed "x" -> "y"',
        "b: default added: 0",
        "c: default removed (was 1)",
    ]
    assert {c.kind for c in diff(old, new)} == {Kind.DEFAULT_CHANGED}


def test_doc_changed() -> None:
    old = record(ID, f("name", "string", doc="Full name."))
    new = record(ID, f("name", "string", doc="Full name, family name first."), doc="Someone.")
    assert words(old, new) == [
        "record Person: doc changed from 'A person.' to 'Someone.'",
        "name: doc changed from 'Full name.' to 'Full name, family name first.'",
    ]
    assert {c.kind for c in diff(old, new)} == {Kind.DOC_CHANGED}


def test_classification_changed() -> None:
    old = record(ID, f("ethnicity", "string", classification="personal"))
    new = record(ID, f("ethnicity", "string", classification="sensitive_personal"))
    change = only(diff(old, new))
    assert change.kind is Kind.CLASSIFICATION_CHANGED
    assert str(change) == "ethnicity: classification changed personal -> sensitive_personal"


def test_alias_added_and_removed() -> None:
    old = record(ID, f("name", "string", aliases=["old_name"]))
    new = record(ID, f("name", "string", aliases=["full_name"]))
    assert [(c.kind, str(c)) for c in diff(old, new)] == [
        (Kind.ALIAS_ADDED, "name: alias added: full_name"),
        (Kind.ALIAS_REMOVED, "name: alias removed: old_name"),
    ]


def test_rename_with_alias_is_one_change() -> None:
    old = record(ID, f("surname", "string"))
    new = record(ID, f("family_name", "string", aliases=["surname"]))
    change = only(diff(old, new))
    assert change.kind is Kind.FIELD_RENAMED
    assert str(change) == (
        "family_name: field renamed from surname (alias 'surname' lets the new schema read "
        "data written before the rename)"
    )


def test_enum_symbols_added_and_removed() -> None:
    def status(*symbols: str) -> dict[str, Any]:
        return {"type": "enum", "name": "Status", "symbols": list(symbols)}

    old = record(ID, f("status", status("ACTIVE", "DECEASED")))
    new = record(ID, f("status", status("ACTIVE", "EMIGRATED", "MISSING")))
    assert [(c.kind, str(c)) for c in diff(old, new)] == [
        (Kind.ENUM_SYMBOLS_ADDED, "status: enum Status: symbols added: EMIGRATED, MISSING"),
        (Kind.ENUM_SYMBOLS_REMOVED, "status: enum Status: symbols removed: DECEASED"),
    ]


def test_nested_record_changes_have_a_dotted_path() -> None:
    def address(*fields: dict[str, Any]) -> dict[str, Any]:
        return {"type": "record", "name": "Address", "fields": [f("city", "string"), *fields]}

    old = record(ID, f("home", ["null", address()], default=None))
    new = record(
        ID,
        f("home", ["null", address(f("street", ["null", "string"], default=None))], default=None),
    )
    assert words(old, new) == ["home.street: field added with default null (type null | string)"]
    deeper = {"type": "record", "name": "Geo", "fields": [f("lat", "float")]}
    wider = {"type": "record", "name": "Geo", "fields": [f("lat", "double")]}
    old_geo = record(ID, f("home", address(f("geo", deeper))))
    new_geo = record(ID, f("home", address(f("geo", wider))))
    assert [c.path for c in diff(old_geo, new_geo)] == ["home.geo.lat"]


def test_array_and_map_paths() -> None:
    old = record(
        ID,
        f("tags", {"type": "array", "items": "int"}),
        f("labels", {"type": "map", "values": "string"}),
    )
    new = record(
        ID,
        f("tags", {"type": "array", "items": "long"}),
        f("labels", {"type": "map", "values": "bytes"}),
    )
    assert [(c.kind, c.path) for c in diff(old, new)] == [
        (Kind.TYPE_WIDENED, "tags[]"),
        (Kind.TYPE_CHANGED, "labels{}"),
    ]


def test_namespace_changed() -> None:
    old = record(ID)
    new = {**record(ID), "namespace": "vn.gov.other"}
    change = only(diff(old, new))
    assert change.kind is Kind.NAMESPACE_CHANGED
    assert str(change) == "record Person: namespace changed vn.gov.test -> vn.gov.other"


def test_record_renamed() -> None:
    change = only(diff(record(ID), record(ID, name="Citizen")))
    assert (change.kind, str(change)) == (Kind.RECORD_RENAMED, "record renamed Person -> Citizen")
    aliased = only(diff(record(ID), record(ID, name="Citizen", aliases=["vn.gov.test.Person"])))
    assert "(alias 'vn.gov.test.Person' keeps them matching)" in str(aliased)


def test_union_branches_and_nullability() -> None:
    old = record(ID, f("value", ["null", "string"], default=None), f("email", "string"))
    new = record(
        ID,
        f("value", ["null", "string", "long"], default=None),
        f("email", ["null", "string"], default=None),
    )
    assert [(c.kind, str(c)) for c in diff(old, new)] == [
        (Kind.UNION_BRANCH_ADDED, "value: union branch added: long"),
        (Kind.BECAME_NULLABLE, "email: became nullable (null | string)"),
        (Kind.DEFAULT_CHANGED, "email: default added: null"),
    ]
    back = diff(new, old)
    assert [(c.kind, c.path) for c in back] == [
        (Kind.UNION_BRANCH_REMOVED, "value"),
        (Kind.NO_LONGER_NULLABLE, "email"),
        (Kind.DEFAULT_CHANGED, "email"),
    ]


def test_attributes_and_field_order() -> None:
    old = record(ID, f("a", "int"), f("b", "int"), **{"govsync.table": "person"})
    new = record(ID, f("b", "int"), f("a", "int"), **{"govsync.table": "people"})
    assert [(c.kind, str(c)) for c in diff(old, new)] == [
        (
            Kind.PROPERTY_CHANGED,
            'record Person: attribute govsync.table changed "person" -> "people"',
        ),
        (
            Kind.FIELDS_REORDERED,
            "record Person: fields reordered (Avro matches fields by name; only the binary "
            "layout of new data changes)",
        ),
    ]


def test_envelope_changes_are_reported_once_under_before() -> None:
    contract = load_contracts(GOOD)["civil.birth"]
    old = envelope_schema(contract)
    row = json.loads(json.dumps(contract.row_schema))
    row["fields"].append(f("birth_place", "string", doc="Commune.", classification="personal"))
    new = envelope_schema(dataclasses.replace(contract, row_schema=row))
    change = only(diff(old, new))
    assert change.kind is Kind.FIELD_ADDED_WITHOUT_DEFAULT
    assert change.path == "before.birth_place"


def test_named_references_resolve() -> None:
    address = {"type": "record", "name": "Address", "fields": [f("city", "string")]}
    moved = {"type": "record", "name": "Address", "fields": [f("city", "bytes")]}
    old = record(ID, f("home", address), f("work", "Address"))
    new = record(ID, f("home", moved), f("work", "vn.gov.test.Address"))
    assert [c.path for c in diff(old, new)] == ["home.city"]  # the type once, where defined


def test_describe() -> None:
    assert describe(["null", {"type": "long", "logicalType": "timestamp-micros"}]) == (
        "null | long (timestamp-micros)"
    )
    assert describe({"type": "array", "items": "vn.gov.test.Address"}) == "array of Address"
    assert describe({"type": "fixed", "name": "Hash", "size": 32}) == "fixed Hash (size 32)"


# -- verdicts ---------------------------------------------------------------------------------


def parsed(schema: dict[str, Any]) -> Any:
    return parse(json.dumps(schema)).schema


def verdict_table(candidate: dict[str, Any], *history: dict[str, Any]) -> dict[str, bool]:
    """Levels -> accepted, for ``candidate`` after ``history`` (oldest first)."""
    numbered = [(n, parsed(s)) for n, s in enumerate(history, start=1)][::-1]
    return {v.level.value: v.compatible for v in verdicts(parsed(candidate), numbered)}


def test_verdicts_are_in_reading_order() -> None:
    assert [v.level for v in verdicts(parsed(record(ID)), [])] == list(LEVELS)
    assert LEVELS[-1] is Level.NONE and set(LEVELS) == set(Level)


def test_first_version_is_accepted_everywhere() -> None:
    assert set(verdict_table(record(ID)).values()) == {True}


def test_verdicts_for_a_field_without_default() -> None:
    table = verdict_table(record(ID, f("born", "int")), record(ID))
    assert table == {
        "BACKWARD": False,
        "BACKWARD_TRANSITIVE": False,
        "FORWARD": True,
        "FORWARD_TRANSITIVE": True,
        "FULL": False,
        "FULL_TRANSITIVE": False,
        "NONE": True,
    }
    reasons = {v.level: v.reasons for v in verdicts(parsed(record(ID, f("born", "int"))), [])}
    assert reasons[Level.BACKWARD] == ()


def test_verdict_reasons_come_from_avro() -> None:
    (backward,) = [
        v
        for v in verdicts(parsed(record(ID, f("born", "int"))), [(3, parsed(record(ID)))])
        if v.level is Level.BACKWARD
    ]
    assert backward.reasons == (
        "the new schema cannot read data written by version 3: "
        "reader_field_missing_default_value at /fields/1: born",
    )


def test_transitive_verdicts_look_at_every_version() -> None:
    # v2 gave x a default; v3 drops it: fine after v2 (which has x), not after v1 (which lacks it)
    table = verdict_table(
        record(ID, f("x", "int")), record(ID), record(ID, f("x", "int", default=0))
    )
    assert table == {
        "BACKWARD": True,
        "BACKWARD_TRANSITIVE": False,
        "FORWARD": True,
        "FORWARD_TRANSITIVE": True,
        "FULL": True,
        "FULL_TRANSITIVE": False,
        "NONE": True,
    }


def test_envelope_verdicts_explain_the_row() -> None:
    """Avro's checker reports a record behind a union only as a missing branch; the review
    looks inside so the field at fault is named."""
    contract = load_contracts(GOOD)["civil.birth"]
    row = json.loads(json.dumps(contract.row_schema))
    row["fields"].append(f("birth_place", "string"))
    old = parsed(envelope_schema(contract))
    new = parsed(envelope_schema(dataclasses.replace(contract, row_schema=row)))
    (reason,) = check(Level.BACKWARD, new, [(1, old)], explain=True)
    assert "reader union lacking writer type: RECORD" in reason
    assert "inside record Birth: reader_field_missing_default_value at /fields/7: birth_place" in (
        reason
    )
    # the registry's own message, as Confluent's, has no such detail
    (plain,) = check(Level.BACKWARD, new, [(1, old)])
    assert "inside record" not in plain


# -- the rules the registry shares --------------------------------------------------------------


def test_can_read_follows_the_resolution_rules() -> None:
    old, new = parsed(record(ID, f("n", "int"))), parsed(record(ID, f("n", "long")))
    assert can_read(new, old).compatible
    wider = can_read(old, new)
    assert not wider.compatible
    assert wider.kinds == ("type_mismatch",)
    assert wider.describe() == (
        "type_mismatch at /fields/1/type: reader type: int not compatible with writer type: long"
    )


def test_canonical_form_keeps_what_readers_need() -> None:
    spaced = json.dumps(record(ID), indent=4)
    assert parse(spaced).canonical == parse(json.dumps(record(ID))).canonical
    with_default = record(f("id", "long", default=0))
    assert parse(json.dumps(with_default)).canonical != parse(json.dumps(record(ID))).canonical
    assert canonical_json(parsed(record(ID))) == parse(json.dumps(record(ID))).canonical


def test_invalid_schemas() -> None:
    with pytest.raises(InvalidSchema) as not_json:
        parse('{"type": "record"')
    assert not_json.value.detail.startswith("not JSON: ")
    with pytest.raises(InvalidSchema) as no_fields:
        parse(json.dumps({"type": "record", "name": "NoFields"}))
    assert isinstance(no_fields.value, ContractError)


def test_the_registry_maps_invalid_schemas_to_42201() -> None:
    with pytest.raises(RegistryError) as refused:
        avro_rules.parse('{"type": "record"')
    assert (refused.value.http_status, refused.value.error_code) == (422, 42201)
    assert refused.value.message.startswith("Invalid schema: not JSON: ")


@pytest.mark.parametrize("level", list(Compatibility))
def test_the_registry_decides_with_the_same_rules(level: Compatibility) -> None:
    history = [(1, parsed(record(ID)))]
    candidate = parsed(record(ID, f("born", "int")))
    assert avro_rules.check(level, candidate, history) == check(
        Level(level.value), candidate, history
    )
    assert level.transitive is Level(level.value).transitive


# -- subjects -----------------------------------------------------------------------------------


def test_subjects_of_contracts() -> None:
    contracts = load_contracts(GOOD)
    value = find_subject(contracts, "civil.birth-value")
    assert value.part is Part.VALUE and value.schema == envelope_schema(value.contract)
    key = find_subject(contracts, "test.civil.birth-key", prefix="test.")
    assert key.part is Part.KEY and key.schema == key.contract.key_schema
    assert key.level is Level.FULL_TRANSITIVE
    assert find_subject(contracts, "health.vaccination-value").level is Level.BACKWARD
    with pytest.raises(ContractError, match=r"no contract has the subject 'civil\.birth'"):
        find_subject(contracts, "civil.birth")
