"""``govsync verify`` over a running stack: every replica table against its source.

Under a federation manifest a replica holds a projection of its source (allowed fields,
transformed, filtered rows), so the source's rows are projected the same way, in Python, and
staged in a scratch table beside the replica; the chunked verifier then compares the two.
The people in the restrictions register are withheld from the projections of subscriptions on
consent or legitimate interest, as the processors withhold them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.string import TextLoader

from sync.audit.restrictions import WITHHELD_QUERY, register_exists
from sync.contracts import Contract, load_contracts
from sync.errors import ConfigError
from sync.policy import Projection, load_manifest, read_hash_keys
from sync.replica.layout import STATE_SCHEMA
from sync.replica.verify import TableReport, TableSide, TableVerifier
from sync.stack.description import StackDescription
from sync.temporal import register_pg_adapters

log = logging.getLogger(__name__)


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
        for contract, projection in _replicated(
            description, replica.agency, replica.dsn, contracts
        ):
            report = _verify_table(description, replica.dsn, contract, projection, chunk_rows)
            if report is None:
                log.warning(
                    "%s: the source of %s is not in the stack; not verified",
                    replica.agency,
                    contract.topic,
                )
            else:
                tables.append(report)
        reports.append(ReplicaReport(replica.agency, tables))
    return reports


def _verify_table(
    description: StackDescription,
    replica_dsn: str,
    contract: Contract,
    projection: Projection | None,
    chunk_rows: int,
) -> TableReport | None:
    """The table's report; None when its source database or table is not in the stack."""
    try:
        source = description.database(_source_of(contract), "source")
        if projection is not None:
            return _verify_projection(source.dsn, replica_dsn, projection, chunk_rows)
        verifier = TableVerifier(
            TableSide(source.dsn, sql.Identifier("public", contract.source_table)),
            TableSide(replica_dsn, sql.Identifier(contract.domain, contract.entity)),
            contract.field_names,
            contract.key_fields,
            chunk_rows,
        )
        return verifier.run(contract.topic)
    except (ConfigError, psycopg.errors.UndefinedTable):
        return None


def _replicated(
    description: StackDescription, agency: str, dsn: str, contracts: dict[str, Contract]
) -> list[tuple[Contract, Projection | None]]:
    """The source contracts whose replica table exists in ``dsn``, with the agency's
    projection of each under a manifest."""
    with psycopg.connect(dsn) as conn:
        present = set(
            conn.execute("SELECT table_schema, table_name FROM information_schema.tables")
        )
    if description.manifest is None:
        chosen: Iterable[tuple[Contract, Projection | None]] = (
            (c, None) for c in contracts.values()
        )
    else:
        manifest = load_manifest(Path(description.manifest), contracts)
        keys = read_hash_keys(description.hash_keys_file)
        projections = [
            Projection(contracts[s.topic], s, keys) for s in manifest.subscriptions_of(agency)
        ]
        if any(p.person_fields for p in projections):
            people = _withheld(description, agency)
            for projection in projections:
                projection.withhold(people)
        chosen = ((p.source, p) for p in projections)
    return [(c, p) for c, p in chosen if (c.domain, c.entity) in present]


def _withheld(description: StackDescription, agency: str) -> frozenset[str]:
    """The people restricted for ``agency`` in the stack's restrictions register (none when
    the stack has no audit store or it has no register)."""
    stores = [d for d in description.databases if d.role == "audit"]
    if not stores:
        return frozenset()
    with psycopg.connect(stores[0].dsn, autocommit=True) as conn:
        if not register_exists(conn):
            return frozenset()
        return frozenset(str(r[0]) for r in conn.execute(WITHHELD_QUERY, (agency,)))


def _verify_projection(
    source_dsn: str, replica_dsn: str, projection: Projection, chunk_rows: int
) -> TableReport:
    contract = projection.contract
    live = sql.Identifier(contract.domain, contract.entity)
    staged = sql.Identifier(STATE_SCHEMA, f"verify_{contract.domain}__{contract.entity}")
    columns = list(contract.field_names)
    with psycopg.connect(replica_dsn, autocommit=True) as replica:
        register_pg_adapters(replica)
        replica.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(staged))
        replica.execute(
            sql.SQL("CREATE UNLOGGED TABLE {} AS SELECT {} FROM {} WITH NO DATA").format(
                staged, sql.SQL(", ").join(map(sql.Identifier, columns)), live
            )
        )
        try:
            _stage_projected_source(source_dsn, replica, staged, projection, columns)
            verifier = TableVerifier(
                TableSide(replica_dsn, staged),
                TableSide(replica_dsn, live),
                columns,
                contract.key_fields,
                chunk_rows,
            )
            return verifier.run(projection.source.topic)
        finally:
            replica.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(staged))


def _stage_projected_source(
    source_dsn: str,
    replica: psycopg.Connection[Any],
    staged: sql.Identifier,
    projection: Projection,
    columns: list[str],
) -> None:
    """Stream the source table, project each row as the processor does, COPY the result."""
    source_table = sql.Identifier("public", projection.source.source_table)
    query = sql.SQL("SELECT * FROM {}").format(source_table)
    condition = projection.filter_sql()
    if condition is not None:
        query = sql.SQL("{} WHERE {}").format(query, condition)
    copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(
        staged, sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with psycopg.connect(source_dsn) as source:
        source.adapters.register_loader("json", TextLoader)
        source.adapters.register_loader("jsonb", TextLoader)
        register_pg_adapters(source)
        with (
            source.cursor(name="govsync_verify") as cursor,
            replica.cursor().copy(copy_sql) as copy,
        ):
            cursor.execute(query)
            names = [d.name for d in cursor.description or ()]
            for row in cursor:
                projected = projection.row(dict(zip(names, row, strict=True)))
                if projected is not None:
                    copy.write_row([projected[c] for c in columns])


def _source_of(contract: Contract) -> str:
    return str(contract.row_schema.get("govsync.source", contract.domain))
