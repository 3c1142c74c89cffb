"""One subscriber's replica going down neither stops nor slows the others, and it catches up
when it comes back (its errors are transient: retried, never dead-lettered)."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest
from psycopg import sql

from sync.stack.providers import StackProvider
from sync.stack.status import scrape
from tests.fixtures.pipeline import Pipeline

pytestmark = pytest.mark.integration


def set_reachable(admin_dsn: str, database: str, reachable: bool) -> None:
    """Refuse (or allow again) connections to ``database`` and cut the ones it has."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
                sql.Identifier(database), sql.SQL("true" if reachable else "false")
            )
        )
        if not reachable:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (database,),
            )


def test_a_replica_that_is_down_does_not_hold_up_another_agency(
    stack: StackProvider, pipeline_factory: Callable[..., Pipeline]
) -> None:
    pipeline = pipeline_factory(citizens=300)
    other_db = f"{pipeline.name}_other"
    other = stack.create_database(other_db)
    pipeline.start_connector()
    down = pipeline.start_processor("vss").spec.metrics_url
    pipeline.start_processor("gdt", other)
    assert down is not None
    pipeline.wait_converged()
    pipeline.wait_converged(replica_dsn=other)
    admin = psycopg.conninfo.make_conninfo(other, dbname="postgres")
    vss_db = psycopg.conninfo.conninfo_to_dict(pipeline.replica_dsn)["dbname"]
    assert isinstance(vss_db, str)

    set_reachable(admin, vss_db, False)
    try:
        with pipeline.source() as conn:
            conn.execute("UPDATE citizen SET ward_code = '00444'")
        pipeline.wait_converged(replica_dsn=other, timeout=60)  # gdt keeps applying
        pipeline.wait_for(
            lambda: sum(v for _, v in scrape(down)["govsync_processor_apply_retries_total"]) > 0,
            "the unreachable replica's processor to retry",
        )
    finally:
        set_reachable(admin, vss_db, True)
    pipeline.wait_converged()  # vss catches up
    assert (
        sum(v for _, v in scrape(down).get("govsync_processor_events_dead_lettered_total", [])) == 0
    )
