"""Settings read from GOVSYNC_* variables, and the Kafka client configuration built from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from sync.config import ConnectorSettings, ProcessorSettings
from sync.processor.consumer import prefetch_kib

BASE = {"GOVSYNC_BOOTSTRAP": "k1:9093,k2:9093", "GOVSYNC_REGISTRY_URL": "http://r:8081"}


def test_plaintext_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {**BASE, "GOVSYNC_SOURCE": "land", "GOVSYNC_SOURCE_DSN": "x"}.items():
        monkeypatch.setenv(name, value)
    settings = ConnectorSettings()  # type: ignore[call-arg]
    assert settings.client_config() == {
        "bootstrap.servers": "k1:9093,k2:9093",
        "security.protocol": "PLAINTEXT",
    }
    assert settings.slot_name == "govsync_land" and settings.metrics_host == "127.0.0.1"


def test_sasl_ssl_reads_the_password_from_its_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cret\n")
    env = {
        **BASE,
        "GOVSYNC_AGENCY": "gdt",
        "GOVSYNC_REPLICA_DSN": "x",
        "GOVSYNC_TOPICS": '["population.citizen"]',
        "GOVSYNC_SECURITY_PROTOCOL": "SASL_SSL",
        "GOVSYNC_SASL_USERNAME": "gdt",
        "GOVSYNC_SASL_PASSWORD_FILE": str(secret),
        "GOVSYNC_SSL_CA_LOCATION": "/etc/ca.pem",
        "GOVSYNC_WEB_HOST": "0.0.0.0",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = ProcessorSettings()  # type: ignore[call-arg]
    assert settings.client_config() == {
        "bootstrap.servers": "k1:9093,k2:9093",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "gdt",
        "sasl.password": "s3cret",
        "ssl.ca.location": "/etc/ca.pem",
    }
    assert settings.topics == ("population.citizen",)
    assert settings.group_id == "govsync-replica-gdt"
    assert "s3cret" not in repr(settings)


def test_the_connectors_longest_idle_wait_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {**BASE, "GOVSYNC_SOURCE": "land", "GOVSYNC_SOURCE_DSN": "x"}.items():
        monkeypatch.setenv(name, value)
    assert ConnectorSettings().max_idle_wait == 0.4  # type: ignore[call-arg]
    monkeypatch.setenv("GOVSYNC_MAX_IDLE_WAIT", "0.05")
    assert ConnectorSettings().max_idle_wait == 0.05  # type: ignore[call-arg]
    monkeypatch.setenv("GOVSYNC_MAX_IDLE_WAIT", "0")
    with pytest.raises(ValueError, match="max_idle_wait"):
        ConnectorSettings()  # type: ignore[call-arg]


def test_the_processors_fetch_wait_is_a_setting_within_bounds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = {**BASE, "GOVSYNC_AGENCY": "gdt", "GOVSYNC_REPLICA_DSN": "x"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert ProcessorSettings().fetch_wait_ms == 25  # type: ignore[call-arg]
    monkeypatch.setenv("GOVSYNC_FETCH_WAIT_MS", "5")
    assert ProcessorSettings().fetch_wait_ms == 5  # type: ignore[call-arg]
    for refused in ("0", "-10", "1001", "0.5"):
        monkeypatch.setenv("GOVSYNC_FETCH_WAIT_MS", refused)
        with pytest.raises(ValueError, match="fetch_wait_ms"):
            ProcessorSettings()  # type: ignore[call-arg]


def test_a_workers_prefetch_budget_is_shared_among_its_agencies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = {**BASE, "GOVSYNC_AGENCY": "gdt", "GOVSYNC_REPLICA_DSN": "x"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert ProcessorSettings().prefetch_mib == 64  # type: ignore[call-arg]
    assert prefetch_kib(64, 1) == prefetch_kib(64, 10) == 4096  # each capped at 4 MiB
    assert prefetch_kib(64, 40) == 1638
    assert prefetch_kib(64, 85) == prefetch_kib(1, 2) == 1024  # never under 1 MiB
    monkeypatch.setenv("GOVSYNC_PREFETCH_MIB", "0")
    with pytest.raises(ValueError, match="prefetch_mib"):
        ProcessorSettings()  # type: ignore[call-arg]
