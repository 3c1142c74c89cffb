"""Demo source databases of the five agencies: population (citizens, households), land
(parcels, land-use rights), business registration (enterprises, legal representatives),
finance (taxpayers, tax obligations) and social insurance (insured persons, contributions).

Source tables are created from the same contract columns as the replicas, so the contract, the
source table and the replica table cannot drift apart. Every agency's rows come from one
:class:`~sync.stack.demo_world.World` regenerated from the same scale and seed, so the
databases, although each is filled on its own, refer to the same citizens and enterprises.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import psycopg
from psycopg import sql

from sync.contracts import Contract, columns_of, load_contracts
from sync.stack.demo_business import enterprise_rows, legal_representative_rows
from sync.stack.demo_finance import tax_obligation_rows, taxpayer_rows
from sync.stack.demo_insurance import contribution_period_rows, insured_person_rows
from sync.stack.demo_land import land_parcel_rows, land_use_right_rows
from sync.stack.demo_people import (
    ETHNICITIES,
    FAMILY,
    GIVEN_FEMALE,
    GIVEN_MALE,
    MIDDLE_FEMALE,
    MIDDLE_MALE,
    PROVINCES,
    citizens,
)
from sync.stack.demo_population import citizen_rows, household_rows
from sync.stack.demo_world import Row, World

__all__ = [
    "ETHNICITIES",
    "FAMILY",
    "GENERATORS",
    "GIVEN_FEMALE",
    "GIVEN_MALE",
    "MIDDLE_FEMALE",
    "MIDDLE_MALE",
    "PROVINCES",
    "World",
    "citizens",
    "load_citizens",
    "load_demo",
    "source_table_ddl",
    "sources",
]

log = logging.getLogger(__name__)

DEFAULT_SEED = 84

# topic -> the rows of its source table
GENERATORS: dict[str, Callable[[World], Iterable[Row]]] = {
    "population.citizen": citizen_rows,
    "population.household": household_rows,
    "land.land_parcel": land_parcel_rows,
    "land.land_use_right": land_use_right_rows,
    "business.enterprise": enterprise_rows,
    "business.legal_representative": legal_representative_rows,
    "finance.taxpayer": taxpayer_rows,
    "finance.tax_obligation": tax_obligation_rows,
    "insurance.insured_person": insured_person_rows,
    "insurance.contribution_period": contribution_period_rows,
}


def source_table_ddl(contract: Contract) -> sql.Composed:
    columns = columns_of(contract)
    return sql.SQL("CREATE TABLE IF NOT EXISTS {table} ({columns}, PRIMARY KEY ({keys}))").format(
        table=sql.Identifier("public", contract.source_table),
        columns=sql.SQL(", ").join(
            sql.SQL("{} {}{}").format(
                sql.Identifier(c.name),
                sql.SQL(c.sql_type),
                sql.SQL("" if c.nullable else " NOT NULL"),
            )
            for c in columns
        ),
        keys=sql.SQL(", ").join(sql.Identifier(c.name) for c in columns if c.in_key),
    )


def sources(contracts: Iterable[Contract] | None = None) -> dict[str, list[str]]:
    """Agency (``govsync.source``) -> the entities its database publishes, both sorted.
    The repository's contracts unless ``contracts`` are given."""
    if contracts is None:
        contracts = load_contracts().values()
    agencies: dict[str, list[str]] = {}
    for contract in contracts:
        agency = str(contract.row_schema.get("govsync.source", contract.domain))
        agencies.setdefault(agency, []).append(contract.entity)
    return {agency: sorted(entities) for agency, entities in sorted(agencies.items())}


def load_citizens(
    conn: psycopg.Connection[tuple[object, ...]], contract: Contract, count: int
) -> int:
    """Create the citizen table and fill it, unless it already has rows."""
    return _load_table(conn, contract, citizens(count, DEFAULT_SEED))


def load_demo(
    conn: psycopg.Connection[Any],
    contracts: Iterable[Contract],
    scale: int,
    seed: int = DEFAULT_SEED,
) -> dict[str, int]:
    """Create each contract's source table in schema public and fill it with demo rows,
    unless it already has rows; returns the rows loaded per table.

    ``scale`` is the number of citizens (one enterprise for every 20); the other tables'
    sizes follow from it. A contract without a demo generator gets an empty table, so a
    connector can still publish it.
    """
    world = World(scale, seed)
    loaded = {}
    for contract in contracts:
        generate = GENERATORS.get(contract.topic)
        if generate is None:
            log.warning("no demo rows for %s: its table is created empty", contract.topic)
        rows = generate(world) if generate else ()
        loaded[contract.source_table] = _load_table(conn, contract, rows)
    return loaded


def _load_table(conn: psycopg.Connection[Any], contract: Contract, rows: Iterable[Row]) -> int:
    """Create the table and copy ``rows`` in, unless it already has rows. Fields a row lacks
    (say, one added to the contract later, with a null default) are loaded as nulls."""
    table = sql.Identifier("public", contract.source_table)
    names = list(contract.field_names)
    with conn.transaction():
        conn.execute(source_table_ddl(contract))
        found = conn.execute(sql.SQL("SELECT EXISTS (SELECT FROM {})").format(table)).fetchone()
        if found and found[0]:
            return 0
        copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(
            table, sql.SQL(", ").join(map(sql.Identifier, names))
        )
        count = 0
        with conn.cursor().copy(copy_sql) as copy:
            for row in rows:
                copy.write_row([row.get(name) for name in names])
                count += 1
    return count
