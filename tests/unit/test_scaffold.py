"""Contracts scaffolded from a catalog description: fields through the contracts' own type
mapping, placeholders that lint refuses naming file, field and what to fill, a contract that
loads and lints clean once they are filled, and the tables that cannot be scaffolded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sync.contracts import Contract, columns_of, load_contract
from sync.contracts.attributes import SUBJECT_ATTRIBUTE, is_placeholder
from sync.contracts.lint import lint
from sync.contracts.scaffold import (
    SourceColumn,
    SourceTable,
    record_name,
    scaffold_contract,
    suggested_subject,
    write_scaffold,
)
from sync.contracts.sql_types import fits
from sync.errors import ConfigError
from tests.fixtures.scaffolded import fill_placeholders

# (column, SQL type as the contract layer names it, as PostgreSQL names it, nullable)
COLUMNS = [
    ("registration_id", "bigint", "bigint", False),
    ("personal_id", "text", "character varying(12)", False),
    ("full_name", "text", "text", False),
    ("tax_code", "text", "character(10)", True),
    ("date_of_birth", "date", "date", False),
    ("registered_at", "timestamptz", "timestamp with time zone", False),
    ("recorded_at", "timestamp", "timestamp without time zone", True),
    ("opens_at", "time", "time without time zone", True),
    ("fee_vnd", "numeric(12,2)", "numeric(12,2)", True),
    ("height_m", "real", "real", True),
    ("weight_kg", "double precision", "double precision", True),
    ("household_size", "smallint", "smallint", True),
    ("children", "integer", "integer", True),
    ("verified", "boolean", "boolean", False),
    ("photo", "bytea", "bytea", True),
    ("request_uuid", "uuid", "uuid", True),
    ("aliases", "text[]", "text[]", True),
    ("scores", "integer[]", "integer[]", True),
    ("province_code", "text", "character(2)", False),
]
TABLE = SourceTable(
    name="civil_registration",
    columns=tuple(SourceColumn(n, s, t, nullable) for n, s, t, nullable in COLUMNS),
    key=("registration_id",),
    comment="Births registered by the commune",
)


def by_name(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in schema["fields"]}


def test_every_column_becomes_a_field_through_the_contracts_mapping() -> None:
    scaffold = scaffold_contract(TABLE, "civil")
    assert scaffold.ok, scaffold.problems
    row = scaffold.row_schema
    assert [f["name"] for f in row["fields"]] == [c[0] for c in COLUMNS]
    assert (row["name"], row["namespace"]) == ("CivilRegistration", "vn.gov.civil")
    assert (row["govsync.source"], row["govsync.table"]) == ("civil", "civil_registration")
    fields = by_name(row)
    assert fields["registration_id"]["type"] == "long"
    assert fields["date_of_birth"]["type"] == {"type": "int", "logicalType": "date"}
    decimal = {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}
    assert fields["fee_vnd"]["type"] == ["null", decimal]
    assert fields["fee_vnd"]["default"] is None
    assert fields["scores"]["type"] == ["null", {"type": "array", "items": ["null", "int"]}]
    assert "default" not in fields["full_name"]


def test_the_replica_columns_hold_the_source_columns() -> None:
    """Mapped back, the contract gives each column a SQL type holding every value of the
    source's: the same type, but for smallint, which Avro widens to int (integer)."""
    scaffold = scaffold_contract(TABLE, "civil")
    source = {c[0]: (c[1], c[3]) for c in COLUMNS}
    contract = Contract(
        "civil", "civil_registration", scaffold.row_schema, scaffold.key_schema, Path("x.avsc")
    )
    for column in columns_of(contract):
        sql_type, nullable = source[column.name]
        assert fits(column.sql_type, sql_type), column.name
        assert column.sql_type == sql_type or (sql_type, column.sql_type) == (
            "smallint",
            "integer",
        )
        assert column.nullable == nullable
        assert column.in_key == (column.name == "registration_id")


def test_placeholders_on_docs_classifications_and_identifier_fields() -> None:
    scaffold = scaffold_contract(TABLE, "civil")
    row, key = scaffold.row_schema, scaffold.key_schema
    assert is_placeholder(row["doc"]) and "Births registered by the commune" in row["doc"]
    for field in row["fields"]:
        assert is_placeholder(field["doc"]) and is_placeholder(field["classification"])
    subjects = {name for name, f in by_name(row).items() if SUBJECT_ATTRIBUTE in f}
    assert subjects == {"registration_id", "personal_id", "tax_code"}
    assert "probably personal_id" in by_name(row)["personal_id"][SUBJECT_ATTRIBUTE]
    assert "probably tax_code" in by_name(row)["tax_code"][SUBJECT_ATTRIBUTE]
    assert "probably" not in by_name(row)["registration_id"][SUBJECT_ATTRIBUTE]
    assert key["name"] == "CivilRegistrationKey" and is_placeholder(key["doc"])
    (key_field,) = key["fields"]
    assert key_field["name"] == "registration_id" and key_field["type"] == "long"


