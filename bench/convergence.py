"""Waiting for replicas to hold a backlog, and what happened meanwhile.

Every poll reads ``count(*)`` of each replica and, optionally, progress figures such as the
connector's produced events. CPU time per process is read when the first replica row appears
and at convergence, so the cores a process kept busy are those of the drain, without start-up.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.data import count_rows
from sync.contracts import Contract

Series = list[tuple[float, int]]


@dataclass
class Watch:
    replicas: Sequence[tuple[str, str]]  # (name, dsn)
    contract: Contract
    target: int
    timeout: float
    interval: float
    check: Callable[[], None]  # raises when the run cannot converge (a process died)
    cpu: Callable[[], dict[str, float]]
    progress: Mapping[str, Callable[[], int]] = field(default_factory=dict)


@dataclass
class Convergence:
    started: float
    target: int
    series: dict[str, Series] = field(default_factory=dict)
    progress: dict[str, Series] = field(default_factory=dict)
    first_row_at: float | None = None
    done_at: float | None = None
    cpu_first: dict[str, float] = field(default_factory=dict)
    cpu_done: dict[str, float] = field(default_factory=dict)

    def now(self) -> float:
        return round(time.perf_counter() - self.started, 3)

    def summary(self) -> dict[str, Any]:
        """Rows/s from the start, and from the first replica row on (the drain rate)."""
        assert self.done_at is not None
        first = self.first_row_at or 0.0
        drain = self.done_at - first
        return {
            "rows": self.target,
            "seconds": round(self.done_at, 3),
            "rate": self.target / self.done_at,
            "first_row_s": round(first, 3),
            "drain_rate": self.target / drain if drain > 0 else None,
            "series": self.series,
            "progress": self.progress,
            "progress_done_s": {
                name: _reached(s, self.target) for name, s in self.progress.items()
            },
            "cpu_window_s": round(drain, 3),
            "cpu_seconds": {
                role: round(used - self.cpu_first.get(role, 0.0), 2)
                for role, used in sorted(self.cpu_done.items())
            },
        }


def converge(watch: Watch, started: float) -> Convergence:
    """Poll until every replica holds ``watch.target`` rows; TimeoutError at the timeout."""
    result = Convergence(started, watch.target)
    pending = dict(watch.replicas)
    while True:
        watch.check()
        _poll_progress(watch, result)
        for name, dsn in list(pending.items()):
            count = count_rows(dsn, watch.contract)
            result.series.setdefault(name, []).append((result.now(), count))
            if count and result.first_row_at is None:
                result.first_row_at, result.cpu_first = result.now(), watch.cpu()
            if count >= watch.target:
                del pending[name]
        if not pending:
            result.done_at, result.cpu_done = result.now(), watch.cpu()
            return result
        if time.perf_counter() - started > watch.timeout:
            raise TimeoutError(f"{sorted(pending)} did not reach {watch.target} rows in time")
        time.sleep(watch.interval)


def _poll_progress(watch: Watch, result: Convergence) -> None:
    for name, read in watch.progress.items():
        try:
            value = read()
        except OSError:
            continue  # not serving yet
        result.progress.setdefault(name, []).append((result.now(), value))


def _reached(series: Series, target: int) -> float | None:
    return next((t for t, value in series if value >= target), None)
