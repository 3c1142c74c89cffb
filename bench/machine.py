"""What the figures were measured on."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import psycopg

from sync.stack.broker import Broker, tansu_binary
from sync.stack.kafka import KafkaCluster

PACKAGES = ("confluent-kafka", "faust-streaming", "psycopg", "fastavro")


def describe_machine(postgres_dsn: str, broker: Broker) -> dict[str, object]:
    return {
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_gib": round(_meminfo_kib("MemTotal") / 2**20, 1),
        "os": f"{platform.system()} {platform.machine()}",
        "python": platform.python_version(),
        "postgresql": _postgres_version(postgres_dsn),
        "broker": describe_broker(broker),
        "load_average": load_average(),
        "packages": {name: _version(name) for name in PACKAGES},
    }


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _meminfo_kib(field: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == field:
            return int(value.split()[0])
    return 0


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _postgres_version(dsn: str) -> str:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "unknown"


def describe_broker(broker: Broker) -> str:
    """Which broker, its version, and how it keeps and replicates topics."""
    if isinstance(broker, KafkaCluster):
        durability = broker.durability
        return (
            f"Apache Kafka {broker.version}: {len(broker.nodes)} KRaft nodes, replication "
            f"factor {durability.replication}, min.insync.replicas={durability.min_insync}"
        )
    done = subprocess.run(
        [str(tansu_binary()), "--version"], capture_output=True, text=True, timeout=10
    )
    return f"{done.stdout.strip() or 'Tansu, version unknown'}, storage {broker.storage}"


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"
