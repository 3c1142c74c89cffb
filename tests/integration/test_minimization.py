"""Each agency receives exactly what its subscription allows: allowed fields only,
pseudonyms instead of identities where the manifest says so, its own residents only, and a
citizen who moves leaves one province's replica for the other's."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from sync.policy import FEDERATION_FILE
from sync.replica import deletes_key_name
from sync.stack.providers import StackProvider
from tests.fixtures.pipeline import Pipeline

pytestmark = pytest.mark.integration

BOOKKEEPING = {"_source_lsn", "_source_index", "_source_commit_time"}


def columns(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        return {
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = 'population' AND table_name = 'citizen'"
            )
        }


def count(dsn: str, where: str | sql.Composable = "true") -> int:
    condition = sql.SQL(where) if isinstance(where, str) else where
    query = sql.SQL("SELECT count(*) FROM population.citizen WHERE {}").format(condition)
    with psycopg.connect(dsn) as conn:
        try:
            row = conn.execute(query).fetchone()
        except psycopg.errors.UndefinedTable:
            return -1
    return int(row[0]) if row else 0


def verify(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sync.cli", "verify", "--data-dir", str(data_dir), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )


def audit_cli(*args: str, dsn: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sync.cli", "audit", *args, "--dsn", dsn],
        capture_output=True,
        text=True,
        timeout=120,
    )


def every_text_value(dsn: str) -> str:
    """All text the agency's database holds, in every table, as one string to search."""
    with psycopg.connect(dsn) as conn:
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema "
            "NOT IN ('pg_catalog', 'information_schema') AND table_type = 'BASE TABLE'"
        ).fetchall()
        dump = []
        for schema, table in tables:
            rows = conn.execute(
                sql.SQL("SELECT t::text FROM {} t").format(sql.Identifier(schema, table))
            ).fetchall()
            dump += [r[0] for r in rows]
    return "\n".join(dump)


def test_agencies_receive_only_what_their_subscriptions_allow(
    stack: StackProvider, pipeline_factory: Callable[..., Pipeline], tmp_path: Path
) -> None:
    pipeline = pipeline_factory(citizens=400)
    keys = tmp_path / "hash_keys.json"
    secrets = {"gso_pseudonym": "k" * 40}
    secrets |= {deletes_key_name(a): a * 32 for a in ("gso", "hanoi", "hcmc")}
    keys.write_text(json.dumps(secrets))
    replicas = {a: stack.create_database(f"{pipeline.name}_{a}") for a in ("gso", "hanoi", "hcmc")}
    audit = stack.create_database(f"{pipeline.name}_audit")
    pipeline.start_connector()
    for agency, dsn in replicas.items():
        pipeline.start_processor(
            agency,
            dsn,
            manifest=str(FEDERATION_FILE),
            hash_keys_file=str(keys),
            audit_dsn=audit,
        )
    source = pipeline.source_rows()
    in_01 = sum(1 for r in source.values() if r[5] == "01")
    in_79 = sum(1 for r in source.values() if r[5] == "79")
    pipeline.wait_for(
        lambda: (
            (count(replicas["gso"]), count(replicas["hanoi"]), count(replicas["hcmc"]))
            == (400, in_01, in_79)
        ),
        "every agency's replica to hold its share",
        90,
    )

    assert columns(replicas["hanoi"]) - BOOKKEEPING == {
        "personal_id",
        "full_name",
        "date_of_birth",
        "sex",
        "province_code",
        "district_code",
        "ward_code",
        "updated_at",
    }, "no ethnicity (sensitive) for the province"
    assert columns(replicas["gso"]) - BOOKKEEPING == {
        "personal_id",
        "date_of_birth",
        "sex",
        "province_code",
        "district_code",
    }
    assert count(replicas["hanoi"], "province_code <> '01'") == 0
    held_by_gso = every_text_value(replicas["gso"])
    for personal_id, row in source.items():
        assert personal_id not in held_by_gso and row[1] not in held_by_gso
    assert count(replicas["gso"], "personal_id !~ '^[0-9a-f]{64}$'") == 0, "pseudonyms only"
    assert count(replicas["gso"], "date_of_birth NOT BETWEEN 1900 AND 2030") == 0, "years only"
    gso_log = (pipeline.logs / "processor-gso.log").read_text()
    assert not any(pid in gso_log for pid in source)
    assert not re.search(r"Nguyễn|Trần|Lê Văn", gso_log)

    mover = next(pid for pid, row in source.items() if row[5] == "01")
    with pipeline.source() as conn:
        conn.execute(
            "UPDATE citizen SET province_code = '79', district_code = '760' WHERE personal_id = %s",
            (mover,),
        )
    pipeline.wait_for(
        lambda: (count(replicas["hanoi"]), count(replicas["hcmc"])) == (in_01 - 1, in_79 + 1),
        "the citizen who moved to leave Hanoi's replica and reach Ho Chi Minh City's",
    )
    is_mover = sql.SQL("personal_id = {}").format(sql.Literal(mover))
    assert count(replicas["hanoi"], is_mover) == 0
    assert count(replicas["hcmc"], is_mover) == 1

    # the audit tells the citizen who received what about them, and why; the statistics
    # office received a pseudonym, but the operator's audit names the person
    def disclosed() -> list[dict[str, object]]:
        shown = audit_cli("citizen", mover, "--json", dsn=audit)
        assert shown.returncode == 0, shown.stderr
        return list(json.loads(shown.stdout))

    def recorded() -> bool:
        ops = [(d["agency"], d["op"]) for d in disclosed()]
        return (
            {("hanoi", "r"), ("hanoi", "d"), ("gso", "r")} <= set(ops)
            and sum(1 for agency, _ in ops if agency == "gso") == 2
            and sum(1 for agency, _ in ops if agency == "hcmc") == 1
        )

    pipeline.wait_for(recorded, "the move to be on the audit record")
    for entry in disclosed():
        assert entry["purpose"] and entry["legal_basis"]
        if entry["agency"] == "gso":
            assert "full_name" not in entry["fields"]
    intact = audit_cli("verify", dsn=audit)
    assert intact.returncode == 0, intact.stdout + intact.stderr

    # verify compares each replica with the projection of its source
    data_dir = pipeline.describe(replicas, FEDERATION_FILE, keys)
    clean = verify(data_dir)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    reports = {r["agency"]: r["tables"][0] for r in json.loads(clean.stdout)}
    assert reports["hanoi"]["source_rows"] == in_01 - 1
    assert reports["gso"]["source_rows"] == reports["gso"]["replica_rows"] == 400
    with psycopg.connect(replicas["gso"], autocommit=True) as conn:
        conn.execute(
            "UPDATE population.citizen SET date_of_birth = 1800 WHERE personal_id = "
            "(SELECT min(personal_id) FROM population.citizen)"
        )
    drift = verify(data_dir)
    assert drift.returncode == 1
    gso = next(r for r in json.loads(drift.stdout) if r["agency"] == "gso")
    assert gso["tables"][0]["different"] == 1
