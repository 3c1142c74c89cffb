"""One connector's capture of a workload as figures: changes per second and CPU-seconds per
1,000 changes, over the whole run and over the part of it while records flowed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

CONNECTORS = ("govsync", "debezium")


@dataclass(frozen=True)
class Capture:
    """From the connector's start until the topic held every change.

    ``cpu_seconds`` is the connector's process tree over the whole run, ``cpu_to_first`` the
    part of it before the first record reached the topic (start-up: interpreter or JVM,
    connections, slot, schema registration). ``other_cpu``: what the other servers (PostgreSQL,
    the brokers) used while records flowed."""

    connector: str
    changes: int
    seconds: float
    first_record_s: float
    cpu_seconds: float
    cpu_to_first: float
    other_cpu: dict[str, float] = field(default_factory=dict)
    record_bytes: float | None = None  # mean key + value, from a sample of the topic

    @property
    def flowing_seconds(self) -> float:
        return self.seconds - self.first_record_s

    @property
    def rate(self) -> float:
        """Changes per second from the start."""
        return self.changes / self.seconds

    @property
    def flowing_rate(self) -> float:
        """Changes per second from the first record to the last."""
        return self.changes / self.flowing_seconds

    @property
    def cpu_per_1000(self) -> float:
        return _per_1000(self.cpu_seconds, self.changes)

    @property
    def flowing_cpu_per_1000(self) -> float:
        return _per_1000(self.cpu_seconds - self.cpu_to_first, self.changes)

    def as_dict(self) -> dict[str, Any]:
        derived = {
            "flowing_seconds": round(self.flowing_seconds, 3),
            "rate": round(self.rate, 1),
            "flowing_rate": round(self.flowing_rate, 1),
            "cpu_per_1000": round(self.cpu_per_1000, 4),
            "flowing_cpu_per_1000": round(self.flowing_cpu_per_1000, 4),
            "other_cpu_per_1000": {
                role: round(_per_1000(used, self.changes), 4)
                for role, used in sorted(self.other_cpu.items())
            },
        }
        return {**asdict(self), **derived}

    @classmethod
    def from_dict(cls, stored: Mapping[str, Any]) -> Capture:
        names = cls.__dataclass_fields__
        return cls(**{key: value for key, value in stored.items() if key in names})


def _per_1000(cpu_seconds: float, changes: int) -> float:
    return cpu_seconds / changes * 1000 if changes else float("nan")


def ratios(govsync: Capture, debezium: Capture) -> dict[str, float]:
    """How govsync compares, both ways above 1 meaning govsync is ahead: its rate over
    Debezium's, and Debezium's CPU per change over its own."""
    return {
        "rate": round(govsync.flowing_rate / debezium.flowing_rate, 2),
        "cpu_efficiency": round(debezium.flowing_cpu_per_1000 / govsync.flowing_cpu_per_1000, 2),
        "rate_from_start": round(govsync.rate / debezium.rate, 2),
        "cpu_efficiency_from_start": round(debezium.cpu_per_1000 / govsync.cpu_per_1000, 2),
    }
