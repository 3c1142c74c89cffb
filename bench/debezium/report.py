"""The comparison's report: one column per workload and connector, the ratios below."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bench.debezium.figures import CONNECTORS, Capture, ratios
from bench.markdown import DASH, mebibytes, per_second, seconds, table
from bench.sampler import MACHINE

Results = Mapping[str, Any]
WORKLOADS = ("snapshot", "streaming")
_NAMES = {"govsync": "govsync", "debezium": "Debezium"}


def render(results: Results) -> str:
    machine, versions = results["machine"], results["versions"]
    lines = [
        "# govsync beside Debezium",
        "",
        f"{results['started']}, {results['changes']:,} changes per workload, each connector "
        f"alone on {machine['broker']}; PostgreSQL {machine['postgresql']}; "
        f"{machine['cores']} cores ({machine['cpu']}), {machine['memory_gib']} GiB; "
        f"load average {_load(machine['load_average'])} before, "
        f"{_load(machine.get('load_average_end'))} after.",
        "",
        f"Debezium {versions['debezium']} (PostgreSQL connector, pgoutput) in Kafka Connect "
        f"{versions['kafka_connect']} standalone, JSON without schemas, on {versions['java']}; "
        f"govsync's connector (commit {versions.get('govsync', 'unknown')}) on Python "
        f"{machine['python']}, Avro with the registry.",
        "",
        *table(_header(results), _rows(results)),
        *_ratio_lines(results),
        "While records flowed: from the first record in the topic to the last. From the start: "
        "from the connector's start (interpreter or JVM, connections, slot, registry) to the "
        "last record, acknowledged by the brokers. CPU is the connector's process tree; "
        "PostgreSQL's (its backends, the walsender decoding pgoutput included) and the "
        "brokers' (three nodes, replication factor 3) are while records flowed.",
        "",
    ]
    return "\n".join(lines)


def _load(values: object) -> str:
    return " ".join(str(v) for v in values) if isinstance(values, list) else DASH


def _captures(results: Results) -> list[tuple[str, Capture]]:
    return [
        (workload, Capture.from_dict(results["workloads"][workload][connector]))
        for workload in WORKLOADS
        if workload in results["workloads"]
        for connector in CONNECTORS
    ]


def _header(results: Results) -> list[str]:
    return ["", *(f"{_NAMES[c.connector]}, {w}" for w, c in _captures(results))]


def _rows(results: Results) -> list[list[str]]:
    captures = [c for _, c in _captures(results)]
    memory = results.get("memory", {})
    figures: list[tuple[str, Callable[[Capture], str]]] = [
        ("changes/s, while records flowed", lambda c: per_second(c.flowing_rate)),
        ("CPU-s per 1,000 changes, while records flowed", lambda c: _cpu(c.flowing_cpu_per_1000)),
        ("changes/s, from the start", lambda c: per_second(c.rate)),
        ("CPU-s per 1,000 changes, from the start", lambda c: _cpu(c.cpu_per_1000)),
        ("seconds to the first record, and CPU-s", lambda c: _start_up(c)),
        ("seconds to the last record", lambda c: seconds(c.seconds)),
        ("PostgreSQL CPU-s per 1,000 changes", lambda c: _other(c, "postgres")),
        ("brokers' CPU-s per 1,000 changes", lambda c: _other(c, "broker")),
        ("busy cores of the machine, all processes", _busy),
        ("bytes per record (key and value)", lambda c: seconds(c.record_bytes, 0)),
        ("connector's peak RSS, MiB", lambda c: mebibytes(memory.get(c.connector))),
    ]
    return [[label, *(show(c) for c in captures)] for label, show in figures]


def _ratio_lines(results: Results) -> list[str]:
    lines = []
    for workload in WORKLOADS:
        stored = results["workloads"].get(workload)
        if stored is None:
            continue
        r = ratios(Capture.from_dict(stored["govsync"]), Capture.from_dict(stored["debezium"]))
        lines.append(
            f"- {workload} (run {' then '.join(_NAMES[n] for n in stored['order'])}): govsync "
            f"captures {r['rate']:.2f} times Debezium's changes/s and "
            f"{r['cpu_efficiency']:.2f} times its changes per CPU-second while records flow; "
            f"from the start {r['rate_from_start']:.2f} and "
            f"{r['cpu_efficiency_from_start']:.2f} times."
        )
    return [*lines, ""]


def _cpu(value: float) -> str:
    return f"{value:.3f}"


def _start_up(capture: Capture) -> str:
    return f"{capture.first_record_s:.1f} s, {capture.cpu_to_first:.1f} CPU-s"


def _other(capture: Capture, role: str) -> str:
    used = capture.other_cpu.get(role)
    return _cpu(used / capture.changes * 1000) if used is not None and capture.changes else DASH


def _busy(capture: Capture) -> str:
    """Cores kept busy while records flowed, by anything on the machine: beside the cores
    available, how alone the connector was."""
    used = capture.other_cpu.get(MACHINE)
    if used is None or capture.flowing_seconds <= 0:
        return DASH
    return f"{used / capture.flowing_seconds:.2f}"
