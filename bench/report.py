"""The benchmark report in Markdown, rendered from the results alone (no servers needed)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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
    "updates, deletes and primary-key changes (every change measured is an insert)",
    "Apache Kafka instead of the embedded Tansu broker (which keeps topics in memory)",
    "servers on separate machines (everything here shares one machine and its cores)",
    "several connectors or source databases at once",
)


def render(results: Results, plot_name: str | None = None) -> str:
    lines = [f"# govsync benchmark, {results['started']} ({results['mode']} mode)", ""]
    lines += _preamble(results)
    lines += section("Targets", targets_section(results))
    lines += section("Machine", machine_section(results["machine"]))
    lines += section("Raw ceilings, each stage alone", ceilings_section(results))
    lines += section("End to end: a backlog of changes", end_to_end_section(results))
    lines += section("End-to-end latency at fixed offered loads", latency_section(results))
    lines += section("Naive baseline", baseline_section(results))
    lines += section("Subscribers: 1, 10 and 85 per worker", subscribers_section(results))
    lines += section("Peak memory per process", memory_section(results))
    if plot_name:
        lines += section("Plot", [f"![throughput, convergence and latency]({plot_name})", ""])
    lines += section("Not yet measured", [*(f"- {item}" for item in NOT_MEASURED), ""])
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
