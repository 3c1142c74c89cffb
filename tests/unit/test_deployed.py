"""``govsync --federation FILE``: the federation file's deployment section as the description
status, verify and snapshot operate on, every address from the file and no password."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sync.errors import ConfigError
from sync.policy import FEDERATION_FILE
from sync.stack.deployed import describe_federation


def test_the_repository_federation_describes_its_deployment() -> None:
    described = describe_federation(FEDERATION_FILE, {"GOVSYNC_HASH_KEYS_FILE": "/k.json"})
    assert described.bootstrap == "kafka-1:9092,kafka-2:9092,kafka-3:9092"
    assert described.registry_url == "http://registry:8081"
    assert described.manifest == str(FEDERATION_FILE) and described.hash_keys_file == "/k.json"
    source = described.database("population", "source")
    assert source.dsn == "host=postgres-sources dbname=population user=govsync_connector_population"
    assert source.dbname == "population"
    assert described.database("gso", "replica").dbname == "replica_gso"
    assert "user=govsync_replica_hanoi" in described.database("hanoi", "audit-writer").dsn
    assert described.database("", "audit").dsn.endswith("dbname=audit user=govsync_dpo")
    with pytest.raises(ConfigError):  # the land ministry publishes, subscribes to nothing
        described.database("mae", "replica")
    processes = {p.name: p for p in described.processes}
    assert processes["processor-hcmc"].metrics_url == "http://processor-hcmc:6066/metrics"
    assert processes["connector-land"].metrics_url == "http://connector-land:9400/metrics"
    assert all(p.pid == 0 for p in processes.values())
    assert "password" not in repr(described.databases).lower()


def test_a_federation_without_addresses_is_refused_naming_them(tmp_path: Path) -> None:
    federation = yaml.safe_load(FEDERATION_FILE.read_text(encoding="utf-8"))
    del federation["deployment"]["postgres"], federation["deployment"]["registry"]
    path = tmp_path / "federation.yaml"
    path.write_text(yaml.safe_dump(federation, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"deployment\.registry, deployment\.postgres not set"):
        describe_federation(path, {})


def test_a_template_without_its_placeholder_is_refused(tmp_path: Path) -> None:
    federation = yaml.safe_load(FEDERATION_FILE.read_text(encoding="utf-8"))
    federation["deployment"]["postgres"]["replicas"] = "host=db dbname=replica"
    path = tmp_path / "federation.yaml"
    path.write_text(yaml.safe_dump(federation, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"deployment.postgres.replicas.*\{agency\}"):
        describe_federation(path, {})
