"""Avro contracts: loading ``schemas/avro``, the errors a broken contract gives, the SQL columns
a contract describes, and the Debezium-shaped envelope registered as the value schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import avro.schema
import fastavro
import pytest

from sync.contracts import Contract, columns_of, envelope_schema, load_contract, load_contracts
from sync.contracts.loader import CLASSIFICATIONS, default_schemas_dir
from sync.errors import ContractError

REPO_SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "avro"


def write_json(path: Path, document: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def record(name: str, fields: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"type": "record", "name": name, "namespace": "vn.gov.test", "fields": fields, **extra}


def field(name: str, avro_type: Any, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": avro_type, "classification": "internal", "doc": name, **extra}


def contract_with(tmp_path: Path, *fields: dict[str, Any], key: str = "id") -> Contract:
    """A one-entity contract ``test.thing`` keyed by ``key`` (a string field added first)."""
    row = record("Thing", [field(key, "string"), *fields])
    write_json(tmp_path / "test" / "thing-key.avsc", record("ThingKey", [field(key, "string")]))
    return load_contract(write_json(tmp_path / "test" / "thing.avsc", row))


@pytest.fixture(scope="module")
def citizen() -> Contract:
    return load_contracts(REPO_SCHEMAS)["population.citizen"]


# ---- the repository's contracts ----------------------------------------------------------


def test_default_schemas_dir_is_the_repositorys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOVSYNC_SCHEMAS_DIR", raising=False)
    assert default_schemas_dir() == REPO_SCHEMAS


def test_schemas_dir_can_be_moved_by_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GOVSYNC_SCHEMAS_DIR", str(tmp_path))
    assert default_schemas_dir() == tmp_path
    assert load_contracts() == {}


def test_key_files_are_not_contracts_of_their_own() -> None:
    contracts = load_contracts(REPO_SCHEMAS)
    assert "population.citizen" in contracts
    assert not any(topic.endswith("-key") for topic in contracts)


def test_citizen_topic_and_subjects(citizen: Contract) -> None:
    assert citizen.domain == "population"
    assert citizen.entity == "citizen"
    assert citizen.topic == "population.citizen"
    assert citizen.value_subject == "population.citizen-value"
    assert citizen.key_subject == "population.citizen-key"


def test_citizen_is_keyed_by_personal_id(citizen: Contract) -> None:
    assert citizen.key_fields == ("personal_id",)
    assert citizen.field_names[0] == "personal_id"


def test_citizen_reads_govsync_attributes(citizen: Contract) -> None:
    assert citizen.source_table == "citizen"
    assert citizen.compatibility == "FULL_TRANSITIVE"
    assert citizen.path == REPO_SCHEMAS / "population" / "citizen.avsc"


def test_every_repository_field_has_doc_and_an_allowed_classification() -> None:
    contracts = load_contracts(REPO_SCHEMAS)
    assert contracts
    for contract in contracts.values():
        for schema in (contract.row_schema, contract.key_schema):
            assert schema.get("doc"), f"{contract.path}: record {schema['name']} has no doc"
            for f in schema["fields"]:
                where = f"{contract.path}: {schema['name']}.{f['name']}"
                assert f.get("doc"), f"{where} has no doc"
                assert f.get("classification") in CLASSIFICATIONS, f"{where} classification"


def test_repository_schemas_parse_with_fastavro_and_avro() -> None:
    for contract in load_contracts(REPO_SCHEMAS).values():
        for schema in (contract.row_schema, contract.key_schema):
            fastavro.parse_schema(schema)
            avro.schema.parse(json.dumps(schema))


# ---- broken contracts --------------------------------------------------------------------


def test_contract_without_key_file_names_both_files(tmp_path: Path) -> None:
    path = write_json(tmp_path / "test" / "thing.avsc", record("Thing", [field("id", "string")]))
    with pytest.raises(ContractError) as caught:
        load_contract(path)
    assert str(path) in str(caught.value)
    assert "thing-key.avsc" in str(caught.value)
    assert caught.value.contract == str(path)


def test_load_contracts_fails_on_a_contract_without_key(tmp_path: Path) -> None:
    write_json(tmp_path / "test" / "thing.avsc", record("Thing", [field("id", "string")]))
    with pytest.raises(ContractError, match=r"no key schema thing-key\.avsc"):
        load_contracts(tmp_path)


def test_key_field_missing_from_row_is_named(tmp_path: Path) -> None:
    write_json(tmp_path / "test" / "thing-key.avsc", record("ThingKey", [field("code", "string")]))
    path = write_json(tmp_path / "test" / "thing.avsc", record("Thing", [field("id", "string")]))
    with pytest.raises(ContractError) as caught:
        load_contract(path)
    assert str(path) in str(caught.value)
    assert "'code'" in str(caught.value)
    assert caught.value.field == "code"


def test_key_field_with_another_type_in_row_is_rejected(tmp_path: Path) -> None:
    write_json(tmp_path / "test" / "thing-key.avsc", record("ThingKey", [field("id", "long")]))
    path = write_json(tmp_path / "test" / "thing.avsc", record("Thing", [field("id", "string")]))
    with pytest.raises(ContractError, match="same type") as caught:
        load_contract(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    "document",
    [["not", "a", "record"], {"type": "enum", "name": "E", "symbols": ["A"]}, "string"],
    ids=["array", "enum", "primitive"],
)
def test_non_record_contract_is_rejected_naming_the_file(tmp_path: Path, document: Any) -> None:
    path = write_json(tmp_path / "test" / "thing.avsc", document)
    write_json(tmp_path / "test" / "thing-key.avsc", record("ThingKey", [field("id", "string")]))
    with pytest.raises(ContractError, match="must be an Avro record") as caught:
        load_contract(path)
    assert str(path) in str(caught.value)


def test_non_record_key_schema_is_rejected_naming_the_key_file(tmp_path: Path) -> None:
    key_path = write_json(tmp_path / "test" / "thing-key.avsc", "string")
    path = write_json(tmp_path / "test" / "thing.avsc", record("Thing", [field("id", "string")]))
    with pytest.raises(ContractError, match="must be an Avro record") as caught:
        load_contract(path)
    assert str(key_path) in str(caught.value)


def test_invalid_json_is_rejected_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "test" / "thing.avsc"
    path.parent.mkdir()
    path.write_text('{"type": "record", ', encoding="utf-8")
    with pytest.raises(ContractError, match="cannot read the schema") as caught:
        load_contract(path)
    assert str(path) in str(caught.value)


def test_missing_contract_file_is_a_contract_error(tmp_path: Path) -> None:
    path = tmp_path / "test" / "nothing.avsc"
    with pytest.raises(ContractError) as caught:
        load_contract(path)
    assert str(path) in str(caught.value)


def test_contract_defaults_without_govsync_attributes(tmp_path: Path) -> None:
    contract = contract_with(tmp_path)
    assert contract.topic == "test.thing"
    assert contract.source_table == "thing"
    assert contract.compatibility == "FULL_TRANSITIVE"


# ---- columns -----------------------------------------------------------------------------


def test_citizen_columns(citizen: Contract) -> None:
    columns = {c.name: c for c in columns_of(citizen)}
    assert list(columns) == list(citizen.field_names)
    assert columns["personal_id"].in_key
    assert not columns["personal_id"].nullable
    assert columns["date_of_birth"].sql_type == "date"
    assert columns["updated_at"].sql_type == "timestamptz"
    assert columns["ethnicity"].sql_type == "text"
    assert columns["ethnicity"].nullable
    assert columns["ethnicity"].classification == "sensitive_personal"
    assert [c.name for c in columns.values() if c.in_key] == ["personal_id"]


@pytest.mark.parametrize(
    ("avro_type", "sql_type", "nullable"),
    [
        ({"type": "int", "logicalType": "date"}, "date", False),
        ({"type": "long", "logicalType": "timestamp-micros"}, "timestamptz", False),
        ({"type": "long", "logicalType": "timestamp-millis"}, "timestamptz", False),
        ({"type": "long", "logicalType": "local-timestamp-micros"}, "timestamp", False),
        (
            {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2},
            "numeric(12,2)",
            False,
        ),
        ({"type": "bytes", "logicalType": "decimal", "precision": 5}, "numeric(5,0)", False),
        ({"type": "string", "logicalType": "uuid"}, "uuid", False),
        ("long", "bigint", False),
        ("int", "integer", False),
        ("boolean", "boolean", False),
        ("double", "double precision", False),
        ("bytes", "bytea", False),
        (["null", "string"], "text", True),
        (["null", {"type": "int", "logicalType": "date"}], "date", True),
        ({"type": "enum", "name": "Sex", "symbols": ["nam", "nu"]}, "text", False),
        ({"type": "array", "items": "string"}, "text[]", False),
    ],
)
def test_avro_type_maps_to_column(
    tmp_path: Path, avro_type: Any, sql_type: str, nullable: bool
) -> None:
    contract = contract_with(tmp_path, field("value", avro_type))
    column = columns_of(contract)[1]
    assert (column.name, column.sql_type, column.nullable) == ("value", sql_type, nullable)
    assert not column.in_key


def test_union_of_two_non_null_types_has_no_column(tmp_path: Path) -> None:
    contract = contract_with(tmp_path, field("value", ["null", "string", "long"]))
    with pytest.raises(ContractError, match="only unions of null and one type") as caught:
        columns_of(contract)
    assert "'value'" in str(caught.value)
    assert str(contract.path) in str(caught.value)


def test_type_without_mapping_is_named(tmp_path: Path) -> None:
    nested = {"type": "map", "values": "string"}
    contract = contract_with(tmp_path, field("attrs", nested))
    with pytest.raises(ContractError, match="'attrs'"):
        columns_of(contract)


# ---- envelope ----------------------------------------------------------------------------


def test_envelope_has_debezium_field_names(citizen: Contract) -> None:
    schema = envelope_schema(citizen)
    names = [f["name"] for f in schema["fields"]]
    assert names == ["before", "after", "source", "op", "ts_ms", "transaction"]


def test_envelope_is_named_after_the_row(citizen: Contract) -> None:
    schema = envelope_schema(citizen)
    assert schema["name"] == "CitizenEnvelope"
    assert schema["namespace"] == "vn.gov.population"


def test_envelope_before_and_after_are_nullable_rows(citizen: Contract) -> None:
    fields = {f["name"]: f for f in envelope_schema(citizen)["fields"]}
    assert fields["before"]["type"][0] == "null"
    assert fields["before"]["type"][1]["name"] == "Citizen"
    assert fields["after"]["type"] == ["null", "vn.gov.population.Citizen"]
    assert fields["before"]["default"] is None and fields["after"]["default"] is None


def test_envelope_source_carries_the_version_position(citizen: Contract) -> None:
    fields = {f["name"]: f for f in envelope_schema(citizen)["fields"]}
    source_fields = {f["name"]: f["type"] for f in fields["source"]["type"]["fields"]}
    assert source_fields["lsn"] == "long"
    assert source_fields["event_index"] == "int"
    assert {"version", "connector", "name", "ts_ms", "db", "schema", "table"} <= set(source_fields)


def test_envelope_parses_with_fastavro(citizen: Contract) -> None:
    parsed = fastavro.parse_schema(envelope_schema(citizen))
    assert parsed["name"] == "vn.gov.population.CitizenEnvelope"


def test_envelope_parses_with_apache_avro(citizen: Contract) -> None:
    parsed = avro.schema.parse(json.dumps(envelope_schema(citizen)))
    assert parsed.fullname == "vn.gov.population.CitizenEnvelope"
    assert [f.name for f in parsed.fields] == [
        "before",
        "after",
        "source",
        "op",
        "ts_ms",
        "transaction",
    ]


def test_envelope_does_not_alter_the_contracts_row_schema(citizen: Contract) -> None:
    before = json.dumps(citizen.row_schema, sort_keys=True)
    envelope_schema(citizen)
    fastavro.parse_schema(envelope_schema(citizen))
    assert json.dumps(citizen.row_schema, sort_keys=True) == before


def test_envelope_of_a_row_without_namespace_parses(tmp_path: Path) -> None:
    write_json(tmp_path / "x" / "t-key.avsc", {"type": "record", "name": "TK", "fields": []})
    row = {"type": "record", "name": "T", "fields": [{"name": "a", "type": "string"}]}
    contract = load_contract(write_json(tmp_path / "x" / "t.avsc", row))
    schema = envelope_schema(contract)
    fastavro.parse_schema(schema)
    avro.schema.parse(json.dumps(schema))
