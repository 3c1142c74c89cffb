"""The benchmark's pure parts: percentiles from histogram buckets, the verdicts on the
project's targets, and the report rendered from a results dict. No servers."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from bench.compare import comparison_section, newest_by_broker
from bench.histogram import (
    buckets_of,
    difference,
    fraction_at_most,
    percentiles,
    quantile,
    total,
)
from bench.probe import exact_percentiles
from bench.report import render
from bench.targets import assess, cores_used, serial_estimate, slower_side

INF = math.inf
NAME = "govsync_processor_end_to_end_latency_seconds"


def scraped(agency: str, counts: dict[float, float]) -> dict[str, list[Any]]:
    """A scrape as ``sync.stack.status.scrape`` returns it: cumulative buckets by ``le``."""
    return {
        f"{NAME}_bucket": [
            ({"agency": agency, "le": "+Inf" if math.isinf(b) else str(b)}, c)
            for b, c in counts.items()
        ]
    }


def test_buckets_are_read_sorted_and_filtered_by_label() -> None:
    samples = scraped("vss", {INF: 10, 0.1: 4, 0.5: 9})
    other = scraped("other", {0.1: 100, 0.5: 100, INF: 100})
    samples[f"{NAME}_bucket"] += other[f"{NAME}_bucket"]
    assert buckets_of(samples, NAME, agency="vss") == [(0.1, 4), (0.5, 9), (INF, 10)]
    assert buckets_of(samples, NAME) == [(0.1, 104), (0.5, 109), (INF, 110)]
    assert buckets_of({}, NAME) == []


def test_difference_keeps_only_what_was_observed_in_between() -> None:
    before = [(0.1, 5.0), (0.5, 10.0), (INF, 12.0)]
    after = [(0.1, 15.0), (0.5, 110.0), (INF, 112.0)]
    assert difference(before, after) == [(0.1, 10.0), (0.5, 100.0), (INF, 100.0)]
    assert difference([], after) == after  # a series first seen after the load


def test_quantile_interpolates_inside_the_bucket_like_promql() -> None:
    # 100 observations: 10 up to 0.1 s, 80 in (0.1, 0.5], 10 in (0.5, 1]
    buckets = [(0.1, 10.0), (0.5, 90.0), (1.0, 100.0), (INF, 100.0)]
    assert quantile(0.05, buckets) == pytest.approx(0.05)  # half of the first bucket
    assert quantile(0.5, buckets) == pytest.approx(0.1 + 0.4 * 40 / 80)
    assert quantile(0.95, buckets) == pytest.approx(0.75)
    assert quantile(1.0, buckets) == pytest.approx(1.0)
    assert percentiles(buckets) == pytest.approx({"p50": 0.3, "p95": 0.75, "p99": 0.95})


def test_quantile_in_the_inf_bucket_answers_the_highest_finite_bound() -> None:
    buckets = [(0.1, 1.0), (0.5, 2.0), (INF, 10.0)]
    assert quantile(0.99, buckets) == 0.5


def test_quantile_skips_empty_buckets_and_needs_observations() -> None:
    buckets = [(0.1, 0.0), (0.25, 0.0), (0.5, 4.0), (INF, 4.0)]
    assert quantile(0.5, buckets) == pytest.approx(0.375)
    assert quantile(0.5, [(0.1, 0.0), (INF, 0.0)]) is None
    assert percentiles([]) == {}
    with pytest.raises(ValueError):
        quantile(1.5, buckets)


def test_fraction_at_most_a_bound_is_exact() -> None:
    buckets = [(0.25, 50.0), (0.5, 99.0), (1.0, 100.0), (INF, 100.0)]
    assert fraction_at_most(0.5, buckets) == 0.99
    assert total(buckets) == 100.0
    assert fraction_at_most(0.5, [(0.5, 0.0), (INF, 0.0)]) is None
    with pytest.raises(ValueError):
        fraction_at_most(0.3, buckets)


def test_exact_percentiles_by_rank() -> None:
    values = [i / 100 for i in range(101)]  # 0.00 .. 1.00
    assert exact_percentiles(values) == {"p50": 0.5, "p95": 0.95, "p99": 0.99}
    assert exact_percentiles([]) == {}


def test_serial_estimate_combines_rates_of_one_thread() -> None:
    ceilings = {"a": {"rate": 10_000.0}, "b": {"rate": 10_000.0}, "c": {"rate": None}}
    assert serial_estimate(ceilings, ("a", "b")) == pytest.approx(5_000.0)
    assert serial_estimate(ceilings, ("a", "c")) is None


def test_cores_used_over_the_measured_window() -> None:
    run = {"seconds": 20.0, "cpu_window_s": 10.0, "cpu_seconds": {"processor": 9.5}}
    assert cores_used(run) == {"processor": 0.95}
    assert cores_used({"seconds": 0, "cpu_seconds": {"processor": 1.0}}) == {}


def test_slower_side_from_when_the_connector_finished() -> None:
    assert slower_side({"seconds": 50.0, "progress_done_s": {"produced": 10.0}}) == "processor"
    assert slower_side({"seconds": 50.0, "progress_done_s": {"produced": 48.0}}) == "connector"
    assert slower_side({"seconds": 50.0}) is None


CEILING_RATES = {
    "pgoutput_read": 200_000.0,
    "pgoutput_decode": 25_000.0,
    "avro_encode": 30_000.0,
    "avro_decode": 25_000.0,
    "produce": 60_000.0,
    "consume": 400_000.0,
    "copy": 120_000.0,
    "merge": 50_000.0,
}
CEILING = {"stage": "", "process": "", "items": 1_000, "unit": "rows", "seconds": 0.1}
MACHINE = {
    "cores": 2,
    "cpu": "test CPU",
    "memory_gib": 8.0,
    "python": "3.11",
    "postgresql": "18.0",
    "broker": "tansu 0.6.0",
    "load_average": [0.1, 0.1, 0.1],
    "load_average_end": [2.0, 1.0, 1.0],
    "packages": {"psycopg": "3.2"},
}


def backlog_run(rate: float, produced_done: float) -> dict[str, Any]:
    return {
        "rows": 100_000,
        "seconds": 100_000 / rate,
        "rate": rate,
        "first_row_s": 1.0,
        "drain_rate": rate * 1.1,
        "load_seconds": 0.5,
        "series": {"vss": [[0.0, 0], [1.0, 10], [2.5, 100_000]]},
        "progress": {"produced": [[0.5, 100], [1.5, 100_000]]},
        "progress_done_s": {"produced": produced_done},
        "cpu_window_s": 1.5,
        "cpu_seconds": {"processor": 1.45, "connector": 0.4, "postgres": 0.2},
    }


def latency_step(fast: bool) -> dict[str, Any]:
    return {
        "offered": 1_000,
        "achieved": 999.0,
        "rows_per_txn": 10,
        "rows": 10_000,
        "seconds": 10.0,
        "observed": 10_000,
        "p50": 0.04 if fast else 0.6,
        "p95": 0.07 if fast else 0.9,
        "p99": 0.09 if fast else 0.99,
        "at_most_100ms": 0.995 if fast else 0.3,
        "at_most_500ms": 1.0 if fast else 0.4,
        "to_broker": {"p50": 0.03, "p95": 0.05, "p99": 0.06}
        if fast
        else {"p50": 0.08, "p99": 0.15},
        "cpu_seconds": {"processor": 2.0},
    }


def results(fast: bool) -> dict[str, Any]:
    """A complete results dict, as ``bench.run`` produces it."""
    rate = 40_000.0 if fast else 4_000.0
    run = backlog_run(rate, 2.4 if fast else 1.5)
    subscriber = {**run, "aggregate_rate": rate, "aggregate_drain_rate": rate}

    def hosted(cpu_us: float, rss_mib: int) -> dict[str, Any]:
        return {**subscriber, "cpu_us_per_event": cpu_us, "worker_rss": rss_mib * 2**20}

    return {
        "mode": "quick",
        "started": "2025-01-01 00:00 UTC",
        "duration_s": 95.0,
        "sizes": {"backlog": 100_000, "ceiling_rows": 1_000},
        "machine": dict(MACHINE),
        "ceilings": {
            name: {**CEILING, "stage": f"{name} stage", "rate": value}
            for name, value in CEILING_RATES.items()
        },
        "end_to_end": {"snapshot": run, "streaming": dict(run)},
        "latency": [latency_step(fast)],
        "solo": subscriber,
        "subscribers": {
            "1": hosted(100.0, 120),
            "10": hosted(100.0, 150),
            # per event: 1.5 times the CPU of 10 (fast) or 2.5 times; memory per subscriber 0.4
            "85": hosted(150.0 if fast else 250.0, 500),
        },
        "baseline": {**CEILING, "stage": "naive", "items": 500, "seconds": 1.0, "rate": 500.0},
        "memory": {"processor": {"rss": 200 * 2**20, "pss": 150 * 2**20}},
    }


def test_targets_met_when_fast_enough() -> None:
    verdicts = assess(results(fast=True))
    assert [v["met"] for v in verdicts] == [True] * 7
    assert all(v["limit"] == "" for v in verdicts)


def test_missed_targets_name_the_limiting_process_and_stage() -> None:
    verdicts = assess(results(fast=False))
    assert [v["met"] for v in verdicts] == [False] * 7
    rate_limit = verdicts[0]["limit"]
    assert rate_limit.startswith("processor (connector done at 1.5 s, replica at 25.0 s)")
    assert "CPU-bound at 0.97 cores" in rate_limit  # 1.45 CPU seconds in a 1.5 s drain
    # 4,400/s drained, against 1 / (1/400k + 1/25k + 1/50k) for consume, decode and merge
    assert "4,400/s against 16,000/s for its measured stages in series" in rate_limit
    assert rate_limit.endswith("most of its time goes outside them")
    assert "processor side" in verdicts[-3]["limit"]  # 80 ms to the broker of a 600 ms p50
    assert verdicts[-2]["figure"] == "CPU per event 2.50 times; memory per subscriber 0.39 times"
    assert verdicts[-2]["limit"] == "CPU per event"
    assert verdicts[-1]["figure"] == "4,000 events/s; 500 MiB"
    assert verdicts[-1]["limit"] == "throughput"


def test_85_subscribers_over_a_gibibyte_are_limited_by_memory() -> None:
    data = results(fast=True)
    data["subscribers"]["85"]["worker_rss"] = 2_500 * 2**20
    verdict = assess(data)[-1]
    assert verdict["target"] == (
        "85 subscribers on one worker: ≥ 7,500 events/s in all, under 1 GiB RSS"
    )
    assert (verdict["met"], verdict["limit"]) == (False, "memory")


def test_a_cpu_bound_process_near_its_stages_names_the_slowest() -> None:
    data = results(fast=False)
    data["end_to_end"]["snapshot"]["drain_rate"] = 12_000.0
    limit = assess(data)[0]["limit"]
    assert limit.endswith("(slowest: avro_decode stage, 25,000/s)")


def test_a_machine_busy_with_other_work_is_named() -> None:
    data = results(fast=False)
    run = data["end_to_end"]["snapshot"]
    run["cpu_seconds"] = {"processor": 0.9, "connector": 0.3, "machine": 2.9}
    limit = assess(data)[0]["limit"]
    assert "machine CPU saturated: 1.93 of 2 cores busy (ours: processor 0.60, connector" in limit
    run["cpu_seconds"] = {"processor": 0.9, "connector": 0.3, "machine": 1.5}
    assert "no core saturated (processor 0.60, connector 0.20)" in assess(data)[0]["limit"]


def test_report_renders_every_section_from_the_results() -> None:
    text = render(results(fast=False), "plot.png")
    for heading in (
        "## Targets",
        "## Machine",
        "## Raw ceilings, each stage alone",
        "## End to end: a backlog of changes",
        "## End-to-end latency at fixed offered loads",
        "## Naive baseline",
        "## Subscribers: 1, 10 and 85 per worker",
        "## Peak memory per process",
        "## Not yet measured",
    ):
        assert heading in text
    assert (
        "| ≥ 14,000 changes/s end to end (snapshot) | 4,000 changes/s (20% of the 20,000 goal) "
        "| **missed** |" in text
    )
    assert "Lowest raw ceiling: pgoutput_decode stage, 25,000/s." in text
    assert (
        "| 1,000 | 999 | 10 | 10,000 | 600 ms | 900 ms | 990 ms | 30.00% | 40.00% | 80 ms |" in text
    )
    assert "![throughput, convergence and latency](plot.png)" in text
    assert "these figures are noisy" in text  # load average 2.0 at the end
    assert "| processor | 200 | 150 |" in text


def test_report_without_optional_sections() -> None:
    data = results(fast=True)
    del data["baseline"], data["solo"], data["subscribers"], data["latency"]
    text = render(data)
    assert "Not measured." in text
    assert "| p99 < 100 ms at 1,000 changes/s | not measured | not measured |" in text
    assert "## Plot" not in text
    assert "noisy" in text


def broker_run(broker: str, fast: bool) -> dict[str, Any]:
    data = results(fast)
    data["broker"] = broker
    data["machine"]["broker"] = f"{broker} 1.0"
    data["end_to_end"]["snapshot"]["cpu_seconds"] = {"broker": 0.3, "machine": 1.8}
    data["memory"]["broker"] = {"rss": 300 * 2**20, "pss": 280 * 2**20}
    return data


def test_brokers_side_by_side_each_against_its_own_ceilings() -> None:
    kafka = broker_run("kafka", fast=False)
    kafka["ceilings"]["produce"]["rate"] = 8_000.0  # below every other stage: its lowest
    del kafka["latency"]
    lines = comparison_section({"kafka": kafka, "tansu": broker_run("tansu", fast=True)})
    assert lines[0] == "|  | tansu | kafka |"  # Tansu first, whatever the order given
    for row in (
        "| broker | tansu 1.0 | kafka 1.0 |",
        "| load average, start → end | 0.10 → 2.00 | 0.10 → 2.00 |",
        "| raw produce, messages/s | 60,000 | 8,000 |",
        "| lowest raw ceiling | pgoutput_decode stage, 25,000/s | produce stage, 8,000/s |",
        "| end to end, snapshot, changes/s | 40,000 | 4,000 |",
        "| end to end, snapshot, of lowest raw ceiling | 160% | 50% |",
        "| end to end, snapshot, of raw produce ceiling | 67% | 50% |",
        "| broker cores, snapshot drain | 0.20 | 0.20 |",  # 0.3 CPU seconds in 1.5 s
        "| all processes' cores, snapshot drain | 1.20 | 1.20 |",
        "| broker cores, streaming drain | - | - |",  # not sampled in that run
        "| latency at 1,000/s, p50 / p95 / p99 | 40 ms / 70 ms / 90 ms | - |",
        "| latency at 1,000/s to the broker, p50 / p99 | 30 ms / 60 ms | - |",
        "| broker peak RSS / PSS, MiB | 300 / 280 | 300 / 280 |",
    ):
        assert row in lines


def test_report_shows_the_brokers_side_by_side_only_with_both() -> None:
    tansu, kafka = broker_run("tansu", fast=True), broker_run("kafka", fast=False)
    alone = render(kafka, brokers={"kafka": kafka})
    assert alone.startswith("# govsync benchmark, 2025-01-01 00:00 UTC (quick mode, kafka)")
    assert "## Brokers side by side" not in alone
    assert "- the embedded Tansu broker" in alone
    both = render(kafka, brokers={"tansu": tansu, "kafka": kafka})
    assert "## Brokers side by side\n\n|  | tansu | kafka |" in both
    assert "- the embedded Tansu broker" not in both
    assert "The broker is the three Kafka nodes together" in both


def test_newest_run_of_each_broker_in_the_same_mode(tmp_path: Path) -> None:
    def write(stem: str, data: dict[str, Any]) -> None:
        (tmp_path / f"{stem}.json").write_text(json.dumps(data))

    legacy = results(fast=True)  # written before runs recorded their broker: Tansu
    write("20250101T000000Z", legacy)
    write("20250102T000000Z-kafka", {**broker_run("kafka", True), "started": "old kafka"})
    write("20250103T000000Z-kafka", {**broker_run("kafka", True), "started": "new kafka"})
    write("20250104T000000Z-tansu", {**broker_run("tansu", True), "mode": "full"})
    (tmp_path / "notes.json").write_text("not json")
    newest = newest_by_broker(tmp_path, "quick")
    assert sorted(newest) == ["kafka", "tansu"]
    assert newest["kafka"]["started"] == "new kafka"
    assert newest["tansu"] == legacy


def test_the_streamed_workload_touches_each_inserted_row_at_most_once() -> None:
    """Each transaction after the first updates, re-keys and deletes disjoint ranges of the
    rows the one before inserted; the totals say what the replica ends with."""
    from contextlib import nullcontext

    from bench.workload import stream_mixed
    from sync.contracts import load_contracts

    class Recording:
        def __init__(self) -> None:
            self.params: list[dict[str, Any]] = []

        def transaction(self) -> Any:
            return nullcontext()

        def execute(self, _statement: object, params: dict[str, Any]) -> None:
            self.params.append(params)

    conn = Recording()
    done = stream_mixed(conn, load_contracts()["population.citizen"], 3_500)  # type: ignore[arg-type]
    assert (done.transactions, done.inserts, done.updates, done.key_changes, done.deletes) == (
        3,
        2_400,
        300,
        200,
        100,
    )
    assert (done.changes, done.events, done.rows, done.next_citizen) == (3_000, 3_200, 2_300, 2_400)
    touched = [(p["low"], p["high"]) for p in conn.params if "low" in p]
    assert touched[:3] == [
        ("000000000000", "000000000149"),
        ("000000000150", "000000000249"),
        ("000000000250", "000000000299"),
    ]
    assert touched[3] == ("000000001000", "000000001149")  # the second transaction's inserts
