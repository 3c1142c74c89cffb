"""The secure cluster's configuration and material, without starting it: what each node's
``server.properties`` says, the certificates the CA signs, the passwords' file modes, and the
plaintext default left as it was."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from sync.config import KafkaSettings
from sync.contracts import load_contracts
from sync.policy import FEDERATION_FILE, load_manifest
from sync.stack.kafka import KafkaCluster
from sync.stack.kafka.acls import federation_acls
from sync.stack.kafka.properties import server_properties
from sync.stack.kafka.security import KafkaSecurity


@pytest.fixture
def cluster(tmp_path: Path) -> KafkaCluster:
    contracts = load_contracts()
    principals = federation_acls(load_manifest(FEDERATION_FILE, contracts), contracts)
    return KafkaCluster.create(tmp_path / "kafka", security=principals)


@pytest.fixture
def security(cluster: KafkaCluster) -> KafkaSecurity:
    assert cluster.security is not None
    cluster.security.prepare(cluster.nodes)
    return cluster.security


def node_config(cluster: KafkaCluster, security: KafkaSecurity, index: int) -> dict[str, str]:
    node = cluster.nodes[index]
    return server_properties(node, cluster.nodes) | security.node_properties(node, cluster.nodes)


def test_clients_use_scram_over_tls_and_nodes_mutual_tls(
    cluster: KafkaCluster, security: KafkaSecurity
) -> None:
    config = node_config(cluster, security, 1)
    node = cluster.nodes[1]
    assert config["listeners"] == (
        f"CLIENT://127.0.0.1:{node.broker_port},INTERNAL://127.0.0.1:{node.internal_port},"
        f"CONTROLLER://127.0.0.1:{node.controller_port}"
    )
    assert "PLAINTEXT" not in config["listener.security.protocol.map"]
    assert config["listener.security.protocol.map"] == (
        "CLIENT:SASL_SSL,INTERNAL:SSL,CONTROLLER:SSL"
    )
    assert config["inter.broker.listener.name"] == "INTERNAL"
    assert config["listener.name.internal.ssl.client.auth"] == "required"
    assert config["listener.name.controller.ssl.client.auth"] == "required"
    assert config["listener.name.client.sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert config["ssl.keystore.type"] == config["ssl.truststore.type"] == "PEM"
    assert config["ssl.truststore.location"] == str(security.ca_file)


def test_the_standard_authorizer_denies_what_no_acl_allows(
    cluster: KafkaCluster, security: KafkaSecurity
) -> None:
    config = node_config(cluster, security, 0)
    assert config["authorizer.class.name"] == (
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    )
    assert config["allow.everyone.if.no.acl.found"] == "false"
    assert config["super.users"] == "User:admin;User:kafka-1;User:kafka-2;User:kafka-3"


def test_each_node_has_a_certificate_for_loopback_signed_by_the_cluster_ca(
    cluster: KafkaCluster, security: KafkaSecurity
) -> None:
    ca = x509.load_pem_x509_certificate(security.ca_file.read_bytes())
    ca_key = ca.public_key()
    assert isinstance(ca_key, ec.EllipticCurvePublicKey)
    for node in cluster.nodes:
        pem = security.keystore(node).read_bytes()
        assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8, as Kafka reads it
        certificate = x509.load_pem_x509_certificates(pem)[0]
        certificate.verify_directly_issued_by(ca)
        assert certificate.subject.rfc4514_string() == f"CN={node.name}"
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        assert ipaddress.ip_address("127.0.0.1") in names.value.get_values_for_type(x509.IPAddress)
        usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH} <= set(usage)


def test_keys_and_passwords_are_readable_by_their_owner_only_and_kept(
    cluster: KafkaCluster, security: KafkaSecurity
) -> None:
    secrets = [
        security.directory / "ca-key.pem",
        *(security.keystore(node) for node in cluster.nodes),
        *(security.password_file(user) for user in security.users),
    ]
    for path in secrets:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(security.directory.stat().st_mode) == 0o700
    assert "processor-gso" in security.users
    before = {user: security.password(user) for user in security.users}
    ca = security.ca_file.read_bytes()
    security.prepare(cluster.nodes)
    assert {user: security.password(user) for user in security.users} == before
    assert security.ca_file.read_bytes() == ca
    assert len(set(before.values())) == len(before)


def test_a_process_reads_its_credential_from_the_settings_the_security_gives_it(
    cluster: KafkaCluster, security: KafkaSecurity, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in security.client_env("connector-land").items():
        monkeypatch.setenv(name, value)
    settings = KafkaSettings(bootstrap=cluster.bootstrap, registry_url="http://registry")
    assert settings.client_config() == cluster.client_config("connector-land")


def test_the_admin_credential_is_bootstrapped_when_the_nodes_are_formatted(
    security: KafkaSecurity,
) -> None:
    flag, credential = security.format_arguments()
    assert flag == "--add-scram"
    assert credential.startswith("SCRAM-SHA-512=[name=admin,password=")


def test_a_cluster_is_plaintext_and_open_unless_asked(tmp_path: Path) -> None:
    plain = KafkaCluster.create(tmp_path / "kafka")
    assert plain.security is None
    assert plain.client_config() == {"bootstrap.servers": plain.bootstrap}
    config = server_properties(plain.nodes[0], plain.nodes)
    assert config["listener.security.protocol.map"] == "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    assert "authorizer.class.name" not in config
