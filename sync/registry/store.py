"""The registry's PostgreSQL store: schemas under global ids, subject versions, and config.

Tables live in their own PostgreSQL schema, ``registry``, created idempotently at start-up:

* ``schemas``: one row per distinct schema (type + canonical text + references), keyed by its
  global id. Rows are never deleted, so an id is never reused and always resolves, which is
  what deserializers of old messages need.
* ``subject_versions``: (subject, version) -> schema id, with a soft-delete flag.
* ``config``: compatibility level and mode per subject; the row with subject ``''`` is global;
* ``audit``: one row per write, append-only (:mod:`sync.registry.audit`).

Every operation runs in one transaction (:meth:`PgStore.transaction`). Writers first take one
transaction-level advisory lock, so registrations from several registry processes on the same
database are serialized and ids and versions come out consistent. The store speaks in plain
rows; registry semantics (what is a conflict, what is compatible) live in the service.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from sync.registry import audit
from sync.registry.audit import Action, Actor
from sync.registry.model import (
    LATEST,
    Compatibility,
    Lookup,
    Mode,
    Reference,
    StoredSchema,
    SubjectVersion,
    store_error,
)
from sync.registry.pool import ConnectionPool

log = logging.getLogger(__name__)

GLOBAL = ""  # the config row that holds the registry-wide settings
WRITE_LOCK = 0x676F7673796E63  # "govsync": the advisory lock that serializes every write

DDL = (
    "CREATE SCHEMA IF NOT EXISTS registry",
    """CREATE TABLE IF NOT EXISTS registry.schemas (
        id          bigint PRIMARY KEY CHECK (id > 0),
        guid        uuid NOT NULL UNIQUE,
        fingerprint text NOT NULL UNIQUE,
        schema_type text NOT NULL,
        canonical   text NOT NULL,
        schema      text NOT NULL,
        refs        jsonb NOT NULL DEFAULT '[]',
        created_at  timestamptz NOT NULL DEFAULT now())""",
    """CREATE TABLE IF NOT EXISTS registry.subject_versions (
        subject    text NOT NULL,
        version    integer NOT NULL CHECK (version > 0),
        schema_id  bigint NOT NULL REFERENCES registry.schemas (id),
        deleted    boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (subject, version))""",
    """CREATE INDEX IF NOT EXISTS subject_versions_schema_id
        ON registry.subject_versions (schema_id)""",
    """CREATE TABLE IF NOT EXISTS registry.config (
        subject       text PRIMARY KEY,
        compatibility text,
        mode          text)""",
)

_SCHEMA_COLUMNS = "s.id, s.guid::text AS guid, s.schema_type, s.schema, s.refs"
# ACTIVE sees live versions, DELETED_ONLY soft-deleted ones, ALL both.
_LOOKUP = "(%(lookup)s = 'all' OR v.deleted = (%(lookup)s = 'deleted_only'))"
_LATEST_ONLY = """AND v.version = (SELECT MAX(w.version) FROM registry.subject_versions w
    WHERE w.subject = v.subject
      AND (%(lookup)s = 'all' OR w.deleted = (%(lookup)s = 'deleted_only')))"""


class PgStore:
    """Opens connections to ``dsn`` from a small pool; use :meth:`transaction` for work."""

    def __init__(self, dsn: str, *, pool_size: int = 8) -> None:
        self.dsn = dsn
        self._pool = ConnectionPool(dsn, max_size=pool_size)

    async def setup(self) -> None:
        """Create the ``registry`` schema and its tables if missing (safe to run concurrently)."""
        async with self.transaction(write=True) as tx:
            for statement in (*DDL, *audit.DDL):
                await tx.conn.execute(statement)
        log.info("registry tables ready")

    async def close(self) -> None:
        await self._pool.close()

    @asynccontextmanager
    async def transaction(self, *, write: bool = False) -> AsyncIterator[StoreTx]:
        """One transaction; ``write`` takes the registry-wide advisory lock first.

        Database failures surface as a 50001 :class:`~sync.errors.RegistryError`.
        """
        try:
            async with self._pool.connection() as conn, conn.transaction():
                if write:
                    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
                yield StoreTx(conn)
        except psycopg.Error as exc:
            log.error("registry store error: %s", exc)
            raise store_error() from exc


class StoreTx:
    """Queries inside one transaction. Versions are numbers; ``LATEST`` (-1) means newest."""

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.conn = conn

    async def _rows(self, query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        async with self.conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(query, params)
            return await cur.fetchall()

    # -- schemas ------------------------------------------------------------------------------

    async def schema_by_id(self, schema_id: int) -> StoredSchema | None:
        query = f"SELECT {_SCHEMA_COLUMNS} FROM registry.schemas s WHERE s.id = %(id)s"
        rows = await self._rows(query, {"id": schema_id})
        return _schema(rows[0]) if rows else None

    async def schema_by_guid(self, guid: str) -> StoredSchema | None:
        query = f"SELECT {_SCHEMA_COLUMNS} FROM registry.schemas s WHERE s.guid::text = %(g)s"
        rows = await self._rows(query, {"g": guid.lower()})
        return _schema(rows[0]) if rows else None

    async def schema_by_fingerprint(self, fingerprint: str) -> StoredSchema | None:
        query = f"SELECT {_SCHEMA_COLUMNS} FROM registry.schemas s WHERE s.fingerprint = %(f)s"
        rows = await self._rows(query, {"f": fingerprint})
        return _schema(rows[0]) if rows else None

    async def insert_schema(
        self,
        *,
        fingerprint: str,
        schema_type: str,
        canonical: str,
        text: str,
        references: Sequence[Reference],
        schema_id: int | None = None,
    ) -> StoredSchema:
        """Store a new schema under ``schema_id`` or, by default, the next free global id."""
        guid = str(uuid.uuid4())
        params = {
            "id": schema_id,
            "guid": guid,
            "fp": fingerprint,
            "type": schema_type,
            "canonical": canonical,
            "schema": text,
            "refs": Jsonb([r.to_json() for r in references]),
        }
        query = """INSERT INTO registry.schemas
                (id, guid, fingerprint, schema_type, canonical, schema, refs)
            SELECT COALESCE(%(id)s, (SELECT COALESCE(MAX(id), 0) + 1 FROM registry.schemas)),
                   %(guid)s, %(fp)s, %(type)s, %(canonical)s, %(schema)s, %(refs)s
            RETURNING id"""
        rows = await self._rows(query, params)
        new_id = int(rows[0]["id"])
        return StoredSchema(new_id, guid, schema_type, text, tuple(references))

    async def usages(self, schema_id: int, lookup: Lookup) -> list[tuple[str, int]]:
        """(subject, version) pairs that point at ``schema_id``."""
        query = f"""SELECT v.subject, v.version FROM registry.subject_versions v
            WHERE v.schema_id = %(id)s AND {_LOOKUP} ORDER BY v.subject, v.version"""
        rows = await self._rows(query, {"id": schema_id, "lookup": lookup.value})
        return [(r["subject"], r["version"]) for r in rows]

    async def referenced_by(self, subject: str, version: int) -> list[int]:
        """Ids of schemas with a live version that reference ``subject`` ``version``."""
        query = """SELECT DISTINCT s.id FROM registry.schemas s
            CROSS JOIN LATERAL jsonb_array_elements(s.refs) AS r
            WHERE r->>'subject' = %(subject)s AND (r->>'version')::int = %(version)s
              AND EXISTS (SELECT 1 FROM registry.subject_versions v
                          WHERE v.schema_id = s.id AND NOT v.deleted)
            ORDER BY s.id"""
        rows = await self._rows(query, {"subject": subject, "version": version})
        return [int(r["id"]) for r in rows]

    # -- subjects and versions ----------------------------------------------------------------

    async def subjects(self, prefix: str, lookup: Lookup) -> list[str]:
        having = {
            Lookup.ACTIVE: "bool_or(NOT v.deleted)",
            Lookup.ALL: "true",
            Lookup.DELETED_ONLY: "bool_and(v.deleted)",
        }[lookup]
        query = f"""SELECT v.subject FROM registry.subject_versions v
            WHERE starts_with(v.subject, %(prefix)s)
            GROUP BY v.subject HAVING {having} ORDER BY v.subject"""
        rows = await self._rows(query, {"prefix": prefix})
        return [r["subject"] for r in rows]

    async def versions(self, subject: str, lookup: Lookup) -> list[SubjectVersion]:
        """The subject's versions that ``lookup`` sees, oldest first."""
        query = f"""SELECT v.subject, v.version, v.deleted, {_SCHEMA_COLUMNS}
            FROM registry.subject_versions v JOIN registry.schemas s ON s.id = v.schema_id
            WHERE v.subject = %(subject)s AND {_LOOKUP} ORDER BY v.version"""
        rows = await self._rows(query, {"subject": subject, "lookup": lookup.value})
        return [_version(r) for r in rows]

    async def version_ids(self, subject: str, lookup: Lookup) -> list[tuple[int, int]]:
        """(version, schema id) of the subject's versions ``lookup`` sees, oldest first: what
        :meth:`versions` gives without reading any schema text."""
        query = f"""SELECT v.version, v.schema_id FROM registry.subject_versions v
            WHERE v.subject = %(subject)s AND {_LOOKUP} ORDER BY v.version"""
        rows = await self._rows(query, {"subject": subject, "lookup": lookup.value})
        return [(int(r["version"]), int(r["schema_id"])) for r in rows]

    async def schema_versions(
        self, prefix: str, lookup: Lookup, *, latest_only: bool, offset: int, limit: int
    ) -> list[SubjectVersion]:
        """Versions of every subject starting with ``prefix``, by subject then version."""
        latest = _LATEST_ONLY if latest_only else ""
        query = f"""SELECT v.subject, v.version, v.deleted, {_SCHEMA_COLUMNS}
            FROM registry.subject_versions v JOIN registry.schemas s ON s.id = v.schema_id
            WHERE starts_with(v.subject, %(prefix)s) AND {_LOOKUP} {latest}
            ORDER BY v.subject, v.version OFFSET %(offset)s LIMIT %(limit)s"""
        params = {"prefix": prefix, "lookup": lookup.value, "offset": offset, "limit": limit}
        return [_version(r) for r in await self._rows(query, params)]

    async def max_schema_id(self) -> int:
        rows = await self._rows("SELECT COALESCE(MAX(id), 0) AS id FROM registry.schemas", {})
        return int(rows[0]["id"])

    async def version(self, subject: str, version: int, lookup: Lookup) -> SubjectVersion | None:
        query = f"""SELECT v.subject, v.version, v.deleted, {_SCHEMA_COLUMNS}
            FROM registry.subject_versions v JOIN registry.schemas s ON s.id = v.schema_id
            WHERE v.subject = %(subject)s AND {_LOOKUP}
              AND (v.version = %(version)s OR %(version)s = %(latest)s)
            ORDER BY v.version DESC LIMIT 1"""
        params = {"subject": subject, "version": version, "latest": LATEST}
        rows = await self._rows(query, {**params, "lookup": lookup.value})
        return _version(rows[0]) if rows else None

    async def insert_version(self, subject: str, schema_id: int, version: int | None) -> int:
        """Add ``schema_id`` to ``subject`` as ``version`` or, by default, the next version."""
        query = """INSERT INTO registry.subject_versions (subject, version, schema_id)
            SELECT %(subject)s, COALESCE(%(version)s, (SELECT COALESCE(MAX(version), 0) + 1
                FROM registry.subject_versions WHERE subject = %(subject)s)), %(id)s
            RETURNING version"""
        params = {"subject": subject, "version": version, "id": schema_id}
        rows = await self._rows(query, params)
        return int(rows[0]["version"])

    async def soft_delete(self, subject: str, versions: Sequence[int]) -> None:
        await self.conn.execute(
            "UPDATE registry.subject_versions SET deleted = true"
            " WHERE subject = %s AND version = ANY(%s)",
            (subject, list(versions)),
        )

    async def hard_delete(self, subject: str, versions: Sequence[int]) -> None:
        await self.conn.execute(
            "DELETE FROM registry.subject_versions WHERE subject = %s AND version = ANY(%s)",
            (subject, list(versions)),
        )

    # -- the write log ------------------------------------------------------------------------

    async def record(
        self, actor: Actor, action: Action, subject: str | None, **detail: Any
    ) -> None:
        """Log a write in its own transaction (see :mod:`sync.registry.audit`)."""
        await self.conn.execute(
            """INSERT INTO registry.audit (principal, address, action, subject, detail)
            VALUES (%s, %s, %s, %s, %s)""",
            (actor.principal, actor.address, action.value, subject, Jsonb(detail)),
        )

    # -- config and mode ----------------------------------------------------------------------

    async def config(self, subject: str) -> tuple[Compatibility | None, Mode | None]:
        """The compatibility and mode set for ``subject`` (``GLOBAL``: registry-wide)."""
        query = "SELECT compatibility, mode FROM registry.config WHERE subject = %(subject)s"
        rows = await self._rows(query, {"subject": subject})
        if not rows:
            return None, None
        compatibility, mode = rows[0]["compatibility"], rows[0]["mode"]
        return (
            Compatibility(compatibility) if compatibility else None,
            Mode(mode) if mode else None,
        )

    async def set_compatibility(self, subject: str, level: Compatibility | None) -> None:
        await self.conn.execute(
            """INSERT INTO registry.config (subject, compatibility) VALUES (%s, %s)
            ON CONFLICT (subject) DO UPDATE SET compatibility = EXCLUDED.compatibility""",
            (subject, level.value if level else None),
        )

    async def set_mode(self, subject: str, mode: Mode | None) -> None:
        await self.conn.execute(
            """INSERT INTO registry.config (subject, mode) VALUES (%s, %s)
            ON CONFLICT (subject) DO UPDATE SET mode = EXCLUDED.mode""",
            (subject, mode.value if mode else None),
        )


def _schema(row: dict[str, Any]) -> StoredSchema:
    refs = tuple(Reference(r["name"], r["subject"], int(r["version"])) for r in row["refs"])
    return StoredSchema(int(row["id"]), row["guid"], row["schema_type"], row["schema"], refs)


def _version(row: dict[str, Any]) -> SubjectVersion:
    return SubjectVersion(row["subject"], int(row["version"]), _schema(row), bool(row["deleted"]))
