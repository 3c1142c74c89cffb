"""Demo source data for the compose deployment (profile ``demo``).

In production the agencies' tables already exist. Here, each source agency's owner role
(never the connector) creates a table for every contract its source publishes and fills it with
the same demo data `govsync up` loads (citizens, and the households, parcels, enterprises,
taxpayers and insured persons that refer to them). Then the owner creates the publication
govsync_<source> over the tables, as an agency's DBA would when joining the federation.

Settings: SOURCES_HOST, SOURCES_PORT, DEMO_CITIZENS (the scale), and SECRETS_DIR holding
pg-owner-<source>.
libpq's own PGSSLMODE and PGSSLROOTCERT apply as well.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import psycopg
from psycopg import sql

from sync.contracts import Contract, load_contracts
from sync.stack.demo import load_demo


def contracts_by_source() -> dict[str, list[Contract]]:
    by_source: dict[str, list[Contract]] = defaultdict(list)
    for contract in load_contracts().values():
        by_source[str(contract.row_schema.get("govsync.source", contract.domain))].append(contract)
    return dict(by_source)


def prepare(source: str, contracts: list[Contract], citizens: int) -> None:
    secrets = Path(os.environ.get("SECRETS_DIR", "/run/secrets"))
    password = (secrets / f"pg-owner-{source}").read_text(encoding="utf-8").strip()
    with psycopg.connect(
        host=os.environ.get("SOURCES_HOST", "postgres-sources"),
        port=int(os.environ.get("SOURCES_PORT", "5432")),
        dbname=source,
        user=f"{source}_owner",
        password=password,
        autocommit=True,
    ) as conn:
        loaded = load_demo(conn, contracts, citizens)
        print(f"{source}: demo rows loaded {loaded}")
        publication = sql.Identifier(f"govsync_{source}")
        tables = sql.SQL(", ").join(sql.Identifier("public", c.source_table) for c in contracts)
        exists = conn.execute(
            "SELECT 1 FROM pg_publication WHERE pubname = %s", (f"govsync_{source}",)
        ).fetchone()
        verb = (
            "ALTER PUBLICATION {} SET TABLE {}" if exists else "CREATE PUBLICATION {} FOR TABLE {}"
        )
        conn.execute(sql.SQL(verb).format(publication, tables))
        print(f"{source}: publication govsync_{source} covers {len(contracts)} tables")


def main() -> None:
    citizens = int(os.environ.get("DEMO_CITIZENS", "3000"))
    for source, contracts in sorted(contracts_by_source().items()):
        prepare(source, contracts, citizens)


if __name__ == "__main__":
    main()
