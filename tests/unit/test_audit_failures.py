"""What a processor counts when the disclosure audit does not take a batch: an unreachable
store is retried, a refusing one stops the subscription, and each is counted by outcome."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest
from prometheus_client import CollectorRegistry

from sync.audit import Disclosure
from sync.contracts import load_contracts
from sync.errors import AuditError, SubscriptionStopped
from sync.metrics import ProcessorMetrics
from sync.policy import FEDERATION_FILE, Projection, load_manifest
from sync.processor import subscription as subscription_module
from sync.processor.subscription import Subscription

REPO = Path(__file__).resolve().parents[2]
CONTRACTS = load_contracts(REPO / "schemas" / "avro")
TOPIC = "business.enterprise"


def audited_subscription(registry: CollectorRegistry) -> Subscription:
    projection = Projection(
        CONTRACTS[TOPIC], load_manifest(FEDERATION_FILE, CONTRACTS).subscription("gdt", TOPIC)
    )
    unused: Any = SimpleNamespace()  # no schema is fetched, no letter is sent
    return Subscription(
        "gdt",
        "dbname=replica_gdt",
        {TOPIC: CONTRACTS[TOPIC]},
        "govsync-replica-gdt",
        schemas=unused,
        dead_letters=unused,
        metrics=ProcessorMetrics.create(registry),
        projections={TOPIC: projection},
        audit_dsn="dbname=audit",
    )


def failures(registry: CollectorRegistry, outcome: str) -> float | None:
    return registry.get_sample_value(
        "govsync_processor_audit_write_failures_total", {"agency": "gdt", "outcome": outcome}
    )


def record_failing_with(
    error: Exception, monkeypatch: pytest.MonkeyPatch
) -> tuple[CollectorRegistry, Subscription]:
    async def refuse(*_args: object, **_kwargs: object) -> None:
        raise error

    monkeypatch.setattr(subscription_module.AuditTrail, "open", refuse)
    registry = CollectorRegistry()
    return registry, audited_subscription(registry)


def disclosure() -> Disclosure:
    return SimpleNamespace()  # type: ignore[return-value]  # never read: the store is gone


def test_the_failure_counters_are_exported_at_zero_before_any_failure() -> None:
    registry = CollectorRegistry()
    audited_subscription(registry)
    assert failures(registry, "retried") == 0
    assert failures(registry, "refused") == 0


def test_an_unreachable_audit_store_is_counted_and_retried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    unreachable = psycopg.OperationalError("connection refused")
    registry, sub = record_failing_with(unreachable, monkeypatch)
    with pytest.raises(psycopg.OperationalError):
        asyncio.run(sub._record([disclosure()]))
    assert failures(registry, "retried") == 1
    assert failures(registry, "refused") == 0


def test_a_refusing_audit_store_is_counted_and_stops_the_subscription(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry, sub = record_failing_with(AuditError("chain head missing"), monkeypatch)
    with pytest.raises(SubscriptionStopped, match="disclosure audit refuses to record"):
        asyncio.run(sub._record([disclosure()]))
    assert failures(registry, "refused") == 1
    assert failures(registry, "retried") == 0
