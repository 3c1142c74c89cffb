"""Percentiles from Prometheus histogram buckets scraped before and after a measurement.

A Prometheus histogram exposes cumulative counts per upper bound (``le``). The difference of two
scrapes is the histogram of what was observed in between. A quantile is estimated the way
PromQL's ``histogram_quantile`` does it: find the bucket holding the rank, then interpolate
linearly inside it. The estimate is only as fine as the buckets, so :func:`fraction_at_most`
gives the exact share of observations at or below a bucket bound, which decides a threshold
target without interpolation.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

# (upper bound, cumulative count), sorted by bound, the last bound being +Inf
Buckets = list[tuple[float, float]]
Samples = Mapping[str, Sequence[tuple[Mapping[str, str], float]]]


def buckets_of(samples: Samples, name: str, **labels: str) -> Buckets:
    """The cumulative buckets of histogram ``name`` (without ``_bucket``) whose labels include
    ``labels``; several matching series are added up."""
    totals: dict[float, float] = {}
    for sample_labels, value in samples.get(f"{name}_bucket", ()):
        if not labels.items() <= sample_labels.items():
            continue
        bound = float(sample_labels["le"])
        totals[bound] = totals.get(bound, 0.0) + value
    return sorted(totals.items())


def difference(before: Buckets, after: Buckets) -> Buckets:
    """What was observed between two scrapes. A series absent before counts as zero."""
    earlier = dict(before)
    return [(bound, count - earlier.get(bound, 0.0)) for bound, count in after]


def total(buckets: Buckets) -> float:
    return buckets[-1][1] if buckets else 0.0


def quantile(q: float, buckets: Buckets) -> float | None:
    """The ``q`` quantile (0..1), interpolated inside its bucket; None without observations.
    A rank in the +Inf bucket answers the highest finite bound, as PromQL does."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile {q} is outside 0..1")
    count = total(buckets)
    if count <= 0:
        return None
    rank = q * count
    lower_bound, lower_count = 0.0, 0.0
    for bound, cumulative in buckets:
        if cumulative >= rank and cumulative > lower_count:
            if math.isinf(bound):
                return lower_bound
            share = (rank - lower_count) / (cumulative - lower_count)
            return lower_bound + (bound - lower_bound) * share
        lower_bound, lower_count = bound, cumulative
    return lower_bound


def fraction_at_most(limit: float, buckets: Buckets) -> float | None:
    """Exact share of observations at or below ``limit``, which must be a bucket bound."""
    count = total(buckets)
    if count <= 0:
        return None
    for bound, cumulative in buckets:
        if math.isclose(bound, limit):
            return cumulative / count
    raise ValueError(f"{limit} is not a bucket bound of this histogram")


def percentiles(buckets: Buckets, qs: Iterable[float] = (0.5, 0.95, 0.99)) -> dict[str, float]:
    """``{"p50": …, "p95": …}`` for the quantiles that have an estimate."""
    found = {f"p{round(q * 100):d}": quantile(q, buckets) for q in qs}
    return {name: value for name, value in found.items() if value is not None}
