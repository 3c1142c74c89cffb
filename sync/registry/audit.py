"""The registry's record of writes: who changed what, and when.

Every write (a new version, a delete, a config or mode change) adds one row to
``registry.audit`` inside the write's own transaction, so no change is ever stored without its
row. A trigger refuses UPDATE, DELETE and TRUNCATE on the table: rows are only ever added.
``govsync registry audit`` reads them (:func:`read_audit`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import psycopg
from psycopg.rows import dict_row

DDL = (
    """CREATE TABLE IF NOT EXISTS registry.audit (
        id        bigserial PRIMARY KEY,
        at        timestamptz NOT NULL DEFAULT clock_timestamp(),
        principal text NOT NULL,
        address   text,
        action    text NOT NULL,
        subject   text,
        detail    jsonb NOT NULL DEFAULT '{}')""",
    """CREATE OR REPLACE FUNCTION registry.audit_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'registry.audit is append-only: % refused', TG_OP;
        END $$""",
    """CREATE OR REPLACE TRIGGER audit_append_only
        BEFORE UPDATE OR DELETE ON registry.audit
        FOR EACH ROW EXECUTE FUNCTION registry.audit_append_only()""",
    """CREATE OR REPLACE TRIGGER audit_no_truncate
        BEFORE TRUNCATE ON registry.audit
        FOR EACH STATEMENT EXECUTE FUNCTION registry.audit_append_only()""",
)


class Action(StrEnum):
    REGISTER = "register"
    DELETE_SUBJECT = "delete_subject"
    DELETE_VERSION = "delete_version"
    SET_COMPATIBILITY = "set_compatibility"
    DELETE_COMPATIBILITY = "delete_compatibility"
    SET_MODE = "set_mode"
    DELETE_MODE = "delete_mode"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who sends a request: the authenticated user (or certificate), and from where."""

    principal: str
    address: str | None = None


ANONYMOUS = Actor("anonymous")  # the principal of every request while auth is off


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    principal: str
    address: str | None
    action: str
    subject: str | None  # None: the registry-wide config or mode
    detail: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "principal": self.principal,
            "address": self.address,
            "action": self.action,
            "subject": self.subject,
            "detail": self.detail,
        }


def read_audit(
    dsn: str,
    *,
    subject_prefix: str | None = None,
    principal: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[AuditEntry]:
    """The newest ``limit`` entries matching the filters, oldest first."""
    query = """SELECT * FROM (
            SELECT id, at, principal, address, action, subject, detail FROM registry.audit
            WHERE (%(prefix)s::text IS NULL OR starts_with(subject, %(prefix)s))
              AND (%(principal)s::text IS NULL OR principal = %(principal)s)
              AND (%(since)s::timestamptz IS NULL OR at >= %(since)s)
            ORDER BY id DESC LIMIT %(limit)s) newest
        ORDER BY id"""
    params = {"prefix": subject_prefix, "principal": principal, "since": since, "limit": limit}
    with psycopg.connect(dsn) as conn, conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return [AuditEntry(**row) for row in cur.fetchall()]
