"""Replica tables follow their projected contract: at prepare, a live table's columns are read
from the catalog and compared with the contract's.

- A column the contract has and the table lacks is added, nullable: a compatible change (a
  field added to the contract, or to the subscription's allow-list). Rows applied before hold
  NULL in it until the source table is snapshotted again.
- A column the contract made optional loses its NOT NULL.
- A nullable column the contract no longer has is kept (and reported): dropping it would
  destroy data the agency may still use, and upserts simply leave it NULL.
- Anything else cannot be fixed by an ALTER that keeps every row: a column of another type, a
  column the contract dropped that is NOT NULL without a default (every insert would fail), a
  key column missing, or another primary key. That raises :class:`ReplicaSchemaError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import psycopg
from psycopg import sql

from sync.errors import ReplicaSchemaError
from sync.replica.layout import BOOKKEEPING, ReplicaTable

# how format_type() spells the types the contracts map to, where it differs from columns.py
_CANONICAL = {
    "timestamptz": "timestamp with time zone",
    "timestamp": "timestamp without time zone",
    "time": "time without time zone",
}
# ALTER TABLE waits for an exclusive lock; rather than queue the agency's readers behind it for
# long, give up and retry the prepare (LockNotAvailable is transient)
LOCK_TIMEOUT = "5s"


@dataclass(frozen=True, slots=True)
class FoundColumn:
    """A live table's column as the catalog describes it."""

    name: str
    sql_type: str  # as format_type() renders it
    nullable: bool
    has_default: bool


@dataclass(frozen=True)
class TableChanges:
    """What prepare did to one table (or would do: see :func:`plan_changes`)."""

    table: str
    added: tuple[str, ...] = ()
    relaxed: tuple[str, ...] = ()  # NOT NULL dropped: the contract made them optional
    kept: tuple[str, ...] = ()  # nullable columns the contract no longer has

    @property
    def alters(self) -> bool:
        return bool(self.added or self.relaxed)


def canonical_type(sql_type: str) -> str:
    """``sql_type`` as ``format_type()`` renders it, so a contract's column compares with the
    catalog's."""
    base = sql_type.removesuffix("[]")
    if base != sql_type:
        return canonical_type(base) + "[]"
    return _CANONICAL.get(base, base)


def plan_changes(
    table: ReplicaTable, found: Mapping[str, FoundColumn], primary_key: Sequence[str]
) -> TableChanges:
    """Compare the live table (``found``, its ``primary_key``) with the table's contract; raise
    :class:`ReplicaSchemaError` for the first difference no ALTER can make safe."""
    name = f"{table.contract.domain}.{table.contract.entity}"
    added, relaxed = [], []
    for column in table.columns:
        expected = canonical_type(column.sql_type)
        have = found.get(column.name)
        if have is None:
            if column.in_key:
                raise _mismatch(name, column.name, "", expected, "the key column is missing")
            added.append(column.name)
        elif have.sql_type != expected:
            raise _mismatch(name, column.name, have.sql_type, expected, "its type changed")
        elif column.nullable and not have.nullable and not column.in_key:
            relaxed.append(column.name)
    wanted = set(table.value_names) | set(BOOKKEEPING)
    kept = []
    for have in found.values():
        if have.name in wanted:
            continue
        if not (have.nullable or have.has_default):
            raise _mismatch(
                name,
                have.name,
                have.sql_type,
                "",
                "the contract no longer has it and it is NOT NULL without a default",
            )
        kept.append(have.name)
    if set(primary_key) != set(table.key_names):
        raise ReplicaSchemaError(
            f"replica table {name}: primary key ({', '.join(primary_key)}) differs from the "
            f"contract's key ({', '.join(table.key_names)})",
            table=name,
        )
    return TableChanges(name, tuple(added), tuple(relaxed), tuple(sorted(kept)))


async def evolve_table(
    conn: psycopg.AsyncConnection[tuple[object, ...]], table: ReplicaTable
) -> TableChanges:
    """Bring ``table``'s live table to its contract, inside the caller's transaction."""
    found, primary_key = await _read_catalog(conn, table)
    changes = plan_changes(table, found, primary_key)
    if changes.alters:
        by_name = {c.name: c for c in table.columns}
        actions = [
            sql.SQL("ADD COLUMN IF NOT EXISTS {} {}").format(
                sql.Identifier(n), sql.SQL(by_name[n].sql_type)
            )
            for n in changes.added
        ] + [
            sql.SQL("ALTER COLUMN {} DROP NOT NULL").format(sql.Identifier(n))
            for n in changes.relaxed
        ]
        await conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(LOCK_TIMEOUT)))
        await conn.execute(
            sql.SQL("ALTER TABLE {} {}").format(table.live, sql.SQL(", ").join(actions))
        )
    return changes


async def lock_layout(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> None:
    """Serialize prepares of one replica database (workers of one agency starting together)
    until the caller's transaction ends."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('govsync.replica.prepare'))")


async def _read_catalog(
    conn: psycopg.AsyncConnection[tuple[object, ...]], table: ReplicaTable
) -> tuple[dict[str, FoundColumn], list[str]]:
    schema, name = table.contract.domain, table.contract.entity
    cursor = await conn.execute(_COLUMNS, (schema, name))
    found = {
        str(r[0]): FoundColumn(str(r[0]), str(r[1]), bool(r[2]), bool(r[3]))
        for r in await cursor.fetchall()
    }
    cursor = await conn.execute(_PRIMARY_KEY, (schema, name))
    return found, [str(r[0]) for r in await cursor.fetchall()]


def _mismatch(
    table: str, column: str, found: str, expected: str, reason: str
) -> ReplicaSchemaError:
    message = (
        f"replica table {table}: column {column!r} found {found or 'missing'}, "
        f"the contract expects {expected or 'no such column'}: {reason}"
    )
    return ReplicaSchemaError(message, table=table, column=column, found=found, expected=expected)


_COLUMNS = """
    SELECT a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull, a.atthasdef
    FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped
    ORDER BY a.attnum
"""
_PRIMARY_KEY = """
    SELECT a.attname
    FROM pg_index i
    JOIN pg_class c ON c.oid = i.indrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY (i.indkey)
    WHERE n.nspname = %s AND c.relname = %s AND i.indisprimary
"""
