"""A source table as its catalog describes it, for ``govsync schemas scaffold``: the columns
in order, each with the SQL type the contract layer names it by, and the key columns."""

from __future__ import annotations

from typing import Any

import psycopg

from connectors.postgres.schema_diff import sql_type_of_column
from sync.contracts.scaffold import SourceColumn, SourceTable
from sync.errors import ConfigError

_TABLE = """
SELECT c.oid, coalesce(obj_description(c.oid, 'pg_class'), '')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p')
"""
_COLUMNS = """
SELECT attname, atttypid::int, atttypmod, format_type(atttypid, atttypmod), NOT attnotnull,
       coalesce(col_description(attrelid, attnum), '')
FROM pg_attribute
WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped
ORDER BY attnum
"""
# the primary key, else the replica identity index: what capture keys the table's events by
_KEY = """
WITH chosen AS (
    SELECT indkey FROM pg_index
    WHERE indrelid = %(table)s AND (indisprimary OR indisreplident)
    ORDER BY indisprimary DESC
    LIMIT 1
)
SELECT a.attname
FROM chosen, unnest(chosen.indkey::int2[]) WITH ORDINALITY AS k(attnum, position)
JOIN pg_attribute a ON a.attrelid = %(table)s AND a.attnum = k.attnum
ORDER BY k.position
"""


def describe_table(
    conn: psycopg.Connection[Any], table: str, schema: str = "public"
) -> SourceTable:
    """``schema.table`` as the catalog of ``conn``'s database describes it; a
    :class:`ConfigError` when there is no such table."""
    found = conn.execute(_TABLE, (schema, table)).fetchone()
    if found is None:
        raise ConfigError(f"the source database has no table {schema}.{table}")
    oid, comment = found
    columns = tuple(
        SourceColumn(
            name=name,
            sql_type=sql_type_of_column(type_oid, modifier),
            type_name=type_name,
            nullable=nullable,
            comment=column_comment,
        )
        for name, type_oid, modifier, type_name, nullable, column_comment in conn.execute(
            _COLUMNS, (oid,)
        )
    )
    key = tuple(row[0] for row in conn.execute(_KEY, {"table": oid}))
    return SourceTable(table, columns, key, comment)
