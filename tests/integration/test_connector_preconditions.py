"""A source the connector cannot capture is refused with what to fix, a metric and a non-zero
exit: no logical WAL, a role without SELECT, a table whose changes cannot be keyed."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from connectors.postgres.slot import SlotReader
from sync.errors import SourceNotReady
from sync.stack.ports import free_port, wait_until
from sync.stack.postgres import EmbeddedPostgres
from sync.stack.providers import StackProvider
from sync.stack.specs import KafkaEndpoints, connector_spec
from sync.stack.status import scrape
from sync.stack.supervisor import ProcessSpec, Supervisor
from sync.types import TableRef
from tests.fixtures.pipeline import Pipeline

pytestmark = pytest.mark.integration


def run_connector(kafka: KafkaEndpoints, dsn: str, logs: Path) -> subprocess.CompletedProcess[str]:
    """``govsync connector run`` in the foreground, exiting at once on a fatal error."""
    spec = connector_spec(
        kafka, "population", dsn, logs, slot="govsync_refused", tables=["citizen"]
    )
    env = {**os.environ, **spec.env, "GOVSYNC_METRICS_PORT": "0", "GOVSYNC_FAILURE_LINGER": "0"}
    return subprocess.run(spec.argv, env=env, capture_output=True, text=True, timeout=120)


def accepts_connections(dsn: str) -> bool:
    with psycopg.connect(dsn, connect_timeout=2):
        return True


def metric(url: str, name: str, **labels: str) -> float:
    return sum(v for lab, v in scrape(url).get(name, []) if labels.items() <= lab.items())


@pytest.fixture
def role_without_select(
    pipeline_factory: Callable[..., Pipeline],
) -> Iterator[tuple[Pipeline, str]]:
    pipeline = pipeline_factory(citizens=5)
    role = f"capture_{uuid.uuid4().hex[:8]}"
    with pipeline.source() as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN REPLICATION").format(sql.Identifier(role)))
    try:
        yield pipeline, psycopg.conninfo.make_conninfo(pipeline.source_dsn, user=role)
    finally:
        with pipeline.source() as conn:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_a_role_without_select_is_told_which_grant_it_lacks(
    role_without_select: tuple[Pipeline, str],
) -> None:
    pipeline, dsn = role_without_select
    done = run_connector(pipeline.kafka, dsn, pipeline.logs)
    assert done.returncode == 2, done.stderr
    role = psycopg.conninfo.conninfo_to_dict(dsn)["user"]
    assert f"the connector's role '{role}' lacks SELECT on table public.citizen" in done.stderr
    assert f"GRANT SELECT ON public.citizen TO {role}" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_table_without_primary_key_needs_replica_identity_full_and_a_unique_key(
    stack: StackProvider,
) -> None:
    dsn = stack.create_database(f"nokey_{uuid.uuid4().hex[:6]}")
    table = TableRef("public", "parcel")
    with psycopg.connect(dsn, autocommit=True) as conn, SlotReader(dsn, "s", "p", "land") as reader:
        conn.execute("CREATE TABLE parcel (sheet int NOT NULL, lot int NOT NULL, area numeric)")

        def refusal() -> str:
            with pytest.raises(SourceNotReady) as refused:
                reader.check_tables({table: ("sheet", "lot")})
            assert refused.value.check == "key"
            return str(refused.value)

        assert "ALTER TABLE public.parcel REPLICA IDENTITY FULL" in refusal()
        conn.execute("ALTER TABLE parcel REPLICA IDENTITY FULL")
        conn.execute("CREATE UNIQUE INDEX ON parcel (sheet)")  # not the contract's key
        assert "CREATE UNIQUE INDEX ON public.parcel (sheet, lot)" in refusal()
        conn.execute("CREATE UNIQUE INDEX ON parcel (lot, sheet) WHERE area > 0")  # partial
        assert "no unique index on its contract's key (sheet, lot)" in refusal()
        conn.execute("CREATE UNIQUE INDEX ON parcel (lot, sheet)")
        reader.check_tables({table: ("sheet", "lot")})


@pytest.fixture(scope="module")
def physical_wal_only(server_dir: Path) -> Iterator[EmbeddedPostgres]:
    """A second PostgreSQL cluster with wal_level = replica: physical WAL, no logical decoding."""
    server = EmbeddedPostgres(
        server_dir / f"replica-wal-{uuid.uuid4().hex[:6]}", free_port(), (("wal_level", "replica"),)
    )
    server.initialise()
    supervisor = Supervisor()
    supervisor.start(
        ProcessSpec(
            name="postgres-replica-wal",
            role="database",
            argv=server.argv(),
            log_path=server_dir / "postgres-replica-wal.log",
            user=server.run_as,
            ready=lambda: accepts_connections(server.dsn()),
        )
    )
    try:
        yield server
    finally:
        supervisor.stop_all(drain_timeout=0)


def test_a_source_without_logical_wal_is_refused_with_a_metric_and_exit_code(
    physical_wal_only: EmbeddedPostgres, stack: StackProvider, tmp_path: Path
) -> None:
    kafka = KafkaEndpoints(stack.bootstrap, stack.registry_url, 3, "walcheck.")
    foreground = run_connector(kafka, physical_wal_only.dsn(), tmp_path)
    assert foreground.returncode == 2
    assert (
        "source 'population': wal_level is 'replica'; set wal_level = logical in "
        "postgresql.conf and restart the server" in foreground.stderr
    )
    assert "Traceback" not in foreground.stderr

    # supervised, the failure stays on /metrics for a while before the process exits
    spec = connector_spec(
        kafka, "population", physical_wal_only.dsn(), tmp_path, tables=["citizen"]
    )
    spec.env["GOVSYNC_FAILURE_LINGER"] = "120"
    supervisor = Supervisor()
    managed = supervisor.start(spec)
    url = spec.metrics_url
    assert url is not None
    try:
        wait_until(
            lambda: metric(url, "govsync_connector_state", state="not_ready") == 1,
            60,
            "the connector to report the source not ready",
        )
        assert metric(url, "govsync_connector_state", state="running") == 0
        failures = "govsync_connector_precondition_failures_total"
        assert metric(url, failures, source="population", check="wal_level") == 1
    finally:
        supervisor.stop_all(drain_timeout=0)
    assert managed.popen.returncode == 2
    assert "wal_level is 'replica'" in spec.log_path.read_text()
