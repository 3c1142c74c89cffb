"""Replica tables follow their contract: a field added to a contract (and to an agency's
allow-list) becomes a column of that agency's replica at the processor's restart, and a field
whose type changed stops only the subscriptions that receive it, with the table, the column and
both types in the error, while another agency of the same worker keeps applying."""

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
from sync.stack.providers import StackProvider
from sync.stack.status import scrape
from tests.fixtures.pipeline import Pipeline

pytestmark = pytest.mark.integration

AGENCIES = ("vss", "gdt")
MANIFEST = """
version: 1
agencies:
  - {code: mps, name: Ministry of Public Security, level: central}
  - {code: vss, name: Vietnam Social Security, level: central}
  - {code: gdt, name: Tax authority, level: central}
sources:
  - {name: population, agency: mps, database: population, tables: [citizen]}
subscriptions:
  - agency: vss
    topic: population.citizen
    purpose: Keep identity data on insurance records current.
    legal_basis: {basis: public_duty, reference: Law on Social Insurance No. 41/2024/QH15.}
    fields: [personal_id, full_name, ethnicity, province_code, ward_code, updated_at%s]
    sensitive_fields:
      ethnicity: Law on Personal Data Protection No. 91/2025/QH15, for this test only.
  - agency: gdt
    topic: population.citizen
    purpose: Identify individual taxpayers.
    legal_basis: {basis: public_duty, reference: Law on Tax Administration No. 38/2019/QH14.}
    fields: [personal_id, full_name, province_code, updated_at]
"""
PHONE = {
    "name": "phone",
    "type": ["null", "string"],
    "default": None,
    "classification": "personal",
    "doc": "Contact telephone number; null when not given.",
}


def fields_of(agency: str, with_phone: bool = False) -> list[str]:
    if agency == "gdt":
        return ["personal_id", "full_name", "province_code", "updated_at"]
    base = ["personal_id", "full_name", "ethnicity", "province_code", "ward_code", "updated_at"]
    return [*base, "phone"] if with_phone else base


def rows(dsn: str, table: sql.Composable, names: list[str]) -> dict[str, tuple[Any, ...]]:
    query = sql.SQL("SELECT {} FROM {}").format(
        sql.SQL(", ").join(map(sql.Identifier, names)), table
    )
    try:
        with psycopg.connect(dsn) as conn:
            return {r[0]: tuple(r) for r in conn.execute(query)}
    except psycopg.errors.UndefinedTable:
        return {}


def converged(pipeline: Pipeline, dsn: str, names: list[str]) -> bool:
    pipeline.supervisor.poll()
    replica = rows(dsn, sql.Identifier("population", "citizen"), names)
    return replica == rows(pipeline.source_dsn, sql.Identifier("citizen"), names)