def test_lint_refuses_each_placeholder_naming_file_field_and_what_to_fill(
    tmp_path: Path,
) -> None:
    write_scaffold(scaffold_contract(TABLE, "civil"), tmp_path / "civil")
    report = lint(tmp_path)
    assert not report.ok
    assert {i.rule for i in report.issues} == {"placeholder"}
    messages = [str(i).replace(f"{tmp_path}/", "") for i in report.issues]
    row_file, key_file = "civil/civil_registration.avsc", "civil/civil_registration-key.avsc"
    expected = [
        f"{row_file}: doc is still a placeholder: say what one record is and which system it "
        "comes from",
        f"{row_file}: field 'full_name': doc is still a placeholder: say what the field holds, "
        "in words a subscriber understands",
        f"{row_file}: field 'full_name': classification is still a placeholder: choose one of "
        "public, internal, personal, sensitive_personal",
        f"{row_file}: field 'personal_id': govsync.subject is still a placeholder: name the "
        "identifier the field holds (personal_id, tax_code, insurance_number), or remove the "
        "attribute if the field identifies no person",
        f"{key_file}: field 'registration_id': doc is still a placeholder: say what the field "
        "holds, in words a subscriber understands",
    ]
    for message in expected:
        assert message in messages
    # one issue a placeholder: the two records' docs, a doc and a classification a field,
    # and govsync.subject on three fields of the row and on the key's registration_id
    assert len(report.issues) == 2 + 2 * (len(COLUMNS) + 1) + 3 + 1


def test_filled_in_it_lints_clean_and_loads(tmp_path: Path) -> None:
    directory = tmp_path / "civil"
    write_scaffold(scaffold_contract(TABLE, "civil"), directory)
    fill_placeholders(directory, {"personal_id": "personal_id", "tax_code": "tax_code"})
    report = lint(tmp_path)
    assert report.ok, [str(i) for i in report.issues]
    contract = load_contract(directory / "civil_registration.avsc")
    assert contract.topic == "civil.civil_registration"
    assert contract.key_fields == ("registration_id",)


def test_lint_checks_the_kind_of_a_filled_subject(tmp_path: Path) -> None:
    directory = tmp_path / "civil"
    write_scaffold(scaffold_contract(TABLE, "civil"), directory)
    fill_placeholders(directory, {"personal_id": "citizen_number", "tax_code": "tax_code"})
    (issue,) = lint(tmp_path).issues
    assert (issue.rule, issue.field) == ("attribute", "personal_id")
    assert "govsync.subject 'citizen_number' is not one of personal_id, tax_code" in str(issue)


def test_existing_files_are_not_overwritten_unless_forced(tmp_path: Path) -> None:
    scaffold = scaffold_contract(TABLE, "civil")
    row_path = tmp_path / "civil_registration.avsc"
    row_path.write_text("{}", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"civil_registration\.avsc already exists"):
        write_scaffold(scaffold, tmp_path)
    assert row_path.read_text(encoding="utf-8") == "{}"
    assert not (tmp_path / "civil_registration-key.avsc").exists()
    written = write_scaffold(scaffold, tmp_path, force=True)
    assert [p.name for p in written] == ["civil_registration.avsc", "civil_registration-key.avsc"]
    assert json.loads(row_path.read_text(encoding="utf-8"))["name"] == "CivilRegistration"


@pytest.mark.parametrize(
    ("columns", "key", "exclude", "problem"),
    [
        (
            [("id", "bigint", "bigint"), ("wait", None, "interval")],
            ("id",),
            (),
            "column wait has type interval, which no contract type holds exactly",
        ),
        (
            [("id", "bigint", "bigint"), ("total", "numeric", "numeric")],
            ("id",),
            (),
            "holds exactly (declare its precision and scale)",
        ),
        ([("id", "bigint", "bigint")], (), (), "the table has no primary key"),
        (
            [("id", "bigint", "bigint"), ("x", "text", "text")],
            ("id",),
            ("id",),
            "column id is in the table's key: it cannot be left out",
        ),
        ([("id", "bigint", "bigint")], ("id",), ("nope",), "there is no column nope"),
        (
            [("id", "bigint", "bigint"), ("Số", "text", "text")],
            ("id",),
            (),
            "its name is not a valid Avro field name",
        ),
    ],
)
def test_what_cannot_be_scaffolded_is_a_problem(
    columns: list[tuple[str, str | None, str]],
    key: tuple[str, ...],
    exclude: tuple[str, ...],
    problem: str,
) -> None:
    table = SourceTable("survey", tuple(SourceColumn(*c, nullable=True) for c in columns), key)
    scaffold = scaffold_contract(table, "cadastre", exclude=exclude)
    assert not scaffold.ok
    assert any(p.startswith("survey: ") and problem in p for p in scaffold.problems), (
        scaffold.problems
    )


def test_a_column_left_out_is_not_a_problem() -> None:
    columns = (SourceColumn("id", "bigint", "bigint", False), SourceColumn("wait", None, "x", True))
    scaffold = scaffold_contract(
        SourceTable("survey", columns, ("id",)), "cadastre", exclude={"wait"}
    )
    assert scaffold.ok and [f["name"] for f in scaffold.row_schema["fields"]] == ["id"]


@pytest.mark.parametrize(
    ("name", "suggested"),
    [
        ("personal_id", (True, "personal_id")),
        ("holder_personal_id", (True, "personal_id")),
        ("cccd", (True, "personal_id")),
        ("passport_number", (True, "personal_id")),
        ("tax_code", (True, "tax_code")),
        ("insurance_number", (True, "insurance_number")),
        ("health_insurance_card_number", (True, "insurance_number")),
        ("household_id", (True, None)),
        ("id", (True, None)),
        ("certificate_no", (True, None)),
        ("province_code", (False, None)),
        ("full_name", (False, None)),
        ("enterprise_code", (False, None)),
        ("identity", (False, None)),
    ],
)
def test_which_names_suggest_a_personal_identifier(
    name: str, suggested: tuple[bool, str | None]
) -> None:
    assert suggested_subject(name) == suggested


def test_record_names_are_pascal_case() -> None:
    assert record_name("land_use_right") == "LandUseRight"
    assert record_name("citizen") == "Citizen"
