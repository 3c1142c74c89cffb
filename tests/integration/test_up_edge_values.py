"""On ``govsync up``: a citizen committed with a date or time beyond Python's range, followed by
an ordinary one, leaves the population connector running (no restart), and the ordinary citizen
reaches every entitled replica within 10 s; the edge citizen itself reaches them as its policy
projection, or -- where its contract cannot carry the value -- is dead-lettered alone."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from sync.contracts import load_contracts
from sync.policy import Projection, load_manifest, read_hash_keys
from sync.stack.description import StackDescription
from sync.stack.ports import wait_until
from sync.temporal import register_pg_adapters
from tests.integration.test_up import abort, described, start_up, stop

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOPIC = "population.citizen"
# (date_of_birth, updated_at, carried by the contract)
EDGES = [
    ("infinity", "2026-12-02 08:00:00+07", True),
    ("-infinity", "2026-12-02 08:00:00+07", True),
    ("0044-03-15 BC", "infinity", True),
    ("10000-01-01", "-infinity", True),
    ("1990-02-28", "0044-03-15 10:00:00+00 BC", True),
    ("1990-02-28", "294276-12-31 23:59:59+00", False),  # past an Avro long: dead-lettered
]
ARRIVAL_SECONDS = 30.0  # a feed an edge value stopped never delivers the next citizen
GOVSYNC = [sys.executable, "-m", "sync.cli"]


def citizen(personal_id: str, born: str, updated: str) -> dict[str, Any]:
    return {
        "personal_id": personal_id,
        "full_name": "Nguyễn Thị Biên",
        "date_of_birth": born,
        "sex": "nu",
        "ethnicity": None,
        "province_code": "01",
        "district_code": "001",
        "ward_code": "00001",
        "updated_at": updated,
    }


def insert(dsn: str, row: dict[str, Any]) -> None:
    query = sql.SQL("INSERT INTO citizen ({}) VALUES ({})").format(
        sql.SQL(", ").join(map(sql.Identifier, row)),
        sql.SQL(", ").join([sql.Placeholder()] * len(row)),
    )
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(query, list(row.values()))


class Entitled:
    """Where a source citizen must be found: each subscriber's replica, under the key its
    projection gives it (a pseudonym for some), or nowhere when its filter leaves it out."""

    def __init__(self, stack: StackDescription) -> None:
        assert stack.manifest is not None
        contracts = load_contracts()
        secrets = read_hash_keys(stack.hash_keys_file)
        manifest = load_manifest(Path(stack.manifest), contracts)
        self.stack = stack
        self.projections = {
            s.agency: Projection(contracts[TOPIC], s, secrets)
            for s in manifest.subscriptions
            if s.topic == TOPIC
        }
        self.source = stack.database("population", "source").dsn

    def where(self, personal_id: str) -> tuple[list[str], list[str]]:
        """(the agencies entitled to the citizen, those whose replica lacks it as projected)."""
        with psycopg.connect(self.source) as conn:
            register_pg_adapters(conn)
            cursor = conn.execute("SELECT * FROM citizen WHERE personal_id = %s", (personal_id,))
            names = [d.name for d in cursor.description or ()]
            source_row = dict(zip(names, cursor.fetchone() or (), strict=True))
        entitled, missing = [], []
        for agency, projection in sorted(self.projections.items()):
            projected = projection.row(source_row)
            if projected is None:
                continue
            entitled.append(agency)
            replica = self.stack.database(agency, "replica").dsn
            with psycopg.connect(replica) as conn:
                register_pg_adapters(conn)
                found = conn.execute(
                    "SELECT date_of_birth FROM population.citizen WHERE personal_id = %s",
                    (projected["personal_id"],),
                ).fetchone()
            if found is None or found[0] != projected["date_of_birth"]:
                missing.append(agency)
        return entitled, missing

    def missing(self, personal_id: str) -> list[str]:
        return self.where(personal_id)[1]


def test_edge_values_on_govsync_up_never_stop_the_feed(server_dir: Path) -> None:
    data_dir = server_dir / "edges"
    up = start_up(data_dir, citizens=50)
    try:
        stack = described(data_dir)
        entitled = Entitled(stack)
        assert len(entitled.projections) >= 4
        source = entitled.source
        connector = stack.process("connector-population")
        for n, (born, updated, carried) in enumerate(EDGES):
            edge_id, after_id = f"0019{n:08d}", f"0018{n:08d}"
            insert(source, citizen(edge_id, born, updated))
            started = time.monotonic()
            insert(source, citizen(after_id, "1991-05-01", "2026-12-02 09:00:00+07"))
            wait_until(
                lambda a=after_id: entitled.missing(a) == [],
                ARRIVAL_SECONDS,
                f"the citizen after date_of_birth={born}, updated_at={updated}",
            )
            took = time.monotonic() - started
            print(f"{born} / {updated}: the next citizen in every replica after {took:.1f} s")
            if carried:
                wait_until(lambda e=edge_id: entitled.missing(e) == [], 10, f"{born} / {updated}")
            else:  # dead-lettered: in no replica, and the feed went on without it
                receivers, lacking = entitled.where(edge_id)
                assert receivers and lacking == receivers
        now = StackDescription.read(data_dir).process("connector-population")
        assert (now.pid, now.restarts) == (connector.pid, 0), "the connector never restarted"
        # every disclosure was written by the agency's own role, signed by its processor, and
        # passes the checkpoints published to the broker
        audited = subprocess.run(
            [
                *GOVSYNC,
                "audit",
                "verify",
                "--data-dir",
                str(data_dir),
                "--trusted-keys",
                str(data_dir / "audit" / "trusted_keys.pem"),
                "--bootstrap",
                stack.bootstrap,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert audited.returncode == 0, audited.stdout + audited.stderr
        assert "NOT checked" not in audited.stdout
        pids = [p.pid for p in StackDescription.read(data_dir).processes]
    except BaseException:
        abort(up)
        raise
    stop(up, pids)
