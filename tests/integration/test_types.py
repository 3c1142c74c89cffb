"""Every PostgreSQL type the contracts carry round-trips from source to replica, through the
snapshot and through the stream."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from sync.stack.ports import wait_until
from sync.stack.providers import StackProvider
from sync.stack.specs import KafkaEndpoints, connector_spec, processor_spec
from sync.stack.supervisor import ProcessSpec, Supervisor

pytestmark = pytest.mark.integration

CONTRACTS = Path(__file__).parent.parent / "fixtures" / "contracts_types"

SOURCE_DDL = """
CREATE TABLE sample (
    id bigint PRIMARY KEY, t_text text, t_varchar varchar(20), t_char char(5),
    t_int2 smallint, t_int4 integer, t_int8 bigint, t_numeric numeric(14,3), t_real real,
    t_double double precision, t_bool boolean, t_date date, t_time time, t_timestamp timestamp,
    t_timestamptz timestamptz, t_uuid uuid, t_jsonb jsonb, t_bytea bytea, t_text_array text[],
    t_int_array integer[]
)
"""
INSERT = "INSERT INTO sample VALUES (" + ", ".join(["%s"] * 20) + ")"
COLUMNS = (
    "id, t_text, t_varchar, t_char, t_int2, t_int4, t_int8, t_numeric, t_real, t_double, t_bool, "
    "t_date, t_time, t_timestamp, t_timestamptz, t_uuid, t_jsonb::text, t_bytea, t_text_array, "
    "t_int_array"
)


def sample(n: int) -> tuple[Any, ...]:
    return (
        n,
        f"Thừa Thiên Huế {n}",
        "Đà Nẵng",
        "ab",
        -32768,
        2147483647,
        -(2**62),
        f"{n}12.345",
        1.5,
        2.0**-30,
        n % 2 == 0,
        f"19{40 + n}-02-28",
        "23:59:59.999999",
        "2000-01-01 00:00:00.000001",
        "2024-06-30 17:00:00.123456+07",
        uuid.UUID(int=n),
        '{"ward": "Phường Bến Nghé", "codes": [1, 2]}',
        bytes(range(256)),
        ['a "quoted"', None, "x,y", "{}", ""],
        [1, None, -3],
    )


def nulls(n: int) -> tuple[Any, ...]:
    return (n, *([None] * 19))


def typecheck_specs(
    stack: StackProvider,
    name: str,
    source: str,
    replica: str,
    tmp_path: Path,
    agency: str = "types",
) -> tuple[ProcessSpec, ProcessSpec]:
    """The connector of the every-type source and a processor applying it to ``replica``, both
    on the every-type contracts, with ``name`` as their topic prefix and slot."""
    kafka = KafkaEndpoints(stack.bootstrap, stack.registry_url, 3, f"{name}.")
    connector = connector_spec(kafka, "typecheck", source, tmp_path, slot=f"govsync_{name}")
    processor = processor_spec(
        kafka, agency, replica, ["typecheck.sample"], tmp_path, tmp_path / "state"
    )
    for spec in (connector, processor):
        spec.env["GOVSYNC_SCHEMAS_DIR"] = str(CONTRACTS)
    return connector, processor


def rows(dsn: str, *table: str) -> list[tuple[Any, ...]]:
    query = sql.SQL("SELECT {} FROM {} ORDER BY id").format(
        sql.SQL(COLUMNS), sql.Identifier(*table)
    )
    with psycopg.connect(dsn) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        return conn.execute(query).fetchall()


def test_each_type_round_trips_through_snapshot_and_stream(
    stack: StackProvider, tmp_path: Path
) -> None:
    name = f"types_{uuid.uuid4().hex[:6]}"
    source = stack.create_database(f"{name}_source")
    replica = stack.create_database(f"{name}_replica")
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute(SOURCE_DDL)
        conn.execute(INSERT, sample(1))
        conn.execute(INSERT, nulls(2))
    supervisor = Supervisor()
    try:
        for spec in typecheck_specs(stack, name, source, replica, tmp_path):
            supervisor.start(spec)
        with psycopg.connect(source, autocommit=True) as conn:
            conn.execute(INSERT, sample(3))
            conn.execute(INSERT, nulls(4))
            conn.execute("UPDATE sample SET t_numeric = -0.001, t_bool = NULL WHERE id = 1")
            conn.execute("UPDATE sample SET t_text = 'mới' WHERE id = 2")
            # an out-of-line (TOAST) value an update leaves unchanged is not in the WAL
            conn.execute(
                "UPDATE sample SET t_text = (SELECT string_agg(md5(g::text), '') "
                "FROM generate_series(1, 400) g) WHERE id = 3"
            )
            conn.execute("UPDATE sample SET t_int4 = 7 WHERE id = 3")
            conn.execute("UPDATE sample SET t_int4 = 8 WHERE id = 1")
        expected = rows(source, "sample")
        wait_until(
            lambda: rows(replica, "typecheck", "sample") == expected,
            60,
            "the replica to hold every value exactly",
        )
    finally:
        supervisor.stop_all(drain_timeout=0)
    assert len(expected) == 4
    assert len(expected[2][1]) == 12_800 and expected[2][5] == 7
