"""How much work each mode does."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    mode: str
    backlog: int  # source changes of each end-to-end backlog run
    drained: int  # events the solo subscriber applies against the naive baseline (≤ backlog)
    scaled: int  # events each subscriber applies in the 1 / 10 / 85 subscriber runs
    ceiling_rows: int  # rows or events of each raw-ceiling measurement
    latency_rates: tuple[int, ...]  # offered loads, changes per second
    latency_seconds: float  # how long each offered load runs
    baseline_seconds: float  # the naive consumer runs at most this long
    converge_timeout: float  # a run that has not converged by then fails

    @property
    def poll_interval(self) -> float:
        """How often the replica's ``count(*)`` is read while waiting for convergence: on a
        million rows each count costs tens of milliseconds of a core, so less often."""
        return 0.2 if self.backlog <= 100_000 else 1.0


QUICK = Sizes(
    mode="quick",
    backlog=50_000,
    drained=20_000,
    scaled=2_000,
    ceiling_rows=20_000,
    latency_rates=(100, 1_000),
    latency_seconds=10.0,
    baseline_seconds=3.0,
    converge_timeout=600.0,  # a guard against a stuck run, wide enough for a busy machine
)
FULL = Sizes(
    mode="full",
    backlog=1_000_000,
    drained=500_000,
    scaled=20_000,
    ceiling_rows=200_000,
    latency_rates=(100, 1_000, 5_000),
    latency_seconds=30.0,
    baseline_seconds=30.0,
    converge_timeout=1_800.0,
)
