"""The demo source databases of the five agencies, each created and filled on its own from the
contracts: tables with the contracts' columns and keys, rows in every table, nothing loaded
twice, and references that hold across the databases."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import sql

from sync.contracts import Contract, columns_of, load_contracts
from sync.stack.demo import load_citizens, load_demo, sources
from sync.stack.providers import StackProvider

pytestmark = [pytest.mark.integration, pytest.mark.brokerless]

SCALE = 300
# columns_of's type -> information_schema's (data_type, numeric_precision, numeric_scale)
DATA_TYPES: dict[str, tuple[str, int | None, int | None]] = {
    "text": ("text", None, None),
    "integer": ("integer", 32, 0),
    "bigint": ("bigint", 64, 0),
    "boolean": ("boolean", None, None),
    "double precision": ("double precision", 53, None),
    "date": ("date", None, None),
    "timestamptz": ("timestamp with time zone", None, None),
}


@dataclass
class AgencyDatabase:
    agency: str
    dsn: str
    contracts: list[Contract]
    loaded: dict[str, int]

    def query(self, query: str | sql.Composed, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.dsn) as conn:
            return conn.execute(query, params).fetchall()

    def values(self, table: str, column: str) -> set[Any]:
        query = sql.SQL("SELECT {} FROM {} WHERE {} IS NOT NULL").format(
            sql.Identifier(column), sql.Identifier(table), sql.Identifier(column)
        )
        with psycopg.connect(self.dsn) as conn:
            return {row[0] for row in conn.execute(query)}


@pytest.fixture(scope="module")
def databases(stack: StackProvider) -> Iterator[dict[str, AgencyDatabase]]:
    contracts = list(load_contracts().values())
    run = uuid.uuid4().hex[:6]
    made = {}
    for agency in sources():
        mine = [c for c in contracts if c.row_schema["govsync.source"] == agency]
        dsn = stack.create_database(f"demo_{agency}_{run}")
        with psycopg.connect(dsn, autocommit=True) as conn:
            loaded = load_demo(conn, mine, SCALE)
        made[agency] = AgencyDatabase(agency, dsn, mine, loaded)
    yield made


def test_every_agency_gets_a_database_with_rows_in_every_table(
    databases: dict[str, AgencyDatabase],
) -> None:
    assert set(databases) == {"population", "land", "business", "finance", "insurance"}
    for db in databases.values():
        assert set(db.loaded) == {c.source_table for c in db.contracts}
        for table, loaded in db.loaded.items():
            assert loaded > 0, f"{db.agency}.{table}"
            counted = db.query(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
            assert counted == [(loaded,)], f"{db.agency}.{table}"
    assert databases["population"].loaded["citizen"] == SCALE


def test_tables_have_the_contract_columns_types_and_keys(
    databases: dict[str, AgencyDatabase],
) -> None:
    for db in databases.values():
        for contract in db.contracts:
            assert table_columns(db, contract.source_table) == expected_columns(contract)
            assert primary_key(db, contract.source_table) == list(contract.key_fields)


def table_columns(db: AgencyDatabase, table: str) -> list[tuple[Any, ...]]:
    return db.query(
        "SELECT column_name, data_type, numeric_precision, numeric_scale, is_nullable "
        "FROM information_schema.columns WHERE table_schema = 'public' AND table_name = %s "
        "ORDER BY ordinal_position",
        table,
    )


def expected_columns(contract: Contract) -> list[tuple[Any, ...]]:
    return [
        (c.name, *information_schema_type(c.sql_type), "YES" if c.nullable else "NO")
        for c in columns_of(contract)
    ]


def information_schema_type(sql_type: str) -> tuple[str, int | None, int | None]:
    if sql_type.startswith("numeric("):
        precision, scale = sql_type.removeprefix("numeric(").removesuffix(")").split(",")
        return ("numeric", int(precision), int(scale))
    return DATA_TYPES[sql_type]


def primary_key(db: AgencyDatabase, table: str) -> list[str]:
    rows = db.query(
        "SELECT k.column_name FROM information_schema.table_constraints t "
        "JOIN information_schema.key_column_usage k USING (constraint_schema, constraint_name) "
        "WHERE t.table_schema = 'public' AND t.table_name = %s "
        "AND t.constraint_type = 'PRIMARY KEY' ORDER BY k.ordinal_position",
        table,
    )
    return [row[0] for row in rows]


def test_a_second_load_loads_nothing(databases: dict[str, AgencyDatabase]) -> None:
    for db in databases.values():
        with psycopg.connect(db.dsn, autocommit=True) as conn:
            again = load_demo(conn, db.contracts, SCALE)
        assert again == dict.fromkeys(db.loaded, 0), db.agency
        for table, loaded in db.loaded.items():
            counted = db.query(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
            assert counted == [(loaded,)]


def test_references_hold_across_the_databases(databases: dict[str, AgencyDatabase]) -> None:
    population, land = databases["population"], databases["land"]
    business, finance = databases["business"], databases["finance"]
    insurance = databases["insurance"]
    citizens = population.values("citizen", "personal_id")
    enterprises = business.values("enterprise", "enterprise_code")
    assert population.values("household", "head_personal_id") <= citizens
    assert land.values("land_use_right", "holder_personal_id") <= citizens
    assert land.values("land_use_right", "co_holder_personal_id") <= citizens
    assert land.values("land_use_right", "holder_enterprise_code") <= enterprises
    assert land.values("land_use_right", "parcel_id") == land.values("land_parcel", "parcel_id")
    assert business.values("legal_representative", "personal_id") <= citizens
    assert finance.values("taxpayer", "personal_id") <= citizens
    assert finance.values("taxpayer", "enterprise_code") == enterprises
    assert insurance.values("insured_person", "personal_id") <= citizens
    assert insurance.values("insured_person", "employer_enterprise_code") <= enterprises
    assert insurance.values("contribution_period", "insurance_number") <= insurance.values(
        "insured_person", "insurance_number"
    )


def test_load_citizens_loads_the_same_citizens_as_the_population_demo(
    stack: StackProvider, databases: dict[str, AgencyDatabase]
) -> None:
    population = databases["population"]
    contract = next(c for c in population.contracts if c.entity == "citizen")
    dsn = stack.create_database(f"demo_citizens_{uuid.uuid4().hex[:6]}")
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert load_citizens(conn, contract, SCALE) == SCALE
        assert load_citizens(conn, contract, SCALE) == 0
    columns = ", ".join(n for n in contract.field_names if n != "updated_at")
    query = f"SELECT {columns} FROM citizen"
    with psycopg.connect(dsn) as conn:
        loaded = set(conn.execute(query).fetchall())
    assert loaded == set(population.query(query))
