"""The disclosure audit on a real PostgreSQL: batches appended once each, one linear chain per
agency under concurrent writers, tampering by a superuser found by the real
``govsync audit verify``, and ``govsync audit citizen`` answering for exactly one person."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import psycopg
import pytest
from psycopg import sql

from sync.audit import AuditTrail, Disclosure, Head, extend
from sync.audit.reader import walk_chain
from sync.audit.schema import COLUMNS, COPY_TYPES, ENTRIES, row_of
from sync.stack.providers import StackProvider

pytestmark = [pytest.mark.integration, pytest.mark.brokerless]

T = TypeVar("T")
WHEN = datetime(2026, 1, 5, 8, 30, tzinfo=UTC)
PURPOSE = {"vss": "Đăng ký và quản lý người tham gia bảo hiểm xã hội", "gso": "Thống kê dân số"}
BASIS = {"vss": "Luật Bảo hiểm xã hội 41/2024/QH15", "gso": "Luật Thống kê 89/2015/QH13"}


def run(coro: Awaitable[T]) -> T:
    async def wrapped() -> T:
        return await coro

    return asyncio.run(wrapped())


def disclosure(
    agency: str,
    n: int,
    subjects: Sequence[str] = (),
    topic: str = "population.citizen",
    fields: Sequence[str] = ("personal_id", "full_name", "date_of_birth"),
    op: str = "u",
) -> Disclosure:
    return Disclosure(
        agency=agency,
        subjects=tuple(subjects) or (f"0010900{n:05d}",),
        topic=topic,
        op=op,
        fields=tuple(fields),
        purpose=PURPOSE.get(agency, "Quản lý dân cư trên địa bàn"),
        legal_basis=BASIS.get(agency, "Luật Cư trú 68/2020/QH14"),
        event_id=f"population:00000016B374{n:04X}:{n % 7}",
        lsn=f"16/B374{n:04X}",
        index=n % 7,
        committed_at=WHEN,
    )


@pytest.fixture
def audit_dsn(stack: StackProvider) -> str:
    return stack.create_database(f"audit_{uuid.uuid4().hex[:10]}")


def record(dsn: str, agency: str, *batches: Sequence[Disclosure]) -> list[int]:
    async def go() -> list[int]:
        async with await AuditTrail.open(dsn, agency) as trail:
            return [await trail.record(batch) for batch in batches]

    return run(go())


def cli(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GOVSYNC_AUDIT_DSN": dsn, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "sync.cli", "audit", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def chain_rows(dsn: str, agency: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT seq, event_id, prev_hash, hash FROM govsync_audit.disclosure "
            "WHERE agency = %s ORDER BY seq",
            (agency,),
        ).fetchall()


def tamper(dsn: str, *statements: str) -> None:
    """As a superuser, with the append-only triggers switched off for this session only."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        for statement in statements:
            conn.execute(statement)


# --- writing ---------------------------------------------------------------------------------


def test_batches_are_chained_once_each_and_verify(audit_dsn: str) -> None:
    first = [disclosure("vss", n) for n in range(1, 4)]
    again = [*first, disclosure("vss", 4), disclosure("vss", 5)]
    in_batch_twice = [disclosure("vss", 6), disclosure("vss", 6), disclosure("vss", 7)]
    assert record(audit_dsn, "vss", first, again, in_batch_twice, [], first) == [3, 2, 2, 0, 0]

    rows = chain_rows(audit_dsn, "vss")
    assert [r[0] for r in rows] == list(range(1, 8))
    assert [r[1] for r in rows] == [disclosure("vss", n).event_id for n in range(1, 8)]
    assert all(rows[i][2] == rows[i - 1][3] for i in range(1, 7))

    done = cli(audit_dsn, "verify", "--chunk-rows", "3")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith(
        f"agency vss: intact, 7 entries, head seq 7 sha256 {rows[6][3].hex()}"
    )


