"""The streamed workload: transactions of 1,000 source changes that insert, update, delete and
re-key citizens, as a registry's day does, rather than inserts alone.

The first transaction inserts 1,000 citizens. Each later one inserts 700 new citizens and, among
the 700 the transaction before inserted, updates 150 (name and ``updated_at``), changes the
primary key of 100 (the capture turns each into a delete of the old key and a create of the new
one: two events) and deletes 50. Every row a transaction inserts is touched at most once later,
and each transaction adds 650 rows net, so the replica's ``count(*)`` grows with every applied
transaction and reaches its final figure only with the last one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import psycopg
from psycopg import sql

from bench.data import Conn, insert_statement
from sync.contracts import Contract

PER_TXN = 1_000
# a re-keyed citizen's new id: 9 and the old id's last 11 digits, which no generated citizen
# has (generated ids are zero-padded numbers below 10^11)
REKEYED_PREFIX = "9"


@dataclass(frozen=True)
class Mix:
    """The changes of one transaction after the first."""

    inserts: int = 700
    updates: int = 150
    key_changes: int = 100
    deletes: int = 50


MIX = Mix()
assert sum(asdict(MIX).values()) == PER_TXN


@dataclass
class Streamed:
    """What a workload committed: changes by kind, the events they become, rows left."""

    transactions: int = 0
    inserts: int = 0
    updates: int = 0
    key_changes: int = 0
    deletes: int = 0
    next_citizen: int = 0  # the number of the next citizen to insert

    @property
    def changes(self) -> int:
        return self.inserts + self.updates + self.key_changes + self.deletes

    @property
    def events(self) -> int:
        return self.changes + self.key_changes

    @property
    def rows(self) -> int:
        return self.inserts - self.deletes

    def summary(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "changes": self.changes,
            "events": self.events,
            "rows": self.rows,
        }


def stream_mixed(conn: Conn, contract: Contract, changes: int) -> Streamed:
    """Commit ``changes`` (whole transactions of ``PER_TXN``) on ``conn`` (autocommit)."""
    statements = _Statements(contract)
    done = Streamed()
    previous: tuple[int, int] | None = None  # first and count of the last inserted range
    for _ in range(changes // PER_TXN):
        with conn.transaction():
            first = done.next_citizen
            count = PER_TXN if previous is None else MIX.inserts
            conn.execute(statements.insert, {"first": first, "last": first + count - 1})
            done.inserts += count
            if previous is not None:
                _touch(conn, statements, previous[0], done)
        previous = (first, count)
        done.next_citizen += count
        done.transactions += 1
    return done


def _touch(conn: Conn, statements: _Statements, start: int, done: Streamed) -> None:
    """Update, re-key and delete citizens of the range inserted from ``start`` on."""
    low = start
    for statement, size in zip(
        statements.touch, (MIX.updates, MIX.key_changes, MIX.deletes), strict=True
    ):
        conn.execute(statement, {"low": _citizen_id(low), "high": _citizen_id(low + size - 1)})
        low += size
    done.updates += MIX.updates
    done.key_changes += MIX.key_changes
    done.deletes += MIX.deletes


def _citizen_id(number: int) -> str:
    return str(number).zfill(12)


class _Statements:
    def __init__(self, contract: Contract) -> None:
        table = sql.Identifier("public", contract.source_table)
        key = sql.Identifier(contract.key_fields[0])
        within = sql.SQL("{} BETWEEN %(low)s AND %(high)s").format(key)
        self.insert = insert_statement(contract)
        update = sql.SQL(
            "UPDATE {} SET full_name = upper(full_name), updated_at = now() WHERE {}"
        ).format(table, within)
        rekey = sql.SQL(
            "UPDATE {table} SET {key} = {prefix} || substr({key}, 2), updated_at = now() "
            "WHERE {within}"
        ).format(table=table, key=key, prefix=sql.Literal(REKEYED_PREFIX), within=within)
        delete = sql.SQL("DELETE FROM {} WHERE {}").format(table, within)
        self.touch = (update, rekey, delete)


def count_rekeyed(dsn: str, contract: Contract) -> int:
    """Rows of the replica under a changed key."""
    table = sql.Identifier(contract.domain, contract.entity)
    key = sql.Identifier(contract.key_fields[0])
    query = sql.SQL("SELECT count(*) FROM {} WHERE left({}, 1) = {}").format(
        table, key, sql.Literal(REKEYED_PREFIX)
    )
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(query).fetchone()
    return int(str(row[0])) if row else 0
