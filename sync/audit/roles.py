"""Who may do what in the audit store: least privilege, enforced by PostgreSQL itself.

- ``govsync_audit_owner`` (no login) owns the schema, tables and triggers; ``govsync audit
  init`` creates them under it and ``govsync audit prune`` deletes as it. A member of it (or
  a superuser) runs those two commands; processors never are.
- ``govsync_audit_writer`` (no login) is the group of processors' login roles. Row-level
  security lets each member see, append to and move the head of only the chains
  ``govsync_audit.writer_agency`` maps it to: no other agency's entries, no other head, no
  entry in another chain. It has no UPDATE, DELETE or TRUNCATE of entries at all.
- ``govsync_audit_reader`` (no login) reads everything and writes nothing: the data
  protection officer's ``verify``, ``citizen`` and ``report``.

:func:`provision_audit_roles` creates all of it and a login role per agency, for a stack that
starts its own processors (``govsync up``).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import conninfo, sql

from sync.audit import restrictions
from sync.audit.restrictions import RESTRICTION_LOG, RESTRICTIONS
from sync.audit.schema import DDL, DDL_LOCK, ENTRIES, HEADS, SCHEMA, STARTS, WRITERS
from sync.errors import AuditError

OWNER = "govsync_audit_owner"
WRITER = "govsync_audit_writer"
READER = "govsync_audit_reader"

Connection = psycopg.Connection[Any]

_ROLE_EXISTS = "SELECT 1 FROM pg_roles WHERE rolname = %s"
# the writer's own chains, as a subquery PostgreSQL runs once per statement
_OWN = sql.SQL("agency IN (SELECT w.agency FROM {} w WHERE w.role_name = current_user)").format(
    WRITERS
)
_POLICIES: tuple[tuple[sql.Identifier, str, str, sql.Composable, sql.Composable | None], ...] = (
    (WRITERS, "writer_sees_own_mapping", "SELECT", sql.SQL("role_name = current_user"), None),
    (ENTRIES, "writer_reads_own_chain", "SELECT", _OWN, None),
    (ENTRIES, "writer_appends_to_own_chain", "INSERT", sql.SQL("true"), _OWN),
    (HEADS, "writer_moves_own_head", "ALL", _OWN, _OWN),
    (RESTRICTIONS, "writer_reads_own_restrictions", "SELECT", restrictions.WRITER_SEES, None),
)
# the data protection officer keeps the restrictions register: reads and changes it, and
# appends to its log
_KEPT_BY_READER: tuple[tuple[sql.Identifier, str, str, sql.Composable | None], ...] = (
    (RESTRICTIONS, "reader_keeps_restrictions", "ALL", sql.SQL("true")),
    (RESTRICTION_LOG, "reader_reads_restriction_log", "SELECT", None),
    (RESTRICTION_LOG, "reader_appends_restriction_log", "INSERT", sql.SQL("true")),
)
_READABLE = (ENTRIES, HEADS, STARTS)
_FOREIGN_OWNED = """
    SELECT 'schema', nspname FROM pg_namespace
     WHERE nspname = %(schema)s AND nspowner <> %(owner)s::regrole
    UNION ALL
    SELECT 'table', c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = %(schema)s AND c.relkind = 'r' AND c.relowner <> %(owner)s::regrole
    UNION ALL
    SELECT 'function', p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname = %(schema)s AND p.proowner <> %(owner)s::regrole
"""
_GRANTS = sql.SQL(
    """
    REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM PUBLIC;
    REVOKE ALL ON SCHEMA {schema} FROM PUBLIC;
    GRANT USAGE ON SCHEMA {schema} TO {writer}, {reader};
    GRANT SELECT, INSERT ON {entries} TO {writer};
    GRANT SELECT, INSERT, UPDATE ON {heads} TO {writer};
    GRANT SELECT ON {writers} TO {writer};
    GRANT SELECT ON {entries}, {heads}, {starts} TO {reader};
    """
)


def create_store(conn: Connection) -> None:
    """Create (or bring up to date) the audit store, owned by ``govsync_audit_owner``, with
    its roles, grants and row-level security. Run as a superuser or a member of the owner
    role with CREATEROLE; idempotent."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (DDL_LOCK,))
        for role in (OWNER, WRITER, READER):
            _ensure_role(conn, role, login=False)
        database = sql.Identifier(_current_database(conn))
        conn.execute(sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(database, _id(OWNER)))
        # a store whose database is closed to PUBLIC still lets its writers and readers in;
        # a writer stages each batch in a temporary table
        conn.execute(
            sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(database, _id(WRITER))
        )
        conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(database, _id(READER)))
        _grant_membership(conn, OWNER)
        _adopt(conn)
        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(_id(OWNER)))
        conn.execute(DDL)
        conn.execute(restrictions.DDL)
        _secure(conn)


def allow_writer(conn: Connection, role: str, agencies: Iterable[str]) -> None:
    """Let an existing login role append to ``agencies``' chains, and nothing else."""
    codes = sorted(set(agencies))
    if not codes:
        raise AuditError(f"say which agencies' chains {role} may append to (--agency)")
    with conn.transaction():
        conn.execute(sql.SQL("GRANT {} TO {}").format(_id(WRITER), _id(role)))
        _grant_membership(conn, OWNER)
        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(_id(OWNER)))
        for code in codes:
            conn.execute(
                sql.SQL("INSERT INTO {} VALUES (%s, %s) ON CONFLICT DO NOTHING").format(WRITERS),
                (role, code),
            )


