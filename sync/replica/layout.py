"""Where a contract's rows live in a replica database, and the DDL that creates them.

- ``<domain>.<entity>``: a plain table with exactly the live rows, the contract's columns plus
  ``_source_lsn`` / ``_source_index`` (the source position the row reflects) and
  ``_source_commit_time``; the agency's own applications query it like any table.
- ``govsync_state.<domain>__<entity>__deleted``: remembered deletes (a keyed hash of the key,
  never the key, and the position; see :mod:`sync.replica.deletes`), so a late, older event
  cannot bring a deleted row back. Kept outside the live table.
- ``govsync_state.consumed_offsets``: the next offset to read per group, topic and partition,
  written in the same transaction as the rows it covers.
- ``govsync_state.truncations``: per live table, the position of the newest truncate applied
  to it. Any change older than it is a no-op, so a lagging partition cannot bring back a row
  the truncate removed.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from sync.contracts import Column, Contract, columns_of

STATE_SCHEMA = "govsync_state"

OFFSETS_DDL = sql.SQL(
    """
    CREATE SCHEMA IF NOT EXISTS {schema};
    CREATE TABLE IF NOT EXISTS {schema}.consumed_offsets (
        group_id text NOT NULL,
        topic text NOT NULL,
        partition integer NOT NULL,
        next_offset bigint NOT NULL,
        topic_id text NOT NULL DEFAULT '',
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (group_id, topic, partition)
    );
    CREATE TABLE IF NOT EXISTS {schema}.truncations (
        replica_table text PRIMARY KEY,
        _source_lsn pg_lsn NOT NULL,
        _source_index integer NOT NULL,
        truncated_at timestamptz NOT NULL DEFAULT now()
    )
    """
).format(schema=sql.Identifier(STATE_SCHEMA))

BOOKKEEPING = ("_source_lsn", "_source_index", "_source_commit_time")


@dataclass(frozen=True)
class ReplicaTable:
    """One contract's tables in one replica database."""

    contract: Contract
    columns: tuple[Column, ...]

    @classmethod
    def for_contract(cls, contract: Contract) -> ReplicaTable:
        return cls(contract, tuple(columns_of(contract)))

    @property
    def live(self) -> sql.Identifier:
        return sql.Identifier(self.contract.domain, self.contract.entity)

    @property
    def deleted_name(self) -> str:
        """The remembered deletes' table name, in :data:`STATE_SCHEMA`."""
        return f"{self.contract.domain}__{self.contract.entity}__deleted"

    @property
    def deleted(self) -> sql.Identifier:
        return sql.Identifier(STATE_SCHEMA, self.deleted_name)

    @property
    def slug(self) -> str:
        return f"{self.contract.domain}_{self.contract.entity}"

    @property
    def key_names(self) -> tuple[str, ...]:
        return self.contract.key_fields

    @property
    def value_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def ddl(self) -> sql.Composed:
        """Idempotent DDL for the live table and its remembered deletes."""
        keys = [c for c in self.columns if c.in_key]
        return sql.SQL(
            """
            CREATE SCHEMA IF NOT EXISTS {schema};
            CREATE TABLE IF NOT EXISTS {live} (
                {columns},
                _source_lsn pg_lsn NOT NULL,
                _source_index integer NOT NULL,
                _source_commit_time timestamptz NOT NULL,
                PRIMARY KEY ({keys})
            );
            CREATE SCHEMA IF NOT EXISTS {state};
            CREATE TABLE IF NOT EXISTS {deleted} (
                _key_hash bytea PRIMARY KEY,
                _source_lsn pg_lsn NOT NULL,
                _source_index integer NOT NULL,
                deleted_at timestamptz NOT NULL DEFAULT now()
            );
            """
        ).format(
            schema=sql.Identifier(self.contract.domain),
            live=self.live,
            deleted=self.deleted,
            state=sql.Identifier(STATE_SCHEMA),
            columns=sql.SQL(",\n").join(_column_ddl(c) for c in self.columns),
            keys=sql.SQL(", ").join(sql.Identifier(c.name) for c in keys),
        )

    def delete_staging_columns(self) -> sql.Composed:
        """The columns a batch's deletes are staged in: the key (to remove the live rows),
        its keyed hash (to remember them) and the position."""
        keys = [c for c in self.columns if c.in_key]
        return sql.SQL(
            "{key_columns}, _key_hash bytea NOT NULL, _source_lsn pg_lsn NOT NULL, "
            "_source_index integer NOT NULL"
        ).format(key_columns=sql.SQL(", ").join(_column_ddl(c) for c in keys))


def _column_ddl(column: Column) -> sql.Composed:
    null = sql.SQL("" if column.nullable else " NOT NULL")
    return sql.SQL("{} {}{}").format(sql.Identifier(column.name), sql.SQL(column.sql_type), null)
