"""A table's published columns against its contract: what evolves, what stops capture."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.postgres.pgoutput import Column
from connectors.postgres.schema_diff import avro_type_of_sql, diff, fits, sql_type_of_column
from sync.contracts import Contract, load_contracts

CONTRACTS = Path(__file__).resolve().parents[1] / "fixtures" / "contracts_capture"
TEXT, INT8, INT4, NUMERIC, TEXT_ARRAY = 25, 20, 23, 1700, 1009


@pytest.fixture(scope="module")
def survey() -> Contract:
    return load_contracts(CONTRACTS)["cadastre.survey"]


def columns(*extra: Column, drop: str = "") -> list[Column]:
    base = [Column(1, "id", INT8, -1), Column(0, "surveyor", TEXT, -1), Column(0, "note", TEXT, -1)]
    return [c for c in base if c.name != drop] + list(extra)


def test_the_same_columns_are_no_change(survey: Contract) -> None:
    assert not diff(survey, columns()).changed


def test_an_added_column_becomes_an_optional_sensitive_field(survey: Contract) -> None:
    change = diff(survey, columns(Column(0, "area", NUMERIC, (12 << 16 | 2) + 4)))
    assert change.added == ("area",) and not change.problems
    field = change.row_schema["fields"][-1]
    decimal = {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}
    assert field["type"] == ["null", decimal] and field["default"] is None
    assert field["classification"] == "sensitive_personal"
    assert [f["name"] for f in survey.row_schema["fields"]] == ["id", "surveyor", "note"]


def test_a_dropped_optional_field_is_left_out(survey: Contract) -> None:
    change = diff(survey, columns(drop="note"))
    assert change.dropped == ("note",) and not change.problems
    assert [f["name"] for f in change.row_schema["fields"]] == ["id", "surveyor"]


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        (columns(drop="surveyor"), "column surveyor was dropped; the contract requires it"),
        (columns(drop="id"), "column id was dropped; the contract requires it"),
        (
            [Column(1, "id", TEXT, -1), *columns()[1:]],
            "column id is now text; the contract's field holds bigint",
        ),
        (columns(Column(0, "shape", 600, -1)), "column shape was added as type oid 600"),
        (columns(Column(0, "total", NUMERIC, -1)), "column total was added as numeric, which"),
        (columns(Column(0, "Số", TEXT, -1)), "its name is not a valid Avro field name"),
    ],
)
def test_what_cannot_flow_on_is_named(survey: Contract, given: list[Column], problem: str) -> None:
    change = diff(survey, given)
    assert any(problem in p for p in change.problems), change.problems


def test_column_types_map_through_the_contracts_own_sql_names() -> None:
    assert sql_type_of_column(NUMERIC, (14 << 16 | 3) + 4) == "numeric(14,3)"
    assert sql_type_of_column(TEXT_ARRAY, -1) == "text[]"
    assert avro_type_of_sql("text[]") == {"type": "array", "items": ["null", "string"]}
    assert fits("bigint", "integer") and not fits("integer", "bigint")
    assert fits("numeric(14,3)", "numeric(10,3)") and not fits("numeric(14,3)", "numeric(14,2)")
    assert fits("text", None) and not fits("date", None)


def test_a_column_left_out_on_purpose_is_not_added(survey: Contract) -> None:
    memo = Column(0, "internal_memo", TEXT, -1)
    assert not diff(survey, columns(memo), unpublished={"internal_memo"}).changed
    assert diff(survey, columns(memo)).added == ("internal_memo",)
