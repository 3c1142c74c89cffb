"""Watermark snapshots: chunked, racing live writes without regressing a row, resumable after
a crash, and re-triggered on a live table with govsync snapshot."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import psycopg
import pytest

from sync.stack.status import scrape
from tests.fixtures.pipeline import Pipeline
from tests.integration.test_connector_crash import Workload

pytestmark = pytest.mark.integration


def snapshot_progress(pipeline: Pipeline) -> tuple[str, int]:
    try:
        with pipeline.source() as conn:
            row = conn.execute(
                "SELECT status, rows_read FROM govsync.snapshot_state WHERE slot_name = %s",
                (pipeline.slot,),
            ).fetchone()
    except psycopg.errors.UndefinedTable:  # the connector has not set up its state yet
        return ("none", 0)
    return (str(row[0]), int(row[1])) if row else ("none", 0)


def govsync_snapshot(
    pipeline: Pipeline, table: str, *options: str
) -> subprocess.CompletedProcess[str]:
    """``govsync snapshot TABLE`` on the pipeline's source, as an operator runs it."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "sync.cli",
            "snapshot",
            table,
            "--source",
            "population",
            "--data-dir",
            str(pipeline.describe()),
            "--slot",
            pipeline.slot,
            *options,
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_a_snapshot_racing_live_writes_never_regresses_a_row(
    pipeline_factory: Callable[..., Pipeline],
) -> None:
    pipeline = pipeline_factory(citizens=3_000)
    pipeline.start_processor()
    workload = Workload(pipeline.source_dsn, seed=11)
    workload.start()
    try:
        pipeline.start_connector(snapshot_chunk="100")
        pipeline.wait_for(
            lambda: snapshot_progress(pipeline)[0] == "done",
            "the chunked snapshot to finish while the source is written",
            120,
        )
        start = workload.committed
        pipeline.wait_for(lambda: workload.committed > start + 20, "more writes after it")
    finally:
        workload.stop.set()
        workload.join(30)
    assert workload.error is None
    pipeline.wait_converged(timeout=120)


def test_a_connector_killed_mid_snapshot_resumes_from_its_last_chunk(
    pipeline_factory: Callable[..., Pipeline],
) -> None:
    pipeline = pipeline_factory(citizens=3_000)
    pipeline.start_processor()
    pipeline.start_connector(snapshot_chunk="50")
    for round_ in range(3):
        reached = snapshot_progress(pipeline)[1]
        pipeline.wait_for(
            lambda r=reached: snapshot_progress(pipeline)[1] > r + 200,
            f"snapshot progress before kill {round_}",
            60,
        )
        if snapshot_progress(pipeline)[0] == "done":
            break
        killed = pipeline.kill("connector-population")
        pipeline.wait_for(
            lambda k=killed: pipeline.supervisor.processes["connector-population"].pid != k,
            "the supervisor to restart the connector",
        )
    assert pipeline.supervisor.processes["connector-population"].restarts >= 1
    pipeline.wait_converged(timeout=120)
    log = (pipeline.logs / "connector-population.log").read_text()
    assert log.count("snapshot of public.citizen starts") == 1, "resumed, not started over"


def test_govsync_snapshot_retriggers_a_table_on_a_live_source(
    pipeline_factory: Callable[..., Pipeline],
) -> None:
    pipeline = pipeline_factory(citizens=500)
    url = pipeline.start_connector(snapshot_chunk="100").spec.metrics_url
    pipeline.start_processor()
    pipeline.wait_converged()
    assert url is not None
    with psycopg.connect(pipeline.replica_dsn, autocommit=True) as conn:
        # drift the snapshot will repair: a row the replica lost
        conn.execute(
            "DELETE FROM population.citizen WHERE personal_id = "
            "(SELECT min(personal_id) FROM population.citizen)"
        )
    done = govsync_snapshot(pipeline, "citizen", "--timeout", "120")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "snapshot of public.citizen done: 500 rows" in done.stdout
    pipeline.wait_converged()
    rows = scrape(url)["govsync_connector_snapshot_rows_total"]
    assert rows[0][1] == 1000


def test_govsync_snapshot_refuses_a_table_its_connector_does_not_capture(
    pipeline_factory: Callable[..., Pipeline],
) -> None:
    """A typo must not reach the connector's snapshot queue, which it would head for ever."""
    pipeline = pipeline_factory(citizens=10)
    pipeline.logs.mkdir(parents=True)  # for stack.json: nothing has run yet
    early = govsync_snapshot(pipeline, "citizen", "--no-wait")
    assert early.returncode == 2, early.stdout + early.stderr
    assert (
        "public.citizen is not captured by the population connector "
        f"(slot {pipeline.slot}); it captures no table yet"
    ) in early.stderr

    pipeline.start_connector()
    pipeline.wait_for(lambda: snapshot_progress(pipeline)[0] == "done", "the first snapshot")
    typo = govsync_snapshot(pipeline, "public.citizn", "--no-wait")
    assert typo.returncode == 2, typo.stdout + typo.stderr
    assert "Invalid value for 'TABLE'" in typo.stderr
    assert (
        "public.citizn is not captured by the population connector "
        f"(slot {pipeline.slot}); it captures public.citizen"
    ) in typo.stderr
    with pipeline.source() as conn:
        requested = conn.execute(
            "SELECT table_name, status FROM govsync.snapshot_state WHERE slot_name = %s",
            (pipeline.slot,),
        ).fetchall()
    assert requested == [("public.citizen", "done")]
