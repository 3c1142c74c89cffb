"""Least privilege in the audit store, with real PostgreSQL roles: an agency's writer appends
to its own chain and can neither read, move nor forge another's; the data protection
officer's reader reads and writes nothing; and a processor role never creates the store."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import conninfo, sql

from sync.audit import AuditTrail, restrictions
from sync.audit.roles import AuditRoles, provision_audit_roles
from sync.config import AuditSettings
from sync.errors import AuditError
from sync.stack.providers import StackProvider
from tests.integration.test_audit import cli, disclosure, run

pytestmark = pytest.mark.integration

UNSIGNED = AuditSettings(bootstrap="")


def record(dsn: str, agency: str, *numbers: int) -> int:
    async def go() -> int:
        async with await AuditTrail.open(dsn, agency, UNSIGNED) as trail:
            return await trail.record([disclosure(agency, n) for n in numbers])

    return run(go())


def drop_roles(admin: str, roles: list[str]) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        for role in roles:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@pytest.fixture
def provisioned(stack: StackProvider) -> Iterator[tuple[str, AuditRoles, str, str]]:
    """An audit store with writers for two agencies of this test's own and a reader."""
    tag = uuid.uuid4().hex[:6]
    admin = stack.create_database(f"audit_roles_{tag}")
    a, b = f"gso{tag}", f"hanoi{tag}"
    roles = provision_audit_roles(admin, [a, b])
    try:
        yield admin, roles, a, b
    finally:
        drop_roles(admin, [f"govsync_audit_{a}", f"govsync_audit_{b}"])


def test_a_writer_appends_to_its_own_chain_only(
    provisioned: tuple[str, AuditRoles, str, str],
) -> None:
    admin, roles, a, b = provisioned
    assert record(roles.writer_dsns[a], a, 1, 2) == 2
    assert record(roles.writer_dsns[b], b, 1, 2, 3) == 3

    with psycopg.connect(roles.writer_dsns[a], autocommit=True) as conn:
        agencies = conn.execute("SELECT DISTINCT agency FROM govsync_audit.disclosure").fetchall()
        assert agencies == [(a,)]  # B's entries are not there for A
        heads = conn.execute("SELECT agency FROM govsync_audit.chain_head").fetchall()
        assert heads == [(a,)]
        moved = conn.execute("UPDATE govsync_audit.chain_head SET seq = 99 WHERE agency = %s", (b,))
        assert moved.rowcount == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "UPDATE govsync_audit.chain_head SET agency = %s WHERE agency = %s", (b, a)
            )
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            conn.execute(
                "INSERT INTO govsync_audit.disclosure SELECT seq + 10, %s, subjects, topic, op, "
                "fields, purpose, legal_basis, event_id || 'x', source_lsn, source_index, "
                "committed_at, recorded_at, prev_hash, hash FROM govsync_audit.disclosure",
                (b,),
            )
        for statement in (
            "UPDATE govsync_audit.disclosure SET purpose = 'x'",
            "DELETE FROM govsync_audit.disclosure",
            "TRUNCATE govsync_audit.disclosure",
            "SELECT * FROM govsync_audit.chain_start",
            "ALTER TABLE govsync_audit.disclosure DISABLE TRIGGER USER",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)

    with pytest.raises(AuditError, match=f"may not append to agency {b}'s audit chain"):
        record(roles.writer_dsns[a], b, 4)
    with psycopg.connect(admin) as conn:
        head = conn.execute(
            "SELECT seq FROM govsync_audit.chain_head WHERE agency = %s", (b,)
        ).fetchone()
        assert head == (3,)
    done = cli(roles.reader_dsn, "verify")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"agency {a}: intact, 2 entries" in done.stdout
    assert f"agency {b}: intact, 3 entries" in done.stdout


def test_the_reader_reads_everything_and_writes_nothing(
    provisioned: tuple[str, AuditRoles, str, str],
) -> None:
    _, roles, a, b = provisioned
    record(roles.writer_dsns[a], a, 1)
    record(roles.writer_dsns[b], b, 2)
    with psycopg.connect(roles.reader_dsn, autocommit=True) as conn:
        seen = conn.execute("SELECT agency FROM govsync_audit.disclosure ORDER BY agency")
        assert [r[0] for r in seen] == sorted([a, b])
        for statement in (
            "INSERT INTO govsync_audit.chain_head VALUES ('x', 0, '\\x00')",
            "UPDATE govsync_audit.disclosure SET purpose = 'x'",
            "DELETE FROM govsync_audit.chain_head",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
    citizen = cli(roles.reader_dsn, "citizen", disclosure(a, 1).subjects[0], "--json")
    assert citizen.returncode == 0 and a in citizen.stdout


def test_the_reader_keeps_the_restrictions_and_each_writer_reads_only_its_own(
    provisioned: tuple[str, AuditRoles, str, str],
) -> None:
    _, roles, a, b = provisioned
    with psycopg.connect(roles.reader_dsn, autocommit=True) as conn:
        assert restrictions.add(conn, "001090000001", a, restrictions.Kind.OBJECTION, "r1")
        assert restrictions.add(conn, "001090000002", b, restrictions.Kind.OBJECTION, "r2")
        assert restrictions.add(
            conn, "001090000003", restrictions.EVERY_AGENCY, restrictions.Kind.OBJECTION, "r3"
        )
        assert restrictions.remove(conn, "001090000002", b, "r2 withdrawn")
        assert restrictions.add(conn, "001090000002", b, restrictions.Kind.OBJECTION, "r2 again")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE govsync_audit.restriction_log SET reason = 'rewritten'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM govsync_audit.restriction_log")
    with psycopg.connect(roles.writer_dsns[a], autocommit=True) as conn:
        seen = conn.execute(restrictions.WITHHELD_QUERY, (b,)).fetchall()
        assert sorted(r[0] for r in seen) == ["001090000003"], "not another agency's"
        seen = conn.execute("SELECT personal_id FROM govsync_audit.restriction ORDER BY 1")
        assert [r[0] for r in seen] == ["001090000001", "001090000003"]
        for statement in (
            "INSERT INTO govsync_audit.restriction (personal_id, agency, kind, reason) "
            "VALUES ('001090000009', '*', 'objection', 'forged')",
            "DELETE FROM govsync_audit.restriction",
            "SELECT * FROM govsync_audit.restriction_log",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)


def test_a_processor_role_never_creates_the_store(stack: StackProvider) -> None:
    tag = uuid.uuid4().hex[:6]
    admin = stack.create_database(f"audit_uninit_{tag}")
    role, password = f"processor_{tag}", uuid.uuid4().hex
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(password)
            )
        )
    try:
        dsn = conninfo.make_conninfo(admin, user=role, password=password)
        with pytest.raises(AuditError, match="run `govsync audit init --writer"):
            record(dsn, "gso", 1)
        with psycopg.connect(admin) as conn:
            schema = conn.execute("SELECT to_regnamespace('govsync_audit')").fetchone()
        assert schema == (None,)

        assert cli(admin, "init", "--writer", role, "--agency", "gso").returncode == 0
        assert record(dsn, "gso", 1) == 1
        with psycopg.connect(admin) as conn:
            owner = conn.execute(
                "SELECT tableowner FROM pg_tables WHERE schemaname = 'govsync_audit' "
                "AND tablename = 'disclosure'"
            ).fetchone()
        assert owner == ("govsync_audit_owner",)
    finally:
        drop_roles(admin, [role])
