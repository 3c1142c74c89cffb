"""Prometheus metrics of the registry, built on a registry the caller passes in.

Metrics are created per application on an injected ``CollectorRegistry`` (never the global
default), so tests can build many apps in one process and each sees only its own counts.
The ``endpoint`` label is the route's template (``/subjects/{subject}/versions``), never a
concrete subject, to keep the label set small and free of client data.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

UNMATCHED = "unmatched"  # the endpoint label of requests that matched no route


class RegistryMetrics:
    """The counters (and a latency histogram) of one registry application."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "govsync_registry_requests_total",
            "HTTP requests answered by the schema registry, by route template and status.",
            ["endpoint", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "govsync_registry_request_seconds",
            "Time to answer an HTTP request, by route template.",
            ["endpoint"],
            registry=registry,
        )
        self.registrations = Counter(
            "govsync_registry_registrations_total",
            "Schema versions newly registered (idempotent re-registrations not counted).",
            registry=registry,
        )
        self.compatibility_rejections = Counter(
            "govsync_registry_compatibility_rejections_total",
            "Registrations rejected because the schema was incompatible.",
            registry=registry,
        )

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint=endpoint, status=str(status)).inc()
        self.latency.labels(endpoint=endpoint).observe(seconds)
