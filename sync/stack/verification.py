"""``govsync verify`` over a running stack: every replica table against its source."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import psycopg
from psycopg import sql

from sync.contracts import Contract, load_contracts
from sync.replica.verify import TableReport, TableSide, TableVerifier
from sync.stack.description import StackDescription


@dataclass
class ReplicaReport:
    agency: str
    tables: list[TableReport]

    @property
    def equal(self) -> bool:
        return all(t.equal for t in self.tables)


def verify_stack(
    description: StackDescription, agency: str | None = None, chunk_rows: int = 10_000
) -> list[ReplicaReport]:
    """One report per replica database (of ``agency`` only, if given)."""
    contracts = load_contracts()
    reports = []
    for replica in description.databases:
        if replica.role != "replica" or (agency and replica.agency != agency):
            continue
        tables = []
        for contract in _replicated(replica.dsn, contracts.values()):
            source = description.database(_source_of(contract), "source")
            verifier = TableVerifier(
                TableSide(source.dsn, sql.Identifier("public", contract.source_table)),
                TableSide(replica.dsn, sql.Identifier(contract.domain, contract.entity)),
                contract.field_names,
                contract.key_fields,
                chunk_rows,
            )
            tables.append(verifier.run(contract.topic))
        reports.append(ReplicaReport(replica.agency, tables))
    return reports


def _source_of(contract: Contract) -> str:
    return str(contract.row_schema.get("govsync.source", contract.domain))


def _replicated(dsn: str, contracts: Iterable[Contract]) -> list[Contract]:
    """The contracts whose replica table exists in the database at ``dsn``."""
    with psycopg.connect(dsn) as conn:
        present = set(
            conn.execute("SELECT table_schema, table_name FROM information_schema.tables")
        )
    return [c for c in contracts if (c.domain, c.entity) in present]
