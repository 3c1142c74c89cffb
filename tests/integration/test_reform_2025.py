"""The 2025 administrative reform, as docs/reform-2025.md walks through it: a real contract
change and a real data change. The citizen contract's district_code becomes optional (the
reviewer sees FULL compatibility refused, BACKWARD accepted, and the agencies that receive the
field); processors take the new contract first, then the connector; the source rewrites the
codes of Binh Duong (74) and Ba Ria-Vung Tau (77) to Ho Chi Minh City (79) and stops filling
districts; the merged provinces' residents move into the city's replica and leave Binh Duong's
through the filter-move path, and verify passes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from sync.contracts import default_schemas_dir
from sync.replica import deletes_key_name
from sync.stack.providers import StackProvider
from tests.fixtures.pipeline import Pipeline

pytestmark = pytest.mark.integration

AGENCIES = ("vss", "hcmc", "bd")
FIELDS = ["personal_id", "full_name", "province_code", "district_code", "updated_at"]
MANIFEST = """
version: 1
agencies:
  - {code: mps, name: Ministry of Public Security, level: central}
  - {code: vss, name: Vietnam Social Security, level: central}
  - {code: hcmc, name: Ho Chi Minh City People's Committee, level: provincial, province_code: "79"}
  - {code: bd, name: Binh Duong People's Committee (until 2025-06-30), level: provincial,
     province_code: "74"}
sources:
  - {name: population, agency: mps, database: population, tables: [citizen]}
subscriptions:
  - agency: vss
    topic: population.citizen
    purpose: Keep identity data on insurance records current.
    legal_basis: {basis: public_duty, reference: Law on Social Insurance No. 41/2024/QH15.}
    fields: [personal_id, full_name, province_code, district_code, updated_at]
  - agency: hcmc
    topic: population.citizen
    purpose: Administration of the city's residents.
    legal_basis: {basis: public_duty, reference: Law on Residence No. 68/2020/QH14.}
    fields: [personal_id, full_name, province_code, district_code, updated_at]
    row_filter: province_code == '79'
  - agency: bd
    topic: population.citizen
    purpose: Administration of the province's residents.
    legal_basis: {basis: public_duty, reference: Law on Residence No. 68/2020/QH14.}
    fields: [personal_id, full_name, province_code, district_code, updated_at]
    row_filter: province_code == '74'
"""


def govsync(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sync.cli", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )


def rows(dsn: str, table: sql.Composable, where: str = "true") -> dict[str, tuple[Any, ...]]:
    query = sql.SQL("SELECT {} FROM {} WHERE {}").format(
        sql.SQL(", ").join(map(sql.Identifier, FIELDS)), table, sql.SQL(where)
    )
    try:
        with psycopg.connect(dsn) as conn:
            return {r[0]: tuple(r) for r in conn.execute(query)}
    except psycopg.errors.UndefinedTable:
        return {}


def holds_its_share(pipeline: Pipeline, replicas: dict[str, str]) -> bool:
    pipeline.supervisor.poll()
    source = sql.Identifier("citizen")
    replica = sql.Identifier("population", "citizen")
    wanted = {
        "vss": rows(pipeline.source_dsn, source),
        "hcmc": rows(pipeline.source_dsn, source, "province_code = '79'"),
        "bd": rows(pipeline.source_dsn, source, "province_code = '74'"),
    }
    return all(rows(replicas[a], replica) == wanted[a] for a in AGENCIES)


def district_optional(root: Path) -> None:
    path = root / "population" / "citizen.avsc"
    schema = json.loads(path.read_text())
    schema["govsync.compatibility"] = "BACKWARD_TRANSITIVE"
    field = next(f for f in schema["fields"] if f["name"] == "district_code")
    field["type"] = ["null", "string"]
    field["default"] = None
    field["doc"] = (
        "The district (quận/huyện) code, until 2025-06-30. Districts were abolished on "
        "2025-07-01: records changed since are null."
    )
    path.write_text(json.dumps(schema, ensure_ascii=False, indent=2))


def test_the_2025_reform_moves_residents_and_empties_districts(
    stack: StackProvider, pipeline_factory: Callable[..., Pipeline], tmp_path: Path
) -> None:
    pipeline = pipeline_factory(citizens=60)
    contracts = tmp_path / "contracts"
    shutil.copytree(default_schemas_dir(), contracts)
    manifest = tmp_path / "federation.yaml"
    manifest.write_text(MANIFEST)
    keys = tmp_path / "hash_keys.json"
    keys.write_text(json.dumps({deletes_key_name(a): a * 32 for a in AGENCIES}))
    replicas = {a: stack.create_database(f"{pipeline.name}_{a}") for a in AGENCIES}
    pattern = psycopg.conninfo.make_conninfo(replicas["vss"], dbname=f"{pipeline.name}_{{agency}}")
    worker = "processor-" + ",".join(AGENCIES)
    env = {**os.environ, "GOVSYNC_SCHEMAS_DIR": str(contracts)}
    registry = (
        "--registry-url", stack.registry_url, "--schemas-dir", str(contracts),
        "--topic-prefix", pipeline.kafka.topic_prefix,
    )  # fmt: skip

    # before the reform: residents of Binh Duong and of Ba Ria-Vung Tau, under their own codes
    with pipeline.source() as conn:
        ids = [r[0] for r in conn.execute("SELECT personal_id FROM citizen ORDER BY personal_id")]
        conn.execute(
            "UPDATE citizen SET province_code = '74', district_code = '718' "
            "WHERE personal_id = ANY(%s)",
            (ids[:8],),
        )
        conn.execute(
            "UPDATE citizen SET province_code = '77', district_code = '747' "
            "WHERE personal_id = ANY(%s)",
            (ids[8:14],),
        )

    def start_worker() -> None:
        pipeline.start_processor(
            ",".join(AGENCIES),
            pattern,
            manifest=str(manifest),
            schemas_dir=str(contracts),
            hash_keys_file=str(keys),
        )

    pipeline.start_connector(schemas_dir=str(contracts))
    start_worker()
    pipeline.wait_for(lambda: holds_its_share(pipeline, replicas), "every replica's share", 90)
    assert len(rows(replicas["bd"], sql.Identifier("population", "citizen"))) == 8

    # the reviewed change: what it breaks, and whom it reaches
    district_optional(contracts)
    reviewed = govsync(
        env, "schemas", "diff", f"{pipeline.topic}-value", *registry,
        "--federation", str(manifest), "--json",
    )  # fmt: skip
    assert reviewed.returncode == 0, reviewed.stderr
    review = json.loads(reviewed.stdout)
    verdicts = {v["level"]: v["compatible"] for v in review["verdicts"]}
    assert verdicts["FULL_TRANSITIVE"] is False and verdicts["FORWARD"] is False
    assert verdicts["BACKWARD_TRANSITIVE"] is True
    (district,) = review["reach"]
    assert district["field"] == "district_code"
    assert {r["agency"] for r in district["receivers"]} == set(AGENCIES)

    # readers first: the processors take the optional field, then the contract is registered
    # and the connector writes with it
    pipeline.supervisor.stop(worker)
    start_worker()
    registered = govsync(env, "schemas", "register", *registry)
    assert registered.returncode == 0, registered.stdout + registered.stderr
    pipeline.supervisor.stop("connector-population")
    with pipeline.source() as conn:
        conn.execute("ALTER TABLE citizen ALTER COLUMN district_code DROP NOT NULL")
    pipeline.start_connector(schemas_dir=str(contracts))

    # 2025-07-01: the merged provinces take Ho Chi Minh City's code; districts are no more
    with pipeline.source() as conn, conn.transaction():
        conn.execute("UPDATE citizen SET province_code = '79' WHERE province_code IN ('74', '77')")
        conn.execute("UPDATE citizen SET district_code = NULL, updated_at = now()")
    pipeline.wait_for(
        lambda: holds_its_share(pipeline, replicas), "the residents to move into the city", 90
    )
    city = rows(replicas["hcmc"], sql.Identifier("population", "citizen"))
    assert set(ids[:14]) <= set(city), "Binh Duong's and Ba Ria-Vung Tau's residents moved"
    assert rows(replicas["bd"], sql.Identifier("population", "citizen")) == {}
    assert {r[3] for r in city.values()} == {None}, "no district any more"

    data_dir = pipeline.describe(replicas, manifest, keys)
    verified = govsync(env, "verify", "--data-dir", str(data_dir), "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    reports = {r["agency"]: r["tables"][0] for r in json.loads(verified.stdout)}
    assert reports["hcmc"]["replica_rows"] == len(city)
    assert reports["bd"]["replica_rows"] == 0