def test_the_store_refuses_updates_deletes_and_truncates(audit_dsn: str) -> None:
    record(audit_dsn, "vss", [disclosure("vss", 1), disclosure("vss", 2)])
    statements = [
        "UPDATE govsync_audit.disclosure SET purpose = 'x'",
        "DELETE FROM govsync_audit.disclosure WHERE seq = 2",
        "TRUNCATE govsync_audit.disclosure",
        "UPDATE govsync_audit.chain_head SET seq = 1",
        "DELETE FROM govsync_audit.chain_head",
    ]
    with psycopg.connect(audit_dsn, autocommit=True) as conn:
        for statement in statements:
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="refused"):
                conn.execute(statement)
    assert len(chain_rows(audit_dsn, "vss")) == 2


def test_two_writers_of_one_agency_append_one_linear_chain(audit_dsn: str) -> None:
    batches = [[disclosure("vss", n) for n in range(start, start + 40)] for start in (1, 21, 61)]

    async def go() -> list[int]:
        a = await AuditTrail.open(audit_dsn, "vss")
        b = await AuditTrail.open(audit_dsn, "vss")
        blocker = await psycopg.AsyncConnection.connect(audit_dsn)
        try:
            # hold the head so both writers queue behind it, then let them race
            await blocker.execute(
                "SELECT 1 FROM govsync_audit.chain_head WHERE agency = 'vss' FOR UPDATE"
            )
            tasks = [
                asyncio.ensure_future(w.record(batch))
                for w, batch in zip((a, b, a), batches, strict=True)
            ]
            await _until(lambda: _lock_waiters(audit_dsn), 2, "both writers to wait on the head")
            await blocker.rollback()
            return list(await asyncio.gather(*tasks))
        finally:
            for closing in (a.close(), b.close(), blocker.close()):
                await closing

    written = run(go())
    assert sum(written) == 100  # events 1..100, overlaps written once
    rows = chain_rows(audit_dsn, "vss")
    assert [r[0] for r in rows] == list(range(1, 101))
    assert len({r[1] for r in rows}) == 100
    assert rows[0][2] == bytes(32) and all(rows[i][2] == rows[i - 1][3] for i in range(1, 100))
    done = cli(audit_dsn, "verify", "--agency", "vss")
    assert done.returncode == 0 and "intact, 100 entries" in done.stdout, done.stdout


def test_processors_opening_a_fresh_store_together_do_not_race(audit_dsn: str) -> None:
    async def go() -> None:
        trails = await asyncio.gather(*(AuditTrail.open(audit_dsn, a) for a in ("vss", "gso")))
        for trail in trails:
            await trail.close()

    run(go())
    assert cli(audit_dsn, "verify").returncode == 0


async def _lock_waiters(dsn: str) -> int:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cursor = await conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        row = await cursor.fetchone()
        return int(row[0]) if row else 0


async def _until(probe: Callable[[], Awaitable[int]], at_least: int, what: str) -> None:
    deadline = time.monotonic() + 30
    while (await probe()) < at_least:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


# --- tampering -------------------------------------------------------------------------------

_ENTRIES = "govsync_audit.disclosure"
_VSS = "agency = 'vss'"
TAMPERING = {
    "edited": (
        [f"UPDATE {_ENTRIES} SET fields = ARRAY['personal_id'] WHERE {_VSS} AND seq = 4"],
        "agency vss: seq 4: content does not match its hash (entry edited)",
    ),
    "edited subject": (
        [f"UPDATE {_ENTRIES} SET subjects = ARRAY['000000000000'] WHERE {_VSS} AND seq = 6"],
        "agency vss: seq 6: content does not match its hash (entry edited)",
    ),
    "middle removed": (
        [f"DELETE FROM {_ENTRIES} WHERE {_VSS} AND seq = 4"],
        "agency vss: seq 4: seq 4 missing (removed)",
    ),
    "middle removed and renumbered": (
        [
            f"DELETE FROM {_ENTRIES} WHERE {_VSS} AND seq = 4",
            f"UPDATE {_ENTRIES} SET seq = seq - 1 WHERE {_VSS} AND seq > 4",
        ],
        "agency vss: seq 4: prev_hash is not the hash of seq 3",
    ),
    "tail removed": (
        [f"DELETE FROM {_ENTRIES} WHERE {_VSS} AND seq >= 8"],
        "agency vss: seq 8: seq 8..10 missing: the chain head records seq 10 (tail removed)",
    ),
    "pair swapped": (
        [
            f"UPDATE {_ENTRIES} SET seq = -4 WHERE {_VSS} AND seq = 4",
            f"UPDATE {_ENTRIES} SET seq = 4 WHERE {_VSS} AND seq = 5",
            f"UPDATE {_ENTRIES} SET seq = 5 WHERE {_VSS} AND seq = -4",
        ],
        "agency vss: seq 4: prev_hash is not the hash of seq 3",
    ),
}


