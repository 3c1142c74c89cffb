"""``govsync schemas scaffold`` on a real PostgreSQL table with many column types: the contracts
it writes, lint refusing their placeholders until they are filled, and a row of the table
round-tripping through the contract's EventCodec as capture would carry it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result
from psycopg import sql
from psycopg.types.string import TextLoader

from sync.cli.main import cli
from sync.contracts import EventCodec, load_contract
from sync.contracts.attributes import SUBJECT_ATTRIBUTE, is_placeholder
from sync.errors import DecodeError
from sync.stack.description import DatabaseEntry, StackDescription
from sync.stack.providers import StackProvider
from sync.temporal import register_pg_adapters
from sync.types import ChangeEvent, Lsn, Op, Position, TableRef
from tests.fixtures.scaffolded import fill_placeholders

pytestmark = pytest.mark.integration

DDL = """
CREATE TABLE civil_registration (
    registration_id bigint PRIMARY KEY,
    personal_id varchar(12) NOT NULL,
    full_name text NOT NULL,
    tax_code char(10),
    date_of_birth date NOT NULL,
    registered_at timestamptz NOT NULL,
    recorded_at timestamp,
    opens_at time,
    fee_vnd numeric(12,2),
    height_m real,
    weight_kg double precision,
    household_size smallint,
    children integer,
    verified boolean NOT NULL,
    photo bytea,
    request_uuid uuid,
    aliases text[],
    scores integer[],
    details jsonb,
    province_code char(2) NOT NULL,
    waiting interval
);
COMMENT ON TABLE civil_registration IS 'Births registered by the commune';
INSERT INTO civil_registration VALUES
    (1, '001099012345', 'Nguyễn Thị Ánh Tuyết', '8012345678', '1990-02-28',
     '2024-05-06 07:08:09.123456+07', '2024-05-06 07:08:09.5', '07:30:00.25', 123456789.50,
     1.5, 61.25, 4, 2, true, '\\x00ff10', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
     '{"Tuyết", NULL}', '{1, NULL, 3}', '{"ward": "00001"}', '01', '2 days'),
    (2, '079201000001', 'Trần Văn Bình', NULL, '2001-12-31', '2024-01-01 00:00:00+00',
     NULL, NULL, NULL, NULL, NULL, NULL, NULL, false, NULL, NULL, NULL, NULL, NULL, '79', NULL);
