"""Remembered deletes keep a keyed hash of the deleted key, never the key, and still keep a
late, older event from bringing a deleted row back; replicas of the old layout are hashed."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime

import psycopg
import pytest
from psycopg import sql

from sync.contracts import load_contracts
from sync.replica import Applier, DeletedKeys, Delivery, ReplicaTable
from sync.stack.providers import StackProvider
from sync.types import ChangeEvent, Lsn, Op, Position, TableRef

pytestmark = pytest.mark.integration

TOPIC = "population.citizen"
TABLE = ReplicaTable.for_contract(load_contracts()[TOPIC])
KEYS = DeletedKeys(b"r" * 32)
PERSON = "001090000042"


def change(op: Op, lsn: int, personal_id: str = PERSON) -> ChangeEvent:
    position = Position(Lsn(lsn), 1)
    row = {
        "personal_id": personal_id,
        "full_name": f"Nguyễn Văn An {lsn}",
        "date_of_birth": date(1990, 5, 1),
        "sex": "nam",
        "ethnicity": "Kinh",
        "province_code": "01",
        "district_code": "001",
        "ward_code": "00001",
        "updated_at": datetime(2025, 7, 1, tzinfo=UTC),
    }
    return ChangeEvent(
        op=op,
        table=TableRef("public", "citizen"),
        key={"personal_id": personal_id},
        before=None,
        after=row if op in (Op.CREATE, Op.UPDATE) else None,
        position=position,
        txid=lsn,
        commit_time=datetime(2025, 7, 1, tzinfo=UTC),
        event_id=ChangeEvent.make_event_id("population", position),
        source="population",
    )


def apply(dsn: str, *batches: list[ChangeEvent]) -> None:
    async def run() -> None:
        async with await psycopg.AsyncConnection.connect(dsn) as conn:
            applier = Applier(conn, {TOPIC: TABLE}, "g", deleted_keys=KEYS)
            await applier.prepare()
            for offset, batch in enumerate(batches):
                await applier.apply([Delivery(e, TOPIC, 0, offset) for e in batch])

    asyncio.run(run())


def held(dsn: str) -> dict[str, str]:
    with psycopg.connect(dsn) as conn:
        return dict(conn.execute("SELECT personal_id, full_name FROM population.citizen"))


def remembered(dsn: str) -> list[tuple[str, bytes, str]]:
    """Each remembered delete: the whole row as text, its key hash and its position."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT d::text, _key_hash, _source_lsn::text "
            "FROM govsync_state.population__citizen__deleted d"
        ).fetchall()
    return [(str(text), bytes(key_hash), str(lsn)) for text, key_hash, lsn in rows]


def test_a_delete_is_remembered_by_a_keyed_hash_and_still_guards_the_row(
    stack: StackProvider,
) -> None:
    dsn = stack.create_database(f"deletes_{uuid.uuid4().hex[:6]}")
    apply(dsn, [change(Op.CREATE, 100)], [change(Op.DELETE, 200)])
    rows = remembered(dsn)
    assert len(rows) == 1
    text, key_hash, lsn = rows[0]
    assert PERSON not in text, "no raw key in the remembered delete"
    assert key_hash == KEYS.digest("population.citizen", [PERSON])
    assert lsn == str(Lsn(200))

    apply(dsn, [change(Op.UPDATE, 150)])  # late and older than the delete
    assert PERSON not in held(dsn), "a late, older upsert does not resurrect the row"

    apply(dsn, [change(Op.CREATE, 300)])
    assert held(dsn) == {PERSON: "Nguyễn Văn An 300"}, "a newer upsert wins"
    assert remembered(dsn) == [], "and the delete it supersedes is forgotten"


def test_a_replica_of_the_old_layout_has_its_raw_keys_hashed_at_start(
    stack: StackProvider,
) -> None:
    dsn = stack.create_database(f"deletes_old_{uuid.uuid4().hex[:6]}")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA govsync_state")
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (personal_id text NOT NULL, _source_lsn pg_lsn NOT NULL, "
                "_source_index integer NOT NULL, deleted_at timestamptz NOT NULL DEFAULT now(), "
                "PRIMARY KEY (personal_id))"
            ).format(TABLE.deleted)
        )
        conn.execute(
            sql.SQL("INSERT INTO {} VALUES (%s, %s, 1), (%s, %s, 1)").format(TABLE.deleted),
            (PERSON, str(Lsn(200)), "001090000043", str(Lsn(210))),
        )

    apply(dsn, [change(Op.UPDATE, 150)])  # prepare hashes, then the older upsert is refused

    rows = remembered(dsn)
    assert sorted(r[1] for r in rows) == sorted(
        KEYS.digest("population.citizen", [p]) for p in (PERSON, "001090000043")
    )
    assert not any(PERSON in r[0] or "001090000043" in r[0] for r in rows)
    assert PERSON not in held(dsn), "the hashed delete still guards the row"
    with psycopg.connect(dsn) as conn:
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'govsync_state'"
            )
        }
    assert "population__citizen__deleted_raw" not in tables, "the raw table is dropped"