@pytest.fixture
def two_chains(audit_dsn: str) -> Iterator[str]:
    record(audit_dsn, "vss", [disclosure("vss", n) for n in range(1, 11)])
    record(audit_dsn, "gso", [disclosure("gso", n) for n in range(1, 6)])
    assert cli(audit_dsn, "verify").returncode == 0
    yield audit_dsn


@pytest.mark.parametrize("case", TAMPERING, ids=str)
def test_verify_names_the_agency_and_seq_of_any_tampering(two_chains: str, case: str) -> None:
    statements, expected = TAMPERING[case]
    tamper(two_chains, *statements)

    done = cli(two_chains, "verify")
    assert done.returncode == 1
    assert f"BROKEN {expected}" in done.stdout, done.stdout
    assert "agency gso: intact, 5 entries" in done.stdout
    assert cli(two_chains, "verify", "--agency", "gso").returncode == 0

    as_json = json.loads(cli(two_chains, "verify", "--json").stdout)
    vss = next(r for r in as_json if r["agency"] == "vss")
    assert (vss["intact"], vss["broken_at_seq"]) == (False, int(expected.split()[3][:-1]))


def test_an_anchor_finds_a_tail_removed_with_its_head_rewound(two_chains: str) -> None:
    anchors = cli(two_chains, "head").stdout.split()
    assert [a.split(":")[:2] for a in anchors] == [["gso", "5"], ["vss", "10"]]
    seventh = chain_rows(two_chains, "vss")[6][3]
    tamper(
        two_chains,
        f"DELETE FROM {_ENTRIES} WHERE {_VSS} AND seq >= 8",
        f"UPDATE govsync_audit.chain_head SET seq = 7, hash = '\\x{seventh.hex()}' WHERE {_VSS}",
    )
    # consistent on its own: only a head kept elsewhere shows what is gone
    assert cli(two_chains, "verify").returncode == 0
    anchored = [f"--anchor={a}" for a in anchors]
    done = cli(two_chains, "verify", *anchored)
    assert done.returncode == 1
    assert "BROKEN agency vss: seq 8: seq 8..10 missing: an anchor names seq 10" in done.stdout


def test_verify_of_an_unknown_agency_or_a_missing_store_fails_clearly(audit_dsn: str) -> None:
    done = cli(audit_dsn, "verify")
    assert done.returncode == 1 and "no audit store here" in done.stderr
    record(audit_dsn, "vss", [disclosure("vss", 1)])
    done = cli(audit_dsn, "verify", "--agency", "mof")
    assert done.returncode == 1 and "BROKEN agency mof: no audit chain" in done.stdout


# --- a citizen's question --------------------------------------------------------------------

AN = "001090000001"


