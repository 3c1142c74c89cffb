"""The audit store's tables in the federation operator's PostgreSQL database (never in a
subscriber's replica: a pseudonymised subscriber must not hold real personal ids).

- ``govsync_audit.disclosure``: the entries, one hash chain per agency, keyed by
  ``(agency, seq)``, unique on ``(agency, event_id)``, with a GIN index on ``subjects`` for
  ``govsync audit citizen``.
- ``govsync_audit.chain_head``: the last seq and hash of each agency's chain. Writers lock
  their agency's row ``FOR UPDATE``, so two writers of one agency append one after the other.

Triggers refuse UPDATE, DELETE and TRUNCATE of entries and let a chain head only move
forward. A superuser (or the tables' owner) can still disable triggers; the hash chain is what
makes such tampering visible to ``govsync audit verify``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from typing import Any

import psycopg
from psycopg import sql

from sync.audit.chain import Entry

SCHEMA = "govsync_audit"
ENTRIES = sql.Identifier(SCHEMA, "disclosure")
HEADS = sql.Identifier(SCHEMA, "chain_head")

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
    CREATE INDEX IF NOT EXISTS disclosure_subjects ON {entries} USING gin (subjects);

    CREATE OR REPLACE FUNCTION {schema}.refuse_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'govsync_audit.disclosure is append-only: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END $$;
    CREATE OR REPLACE TRIGGER disclosure_append_only
        BEFORE UPDATE OR DELETE ON {entries}
        FOR EACH ROW EXECUTE FUNCTION {schema}.refuse_change();
    CREATE OR REPLACE TRIGGER disclosure_no_truncate
        BEFORE TRUNCATE ON {entries}
        FOR EACH STATEMENT EXECUTE FUNCTION {schema}.refuse_change();

    CREATE OR REPLACE FUNCTION {schema}.head_moves_forward() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP <> 'UPDATE' OR NEW.agency <> OLD.agency OR NEW.seq < OLD.seq THEN
            RAISE EXCEPTION 'govsync_audit.chain_head only moves forward: % refused', TG_OP
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
    REVOKE UPDATE, DELETE, TRUNCATE ON {entries} FROM PUBLIC;
    REVOKE DELETE, TRUNCATE ON {heads} FROM PUBLIC;
    """
).format(schema=sql.Identifier(SCHEMA), entries=ENTRIES, heads=HEADS)

EXISTS = sql.SQL("SELECT to_regclass({}) IS NOT NULL AND to_regclass({}) IS NOT NULL").format(
    sql.Literal(f"{SCHEMA}.disclosure"), sql.Literal(f"{SCHEMA}.chain_head")
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


def grant_writer(role: str) -> sql.Composed:
    """What a processor's own role needs: append entries and move its chain head, nothing
    else (no UPDATE or DELETE of entries)."""
    return sql.SQL(
        """
        GRANT USAGE ON SCHEMA {schema} TO {role};
        GRANT SELECT, INSERT ON {entries} TO {role};
        GRANT SELECT, INSERT, UPDATE ON {heads} TO {role};
        """
    ).format(schema=sql.Identifier(SCHEMA), entries=ENTRIES, heads=HEADS, role=sql.Identifier(role))


def create_store(conn: psycopg.Connection[Any], writer: str | None = None) -> None:
    """Create the audit tables unless they exist, and let ``writer`` (a processor's role)
    append to them."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (DDL_LOCK,))
        conn.execute(DDL)
        if writer:
            conn.execute(grant_writer(writer))
