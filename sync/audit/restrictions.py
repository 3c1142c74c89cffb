"""The register of data subjects' restrictions, beside the audit in the operator's store.

A person may object to processing on a legitimate interest, or withdraw consent given, for
every agency or for one (Law 91/2025/QH15). Each restriction names the person by their
personal id; a processor whose subscription rests on consent or legitimate interest withholds
that person's rows (:meth:`sync.policy.Projection.withhold`) and removes those its replica
holds. Subscriptions on other grounds (a state agency's duties, a legal obligation) are not
affected: the law does not let the person stop those.

- ``govsync_audit.restriction``: what holds now, one row per person and agency (``*``: every
  agency), with its kind, reason, when and by whom.
- ``govsync_audit.restriction_log``: every addition and removal, appended, never changed: the
  register's own audit.

Roles (:mod:`.roles`): the data protection officer (the reader role) adds, removes and reads;
a processor (a writer) reads only the restrictions of its own agencies and those for all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import psycopg
from psycopg import sql

from sync.audit.schema import SCHEMA, WRITERS

Connection = psycopg.Connection[Any]

RESTRICTIONS = sql.Identifier(SCHEMA, "restriction")
RESTRICTION_LOG = sql.Identifier(SCHEMA, "restriction_log")
EVERY_AGENCY = "*"
PERSONAL_ID = re.compile(r"[0-9]{12}")

DDL = sql.SQL(
    """
    CREATE TABLE IF NOT EXISTS {restrictions} (
        personal_id text NOT NULL,
        agency text NOT NULL,
        kind text NOT NULL CHECK (kind IN ('objection', 'withdrawn_consent')),
        reason text NOT NULL CHECK (btrim(reason) <> ''),
        added_at timestamptz NOT NULL DEFAULT now(),
        added_by text NOT NULL DEFAULT current_user,
        PRIMARY KEY (personal_id, agency)
    );
    CREATE TABLE IF NOT EXISTS {log} (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        action text NOT NULL CHECK (action IN ('add', 'remove')),
        personal_id text NOT NULL,
        agency text NOT NULL,
        kind text NOT NULL,
        reason text NOT NULL CHECK (btrim(reason) <> ''),
        at timestamptz NOT NULL DEFAULT now(),
        by_role text NOT NULL DEFAULT current_user
    );
    CREATE INDEX IF NOT EXISTS restriction_by_agency ON {restrictions} (agency);
    """
).format(restrictions=RESTRICTIONS, log=RESTRICTION_LOG)

# row-level security: a writer reads its own agencies' restrictions and those for every agency
WRITER_SEES = sql.SQL(
    "agency = '*' OR agency IN (SELECT w.agency FROM {} w WHERE w.role_name = current_user)"
).format(WRITERS)


def grants(writer: sql.Identifier, reader: sql.Identifier) -> sql.Composed:
    return sql.SQL(
        """
        GRANT SELECT ON {restrictions} TO {writer};
        GRANT SELECT, INSERT, DELETE ON {restrictions} TO {reader};
        GRANT SELECT, INSERT ON {log} TO {reader};
        """
    ).format(restrictions=RESTRICTIONS, log=RESTRICTION_LOG, writer=writer, reader=reader)


class Kind(StrEnum):
    OBJECTION = "objection"
    WITHDRAWN_CONSENT = "withdrawn_consent"


@dataclass(frozen=True, slots=True)
class Restriction:
    personal_id: str
    agency: str  # EVERY_AGENCY for all
    kind: Kind
    reason: str
    added_at: datetime
    added_by: str

    def as_dict(self) -> dict[str, str]:
        return {
            "personal_id": self.personal_id,
            "agency": self.agency,
            "kind": self.kind.value,
            "reason": self.reason,
            "added_at": self.added_at.isoformat(),
            "added_by": self.added_by,
        }


def check_personal_id(text: str) -> str:
    """``text`` if it is a personal identification number (12 digits), else ValueError."""
    if not PERSONAL_ID.fullmatch(text):
        raise ValueError(f"a personal id is 12 digits, not {text!r}")
    return text


def add(conn: Connection, personal_id: str, agency: str, kind: Kind, reason: str) -> bool:
    """Record the restriction and its log entry in one transaction; False (and nothing
    written) when the same person and agency are already restricted."""
    check_personal_id(personal_id)
    if not reason.strip():
        raise ValueError("a restriction needs its reason")
    with conn.transaction():
        added = conn.execute(
            sql.SQL(
                "INSERT INTO {} (personal_id, agency, kind, reason) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT DO NOTHING"
            ).format(RESTRICTIONS),
            (personal_id, agency, kind.value, reason),
        ).rowcount
        if added:
            _log(conn, "add", personal_id, agency, kind.value, reason)
    return bool(added)


def remove(conn: Connection, personal_id: str, agency: str, reason: str) -> bool:
    """Lift the restriction, logging why; False when there was none."""
    check_personal_id(personal_id)
    if not reason.strip():
        raise ValueError("lifting a restriction needs its reason")
    with conn.transaction():
        row = conn.execute(
            sql.SQL("DELETE FROM {} WHERE personal_id = %s AND agency = %s RETURNING kind").format(
                RESTRICTIONS
            ),
            (personal_id, agency),
        ).fetchone()
        if row is not None:
            _log(conn, "remove", personal_id, agency, str(row[0]), reason)
    return row is not None


def listed(
    conn: Connection, personal_id: str | None = None, agency: str | None = None
) -> list[Restriction]:
    """The restrictions in force, of one person and/or one agency (and those for all)."""
    conditions: list[sql.Composable] = [sql.SQL("true")]
    params: list[str] = []
    if personal_id is not None:
        conditions.append(sql.SQL("personal_id = %s"))
        params.append(personal_id)
    if agency is not None:
        conditions.append(sql.SQL("agency IN (%s, '*')"))
        params.append(agency)
    rows = conn.execute(
        sql.SQL(
            "SELECT personal_id, agency, kind, reason, added_at, added_by FROM {} WHERE {} "
            "ORDER BY personal_id, agency"
        ).format(RESTRICTIONS, sql.SQL(" AND ").join(conditions)),
        params,
    ).fetchall()
    return [Restriction(r[0], r[1], Kind(r[2]), r[3], r[4], r[5]) for r in rows]


def register_exists(conn: Connection) -> bool:
    row = conn.execute("SELECT to_regclass(%s)", (f"{SCHEMA}.restriction",)).fetchone()
    return row is not None and row[0] is not None


WITHHELD_QUERY = sql.SQL("SELECT DISTINCT personal_id FROM {} WHERE agency IN (%s, '*')").format(
    RESTRICTIONS
)


def _log(conn: Connection, action: str, personal_id: str, agency: str, kind: str, r: str) -> None:
    conn.execute(
        sql.SQL(
            "INSERT INTO {} (action, personal_id, agency, kind, reason) VALUES (%s, %s, %s, %s, %s)"
        ).format(RESTRICTION_LOG),
        (action, personal_id, agency, kind, r),
    )
