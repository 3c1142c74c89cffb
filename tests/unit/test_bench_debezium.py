"""The Debezium comparison's pure parts: the Kafka Connect worker's and connector's
properties, the jars' pins, the figures from one capture, and the report. No servers."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.debezium.connect import DebeziumRun, connector_properties, worker_properties
from bench.debezium.figures import Capture, ratios
from bench.debezium.jars import connect_version, debezium_version, jars_dir
from bench.debezium.report import render
from sync.stack.kafka.jars import kafka_version


def a_run(tmp_path: Path, **changes: object) -> DebeziumRun:
    settings: dict[str, object] = {
        "name": "debezium-stream",
        "directory": tmp_path,
        "bootstrap": "127.0.0.1:9092,127.0.0.1:9093",
        "dsn": "host=127.0.0.1 port=5433 user=postgres dbname=bench_source",
        "topic_prefix": "bench1.debezium_stream",
        "table": "public.citizen",
        "slot": "debezium_stream",
        "publication": "debezium_stream",
        "snapshot": False,
        "rest_port": 18083,
    }
    return DebeziumRun(**(settings | changes))  # type: ignore[arg-type]


def test_the_worker_converts_to_json_without_schemas_and_keeps_offsets_in_its_directory(
    tmp_path: Path,
) -> None:
    worker = worker_properties(a_run(tmp_path))
    for side in ("key", "value"):
        assert worker[f"{side}.converter"] == "org.apache.kafka.connect.json.JsonConverter"
        assert worker[f"{side}.converter.schemas.enable"] == "false"
    assert worker["bootstrap.servers"] == "127.0.0.1:9092,127.0.0.1:9093"
    assert worker["listeners"] == "http://127.0.0.1:18083"
    assert worker["offset.storage.file.filename"] == str(tmp_path / "offsets.dat")


def test_the_connector_reads_pgoutput_through_its_own_slot_and_publication(
    tmp_path: Path,
) -> None:
    run = a_run(tmp_path)
    connector = connector_properties(run)
    assert connector["connector.class"] == "io.debezium.connector.postgresql.PostgresConnector"
    assert connector["plugin.name"] == "pgoutput"
    assert (connector["slot.name"], connector["publication.name"]) == ("debezium_stream",) * 2
    assert connector["table.include.list"] == "public.citizen"
    assert connector["database.hostname"] == "127.0.0.1"
    assert connector["database.port"] == "5433"
    assert connector["database.dbname"] == "bench_source"
    assert "database.password" not in connector  # the embedded server trusts loopback
    assert "heartbeat.interval.ms" not in connector
    assert connector["topic.creation.default.replication.factor"] == "3"
    assert run.topic == "bench1.debezium_stream.public.citizen"


def test_the_snapshot_mode_and_heartbeats_follow_the_run(tmp_path: Path) -> None:
    assert connector_properties(a_run(tmp_path))["snapshot.mode"] == "no_data"
    priming = connector_properties(a_run(tmp_path, snapshot=True, heartbeat_ms=200))
    assert priming["snapshot.mode"] == "initial"
    assert priming["heartbeat.interval.ms"] == "200"
    secret = a_run(tmp_path, dsn="host=db port=5432 user=u password=p dbname=d")
    assert connector_properties(secret)["database.password"] == "p"


def test_kafka_connect_is_the_brokers_version_and_its_jars_are_cached_outside_the_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOVSYNC_KAFKA_CACHE", str(tmp_path / "cache"))
    assert connect_version() == kafka_version()
    assert debezium_version().endswith(".Final")
    assert jars_dir().parent == tmp_path / "cache"
    assert jars_dir().name.startswith(f"debezium-{debezium_version()}-")


def capture(connector: str, cpu_seconds: float, seconds: float = 25.0) -> Capture:
    return Capture(
        connector=connector,
        changes=100_000,
        seconds=seconds,
        first_record_s=5.0,
        cpu_seconds=cpu_seconds,
        cpu_to_first=2.0,
        other_cpu={"postgres": 3.0, "broker": 8.0, "machine": 30.0},
        record_bytes=200.0,
    )


def test_rates_and_cpu_per_thousand_changes_over_the_run_and_while_records_flow() -> None:
    c = capture("govsync", cpu_seconds=12.0)
    assert c.rate == pytest.approx(4_000)  # 100,000 in 25 s
    assert c.flowing_rate == pytest.approx(5_000)  # in the 20 s after the first record
    assert c.cpu_per_1000 == pytest.approx(0.12)
    assert c.flowing_cpu_per_1000 == pytest.approx(0.10)  # without the 2 s of start-up
    stored = c.as_dict()
    assert stored["flowing_rate"] == pytest.approx(5_000)
    assert stored["other_cpu_per_1000"] == {"broker": 0.08, "machine": 0.3, "postgres": 0.03}
    assert Capture.from_dict(stored) == c


def test_ratios_above_one_mean_govsync_is_ahead() -> None:
    govsync = capture("govsync", cpu_seconds=12.0)
    debezium = capture("debezium", cpu_seconds=42.0, seconds=45.0)
    r = ratios(govsync, debezium)
    assert r["rate"] == pytest.approx(2.0)  # 5,000/s against 2,500/s while flowing
    assert r["cpu_efficiency"] == pytest.approx(4.0)  # 0.40 against 0.10 CPU-s per 1,000
    assert r["rate_from_start"] == pytest.approx(1.8)
    assert r["cpu_efficiency_from_start"] == pytest.approx(3.5)


def test_the_report_puts_each_workload_and_connector_in_a_column() -> None:
    workload = {
        "order": ["govsync", "debezium"],
        "govsync": capture("govsync", 12.0).as_dict(),
        "debezium": capture("debezium", 42.0, seconds=45.0).as_dict(),
    }
    results = {
        "started": "2026-12-03 08:00 UTC",
        "changes": 100_000,
        "machine": {
            "broker": "Apache Kafka 4.1.2: 3 KRaft nodes",
            "postgresql": "18.6",
            "cores": 2,
            "cpu": "x86",
            "memory_gib": 23.5,
            "python": "3.11.7",
            "load_average": [1.0, 1.0, 1.0],
        },
        "versions": {"debezium": "3.6.1.Final", "kafka_connect": "4.1.2", "java": "openjdk 17"},
        "workloads": {"snapshot": workload, "streaming": workload},
        "memory": {"govsync": 120 * 2**20, "debezium": 480 * 2**20},
    }
    text = render(results)
    assert "| govsync, snapshot | Debezium, snapshot | govsync, streaming | Debezium, stre" in text
    assert "| changes/s, while records flowed | 5,000 | 2,500 | 5,000 | 2,500 |" in text
    assert "| CPU-s per 1,000 changes, while records flowed | 0.100 | 0.400 |" in text
    assert "| connector's peak RSS, MiB | 120 | 480 | 120 | 480 |" in text
    assert "govsync captures 2.00 times Debezium's changes/s and 4.00 times" in text