"""
TABLE = "civil_registration"
SUBJECTS = {"personal_id": "personal_id", "tax_code": "tax_code"}


@pytest.fixture(scope="module")
def source(stack: StackProvider) -> tuple[str, str]:
    """(domain, DSN): a source database of its own holding the table."""
    domain = f"scaffold{uuid.uuid4().hex[:8]}"
    dsn = stack.create_database(domain)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(DDL)
    return domain, dsn


def scaffold(*args: str) -> Result:
    return CliRunner().invoke(cli, ["schemas", "scaffold", *args], catch_exceptions=False)


def lint(root: Path) -> Result:
    return CliRunner().invoke(cli, ["schemas", "lint", "--schemas-dir", str(root)])


def test_scaffold_lint_fill_and_round_trip(source: tuple[str, str], tmp_path: Path) -> None:
    domain, dsn = source
    root = tmp_path / "avro"
    out = root / domain

    refused = scaffold("--source", domain, "--dsn", dsn, "--out", str(out), TABLE)
    assert refused.exit_code == 1
    assert f"{TABLE}: column waiting has type interval, which no contract type" in refused.output
    assert not out.exists()

    where = ["--source", domain, "--dsn", dsn, "--out", str(out), "--exclude", f"{TABLE}.waiting"]
    written = scaffold(*where, TABLE)
    assert written.exit_code == 0, written.output
    assert f"wrote {out / TABLE}.avsc" in written.output
    row = json.loads((out / f"{TABLE}.avsc").read_text(encoding="utf-8"))
    assert row["govsync.table"] == TABLE and row["namespace"] == f"vn.gov.{domain}"
    assert "Births registered by the commune" in row["doc"]
    fields = {f["name"]: f for f in row["fields"]}
    assert "waiting" not in fields
    assert is_placeholder(fields["personal_id"][SUBJECT_ATTRIBUTE])
    assert SUBJECT_ATTRIBUTE not in fields["full_name"]

    again = scaffold(*where, TABLE)
    assert again.exit_code == 1 and "already exists" in again.output
    assert scaffold(*where, "--force", TABLE).exit_code == 0

    refusing = lint(root)
    assert refusing.exit_code == 1
    assert (
        f"{TABLE}.avsc: field 'personal_id': govsync.subject is still a placeholder: name the "
        "identifier the field holds" in refusing.output
    )
    assert f"{TABLE}.avsc: field 'fee_vnd': classification is still a placeholder" in (
        refusing.output
    )
    assert f"{TABLE}-key.avsc: field 'registration_id': doc is still a placeholder" in (
        refusing.output
    )

    fill_placeholders(out, SUBJECTS)
    passing = lint(root)
    assert passing.exit_code == 0, passing.output

    contract = load_contract(out / f"{TABLE}.avsc")
    for found in read_rows(dsn, contract.field_names):
        assert round_trip(EventCodec(contract, source_db=domain), found) == found


def test_the_source_is_found_through_stack_json(
    stack: StackProvider, source: tuple[str, str], tmp_path: Path
) -> None:
    domain, dsn = source
    description = StackDescription(
        data_dir=str(tmp_path),
        bootstrap=stack.bootstrap,
        registry_url=stack.registry_url,
        postgres_port=0,
        databases=[DatabaseEntry(domain, "source", dsn, domain)],
    )
    description.write(tmp_path)
    out = tmp_path / "avro" / domain
    where = ["--source", domain, "--data-dir", str(tmp_path), "--out", str(out)]
    written = scaffold(*where, "--exclude", f"{TABLE}.waiting", TABLE)
    assert written.exit_code == 0, written.output
    assert (out / f"{TABLE}-key.avsc").exists()

    unknown = scaffold("--source", "nowhere", "--data-dir", str(tmp_path), TABLE)
    assert unknown.exit_code == 2
    assert "stack.json has no source database for agency 'nowhere'" in unknown.output
    missing = scaffold(*where, "no_such_table")
    assert missing.exit_code == 1
    assert "no_such_table: the source database has no table public.no_such_table" in (
        missing.output
    )


def read_rows(dsn: str, names: tuple[str, ...]) -> list[dict[str, Any]]:
    """The table's rows as capture reads them: json as its text, far dates as carried."""
    with psycopg.connect(dsn) as conn:
        conn.adapters.register_loader("jsonb", TextLoader)
        register_pg_adapters(conn)
        query = sql.SQL("SELECT {} FROM {} ORDER BY registration_id").format(
            sql.SQL(", ").join(map(sql.Identifier, names)), sql.Identifier(TABLE)
        )
        cursor = conn.execute(query)
        rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    assert rows[0]["fee_vnd"] == Decimal("123456789.50")
    return rows


def round_trip(codec: EventCodec, row: Mapping[str, Any]) -> dict[str, Any] | None:
    """``row`` as a snapshot read, encoded with the contract and decoded again."""
    key = {name: row[name] for name in codec.contract.key_fields}
    position = Position(Lsn(0x16B374D848), 0)
    event = ChangeEvent(
        op=Op.READ,
        table=TableRef("public", TABLE),
        key=key,
        before=None,
        after=dict(row),
        position=position,
        txid=0,
        commit_time=datetime(2024, 5, 6, tzinfo=UTC),
        event_id=ChangeEvent.make_event_id("scaffold", position, key),
        source="scaffold",
    )
    schemas = {1: codec.contract.key_schema, 2: codec.value_schema}

    def lookup(schema_id: int) -> Mapping[str, Any]:
        if schema_id not in schemas:
            raise DecodeError(f"unknown schema id {schema_id}")
        return schemas[schema_id]

    key_bytes, value_bytes = codec.encode(event, 1, 2)
    decoded = codec.decode(key_bytes, value_bytes, lookup)
    assert decoded.key == key
    return None if decoded.after is None else dict(decoded.after)
