"""What SREs see: metric values after a known workload, and govsync status."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable

import psycopg
import pytest

from sync.stack.status import scrape
from tests.fixtures.pipeline import Pipeline

pytestmark = pytest.mark.integration


def value(url: str, name: str, **labels: str) -> float:
    return sum(v for lab, v in scrape(url).get(name, []) if labels.items() <= lab.items())


def status(pipeline: Pipeline, *options: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "sync.cli", "status", "--data-dir", str(pipeline.describe())]
    return subprocess.run([*command, *options], capture_output=True, text=True, timeout=60)


def test_counters_match_a_known_workload_and_status_reports_a_stopped_subscription(
    pipeline_factory: Callable[..., Pipeline],
) -> None:
    pipeline = pipeline_factory(citizens=300)
    connector = pipeline.start_connector().spec.metrics_url
    processor = pipeline.start_processor().spec.metrics_url
    assert connector and processor
    pipeline.wait_converged()
    with pipeline.source() as conn:
        conn.execute(
            "UPDATE citizen SET ward_code = '00007' WHERE personal_id IN "
            "(SELECT personal_id FROM citizen ORDER BY personal_id LIMIT 10)"
        )
    pipeline.wait_converged()
    pipeline.wait_for(
        lambda: value(processor, "govsync_processor_events_applied_total") == 310,
        "the processor to count 310 applied events",
    )

    assert value(connector, "govsync_connector_snapshot_rows_total") == 300
    assert value(connector, "govsync_connector_changes_captured_total") == 10
    assert value(connector, "govsync_connector_events_produced_total", topic=pipeline.topic) == 310
    assert value(connector, "govsync_connector_produce_errors_total") == 0
    assert value(connector, "govsync_connector_snapshot_table_rows") == 300
    assert value(processor, "govsync_processor_events_consumed_total", agency="vss") == 310
    assert value(processor, "govsync_processor_end_to_end_latency_seconds_count") == 310
    assert value(processor, "govsync_processor_apply_batch_duration_seconds_count") >= 2
    assert value(processor, "govsync_processor_events_dead_lettered_total") == 0
    assert value(processor, "govsync_processor_subscription_state", state="running") == 1
    healthy = status(pipeline)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert "processor-vss" in healthy.stdout

    with psycopg.connect(pipeline.replica_dsn, autocommit=True) as conn:
        conn.execute("ALTER TABLE population.citizen DROP COLUMN ward_code")
    with pipeline.source() as conn:
        conn.execute(
            "UPDATE citizen SET full_name = 'Phạm Thị Hoa' WHERE personal_id = "
            "(SELECT min(personal_id) FROM citizen)"
        )
    pipeline.wait_for(
        lambda: value(processor, "govsync_processor_subscription_state", state="stopped") == 1,
        "the subscription to stop on a replica column dropped by hand",
    )
    assert value(processor, "govsync_processor_events_dead_lettered_total") == 0
    report = status(pipeline, "--json")
    assert report.returncode == 1
    processes = {p["name"]: p for p in json.loads(report.stdout)}
    assert processes["processor-vss"]["healthy"] is False
    assert processes["processor-vss"]["problems"] == ["subscription stopped (see its log)"]
    assert processes["connector-population"]["healthy"] is True
    lines = {line.split()[1]: line for line in status(pipeline).stdout.splitlines() if line}
    assert (
        lines["processor-vss"].startswith("FAIL")
        and "subscription stopped" in lines["processor-vss"]
    )
    assert lines["connector-population"].startswith("ok")
    log = (pipeline.logs / "processor-vss.log").read_text()
    assert "ward_code" in log and "subscription stopped" in log


def verify(pipeline: Pipeline, *options: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "sync.cli", "verify", "--data-dir", str(pipeline.describe())]
    return subprocess.run([*command, *options], capture_output=True, text=True, timeout=120)


def test_verify_proves_convergence_and_finds_every_kind_of_drift(
    pipeline_factory: Callable[..., Pipeline],
) -> None:
    pipeline = pipeline_factory(citizens=250)
    pipeline.start_connector()
    pipeline.start_processor()
    pipeline.wait_converged()
    clean = verify(pipeline, "--chunk-rows", "40", "--json")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    [report] = json.loads(clean.stdout)
    assert report["tables"] == [
        {
            "table": "population.citizen",
            "equal": True,
            "source_rows": 250,
            "replica_rows": 250,
            "missing": 0,
            "extra": 0,
            "different": 0,
        }
    ]
    keys = sorted(pipeline.source_rows())
    with psycopg.connect(pipeline.replica_dsn, autocommit=True) as conn:
        conn.execute(
            "UPDATE population.citizen SET full_name = 'Sai Tên' WHERE personal_id = %s", (keys[7],)
        )
        conn.execute("DELETE FROM population.citizen WHERE personal_id = %s", (keys[100],))
        conn.execute(
            "INSERT INTO population.citizen SELECT '999999999999', full_name, date_of_birth, "
            "sex, ethnicity, province_code, district_code, ward_code, updated_at, _source_lsn, "
            "_source_index, _source_commit_time FROM population.citizen LIMIT 1"
        )
    drift = verify(pipeline, "vss", "--chunk-rows", "40", "--json", "--show-keys")
    assert drift.returncode == 1
    [table] = json.loads(drift.stdout)[0]["tables"]
    assert (table["missing"], table["extra"], table["different"]) == (1, 1, 1)
    assert table["keys"] == {
        "missing": [[keys[100]]],
        "extra": [["999999999999"]],
        "different": [[keys[7]]],
    }
