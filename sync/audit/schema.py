"""The audit store's tables in the federation operator's PostgreSQL database (never in a
subscriber's replica: a pseudonymised subscriber must not hold real personal ids).

- ``govsync_audit.disclosure``: the entries, one hash chain per agency, keyed by
  ``(agency, seq)``, unique on ``(agency, event_id)``, with a GIN index on ``subjects`` for
  ``govsync audit citizen``.
  The last entry of each batch carries its writer's key id and signature over the head.
- ``govsync_audit.chain_head``: the last seq and hash of each agency's chain. Writers lock
  their agency's row ``FOR UPDATE``, so two writers of one agency append one after the other.
- ``govsync_audit.chain_start``: where ``govsync audit prune`` cut a chain, a signed ``cut``
  checkpoint; entries up to it are gone and the chain goes on from its hash.
- ``govsync_audit.writer_agency``: which login role may append to which agency's chain.

Triggers refuse UPDATE, DELETE and TRUNCATE of entries (DELETE only of entries at or below
their chain's signed cut) and let chain heads and starts only move forward. Who may do what,
row-level security included, is :mod:`.roles`. A superuser (or the tables' owner) can still
disable triggers; the signed hash chain is what makes such tampering visible to
``govsync audit verify``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from psycopg import sql

from sync.audit.chain import Entry

SCHEMA = "govsync_audit"
ENTRIES = sql.Identifier(SCHEMA, "disclosure")
HEADS = sql.Identifier(SCHEMA, "chain_head")
STARTS = sql.Identifier(SCHEMA, "chain_start")
WRITERS = sql.Identifier(SCHEMA, "writer_agency")

# the entry's columns in the order of sync.audit.chain.Entry's fields
COLUMNS = (
    "seq",
    "agency",
    "subjects",
    "topic",
    "op",
    "fields",
    "purpose",
    "legal_basis",
    "event_id",
    "source_lsn",
    "source_index",
    "committed_at",
    "recorded_at",
    "prev_hash",
    "hash",
    "key_id",
    "signature",
)
COPY_TYPES = (
    "bigint",
    "text",
    "text[]",
    "text",
    "text",
    "text[]",
    "text",
    "text",
    "text",
    "text",
    "integer",
    "timestamptz",
    "timestamptz",
    "bytea",
    "bytea",
    "text",
    "bytea",
)

_ENTRY_FIELDS = tuple(f.name for f in fields(Entry))
assert len(_ENTRY_FIELDS) == len(COLUMNS) == len(COPY_TYPES)

# taken around the DDL, so processors starting together do not race to create the schema
DDL_LOCK = 0x676F7673_61756474  # "govsaudt"

DDL = sql.SQL(
    """
    CREATE SCHEMA IF NOT EXISTS {schema};
    CREATE TABLE IF NOT EXISTS {heads} (
        agency text PRIMARY KEY,
        seq bigint NOT NULL CHECK (seq >= 0),
        hash bytea NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE IF NOT EXISTS {entries} (
        seq bigint NOT NULL,
        agency text NOT NULL,
        subjects text[] NOT NULL,
        topic text NOT NULL,
        op text NOT NULL,
        fields text[] NOT NULL,
        purpose text NOT NULL,
        legal_basis text NOT NULL,
        event_id text NOT NULL,
        source_lsn text NOT NULL,
        source_index integer NOT NULL,
        committed_at timestamptz NOT NULL,
        recorded_at timestamptz NOT NULL,
        prev_hash bytea NOT NULL,
        hash bytea NOT NULL,
        PRIMARY KEY (agency, seq),
        UNIQUE (agency, event_id)
    );
    ALTER TABLE {entries} ADD COLUMN IF NOT EXISTS key_id text;
    ALTER TABLE {entries} ADD COLUMN IF NOT EXISTS signature bytea;
    CREATE INDEX IF NOT EXISTS disclosure_subjects ON {entries} USING gin (subjects);
    CREATE INDEX IF NOT EXISTS disclosure_recorded ON {entries} (recorded_at);
    CREATE TABLE IF NOT EXISTS {starts} (
        agency text PRIMARY KEY,
        seq bigint NOT NULL CHECK (seq > 0),
        hash bytea NOT NULL,
        signed_at timestamptz NOT NULL,
        key_id text NOT NULL,
        signature bytea NOT NULL
    );
    CREATE TABLE IF NOT EXISTS {writers} (
        role_name name NOT NULL,
        agency text NOT NULL,
        PRIMARY KEY (role_name, agency)
    );

    CREATE OR REPLACE FUNCTION {schema}.refuse_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '%.% is append-only: % refused', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END $$;
    CREATE OR REPLACE FUNCTION {schema}.delete_only_pruned() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' AND OLD.seq <= (
            SELECT s.seq FROM {starts} s WHERE s.agency = OLD.agency
        ) THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION '%.% is append-only: % refused', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END $$;
    CREATE OR REPLACE TRIGGER disclosure_append_only
        BEFORE UPDATE OR DELETE ON {entries}
        FOR EACH ROW EXECUTE FUNCTION {schema}.delete_only_pruned();
    CREATE OR REPLACE TRIGGER disclosure_no_truncate
        BEFORE TRUNCATE ON {entries}
        FOR EACH STATEMENT EXECUTE FUNCTION {schema}.refuse_change();

    CREATE OR REPLACE FUNCTION {schema}.head_moves_forward() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP <> 'UPDATE' OR NEW.agency <> OLD.agency OR NEW.seq < OLD.seq THEN
            RAISE EXCEPTION '%.% only moves forward: % refused',
                TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN NEW;
    END $$;
    CREATE OR REPLACE TRIGGER chain_head_moves_forward
        BEFORE UPDATE OR DELETE ON {heads}
        FOR EACH ROW EXECUTE FUNCTION {schema}.head_moves_forward();
    CREATE OR REPLACE TRIGGER chain_head_no_truncate
        BEFORE TRUNCATE ON {heads}
        FOR EACH STATEMENT EXECUTE FUNCTION {schema}.refuse_change();
    CREATE OR REPLACE TRIGGER chain_start_moves_forward
        BEFORE UPDATE OR DELETE ON {starts}
        FOR EACH ROW EXECUTE FUNCTION {schema}.head_moves_forward();
    CREATE OR REPLACE TRIGGER chain_start_no_truncate
        BEFORE TRUNCATE ON {starts}
        FOR EACH STATEMENT EXECUTE FUNCTION {schema}.refuse_change();
    """
).format(
    schema=sql.Identifier(SCHEMA), entries=ENTRIES, heads=HEADS, starts=STARTS, writers=WRITERS
)

# every table of the current form (older stores lack the last two: `govsync audit init`
# brings them up to date)
EXISTS = sql.SQL("SELECT {}").format(
    sql.SQL(" AND ").join(
        sql.SQL("to_regclass({}) IS NOT NULL").format(sql.Literal(f"{SCHEMA}.{table}"))
        for table in ("disclosure", "chain_head", "chain_start", "writer_agency")
    )
)


def row_of(entry: Entry) -> tuple[Any, ...]:
    """The entry as a row of :data:`COLUMNS` (arrays as lists, as psycopg adapts them)."""
    row = [getattr(entry, name) for name in _ENTRY_FIELDS]
    row[2], row[5] = list(entry.subjects), list(entry.fields)
    return tuple(row)


def entry_of(row: Sequence[Any]) -> Entry:
    """A row of :data:`COLUMNS` as an entry, unvalidated (verification judges it)."""
    values = list(row)
    values[2], values[5] = tuple(values[2] or ()), tuple(values[5] or ())
    return Entry(*values)
