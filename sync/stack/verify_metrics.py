"""The outcome of a ``govsync verify`` run as Prometheus metrics, pushed to a Pushgateway.

A run that compared every replica replaces the job's whole group, so an agency no longer
verified leaves it. A run that failed adds only its end time: the gateway keeps the last
compared results and the time of that success, which the alert on a stale verify reads.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, push_to_gateway, pushadd_to_gateway

from sync.metrics import VerifyMetrics
from sync.stack.verification import ReplicaReport

JOB = "govsync-verify"
ALL = "all"  # the scope of a run over every replica


def verify_registry(
    reports: Sequence[ReplicaReport] | None, finished_at: float
) -> tuple[CollectorRegistry, bool]:
    """The run's metrics on a fresh registry, and whether the run compared anything:
    ``reports`` is None when it failed before the end; an empty list compared nothing."""
    registry = CollectorRegistry()
    metrics = VerifyMetrics.create(registry)
    metrics.last_run_timestamp.set(finished_at)
    if not reports:
        # pushed with pushadd, which replaces every metric it names, even one without samples
        # or at 0: only the run's end time may go
        for kept in (
            metrics.tables_unequal,
            metrics.rows_differing,
            metrics.last_success_timestamp,
        ):
            registry.unregister(kept)
        return registry, False
    for report in reports:
        metrics.tables_unequal.labels(report.agency).set(
            sum(1 for t in report.tables if not t.equal)
        )
        for table in report.tables:
            differing = len(table.missing) + len(table.extra) + len(table.different)
            metrics.rows_differing.labels(report.agency, table.name).set(differing)
    metrics.last_success_timestamp.set(finished_at)
    return registry, True


def push_outcome(
    gateway: str,
    reports: Sequence[ReplicaReport] | None,
    finished_at: float,
    agency: str | None = None,
) -> None:
    """Push the run's outcome under job ``govsync-verify``, grouped by ``scope`` (the
    agency verified, or ``all``) so that runs of one agency and of all keep their own."""
    registry, compared = verify_registry(reports, finished_at)
    grouping = {"scope": agency or ALL}
    push = push_to_gateway if compared else pushadd_to_gateway
    push(gateway, job=JOB, registry=registry, grouping_key=grouping)