def edit_citizen_contract(root: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    path = root / "population" / "citizen.avsc"
    schema = json.loads(path.read_text())
    edit(schema)
    path.write_text(json.dumps(schema, ensure_ascii=False, indent=2))


def sample(url: str, name: str, **labels: str) -> float:
    return sum(v for lab, v in scrape(url).get(name, []) if labels.items() <= lab.items())


def test_a_replica_follows_a_field_added_and_a_type_change_stops_only_its_receivers(
    stack: StackProvider, pipeline_factory: Callable[..., Pipeline], tmp_path: Path
) -> None:
    pipeline = pipeline_factory(citizens=60)
    contracts = tmp_path / "contracts"
    shutil.copytree(default_schemas_dir(), contracts)
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(MANIFEST % "")
    replicas = {a: stack.create_database(f"{pipeline.name}_{a}") for a in AGENCIES}
    pattern = psycopg.conninfo.make_conninfo(replicas["vss"], dbname=f"{pipeline.name}_{{agency}}")
    worker = "processor-vss,gdt"

    def start_worker(schemas: Path) -> str:
        managed = pipeline.start_processor(
            "vss,gdt", pattern, manifest=str(manifest), schemas_dir=str(schemas)
        )
        assert managed.spec.metrics_url is not None
        return managed.spec.metrics_url

    pipeline.start_connector(schemas_dir=str(contracts))
    start_worker(contracts)
    for agency in AGENCIES:
        pipeline.wait_for(
            lambda a=agency: converged(pipeline, replicas[a], fields_of(a)),  # type: ignore[misc]
            f"{agency}'s replica to hold its projection",
            90,
        )

    # a reviewed change: the source gains a column (existing rows get its default), the contract
    # an optional field, and vss's allow-list takes it
    pipeline.supervisor.stop(worker)
    pipeline.supervisor.stop("connector-population")
    with pipeline.source() as conn:
        conn.execute("ALTER TABLE citizen ADD COLUMN phone text DEFAULT '0000'")
    edit_citizen_contract(contracts, lambda s: s["fields"].append(PHONE))
    manifest.write_text(MANIFEST % ", phone")
    pipeline.start_connector(schemas_dir=str(contracts))
    metrics = start_worker(contracts)
    with pipeline.source() as conn:
        changed = conn.execute(
            "UPDATE citizen SET phone = '0912' || right(personal_id, 6), full_name = full_name "
            "|| ' A' WHERE personal_id IN (SELECT personal_id FROM citizen ORDER BY personal_id "
            "LIMIT 7) RETURNING personal_id"
        ).fetchall()
    ids = {r[0] for r in changed}
    with_phone = fields_of("vss", with_phone=True)

    def changes_arrived() -> bool:
        replica = rows(replicas["vss"], sql.Identifier("population", "citizen"), with_phone)
        source = rows(pipeline.source_dsn, sql.Identifier("citizen"), with_phone)
        return all(replica.get(i) == source[i] for i in ids)

    pipeline.wait_for(changes_arrived, "the new column's values to reach vss's replica")
    pipeline.wait_for(lambda: converged(pipeline, replicas["gdt"], fields_of("gdt")), "gdt")
    assert "phone" not in columns(replicas["gdt"]), "gdt's allow-list does not take the field"
    assert columns(replicas["vss"])["phone"] == ("text", True)
    assert sample(metrics, "govsync_processor_replica_columns_added_total", agency="vss") == 1
    assert sample(metrics, "govsync_processor_replica_columns_added_total", agency="gdt") == 0
    log = (pipeline.logs / f"{worker}.log").read_text()
    assert "agency vss: replica table population.citizen: added column(s) phone" in log

    # rows no event touched since hold NULL: verify reports them, a snapshot refills them
    data_dir = pipeline.describe(replicas, manifest)
    env = {**os.environ, "GOVSYNC_SCHEMAS_DIR": str(contracts)}
    drift = govsync(env, "verify", "--data-dir", str(data_dir), "--json")
    assert drift.returncode == 1, drift.stdout + drift.stderr
    tables = {r["agency"]: r["tables"][0] for r in json.loads(drift.stdout)}
    assert tables["vss"]["different"] == 60 - 7
    assert tables["gdt"]["different"] == 0
    snapshot = govsync(
        env, "snapshot", "citizen", "--source", "population", "--slot", pipeline.slot,
        "--data-dir", str(data_dir), "--timeout", "120",
    )  # fmt: skip
    assert snapshot.returncode == 0, snapshot.stdout + snapshot.stderr
    pipeline.wait_for(lambda: converged(pipeline, replicas["vss"], with_phone), "the refill", 90)
    assert govsync(env, "verify", "--data-dir", str(data_dir)).returncode == 0

    # an incompatible change: a field vss receives changes type in the processor's contract
    pipeline.supervisor.stop(worker)
    changed_type = tmp_path / "contracts-changed-type"
    shutil.copytree(contracts, changed_type)

    def ethnicity_as_bytes(schema: dict[str, Any]) -> None:
        field = next(f for f in schema["fields"] if f["name"] == "ethnicity")
        field["type"] = ["null", "bytes"]  # string is promotable to bytes: events still decode

    edit_citizen_contract(changed_type, ethnicity_as_bytes)
    metrics = start_worker(changed_type)
    pipeline.wait_for(
        lambda: (
            sample(metrics, "govsync_processor_subscription_state", agency="vss", state="stopped")
            == 1
        ),
        "vss's subscription to stop",
    )
    log = (pipeline.logs / f"{worker}.log").read_text()
    stopped = next(line for line in log.splitlines() if "subscription stopped" in line)
    assert (
        "agency vss: replica table population.citizen: column 'ethnicity' found text, "
        "the contract expects bytea: its type changed" in stopped
    )
    assert sample(metrics, "govsync_processor_subscription_state", agency="gdt", state="running")
    with pipeline.source() as conn:
        conn.execute("UPDATE citizen SET full_name = full_name || ' B'")
    pipeline.wait_for(
        lambda: converged(pipeline, replicas["gdt"], fields_of("gdt")), "gdt to keep applying"
    )
    assert columns(replicas["vss"])["ethnicity"] == ("text", True), "nothing altered"
    assert not converged(pipeline, replicas["vss"], with_phone)
    assert sample(metrics, "govsync_processor_events_dead_lettered_total") == 0


def columns(dsn: str) -> dict[str, tuple[str, bool]]:
    with psycopg.connect(dsn) as conn:
        return {
            r[0]: (r[1], r[2] == "YES")
            for r in conn.execute(
                "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
                "WHERE table_schema = 'population' AND table_name = 'citizen'"
            )
        }


def govsync(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sync.cli", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
