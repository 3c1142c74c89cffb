"""``govsync up --broker kafka --secure`` as the federation wires it, without starting it: a
secure cluster with the manifest's principals, each connector and processor told its own
credential through ``GOVSYNC_*`` settings, and no security asked of the Tansu broker."""

from __future__ import annotations

from pathlib import Path

import pytest

from sync.config import ConnectorSettings
from sync.errors import ConfigError
from sync.stack.federation import EmbeddedFederation, FederationOptions
from sync.stack.kafka import KafkaCluster


def test_a_secure_federation_runs_a_secure_cluster_with_a_principal_per_process(
    tmp_path: Path,
) -> None:
    federation = EmbeddedFederation(FederationOptions(tmp_path, broker="kafka", secure=True))
    assert isinstance(federation.broker, KafkaCluster)
    security = federation.security
    assert security is not None
    users = set(security.users)
    assert {f"connector-{source}" for source in federation.sources} < users
    assert {f"processor-{agency}" for agency in federation.subscribers} < users
    security.prepare(federation.broker.nodes)
    assert federation.admin == federation.broker.client_config("admin")


def test_a_connector_is_told_its_own_credential_and_the_ca(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    federation = EmbeddedFederation(FederationOptions(tmp_path, broker="kafka", secure=True))
    assert isinstance(federation.broker, KafkaCluster) and federation.security is not None
    federation.security.prepare(federation.broker.nodes)
    for name, value in federation.credentials("connector-land").items():
        monkeypatch.setenv(name, value)
    settings = ConnectorSettings(
        bootstrap=federation.broker.bootstrap,
        registry_url="http://registry",
        source="land",
        source_dsn="dbname=land",
    )
    config = settings.client_config()
    assert config["sasl.username"] == "connector-land"
    assert config["sasl.password"] == federation.security.password("connector-land")
    assert config["ssl.ca.location"] == str(federation.security.ca_file)


def test_a_plaintext_federation_gives_no_credentials(tmp_path: Path) -> None:
    federation = EmbeddedFederation(FederationOptions(tmp_path, broker="kafka"))
    assert federation.security is None
    assert federation.credentials("connector-land") == {}
    assert federation.admin == {"bootstrap.servers": federation.broker.bootstrap}


def test_security_is_refused_on_the_tansu_broker(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--broker kafka"):
        EmbeddedFederation(FederationOptions(tmp_path, secure=True))