def allow_reader(conn: Connection, role: str) -> None:
    """Let an existing login role read the whole audit (the data protection officer)."""
    conn.execute(sql.SQL("GRANT {} TO {}").format(_id(READER), _id(role)))


@dataclass(frozen=True)
class AuditRoles:
    """Connection strings for each role :func:`provision_audit_roles` made."""

    reader_dsn: str
    writer_dsns: dict[str, str] = field(default_factory=dict)


def provision_audit_roles(admin_dsn: str, agencies: Iterable[str]) -> AuditRoles:
    """Create the audit store and a login role per agency that may append to that agency's
    chain only (``govsync_audit_<agency>``), plus ``govsync_audit_dpo``, a reader. Every call
    gives the login roles new passwords: use the returned connection strings."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        create_store(conn)
        writers = {}
        for agency in sorted(set(agencies)):
            role = writer_role(agency)
            writers[agency] = _login(conn, admin_dsn, role)
            allow_writer(conn, role, [agency])
        reader = _login(conn, admin_dsn, "govsync_audit_dpo")
        allow_reader(conn, "govsync_audit_dpo")
    return AuditRoles(reader, writers)


def writer_role(agency: str) -> str:
    role = f"govsync_audit_{agency}"
    if len(role.encode()) > 63:
        raise AuditError(f"agency code {agency!r} is too long for a role name", agency=agency)
    return role


def _login(conn: Connection, admin_dsn: str, role: str) -> str:
    password = secrets.token_urlsafe(24)
    _ensure_role(conn, role, login=True)
    conn.execute(
        sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(_id(role), sql.Literal(password))
    )
    return conninfo.make_conninfo(admin_dsn, user=role, password=password)


def _adopt(conn: Connection) -> None:
    """Hand a store made before the owner role existed (its tables then belong to whoever
    made them, who could disable their triggers) to the owner role."""
    found = conn.execute(_FOREIGN_OWNED, {"schema": SCHEMA, "owner": OWNER}).fetchall()
    for kind, name in found:
        target = sql.Identifier(SCHEMA, name) if kind != "schema" else sql.Identifier(name)
        conn.execute(sql.SQL("ALTER {} {} OWNER TO {}").format(sql.SQL(kind), target, _id(OWNER)))


def _secure(conn: Connection) -> None:
    schema = sql.Identifier(SCHEMA)
    for table in (ENTRIES, HEADS, STARTS, WRITERS, RESTRICTIONS, RESTRICTION_LOG):
        conn.execute(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(table))
    for table, name, command, using, check in _POLICIES:
        _policy(conn, table, name, command, _id(WRITER), using, check)
    for table in _READABLE:
        _policy(conn, table, "reader_reads_all", "SELECT", _id(READER), sql.SQL("true"), None)
    for table, name, command, check in _KEPT_BY_READER:
        _policy(conn, table, name, command, _id(READER), sql.SQL("true"), check)
    conn.execute(restrictions.grants(_id(WRITER), _id(READER)))
    conn.execute(
        _GRANTS.format(
            schema=schema,
            writer=_id(WRITER),
            reader=_id(READER),
            entries=ENTRIES,
            heads=HEADS,
            starts=STARTS,
            writers=WRITERS,
        )
    )


def _policy(
    conn: Connection,
    table: sql.Identifier,
    name: str,
    command: str,
    role: sql.Identifier,
    using: sql.Composable,
    check: sql.Composable | None,
) -> None:
    conn.execute(sql.SQL("DROP POLICY IF EXISTS {} ON {}").format(_id(name), table))
    statement = sql.SQL("CREATE POLICY {} ON {} FOR {} TO {}").format(
        _id(name), table, sql.SQL(command), role
    )
    if command != "INSERT":
        statement = sql.SQL("{} USING ({})").format(statement, using)
    if check is not None:
        statement = sql.SQL("{} WITH CHECK ({})").format(statement, check)
    conn.execute(statement)


def _ensure_role(conn: Connection, role: str, *, login: bool) -> None:
    if conn.execute(_ROLE_EXISTS, (role,)).fetchone() is None:
        option = sql.SQL("LOGIN" if login else "NOLOGIN")
        conn.execute(sql.SQL("CREATE ROLE {} {}").format(_id(role), option))


def _grant_membership(conn: Connection, role: str) -> None:
    """Let the connected role act as ``role`` (a superuser already may)."""
    row = conn.execute("SELECT current_setting('is_superuser') = 'on', current_user").fetchone()
    assert row is not None
    if not row[0]:
        conn.execute(sql.SQL("GRANT {} TO {}").format(_id(role), _id(str(row[1]))))


def _current_database(conn: Connection) -> str:
    row = conn.execute("SELECT current_database()").fetchone()
    assert row is not None
    return str(row[0])


def _id(name: str) -> sql.Identifier:
    return sql.Identifier(name)
