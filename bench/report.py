"""The benchmark report in Markdown, rendered from the results alone (no servers needed)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.compare import broker_of, comparison_section
from bench.markdown import DASH, section, table
from bench.report_sections import (
    baseline_section,
    ceilings_section,
    end_to_end_section,
    latency_section,
    memory_section,
    subscribers_section,
)
from bench.targets import assess

Results = Mapping[str, Any]

NOT_MEASURED = (
    "more than two worker processes, and more than 3 partitions per topic",
    "a snapshot of 10,000,000 rows (`python -m bench.snapshot_memory`, a mode of its own)",
    "servers on separate machines (everything here shares one machine and its cores)",
    "several connectors or source databases at once",
)
OTHER_BROKER = {
    "tansu": "Apache Kafka instead of the embedded Tansu broker, which keeps topics in memory "
    "(`--broker kafka` runs on a three-node cluster)",
    "kafka": "the embedded Tansu broker (the default `--broker tansu`)",
}


def render(
    results: Results, plot_name: str | None = None, brokers: Mapping[str, Results] | None = None
) -> str:
    """``brokers``: the newest run of each broker (this one among them); with two or more the
    report puts them side by side."""
    broker = broker_of(results)
    side_by_side = brokers if brokers is not None and len(brokers) > 1 else None
    title = f"# govsync benchmark, {results['started']} ({results['mode']} mode, {broker})"
    lines = [title, ""]
    lines += _preamble(results)
    lines += section("Targets", targets_section(results))
    lines += section("Machine", machine_section(results["machine"]))
    if side_by_side is not None:
        lines += section("Brokers side by side", comparison_section(side_by_side))
    lines += section("Raw ceilings, each stage alone", ceilings_section(results))
    lines += section("End to end: a backlog of changes", end_to_end_section(results))
    lines += section("End-to-end latency at fixed offered loads", latency_section(results))
    lines += section("Naive baseline", baseline_section(results))
    lines += section("Subscribers: 1, 10 and 85 per worker", subscribers_section(results))
    lines += section("Peak memory per process", memory_section(results))
    if plot_name:
        lines += section("Plot", [f"![throughput, convergence and latency]({plot_name})", ""])
    not_measured = list(NOT_MEASURED)
    if side_by_side is None and broker in OTHER_BROKER:
        not_measured.append(OTHER_BROKER[broker])
    lines += section("Not yet measured", [*(f"- {item}" for item in not_measured), ""])
    return "\n".join(lines)


def _preamble(results: Results) -> list[str]:
    sizes = results["sizes"]
    machine = results["machine"]
    start, end = machine.get("load_average", [0])[0], machine.get("load_average_end", [0])[0]
    lines = [
        f"Measured in {results['duration_s']:.0f} s on the machine described below: backlogs "
        f"of {sizes['backlog']:,} changes, raw ceilings on {sizes['ceiling_rows']:,} rows.",
        "",
    ]
    if max(start, end) >= 0.5:
        lines += [
            f"Other work was running (1-minute load average {start:.2f} at the start, "
            f"{end:.2f} at the end): these figures are noisy, and low rather than high.",
            "",
        ]
    return lines


def targets_section(results: Results) -> list[str]:
    verdicts = assess(results)
    rows = [(v["target"], v["figure"], _met(v["met"]), v["limit"] or DASH) for v in verdicts]
    return table(("target", "measured", "verdict", "limited by"), rows)


def _met(met: bool | None) -> str:
    return "not measured" if met is None else ("met" if met else "**missed**")


def machine_section(machine: Mapping[str, Any]) -> list[str]:
    packages = ", ".join(f"{k} {v}" for k, v in machine.get("packages", {}).items())
    rows = [
        ("cores", machine.get("cores")),
        ("CPU", machine.get("cpu")),
        ("memory", f"{machine.get('memory_gib')} GiB"),
        ("OS", machine.get("os")),
        ("Python", machine.get("python")),
        ("PostgreSQL", machine.get("postgresql")),
        ("broker", machine.get("broker")),
        ("libraries", packages),
    ]
    return table(("", ""), rows)
