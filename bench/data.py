"""Source rows generated fast, and replica rows counted.

A thousand demo citizens are copied once into a template table of the source database (not
published, so never captured); new citizens are then made inside PostgreSQL by
``INSERT … SELECT`` over ``generate_series``, each with its own 12-digit personal id and the
other columns of a template row. A million rows take seconds, and the columns follow the
contract, whatever it holds.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from sync.contracts import Contract
from sync.replica import ReplicaTable
from sync.stack.demo import citizens, source_table_ddl
from sync.types import ChangeEvent

TEMPLATE = sql.Identifier("public", "bench_citizen_template")
TEMPLATE_ROWS = 1_000
Conn = psycopg.Connection[tuple[object, ...]]


def prepare_source(conn: Conn, contract: Contract) -> None:
    """Create the (empty) source table and the template table."""
    if len(contract.key_fields) != 1:
        raise ValueError(f"{contract.topic}: the generator needs a single-column key")
    names = list(contract.field_names)
    with conn.transaction():
        conn.execute(source_table_ddl(contract))
        conn.execute(
            sql.SQL("CREATE UNLOGGED TABLE {} (rn integer PRIMARY KEY, LIKE {})").format(
                TEMPLATE, sql.Identifier("public", contract.source_table)
            )
        )
        copy_sql = sql.SQL("COPY {} (rn, {}) FROM STDIN").format(
            TEMPLATE, sql.SQL(", ").join(map(sql.Identifier, names))
        )
        with conn.cursor().copy(copy_sql) as copy:
            for rn, row in enumerate(citizens(TEMPLATE_ROWS)):
                copy.write_row([rn, *(row.get(name) for name in names)])


def insert_statement(contract: Contract) -> sql.Composed:
    """Inserts citizens numbered %(first)s to %(last)s into the source table."""
    key = contract.key_fields[0]
    others = [n for n in contract.field_names if n != key]
    return sql.SQL(
        "INSERT INTO {table} ({key}, {others}) "
        "SELECT lpad(g::text, 12, '0'), {picked} "
        "FROM generate_series(%(first)s::bigint, %(last)s::bigint) g "
        "JOIN {template} t ON t.rn = mod(g, {size})"
    ).format(
        table=sql.Identifier("public", contract.source_table),
        key=sql.Identifier(key),
        others=sql.SQL(", ").join(map(sql.Identifier, others)),
        picked=sql.SQL(", ").join(sql.Identifier("t", n) for n in others),
        template=TEMPLATE,
        size=sql.Literal(TEMPLATE_ROWS),
    )


def insert_rows(conn: Conn, contract: Contract, first: int, count: int, per_txn: int) -> None:
    """Insert ``count`` citizens from number ``first`` on, ``per_txn`` per transaction
    (``conn`` in autocommit mode: one statement, one transaction)."""
    statement = insert_statement(contract)
    for start in range(first, first + count, per_txn):
        last = min(start + per_txn, first + count) - 1
        conn.execute(statement, {"first": start, "last": last})


def replica_row(table: ReplicaTable, event: ChangeEvent) -> list[object]:
    """The replica table's columns for ``event``: its after image, then its source position
    and commit time (``BOOKKEEPING``)."""
    after = event.after or {}
    version = [str(event.position.lsn), event.position.index, event.commit_time]
    return [*(after.get(name) for name in table.value_names), *version]


def count_rows(dsn: str, contract: Contract) -> int:
    table = sql.Identifier(contract.domain, contract.entity)
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()
    except psycopg.errors.UndefinedTable:
        return 0
    return int(str(row[0])) if row else 0
