"""The contract house rules (``govsync schemas lint``) on fixture contracts: the good ones lint
clean and load, each bad one breaks exactly one rule and the message names its file and field,
and the repository's own contracts lint clean."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sync.cli.main import cli
from sync.contracts import columns_of, load_contracts
from sync.contracts.attributes import subject_fields
from sync.contracts.lint import SQL_RESERVED, identifier_problem, lint

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "contracts"
GOOD, BAD = FIXTURES / "good", FIXTURES / "bad"
REPO_SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "avro"

# case -> (rule, file, field): every fixture under bad/ breaks exactly this one rule
BAD_CASES: dict[str, tuple[str, str, str]] = {
    "namespace_mismatch": ("namespace", "birth.avsc", ""),
    "record_doc_missing": ("doc", "birth.avsc", ""),
    "field_doc_missing": ("doc", "birth.avsc", "child_name"),
    "field_doc_empty": ("doc", "birth.avsc", "child_name"),
    "classification_missing": ("classification", "birth.avsc", "child_name"),
    "classification_invalid": ("classification", "birth.avsc", "child_name"),
    "decimal_without_precision": ("logical-type", "birth.avsc", "fee_vnd"),
    "decimal_scale_above_precision": ("logical-type", "birth.avsc", "fee_vnd"),
    "decimal_on_string": ("logical-type", "birth.avsc", "fee_vnd"),
    "date_on_long": ("logical-type", "birth.avsc", "date_of_birth"),
    "timestamp_micros_on_int": ("logical-type", "birth.avsc", "registered_at"),
    "logical_type_on_field": ("logical-type", "birth.avsc", "date_of_birth"),
    "unknown_logical_type": ("logical-type", "birth.avsc", "registered_at"),
    "nullable_without_default": ("nullable", "birth.avsc", "mother_personal_id"),
    "nullable_default_not_null": ("nullable", "birth.avsc", "mother_personal_id"),
    "nullable_null_last": ("nullable", "birth.avsc", "mother_personal_id"),
    "union_of_two_types": ("nullable", "birth.avsc", "mother_personal_id"),
    "default_not_of_type": ("default", "birth.avsc", "child_name"),
    "name_camel_case": ("name", "birth.avsc", "childName"),
    "name_reserved_word": ("name", "birth.avsc", "order"),
    "name_unsafe_sql": ("name", "birth.avsc", "child;name"),
    "table_name_reserved": ("name", "birth.avsc", ""),
    "key_field_missing_in_row": ("key", "birth-key.avsc", "certificate_id"),
    "key_field_type_differs": ("key", "birth-key.avsc", "registration_id"),
    "key_field_nullable": ("key", "birth-key.avsc", "registration_id"),
    "key_schema_missing": ("key", "birth.avsc", ""),
    "compatibility_invalid": ("attribute", "birth.avsc", ""),
    "subject_missing": ("subject", "birth.avsc", "mother_personal_id"),
    "not_json": ("avro", "birth.avsc", ""),
}

# what each bad case's message says, in words
BAD_WORDS = {
    "namespace_mismatch": "namespace 'vn.gov.health', but its directory requires 'vn.gov.civil'",
    "record_doc_missing": "record 'Birth' has no doc",
    "field_doc_missing": "has no doc",
    "field_doc_empty": "has no doc",
    "classification_missing": "has no classification",
    "classification_invalid": "classification 'secret' is not one of public, internal",
    "decimal_without_precision": "decimal needs a precision",
    "decimal_scale_above_precision": "decimal scale 6 is greater than its precision 4",
    "decimal_on_string": "logical type decimal must be on bytes or fixed, not string",
    "date_on_long": "logical type date must be on int, not long",
    "timestamp_micros_on_int": "logical type timestamp-micros must be on long, not int",
    "logical_type_on_field": "is on the field, where Avro ignores it",
    "unknown_logical_type": "unknown logical type 'timestamp-seconds'",
    "nullable_without_default": "is nullable but its default is missing",
    "nullable_default_not_null": 'is nullable but its default is "none"',
    "nullable_null_last": 'union ["string", "null"] is not allowed',
    "union_of_two_types": 'union ["null", "string", "long"] is not allowed',
    "default_not_of_type": 'default 0 is not a value of "string"',
    "name_camel_case": "field name is not lowercase snake_case",
    "name_reserved_word": "field name is an SQL reserved word",
    "name_unsafe_sql": "field name is not lowercase snake_case",
    "table_name_reserved": "govsync.table 'user' is an SQL reserved word",
    "key_field_missing_in_row": "is not a field of the row schema",
    "key_field_type_differs": 'has type "long" in the key but "string" in the row',
    "key_field_nullable": "is nullable, but a key field must always be set",
    "key_schema_missing": "the contract has no key schema birth-key.avsc beside it",
    "compatibility_invalid": "govsync.compatibility 'SOMETIMES' is not one of",
    "subject_missing": "identifies a person (its name says personal_id) but has no "
    'govsync.subject: add "govsync.subject": "personal_id"',
    "not_json": "cannot be read as JSON",
}


def test_every_bad_fixture_is_in_the_table() -> None:
    assert sorted(p.name for p in BAD.iterdir()) == sorted(BAD_CASES)
    assert set(BAD_WORDS) == set(BAD_CASES)


def test_the_bad_fixtures_cover_every_house_rule() -> None:
    rules = {rule for rule, _, _ in BAD_CASES.values()}
    assert rules >= {"namespace", "doc", "classification", "logical-type", "nullable", "name"}
    assert "key" in rules


def test_good_contracts_lint_clean_and_load() -> None:
    report = lint(GOOD)
    assert report.ok, [str(i) for i in report.issues]
    assert (report.contracts, report.files) == (2, 4)
    assert report.summary().startswith("schemas lint: 2 contracts (4 schema files) under ")
    assert report.summary().endswith("good: no problems")
    contracts = load_contracts(GOOD)
    assert set(contracts) == {"civil.birth", "health.vaccination"}
    for contract in contracts.values():
        assert columns_of(contract)  # the replica can hold every field


def test_the_repositorys_contracts_lint_clean() -> None:
    report = lint(REPO_SCHEMAS)
    assert report.contracts >= 1
    assert report.ok, "\n".join(str(i) for i in report.issues)


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_each_bad_contract_breaks_its_rule(case: str) -> None:
    rule, file_name, field = BAD_CASES[case]
    report = lint(BAD / case)
    assert not report.ok
    assert {i.rule for i in report.issues} == {rule}, [str(i) for i in report.issues]
    (issue,) = [i for i in report.issues if i.field == field]
    assert issue.path.name == file_name
    message = str(issue)
    assert f"civil/{file_name}: " in message
    if field:
        assert f"field {field!r}: " in message
    assert BAD_WORDS[case] in message


# contract -> its fields that identify a person, with the kind each holds: the decisions the
# catalogue's reviewers made (enterprise codes, parcel ids, certificate serials, household
# codes and health insurance card numbers carry none of the three kinds)
MARKED = {
    "population.citizen": {"personal_id": "personal_id"},
    "population.household": {"personal_id": "personal_id", "head_personal_id": "personal_id"},
    "land.land_parcel": {},
    "land.land_use_right": {
        "holder_personal_id": "personal_id",
        "co_holder_personal_id": "personal_id",
    },
    "business.enterprise": {},
    "business.legal_representative": {"personal_id": "personal_id"},
    "finance.taxpayer": {"tax_code": "tax_code", "personal_id": "personal_id"},
    "finance.tax_obligation": {"tax_code": "tax_code"},
    "insurance.insured_person": {
        "insurance_number": "insurance_number",
        "personal_id": "personal_id",
    },
    "insurance.contribution_period": {"insurance_number": "insurance_number"},
}


def test_the_repositorys_contracts_mark_every_person_identifier() -> None:
    contracts = load_contracts(REPO_SCHEMAS)
    assert set(contracts) == set(MARKED)
    for topic, contract in contracts.items():
        assert subject_fields(contract.row_schema) == MARKED[topic], topic
        key_marked = subject_fields(contract.key_schema)
        assert key_marked == {
            k: MARKED[topic][k] for k in contract.key_fields if k in MARKED[topic]
        }


def test_every_failure_is_listed_not_only_the_first(tmp_path: Path) -> None:
    shutil.copytree(GOOD, tmp_path / "avro")
    birth = tmp_path / "avro" / "civil" / "birth.avsc"
    document = json.loads(birth.read_text(encoding="utf-8"))
    for item in document["fields"]:
        if item["name"] == "child_name":
            del item["doc"], item["classification"]
    birth.write_text(json.dumps(document), encoding="utf-8")
    (tmp_path / "avro" / "health" / "vaccination-key.avsc").unlink()
    report = lint(tmp_path / "avro")
    assert sorted((i.path.name, i.field, i.rule) for i in report.issues) == [
        ("birth.avsc", "child_name", "classification"),
        ("birth.avsc", "child_name", "doc"),
        ("vaccination.avsc", "", "key"),
    ]
    assert report.summary().startswith("schemas lint: 3 problems in 2 of 2 contracts under ")


def write_contract(root: Path, domain: str, row_fields: list[dict[str, Any]]) -> Path:
    def record(name: str, fields: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "type": "record",
            "name": name,
            "namespace": f"vn.gov.{domain}",
            "doc": "A thing.",
            "fields": fields,
        }

    key_field = {"name": "id", "type": "long", "doc": "Id.", "classification": "internal"}
    (root / domain).mkdir(parents=True)
    path = root / domain / "thing.avsc"
    path.write_text(json.dumps(record("Thing", [key_field, *row_fields])), encoding="utf-8")
    key = record("ThingKey", [key_field])
    (root / domain / "thing-key.avsc").write_text(json.dumps(key), encoding="utf-8")
    return path


def field_of(name: str, classification: str = "personal", **more: Any) -> dict[str, Any]:
    return {
        "name": name,
        "type": "string",
        "doc": "An id.",
        "classification": classification,
        **more,
    }


@pytest.mark.parametrize(
    ("name", "classification", "kind"),
    [
        ("personal_id", "personal", "personal_id"),
        ("spouse_personal_id", "personal", "personal_id"),
        ("insurance_number", "personal", "insurance_number"),
        ("employee_insurance_number", "sensitive_personal", "insurance_number"),
        ("tax_code", "personal", "tax_code"),
        ("payer_tax_code", "sensitive_personal", "tax_code"),
    ],
)
def test_a_person_identifier_without_its_subject_is_refused(
    tmp_path: Path, name: str, classification: str, kind: str
) -> None:
    write_contract(tmp_path, "civil", [field_of(name, classification)])
    (issue,) = lint(tmp_path).issues
    assert (issue.path.name, issue.field, issue.rule) == ("thing.avsc", name, "subject")
    assert str(issue).endswith(
        f"civil/thing.avsc: field {name!r}: identifies a person (its name says {kind}) but has "
        f'no govsync.subject: add "govsync.subject": "{kind}", so the audit finds every '
        "disclosure about that person"
    )


@pytest.mark.parametrize(
    "field",
    [
        field_of("enterprise_tax_code", "public"),  # an enterprise's tax code is public
        field_of("tax_code", "internal"),
        field_of("personal_identity", "personal"),  # not an identifier's name
        field_of("personal_id", "personal", **{"govsync.subject": "personal_id"}),
        field_of("cccd_number", "personal", **{"govsync.subject": "personal_id"}),
        field_of("mst", "sensitive_personal", **{"govsync.subject": "tax_code"}),
    ],
)
def test_marked_identifiers_and_other_fields_pass(tmp_path: Path, field: dict[str, Any]) -> None:
    write_contract(tmp_path, "civil", [field])
    assert lint(tmp_path).ok, [str(i) for i in lint(tmp_path).issues]


def test_a_subject_must_agree_with_the_name_and_the_classification(tmp_path: Path) -> None:
    fields = [
        field_of("holder_personal_id", **{"govsync.subject": "tax_code"}),
        field_of("owner_code", "public", **{"govsync.subject": "personal_id"}),
    ]
    write_contract(tmp_path, "civil", fields)
    messages = sorted(str(i).split(": ", 1)[1] for i in lint(tmp_path).issues)
    assert {i.rule for i in lint(tmp_path).issues} == {"subject"}
    assert messages == [
        "field 'holder_personal_id': govsync.subject 'tax_code' contradicts the field's name, "
        "which says personal_id",
        "field 'owner_code': identifies a person (govsync.subject 'personal_id') but is "
        "classified public; a person's identifier is personal or sensitive_personal",
    ]


def test_a_key_field_is_marked_as_its_row_field(tmp_path: Path) -> None:
    marked = field_of("card_number", **{"govsync.subject": "insurance_number"})
    path = write_contract(tmp_path, "civil", [])
    row, key = json.loads(path.read_text()), field_of("card_number")
    row["fields"].append(marked)
    path.write_text(json.dumps(row), encoding="utf-8")
    key_path = path.with_name("thing-key.avsc")
    key_schema = json.loads(key_path.read_text())
    key_schema["fields"].append(key)
    key_path.write_text(json.dumps(key_schema), encoding="utf-8")
    (issue,) = lint(tmp_path).issues
    assert (issue.path.name, issue.field, issue.rule) == (
        "thing-key.avsc",
        "card_number",
        "subject",
    )
    assert "has govsync.subject None in the key but 'insurance_number' in the row" in str(issue)


def test_nested_records_are_checked_with_a_dotted_path(tmp_path: Path) -> None:
    address = {
        "type": "record",
        "name": "Address",
        "namespace": "vn.gov.elsewhere",
        "fields": [{"name": "Street", "type": "string", "classification": "public"}],
    }
    field = {"name": "address", "type": address, "doc": "Where.", "classification": "personal"}
    write_contract(tmp_path, "civil", [field])
    issues = {(i.field, i.rule) for i in lint(tmp_path).issues}
    assert issues == {
        ("address", "namespace"),
        ("address", "doc"),  # the nested record has no doc
        ("address.Street", "name"),
        ("address.Street", "doc"),
    }


def test_decimal_on_fixed_must_fit_its_size(tmp_path: Path) -> None:
    small = {"type": "fixed", "name": "Money", "size": 2, "logicalType": "decimal"}
    field = {
        "name": "amount",
        "type": {**small, "precision": 6, "scale": 2},
        "doc": "Amount.",
        "classification": "public",
    }
    write_contract(tmp_path, "finance", [field])
    (issue,) = lint(tmp_path).issues
    assert "decimal precision 6 does not fit in fixed size 2 (at most 4 digits)" in str(issue)


def test_domain_and_entity_names_must_be_identifiers(tmp_path: Path) -> None:
    path = write_contract(tmp_path, "Civil", [])
    path.rename(path.with_name("Thing.avsc"))
    path.with_name("thing-key.avsc").rename(path.with_name("Thing-key.avsc"))
    messages = [str(i) for i in lint(tmp_path).issues]
    assert any("domain directory 'Civil' is not lowercase snake_case" in m for m in messages)
    assert any("entity file name 'Thing' is not lowercase snake_case" in m for m in messages)


def test_a_stray_key_schema_is_reported(tmp_path: Path) -> None:
    shutil.copytree(GOOD, tmp_path / "avro")
    shutil.copy(
        tmp_path / "avro" / "civil" / "birth-key.avsc",
        tmp_path / "avro" / "civil" / "death-key.avsc",
    )
    (issue,) = lint(tmp_path / "avro").issues
    assert issue.path.name == "death-key.avsc" and issue.rule == "key"


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("personal_id", ""),
        ("ward_code_2", ""),
        ("select", "is an SQL reserved word"),
        ("table", "is an SQL reserved word"),
        ("order", "is an SQL reserved word"),
        ("user", "is an SQL reserved word"),
        ("fullName", "is not lowercase snake_case"),
        ("full name", "is not lowercase snake_case"),
        ('x"; drop table t; --', "is not lowercase snake_case"),
        ("_hidden", "is not lowercase snake_case"),
        ("double__underscore", "is not lowercase snake_case"),
        ("2fast", "is not lowercase snake_case"),
        ("a" * 64, "is longer than 63 characters"),
    ],
)
def test_identifiers(name: str, problem: str) -> None:
    if problem:
        assert identifier_problem(name).startswith(problem)
    else:
        assert identifier_problem(name) == ""


def test_reserved_words_are_lowercase_words() -> None:
    assert {"select", "table", "order", "user", "from", "where"} <= SQL_RESERVED
    assert all(word.islower() and word.replace("_", "").isalpha() for word in SQL_RESERVED)


def test_cli_lint_exit_codes_and_json() -> None:
    runner = CliRunner()
    clean = runner.invoke(cli, ["schemas", "lint", "--schemas-dir", str(GOOD)])
    assert clean.exit_code == 0
    assert "no problems" in clean.output
    broken = runner.invoke(
        cli, ["schemas", "lint", "--schemas-dir", str(BAD / "classification_missing")]
    )
    assert broken.exit_code == 1
    assert "birth.avsc: field 'child_name': has no classification" in broken.output
    as_json = runner.invoke(
        cli, ["schemas", "lint", "--json", "--schemas-dir", str(BAD / "name_reserved_word")]
    )
    assert as_json.exit_code == 1
    report = json.loads(as_json.output)
    assert report["ok"] is False
    (issue,) = report["issues"]
    assert (issue["field"], issue["rule"]) == ("order", "name")
    assert issue["file"].endswith("civil/birth.avsc")
