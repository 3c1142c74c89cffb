"""``govsync manifest preview`` on demo source databases of its own, described by a stack.json
written here with the demo manifest: the statistics office sees no names and only hashed
personal ids, Hanoi sees only province 01, and a source missing from the stack is named."""

from __future__ import annotations

import json
import re
import secrets
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result
from psycopg import sql

from sync.cli.main import cli
from sync.contracts import load_contracts
from sync.policy import FEDERATION_FILE, load_manifest
from sync.stack.demo import load_demo, sources
from sync.stack.description import DatabaseEntry, StackDescription
from sync.stack.providers import StackProvider

pytestmark = pytest.mark.integration

SCALE = 200
SAMPLE = 25
HEX64 = re.compile(r"[0-9a-f]{64}")


@pytest.fixture(scope="module")
def source_dsns(stack: StackProvider) -> dict[str, str]:
    """Source name -> DSN of a demo source database made for this module."""
    contracts = list(load_contracts().values())
    run = uuid.uuid4().hex[:6]
    dsns = {}
    for source in sources():
        dsn = stack.create_database(f"preview_{source}_{run}")
        with psycopg.connect(dsn, autocommit=True) as conn:
            load_demo(conn, [c for c in contracts if c.domain == source], SCALE)
        dsns[source] = dsn
    return dsns


@pytest.fixture(scope="module")
def data_dir(
    stack: StackProvider, source_dsns: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    directory = tmp_path_factory.mktemp("preview")
    write_stack(stack, directory, source_dsns)
    return directory


@pytest.fixture(scope="module")
def people(source_dsns: dict[str, str]) -> dict[str, set[str]]:
    """Every personal id and full name in the population and insurance sources."""
    found: dict[str, set[str]] = {"ids": set(), "names": set()}
    for source, table in (("population", "citizen"), ("insurance", "insured_person")):
        with psycopg.connect(source_dsns[source]) as conn:
            query = sql.SQL("SELECT personal_id, full_name FROM {}").format(sql.Identifier(table))
            for personal_id, name in conn.execute(query):
                found["ids"].add(personal_id)
                found["names"].add(name)
    assert len(found["ids"]) >= SCALE
    return found


def write_stack(stack: StackProvider, directory: Path, dsns: dict[str, str]) -> None:
    manifest = load_manifest(FEDERATION_FILE, load_contracts())
    names = sorted(set().union(*(manifest.hash_keys(a.code) for a in manifest.agencies)))
    keys = directory / "hash_keys.json"
    keys.write_text(json.dumps({n: secrets.token_hex(32) for n in names}), encoding="utf-8")
    StackDescription(
        data_dir=str(directory),
        bootstrap=stack.bootstrap,
        registry_url=stack.registry_url,
        postgres_port=0,
        databases=[DatabaseEntry(s, "source", dsn, s) for s, dsn in dsns.items()],
        manifest=str(FEDERATION_FILE),
        hash_keys_file=str(keys),
    ).write(directory)


def preview(data_dir: Path, agency: str, *args: str, sample: int = SAMPLE) -> Result:
    return CliRunner().invoke(
        cli,
        [
            "manifest",
            "preview",
            agency,
            "--data-dir",
            str(data_dir),
            "--sample",
            str(sample),
            *args,
        ],
        env={"COLUMNS": "300"},
        catch_exceptions=False,
    )


def subscriptions(result: Result) -> dict[str, dict[str, Any]]:
    assert result.exit_code == 0, result.output
    return {s["topic"]: s for s in json.loads(result.output)["subscriptions"]}


def test_the_statistics_office_sees_no_names_and_no_personal_ids(
    data_dir: Path, people: dict[str, set[str]]
) -> None:
    received = subscriptions(preview(data_dir, "gso", "--json"))
    assert set(received) == {"population.citizen", "insurance.insured_person"}
    citizen = received["population.citizen"]
    assert [f["name"] for f in citizen["fields"]] == [
        "personal_id",
        "date_of_birth",
        "sex",
        "province_code",
        "district_code",
    ]
    assert "HMAC-SHA256" in citizen["fields"][0]["transform"]
    for item in received.values():
        assert len(item["rows"]) == SAMPLE and not item["problem"]
        for row in item["rows"]:
            assert HEX64.fullmatch(row["personal_id"])
            assert row["personal_id"] not in people["ids"]
            assert isinstance(row["date_of_birth"], int)
            assert "full_name" not in row

    shown = preview(data_dir, "gso")
    assert shown.exit_code == 0, shown.output
    assert "gso receives population.citizen" in shown.output
    assert citizen["rows"][0]["personal_id"] in shown.output
    for personal_id in people["ids"]:
        assert personal_id not in shown.output
    for name in people["names"]:
        assert name not in shown.output


def test_hanoi_sees_only_province_01(data_dir: Path, source_dsns: dict[str, str]) -> None:
    """Every row of province 01 and no other: the sample is larger than the tables."""
    received = subscriptions(preview(data_dir, "hanoi", "--json", sample=1000))
    tables = {
        "population.citizen": ("citizen", "personal_id"),
        "insurance.insured_person": ("insured_person", "insurance_number"),
        "land.land_parcel": ("land_parcel", "parcel_id"),
    }
    assert set(tables) <= set(received)
    for topic, (table, key) in tables.items():
        item = received[topic]
        assert item["row_filter"] == "province_code == '01'", topic
        assert {row["province_code"] for row in item["rows"]} == {"01"}, topic
        in_hanoi, everywhere = source_keys(source_dsns[topic.split(".")[0]], table, key)
        assert [row[key] for row in item["rows"]] == sorted(in_hanoi), topic
        assert in_hanoi and in_hanoi < everywhere, topic


def source_keys(dsn: str, table: str, key: str) -> tuple[set[str], set[str]]:
    """(keys of the rows in province 01, keys of every row) of a source table."""
    query = sql.SQL("SELECT {}, province_code FROM {}").format(
        sql.Identifier(key), sql.Identifier(table)
    )
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(query).fetchall()
    return {k for k, province in rows if province == "01"}, {k for k, _ in rows}


def test_a_source_missing_from_the_stack_is_named(
    stack: StackProvider, source_dsns: dict[str, str], tmp_path: Path
) -> None:
    write_stack(stack, tmp_path, {s: d for s, d in source_dsns.items() if s != "land"})
    result = CliRunner().invoke(
        cli, ["manifest", "preview", "hanoi", "--data-dir", str(tmp_path), "--json"]
    )
    assert result.exit_code == 1
    received = {s["topic"]: s for s in json.loads(result.output)["subscriptions"]}
    assert received["land.land_parcel"]["problem"] == (
        "stack.json has no source database for agency 'land'"
    )
    assert received["land.land_parcel"]["rows"] == []
    assert received["population.citizen"]["rows"] and not received["population.citizen"]["problem"]
    unknown = CliRunner().invoke(
        cli, ["manifest", "preview", "nobody", "--data-dir", str(tmp_path)]
    )
    assert unknown.exit_code == 2 and "agency 'nobody' subscribes to nothing" in unknown.output
