"""The connector never holds the source's WAL forever, and never skips an invalidated slot."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import psycopg
import pytest

from connectors.postgres.slot import SlotReader
from sync.stack.providers import StackProvider
from sync.stack.status import scrape
from tests.fixtures.pipeline import Pipeline

pytestmark = pytest.mark.integration

MB = 1024 * 1024


def slot_lag(pipeline: Pipeline) -> int:
    with pipeline.source() as conn:
        row = conn.execute(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint "
            "FROM pg_replication_slots WHERE slot_name = %s",
            (pipeline.slot,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def write_wal_elsewhere(dsn: str, rows: int) -> None:
    """Changes in another database of the same cluster: WAL the slot must not pin."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS noise (id bigint, payload text)")
        conn.execute(
            "INSERT INTO noise SELECT g, repeat('x', 200) FROM generate_series(1, %s) g", (rows,)
        )


@pytest.fixture
def running(pipeline_factory: Callable[..., Pipeline]) -> Iterator[Pipeline]:
    pipeline = pipeline_factory(citizens=100)
    pipeline.start_connector()
    pipeline.start_processor()
    pipeline.wait_converged()
    yield pipeline


def test_heartbeats_keep_an_idle_sources_slot_lag_bounded(running: Pipeline) -> None:
    write_wal_elsewhere(running.replica_dsn, 60_000)
    running.wait_for(lambda: slot_lag(running) < MB, "the idle slot to release the WAL", 60)
    url = running.supervisor.processes["connector-population"].spec.metrics_url
    assert url is not None
    beats = scrape(url)["govsync_connector_last_heartbeat_timestamp_seconds"]
    assert beats and beats[0][1] > 0


def test_the_slots_restart_point_follows_released_changes(stack: StackProvider) -> None:
    """Every peek and advance decodes from the slot's restart_lsn: once changes are released,
    it moves past them at the next ones, not 15 s later when PostgreSQL logs the running
    transactions by itself."""
    dsn = stack.create_database("restart_point")
    with psycopg.connect(dsn, autocommit=True) as conn, SlotReader(dsn, "s", "p", "land") as reader:
        conn.execute("CREATE TABLE parcel (id int PRIMARY KEY); CREATE TABLE mark (id int)")
        reader.ensure_publication([("public", "parcel")])
        reader.ensure_watermark_publication(("public", "mark"))
        reader.ensure_slot()

        def release_one(row: int) -> psycopg.sql.Literal:
            conn.execute("INSERT INTO parcel VALUES (%s)", (row,))
            peeked = reader.peek(1_000)
            assert peeked.messages and peeked.complete_upto is not None
            reader.advance(peeked.complete_upto)
            return psycopg.sql.Literal(str(peeked.complete_upto))

        released = release_one(1)
        assert reader.offer_restart_point()
        release_one(2)
        query = psycopg.sql.SQL(
            "SELECT restart_lsn >= {}::pg_lsn FROM pg_replication_slots WHERE slot_name = 's'"
        )
        row = conn.execute(query.format(released)).fetchone()
        assert row == (True,), "the restart point stayed behind the released change"


def test_a_role_refused_restart_points_keeps_capturing(stack: StackProvider) -> None:
    """Without EXECUTE on pg_log_standby_snapshot the connector says so once and goes on."""
    dsn = stack.create_database("restart_refused")
    role = "capture_no_snapshot"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN REPLICATION")
    try:
        role_dsn = psycopg.conninfo.make_conninfo(dsn, user=role)
        with SlotReader(role_dsn, "s", "p", "land") as reader:
            assert not reader.offer_restart_point()
            assert not reader.offer_restart_point()
            assert reader.confirmed() is not None  # the connection is still usable
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP ROLE {role}")


def test_an_invalidated_slot_is_reported_and_recovered_by_a_new_snapshot(
    running: Pipeline,
) -> None:
    running.supervisor.stop("connector-population")
    with running.source() as conn:
        conn.execute("UPDATE citizen SET ward_code = '00099' WHERE province_code = '01'")
    with psycopg.connect(running.replica_dsn, autocommit=True) as admin:
        admin.execute("ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'")
        admin.execute("SELECT pg_reload_conf()")
        try:
            for _ in range(3):
                write_wal_elsewhere(running.replica_dsn, 20_000)
                admin.execute("SELECT pg_switch_wal()")
                admin.execute("CHECKPOINT")
            row = admin.execute(
                "SELECT wal_status FROM pg_replication_slots WHERE slot_name = %s",
                (running.slot,),
            ).fetchone()
        finally:
            admin.execute("ALTER SYSTEM RESET max_slot_wal_keep_size")
            admin.execute("SELECT pg_reload_conf()")
    assert row is not None and row[0] == "lost", "the test could not invalidate the slot"
    url = running.start_connector().spec.metrics_url
    assert url is not None
    running.wait_converged()
    assert scrape(url)["govsync_connector_slot_invalidations_total"][0][1] == 1
    log = (running.logs / "connector-population.log").read_text()
    assert "was invalidated" in log
    assert log.count("snapshot of public.citizen starts") == 2
