"""A source database's own defaults for how values print (an agency's ``ALTER DATABASE ...
SET DateStyle``) change nothing that is captured: the connector's sessions set their own."""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from connectors.postgres.session import capture_conninfo
from sync.stack.ports import wait_until
from sync.stack.providers import StackProvider
from sync.stack.supervisor import Supervisor
from tests.integration.test_types import INSERT, SOURCE_DDL, nulls, rows, sample, typecheck_specs

pytestmark = [pytest.mark.integration, pytest.mark.brokerless]

# every value below would print differently under these: 28/02/1941, 30/06/2024 10:00:00.123456
# UTC, \000\001..., 9.31322574615479e-10 (rounded)
ODD_DEFAULTS = {
    "DateStyle": "SQL, DMY",
    "bytea_output": "escape",
    "extra_float_digits": "0",
    "IntervalStyle": "sql_standard",
}


def test_odd_database_defaults_change_no_captured_value(
    stack: StackProvider, tmp_path: Path
) -> None:
    name = f"defaults_{uuid.uuid4().hex[:6]}"
    source = stack.create_database(f"{name}_source")
    replica = stack.create_database(f"{name}_replica")
    with psycopg.connect(source, autocommit=True) as conn:
        for setting, value in ODD_DEFAULTS.items():
            conn.execute(
                sql.SQL("ALTER DATABASE {} SET {} = {}").format(
                    sql.Identifier(f"{name}_source"), sql.Identifier(setting), sql.Literal(value)
                )
            )
    with psycopg.connect(source, autocommit=True) as conn:  # a new session takes the defaults
        assert conn.execute("SELECT '1941-02-28'::date::text").fetchone() == ("28/02/1941",)
        conn.execute(SOURCE_DDL)
        conn.execute(INSERT, sample(1))  # read by the snapshot
        conn.execute(INSERT, nulls(2))
    supervisor = Supervisor()
    try:
        for spec in typecheck_specs(stack, name, source, replica, tmp_path):
            supervisor.start(spec)
        with psycopg.connect(source, autocommit=True) as conn:  # streamed
            conn.execute(INSERT, sample(3))
            conn.execute(
                "UPDATE sample SET t_date = '2024-02-29', t_bytea = %s WHERE id = 1", (b"\\\0",)
            )
            # an unchanged out-of-line value, read back on the snapshot's connection
            conn.execute(
                "UPDATE sample SET t_text = (SELECT string_agg(md5(g::text), '') "
                "FROM generate_series(1, 400) g) WHERE id = 2"
            )
            conn.execute("UPDATE sample SET t_timestamp = '2000-01-02 03:04:05' WHERE id = 2")
        # read as the connector reads: the default session would round the float itself
        expected = rows(capture_conninfo(source), "sample")
        wait_until(
            lambda: rows(replica, "typecheck", "sample") == expected,
            60,
            "the replica to hold every value exactly",
        )
    finally:
        supervisor.stop_all(drain_timeout=0)
    assert [row[11] for row in expected] == [date(2024, 2, 29), None, date(1943, 2, 28)]
    assert expected[0][17] == b"\\\x00" and expected[2][17] == bytes(range(256))
    assert expected[0][9] == 2.0**-30
