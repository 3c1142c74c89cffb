"""The catalogue of contracts in ``schemas/avro``, all five agencies, and the demo rows generated
for them: the house style every contract follows, that every generated row encodes with its
contract, and that the agencies' demo databases refer to the same citizens and enterprises."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import avro.schema
import fastavro
import pytest

from sync.contracts import Contract, EventCodec, columns_of, envelope_schema, load_contracts
from sync.contracts.loader import CLASSIFICATIONS
from sync.stack.demo import GENERATORS, PROVINCES, World, sources
from sync.stack.demo_finance import income_tax
from sync.stack.demo_people import REFERENCE_DAY, check_digit
from sync.types import ChangeEvent, Lsn, Op, Position, TableRef

REPO_SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "avro"
SCALE = 400
AGENCIES = {
    "population": ["citizen", "household"],
    "land": ["land_parcel", "land_use_right"],
    "business": ["enterprise", "legal_representative"],
    "finance": ["tax_obligation", "taxpayer"],
    "insurance": ["contribution_period", "insured_person"],
}
SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
PASCAL = re.compile(r"^[A-Z][A-Za-z0-9]*$")
# words PostgreSQL reserves, or that need quoting somewhere, that a column must not be named
SQL_RESERVED = set(
    """all analyse analyze and any array as asc both case cast check collate column constraint
    create current_date current_time current_user default desc distinct do else end except false
    fetch for foreign from grant group having in initially intersect into leading limit not null
    offset on only or order placing primary references returning select session_user some
    symmetric table then to trailing true union unique user using variadic when where window with
    key type value position""".split()
)
PRIMITIVES = {"string", "int", "long", "boolean", "double"}
LOGICAL = {("int", "date"), ("long", "timestamp-micros"), ("bytes", "decimal")}
COMMIT_TIME = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)

Row = Mapping[str, Any]


@pytest.fixture(scope="module")
def contracts() -> dict[str, Contract]:
    return load_contracts(REPO_SCHEMAS)


@pytest.fixture(scope="module")
def rows() -> dict[str, list[Row]]:
    """Every table's demo rows, each generated from a world of its own, the way each agency's
    database is filled on its own."""
    return {topic: list(generate(World(SCALE))) for topic, generate in GENERATORS.items()}


def fields_of(schema: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in schema["fields"]}


def branch(avro_type: Any) -> Any:
    """The non-null branch of a nullable type, else the type itself."""
    if isinstance(avro_type, list):
        return next(t for t in avro_type if t != "null")
    return avro_type


def column(rows: dict[str, list[Row]], topic: str, name: str) -> set[Any]:
    return {row[name] for row in rows[topic] if row[name] is not None}


def by(rows: dict[str, list[Row]], topic: str, name: str) -> dict[Any, Row]:
    return {row[name]: row for row in rows[topic]}


# ---- the catalogue -------------------------------------------------------------------------


def test_every_agency_publishes_its_entities(contracts: dict[str, Contract]) -> None:
    assert sources(contracts.values()) == AGENCIES
    assert sources() == AGENCIES


def test_contract_attributes_follow_the_house_style(contracts: dict[str, Contract]) -> None:
    for topic, contract in contracts.items():
        row, key = contract.row_schema, contract.key_schema
        assert row["namespace"] == key["namespace"] == f"vn.gov.{contract.domain}", topic
        assert row["govsync.source"] == contract.domain, topic
        assert row["govsync.table"] == contract.entity == contract.source_table, topic
        assert row["govsync.compatibility"] == "FULL_TRANSITIVE", topic
        expected = "".join(part.title() for part in contract.entity.split("_"))
        assert (row["name"], key["name"]) == (expected, f"{expected}Key"), topic


def test_every_record_and_field_has_a_doc_and_a_classification(
    contracts: dict[str, Contract],
) -> None:
    for contract in contracts.values():
        for schema in (contract.row_schema, contract.key_schema):
            assert len(schema.get("doc", "")) > 20, f"{contract.path}: {schema['name']} doc"
            for f in schema["fields"]:
                where = f"{contract.path}: {schema['name']}.{f['name']}"
                assert len(f.get("doc", "")) > 10, f"{where} has no doc"
                assert f.get("classification") in CLASSIFICATIONS, f"{where} classification"


def test_names_are_avro_names_and_safe_sql_identifiers(contracts: dict[str, Contract]) -> None:
    for contract in contracts.values():
        assert SNAKE.match(contract.entity) and contract.entity not in SQL_RESERVED
        for schema in (contract.row_schema, contract.key_schema):
            assert PASCAL.match(schema["name"]), schema["name"]
            for name in fields_of(schema):
                assert SNAKE.match(name) and len(name) <= 63, f"{contract.topic}.{name}"
                assert name not in SQL_RESERVED, f"{contract.topic}.{name} is an SQL keyword"


def test_field_types_are_the_ones_columns_map(contracts: dict[str, Contract]) -> None:
    for contract in contracts.values():
        for f in contract.row_schema["fields"]:
            where = f"{contract.topic}.{f['name']}"
            if isinstance(f["type"], list):
                assert f["type"][0] == "null" and len(f["type"]) == 2, where
                assert "default" in f and f["default"] is None, where
            else:
                assert "default" not in f, f"{where}: only nullable fields have defaults"
            t = branch(f["type"])
            if isinstance(t, str):
                assert t in PRIMITIVES, where
                continue
            assert (t["type"], t.get("logicalType")) in LOGICAL, where
            if t["logicalType"] == "decimal":
                assert 0 <= t["scale"] <= 2 and t["precision"] in (14, 18), where


def test_every_entity_says_when_it_changed(contracts: dict[str, Contract]) -> None:
    for contract in contracts.values():
        updated_at = fields_of(contract.row_schema)["updated_at"]
        assert updated_at["type"] == {"type": "long", "logicalType": "timestamp-micros"}


def test_key_fields_are_non_null_row_fields_with_the_same_classification(
    contracts: dict[str, Contract],
) -> None:
    for contract in contracts.values():
        row_fields = fields_of(contract.row_schema)
        for key_field in contract.key_schema["fields"]:
            row_field = row_fields[key_field["name"]]
            assert not isinstance(row_field["type"], list), contract.topic
            assert key_field["type"] == row_field["type"]
            assert key_field["classification"] == row_field["classification"], contract.topic


def test_personal_ids_are_documented_as_12_digits(contracts: dict[str, Contract]) -> None:
    found = 0
    for contract in contracts.values():
        for schema in (contract.row_schema, contract.key_schema):
            for name, f in fields_of(schema).items():
                if name == "personal_id" or name.endswith("_personal_id"):
                    found += 1
                    assert "12-digit" in f["doc"], f"{contract.topic}.{name}"
                    assert f["classification"] == "personal"
                    assert branch(f["type"]) == "string"
    assert found >= 10


def test_classifications_are_honest(contracts: dict[str, Contract]) -> None:
    """Names, ids and birth dates of persons are personal; ethnicity, a person's money and
    the beneficiary group on a health insurance card are sensitive; enterprise registration
    is public."""
    sensitive = {
        "population.citizen": {"ethnicity"},
        "finance.tax_obligation": {
            "taxable_amount_vnd",
            "tax_due_vnd",
            "tax_paid_vnd",
            "status",
        },
        "insurance.insured_person": {"health_insurance_card_number"},
        "insurance.contribution_period": {
            "salary_base_vnd",
            "employee_contribution_vnd",
            "employer_contribution_vnd",
        },
    }
    for topic, contract in contracts.items():
        for name, f in fields_of(contract.row_schema).items():
            level = f["classification"]
            assert (level == "sensitive_personal") == (name in sensitive.get(topic, ())), name
            if name in ("full_name", "date_of_birth", "sex", "insurance_number"):
                assert level == "personal", f"{topic}.{name}"
            if name.endswith("_vnd") and contract.domain != "business":
                assert level == "sensitive_personal", f"{topic}.{name}"
    enterprise = fields_of(contracts["business.enterprise"].row_schema)
    assert {f["classification"] for n, f in enterprise.items() if n != "updated_at"} == {"public"}


def test_every_contract_maps_to_columns_and_its_envelope_parses(
    contracts: dict[str, Contract],
) -> None:
    for contract in contracts.values():
        columns = columns_of(contract)
        assert [c.name for c in columns] == list(contract.field_names)
        assert tuple(c.name for c in columns if c.in_key) == contract.key_fields
        for schema in (contract.row_schema, contract.key_schema, envelope_schema(contract)):
            fastavro.parse_schema(schema)
            avro.schema.parse(json.dumps(schema))


# ---- the demo rows conform to the contracts ------------------------------------------------


def test_every_contract_has_a_demo_generator(contracts: dict[str, Contract]) -> None:
    assert set(GENERATORS) == set(contracts)


def test_every_table_gets_rows_with_unique_keys(
    contracts: dict[str, Contract], rows: dict[str, list[Row]]
) -> None:
    for topic, contract in contracts.items():
        assert rows[topic], topic
        keys = [tuple(row[k] for k in contract.key_fields) for row in rows[topic]]
        duplicates = [k for k, n in Counter(keys).items() if n > 1]
        assert not duplicates, f"{topic}: duplicate keys {duplicates[:3]}"


def test_generated_rows_encode_and_decode_with_their_contract(
    contracts: dict[str, Contract], rows: dict[str, list[Row]]
) -> None:
    for topic, contract in contracts.items():
        codec = EventCodec(contract, source_db=contract.domain)
        schemas = {1: contract.key_schema, 2: codec.value_schema}
        for index, row in enumerate(rows[topic]):
            assert set(row) == set(contract.field_names), topic
            event = snapshot_event(contract, row, index)
            key, value = codec.encode(event, 1, 2)
        decoded = codec.decode(key, value, schemas.__getitem__)
        assert decoded.after == row, topic
        assert decoded.key == event.key


def snapshot_event(contract: Contract, row: Row, index: int) -> ChangeEvent:
    position = Position(Lsn(0x16B374D848), 0)
    return ChangeEvent(
        op=Op.READ,
        table=TableRef("public", contract.source_table),
        key={k: row[k] for k in contract.key_fields},
        before=None,
        after=row,
        position=position,
        txid=0,
        commit_time=COMMIT_TIME,
        event_id=f"{contract.domain}:{index}",
        source=contract.domain,
    )


def test_enumerated_values_are_the_documented_ones(
    contracts: dict[str, Contract], rows: dict[str, list[Row]]
) -> None:
    """A string field whose doc lists its quoted values (and gives no mere example) only
    takes those values."""
    checked = 0
    for topic, contract in contracts.items():
        for name, f in fields_of(contract.row_schema).items():
            allowed = set(re.findall(r"'([A-Za-z_]+)'", f["doc"]))
            if branch(f["type"]) != "string" or len(allowed) < 2 or "e.g." in f["doc"]:
                continue
            checked += 1
            values = column(rows, topic, name)
            assert values <= allowed, f"{topic}.{name}: {values - allowed}"
    assert checked >= 15


def test_codes_have_their_documented_shapes(rows: dict[str, list[Row]]) -> None:
    for person in rows["population.citizen"]:
        assert re.fullmatch(r"0(\d\d)[0-3]\d{8}", str(person["personal_id"]))
        assert str(person["personal_id"])[1:3] == person["province_code"]
        assert_administrative_codes(person)
    for topic in ("population.household", "business.enterprise", "finance.taxpayer"):
        for row in rows[topic]:
            assert_administrative_codes(row)
    for household in rows["population.household"]:
        assert re.fullmatch(r"\d{11}", household["household_id"])
        assert household["household_id"][:5] == household["ward_code"]
    for parcel in rows["land.land_parcel"]:
        assert_administrative_codes(parcel)
        sheet, number = parcel["map_sheet_number"], parcel["parcel_number"]
        assert parcel["parcel_id"] == f"{parcel['ward_code']}-{sheet:03d}-{number:05d}"
    for right in rows["land.land_use_right"]:
        assert re.fullmatch(r"[A-Z]{2}\d{8}", right["certificate_serial"])
    for person in rows["insurance.insured_person"]:
        assert re.fullmatch(r"\d{10}", person["insurance_number"])
        card = person["health_insurance_card_number"]
        assert card is None or re.fullmatch(rf"[A-Z]{{2}}\d\d\d{person['insurance_number']}", card)


def assert_administrative_codes(row: Row) -> None:
    province, district, ward = row["province_code"], row["district_code"], row["ward_code"]
    assert district in PROVINCES[province], row
    assert re.fullmatch(r"\d{5}", ward) and int(ward) // 30 == int(district), row


def test_enterprise_and_tax_codes_carry_a_valid_check_digit(rows: dict[str, list[Row]]) -> None:
    for code in column(rows, "business.enterprise", "enterprise_code"):
        assert re.fullmatch(r"\d{10}", code)
        assert check_digit(code[:9]) == int(code[9])
    for payer in rows["finance.taxpayer"]:
        code = payer["tax_code"]
        assert re.fullmatch(r"\d{10}(-\d{3})?", code), code
        assert check_digit(code[:9]) == int(code[9])


def test_names_are_vietnamese(rows: dict[str, list[Row]]) -> None:
    names = column(rows, "population.citizen", "full_name")
    assert sum(1 for n in names if not n.isascii()) > len(names) * 0.8
    forms = ("Công ty TNHH ", "Công ty Cổ phần ", "Công ty Hợp danh ", "Doanh nghiệp tư nhân ")
    for firm in rows["business.enterprise"]:
        assert firm["name_vi"].startswith(forms), firm["name_vi"]
        assert firm["name_en"] is None or firm["name_en"].isascii()
    assert len(column(rows, "business.enterprise", "name_vi")) == len(rows["business.enterprise"])


def test_amounts_add_up(rows: dict[str, list[Row]]) -> None:
    for period in rows["insurance.contribution_period"]:
        salary = period["salary_base_vnd"]
        total = period["employee_contribution_vnd"] + period["employer_contribution_vnd"]
        assert abs(total - salary * (32 if period["employer_enterprise_code"] else 22) / 100) <= 1
    for obligation in rows["finance.tax_obligation"]:
        assert 0 <= obligation["tax_paid_vnd"] <= obligation["tax_due_vnd"]
        assert (obligation["status"] == "chua_den_han") == (obligation["due_date"] > REFERENCE_DAY)
    assert income_tax(60_000_000) == 3_000_000  # 5 million a month, all in the 5 % band
    assert income_tax(600_000_000) == 111_000_000


# ---- the agencies refer to the same citizens and enterprises ---------------------------------


def test_households_are_made_of_citizens_of_their_ward(rows: dict[str, list[Row]]) -> None:
    citizens = by(rows, "population.citizen", "personal_id")
    members = rows["population.household"]
    assert Counter(m["personal_id"] for m in members) == Counter(set(citizens))
    heads: dict[str, str] = {}
    for member in members:
        citizen = citizens[member["personal_id"]]
        assert member["ward_code"] == citizen["ward_code"]
        assert member["registered_on"] >= citizen["date_of_birth"]
        assert (
            heads.setdefault(member["household_id"], member["head_personal_id"])
            == (member["head_personal_id"])
        )
        is_head = member["personal_id"] == member["head_personal_id"]
        assert is_head == (member["relationship_to_head"] == "chu_ho")
    assert set(heads.values()) <= set(citizens)
    assert len(heads) == sum(m["relationship_to_head"] == "chu_ho" for m in members)


def test_land_use_rights_name_existing_parcels_citizens_and_enterprises(
    rows: dict[str, list[Row]],
) -> None:
    citizens = by(rows, "population.citizen", "personal_id")
    firms = by(rows, "business.enterprise", "enterprise_code")
    parcels = column(rows, "land.land_parcel", "parcel_id")
    rights = rows["land.land_use_right"]
    assert {r["parcel_id"] for r in rights} == parcels
    for right in rights:
        person, firm = right["holder_personal_id"], right["holder_enterprise_code"]
        if right["holder_type"] == "ca_nhan":
            assert firm is None and right["holder_name"] == citizens[person]["full_name"]
            assert right["co_holder_personal_id"] in (None, *citizens)
            assert right["use_term_end"] is None or right["use_term_end"] > right["issued_on"]
        else:
            assert person is None and right["co_holder_personal_id"] is None
            assert right["holder_name"] == firms[firm]["name_vi"]
            assert right["issued_on"] >= firms[firm]["established_on"]
    kinds = Counter(r["holder_type"] for r in rights)
    assert kinds["ca_nhan"] and kinds["to_chuc"]
    assert any(r["co_holder_personal_id"] for r in rights)


def test_legal_representatives_are_adult_citizens(rows: dict[str, list[Row]]) -> None:
    citizens = by(rows, "population.citizen", "personal_id")
    firms = by(rows, "business.enterprise", "enterprise_code")
    represented = set()
    for rep in rows["business.legal_representative"]:
        citizen = citizens[rep["personal_id"]]
        assert rep["full_name"] == citizen["full_name"]
        assert age(citizen["date_of_birth"], rep["appointed_on"]) >= 18
        assert rep["appointed_on"] >= firms[rep["enterprise_code"]]["established_on"]
        if rep["ended_on"] is None:
            represented.add(rep["enterprise_code"])
    assert represented == set(firms)


def test_taxpayers_are_citizens_and_enterprises(rows: dict[str, list[Row]]) -> None:
    citizens = by(rows, "population.citizen", "personal_id")
    firms = by(rows, "business.enterprise", "enterprise_code")
    payers = by(rows, "finance.taxpayer", "tax_code")
    for payer in payers.values():
        if payer["taxpayer_type"] == "ca_nhan":
            assert payer["name"] == citizens[payer["personal_id"]]["full_name"]
            assert payer["enterprise_code"] is None
        else:
            assert payer["personal_id"] is None
            assert payer["tax_code"][:10] == payer["enterprise_code"] in firms
    assert set(firms) <= set(payers)
    assert column(rows, "finance.tax_obligation", "tax_code") <= set(payers)


def test_insured_persons_are_citizens_employed_by_enterprises(rows: dict[str, list[Row]]) -> None:
    citizens = by(rows, "population.citizen", "personal_id")
    firms = by(rows, "business.enterprise", "enterprise_code")
    insured = by(rows, "insurance.insured_person", "insurance_number")
    for person in insured.values():
        citizen = citizens[person["personal_id"]]
        for name in ("full_name", "date_of_birth", "sex", "ward_code"):
            assert person[name] == citizen[name]
        assert person["employer_enterprise_code"] in (None, *firms)
    assert len({p["personal_id"] for p in insured.values()}) == len(insured)
    for period in rows["insurance.contribution_period"]:
        person = insured[period["insurance_number"]]
        assert period["employer_enterprise_code"] == person["employer_enterprise_code"]
        assert period["period_month"].day == 1
        assert period["period_month"] >= person["first_participation_on"].replace(day=1)


def test_the_same_scale_and_seed_give_the_same_rows() -> None:
    def without_time(topic: str, world: World) -> list[dict[str, Any]]:
        generated = GENERATORS[topic](world)
        return [{k: v for k, v in row.items() if k != "updated_at"} for row in generated]

    for topic in GENERATORS:
        assert without_time(topic, World(60)) == without_time(topic, World(60)), topic
    assert without_time("population.citizen", World(60, seed=7)) != without_time(
        "population.citizen", World(60)
    )


def age(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))