def test_citizen_lists_exactly_that_persons_disclosures(audit_dsn: str) -> None:
    household = ("population.household", ("household_id", "personal_id", "head_personal_id"))
    record(
        audit_dsn,
        "vss",
        [
            disclosure("vss", 1, [AN]),
            disclosure("vss", 2, ["001090000002"]),
            disclosure("vss", 3, ["001090000002", AN], *household),
        ],
    )
    record(audit_dsn, "gso", [disclosure("gso", 1, [AN], fields=("personal_id",))])
    record(audit_dsn, "hanoi", [disclosure("hanoi", 9, ["001090000003"], op="d")])

    done = cli(audit_dsn, "citizen", AN, "--json")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert sorted((d["agency"], d["topic"], tuple(d["fields"])) for d in found) == [
        ("gso", "population.citizen", ("personal_id",)),
        ("vss", "population.citizen", ("personal_id", "full_name", "date_of_birth")),
        ("vss", "population.household", household[1]),
    ]
    gso = next(d for d in found if d["agency"] == "gso")
    assert (gso["purpose"], gso["legal_basis"]) == (PURPOSE["gso"], BASIS["gso"])
    assert gso["event_id"] == disclosure("gso", 1).event_id
    assert gso["source_position"] == "16/B3740001#1"
    assert datetime.fromisoformat(gso["disclosed_at"]) > WHEN

    table = cli(audit_dsn, "citizen", AN)
    assert table.returncode == 0
    assert "hanoi" not in table.stdout and PURPOSE["gso"] in table.stdout
    nobody = cli(audit_dsn, "citizen", "009999999999")
    assert "no disclosure recorded about 009999999999" in nobody.stdout


def test_a_writer_role_may_append_and_nothing_else(audit_dsn: str) -> None:
    role = f"audit_writer_{uuid.uuid4().hex[:8]}"
    password = uuid.uuid4().hex
    with psycopg.connect(audit_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(password)
            )
        )
    try:
        done = cli(audit_dsn, "init", "--writer", role, "--agency", "vss")
        assert done.returncode == 0, done.stderr
        writer_dsn = psycopg.conninfo.make_conninfo(audit_dsn, user=role, password=password)
        assert record(writer_dsn, "vss", [disclosure("vss", 1), disclosure("vss", 2)]) == [2]
        with psycopg.connect(writer_dsn, autocommit=True) as conn:
            for statement in (
                "DELETE FROM govsync_audit.disclosure",
                "UPDATE govsync_audit.disclosure SET purpose = 'x'",
            ):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)
        assert cli(audit_dsn, "verify").returncode == 0
    finally:
        with psycopg.connect(audit_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


# --- what chaining costs ---------------------------------------------------------------------


def test_measure_a_500_entry_batch_against_a_plain_copy(audit_dsn: str) -> None:
    """Prints the figures; asserts only what was written."""
    rounds, size = 7, 500
    with psycopg.connect(audit_dsn, autocommit=True) as conn:
        record(audit_dsn, "warmup", [disclosure("warmup", 1)])
        conn.execute(sql.SQL("CREATE TABLE plain (LIKE {} INCLUDING INDEXES)").format(ENTRIES))

    async def chained() -> list[float]:
        times = []
        async with await AuditTrail.open(audit_dsn, "vss") as trail:
            for r in range(rounds):
                batch = [disclosure("vss", r * size + n) for n in range(1, size + 1)]
                started = time.perf_counter()
                assert await trail.record(batch) == size
                times.append(time.perf_counter() - started)
        return times

    async def plain() -> list[float]:
        times = []
        copy_sql = sql.SQL("COPY plain ({}) FROM STDIN (FORMAT BINARY)").format(
            sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
        )
        async with await psycopg.AsyncConnection.connect(audit_dsn) as conn:
            for r in range(rounds):
                batch = [disclosure("plain", r * size + n) for n in range(1, size + 1)]
                # same rows, hashed beforehand: only the COPY is timed
                entries = extend(Head("plain", r * size), batch, datetime.now(UTC))
                started = time.perf_counter()
                async with conn.transaction(), conn.cursor().copy(copy_sql) as copy:
                    copy.set_types(list(COPY_TYPES))
                    for entry in entries:
                        await copy.write_row(row_of(entry))
                times.append(time.perf_counter() - started)
        return times

    with_chain, without = run(chained()), run(plain())
    ms = statistics.median(with_chain) * 1000, statistics.median(without) * 1000
    print(
        f"\naudit: 500-entry batch, median of {rounds}: chained record {ms[0]:.1f} ms, "
        f"plain COPY {ms[1]:.1f} ms"
    )
    with psycopg.connect(audit_dsn) as conn:
        walk = walk_chain(conn, "vss")
    assert walk.problem is None and walk.entries == rounds * size
