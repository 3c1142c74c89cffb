"""The snapshot-memory mode's summary and report, on made-up samples."""

from __future__ import annotations

from typing import Any

from bench.snapshot_memory import MIB, render, summarise


def _samples(rows: int, steps: int, processor_growth: int) -> list[dict[str, float]]:
    samples = []
    for i in range(steps + 1):
        done = rows * i / steps
        samples.append(
            {
                "t": 10.0 * i,
                "produced": min(rows, done * 1.1),
                "applied": done,
                "connector_rss": 100 * MIB,
                "processor_rss": 150 * MIB + processor_growth * i // steps,
                "broker_rss": 200 * MIB + int(done) * 300,
            }
        )
    return samples


def _results(rows: int, samples: list[dict[str, float]]) -> dict[str, Any]:
    results: dict[str, Any] = {
        "rows": rows,
        "samples": samples,
        "broker": "tansu",
        "started": "2026-12-03 12:00 UTC",
        "machine": {"cores": 2, "cpu": "a CPU"},
        "load_average": [0.1, 0.1, 0.1],
        "load_average_end": [2.0, 2.0, 2.0],
        "load_seconds": 30.0,
    }
    results["summary"] = summarise(results)
    return results


def test_memory_is_read_at_each_tenth_of_the_rows() -> None:
    results = _results(1_000_000, _samples(1_000_000, 100, 0))
    tenths = results["summary"]["tenths"]
    assert [t["tenth"] for t in tenths] == list(range(1, 11))
    assert [t["applied"] for t in tenths] == [100_000 * k for k in range(1, 11)]
    assert results["summary"]["rate"] == 1_000_000 / 1_000


def test_growth_is_from_the_first_tenth_to_the_end() -> None:
    results = _results(1_000_000, _samples(1_000_000, 100, 90 * MIB))
    growth = results["summary"]["growth_rss"]
    assert growth["connector"] == 0
    assert growth["processor"] == 81 * MIB  # 90 MiB over the whole run, 9/10 of it after 10%
    assert results["summary"]["peak_rss"]["processor"] == 240 * MIB


def test_report_names_each_process_with_its_growth_per_million_rows() -> None:
    text = render(_results(2_000_000, _samples(2_000_000, 50, 18 * MIB)))
    assert "2,000,000 rows" in text
    processor = next(line for line in text.splitlines() if line.startswith("| processor |"))
    # 18 MiB * 9/10 over 1.8 million rows: +16 MiB, +9.0 per million
    assert processor.split("|")[3].strip() == "+16"
    assert processor.split("|")[4].strip() == "+9.0"
