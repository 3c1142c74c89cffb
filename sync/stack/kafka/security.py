"""A secure embedded Kafka cluster: TLS everywhere, SCRAM-SHA-512 principals for clients, and
the ACLs of :mod:`sync.stack.kafka.acls` enforced by KRaft's own authorizer.

Listeners, per node:

- ``CLIENT`` (SASL_SSL, SCRAM-SHA-512): every govsync process and the admin. TLS proves the
  broker to the client (a certificate for 127.0.0.1 from the cluster's own CA); SCRAM proves
  the client to the broker without its password crossing the wire.
- ``INTERNAL`` (SSL, client certificates required) between brokers, and ``CONTROLLER`` (the
  same) to the KRaft quorum. A controller listener cannot use SCRAM: the credentials live in
  the metadata log the controllers serve, so they are not there to check before a quorum
  forms. Mutual TLS needs nothing from the metadata, is the same for both listeners, and keeps
  every password out of ``server.properties``: a node is ``User:kafka-<id>`` by its
  certificate's common name, and the nodes and ``User:admin`` are the only super users.

Material lives under the cluster's ``security/`` directory (mode 0700): ``ca.pem`` (what clients
trust), the CA's key, one key-and-chain file per node, and one password file per SCRAM user
(mode 0600 each), made on first use and kept across restarts. Node certificates are made anew
on every :meth:`KafkaSecurity.prepare`, so they never outlive the CA's trust by accident.

The admin's SCRAM credential is written into the metadata when a node is formatted (the storage
tool's ``--add-scram``); it is the one credential that must exist before any client can
connect. The principals' credentials and their ACLs are created through the admin API once the
cluster is ready (:meth:`KafkaSecurity.provision`), so a changed manifest needs no new format.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialAlteration,
    UserScramCredentialUpsertion,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sync.errors import StackError
from sync.stack.kafka.acls import Grant, PrincipalAcls
from sync.stack.kafka.properties import KafkaNode
from sync.stack.ports import LOOPBACK

ADMIN = "admin"
MECHANISM = "SCRAM-SHA-512"
SCRAM_ITERATIONS = 8192
AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
SCRAM_LOGIN = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
CA_DAYS, NODE_DAYS = 3650, 365


@dataclass(frozen=True)
class KafkaSecurity:
    """The secure cluster's material under ``directory`` and what nodes and clients are told."""

    directory: Path
    principals: tuple[PrincipalAcls, ...] = ()

    @property
    def ca_file(self) -> Path:
        """The CA certificate every client trusts."""
        return self.directory / "ca.pem"

    @property
    def users(self) -> tuple[str, ...]:
        return (ADMIN, *(p.user for p in self.principals))

    def keystore(self, node: KafkaNode) -> Path:
        return self.directory / f"{node.name}.pem"

    def password_file(self, user: str) -> Path:
        if user not in self.users:
            raise StackError(f"the Kafka cluster has no principal {user!r}")
        return self.directory / "passwords" / user

    def password(self, user: str) -> str:
        return self.password_file(user).read_text(encoding="ascii").strip()

    def prepare(self, nodes: Sequence[KafkaNode]) -> None:
        """Make what is missing: the CA, the passwords; and every node's certificate."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        (self.directory / "passwords").mkdir(exist_ok=True, mode=0o700)
        ca_key_file = self.directory / "ca-key.pem"
        if not (self.ca_file.exists() and ca_key_file.exists()):
            key = ec.generate_private_key(ec.SECP256R1())
            certificate = _certificate("govsync embedded Kafka CA", key, None, key, CA_DAYS)
            write_private(ca_key_file, _key_pem(key))
            self.ca_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        ca_key = serialization.load_pem_private_key(ca_key_file.read_bytes(), None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        ca = x509.load_pem_x509_certificate(self.ca_file.read_bytes())
        for node in nodes:
            key = ec.generate_private_key(ec.SECP256R1())
            certificate = _certificate(node.name, key, ca, ca_key, NODE_DAYS)
            chain = certificate.public_bytes(serialization.Encoding.PEM) + self.ca_file.read_bytes()
            self.keystore(node).unlink(missing_ok=True)
            write_private(self.keystore(node), _key_pem(key) + chain)
        for user in self.users:
            if not self.password_file(user).exists():
                write_private(self.password_file(user), secrets.token_urlsafe(32).encode())

    def format_arguments(self) -> list[str]:
        """The storage tool's arguments that bootstrap the admin's credential. The password is
        on that command line for the seconds the tool runs, on this machine only."""
        credential = f"name={ADMIN},password={self.password(ADMIN)},iterations={SCRAM_ITERATIONS}"
        return ["--add-scram", f"{MECHANISM}=[{credential}]"]

    def node_properties(self, node: KafkaNode, nodes: Sequence[KafkaNode]) -> dict[str, str]:
        """What a node's ``server.properties`` says beyond (and instead of) the plaintext one."""
        client = f"CLIENT://{LOOPBACK}:{node.broker_port}"
        internal = f"INTERNAL://{LOOPBACK}:{node.internal_port}"
        super_users = [f"User:{ADMIN}", *(f"User:{n.name}" for n in nodes)]
        return {
            "listeners": f"{client},{internal},CONTROLLER://{LOOPBACK}:{node.controller_port}",
            "advertised.listeners": f"{client},{internal}",
            "listener.security.protocol.map": "CLIENT:SASL_SSL,INTERNAL:SSL,CONTROLLER:SSL",
            "inter.broker.listener.name": "INTERNAL",
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(self.keystore(node)),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.ca_file),
            "ssl.endpoint.identification.algorithm": "https",
            "listener.name.internal.ssl.client.auth": "required",
            "listener.name.controller.ssl.client.auth": "required",
            # CN=kafka-2 -> User:kafka-2 (node certificates carry a common name only)
            "ssl.principal.mapping.rules": "RULE:^CN=([^,]+)$/$1/,DEFAULT",
            "sasl.enabled.mechanisms": MECHANISM,
            "listener.name.client.sasl.enabled.mechanisms": MECHANISM,
            "listener.name.client.scram-sha-512.sasl.jaas.config": SCRAM_LOGIN,
            "authorizer.class.name": AUTHORIZER,
            "super.users": ";".join(super_users),
            "allow.everyone.if.no.acl.found": "false",
        }

    def client_config(self, bootstrap: str, user: str = ADMIN) -> dict[str, str]:
        """confluent-kafka settings to connect as ``user``."""
        return {
            "bootstrap.servers": bootstrap,
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": MECHANISM,
            "sasl.username": user,
            "sasl.password": self.password(user),
            "ssl.ca.location": str(self.ca_file),
        }

    def client_env(self, user: str) -> dict[str, str]:
        """The same as ``GOVSYNC_*`` variables for a govsync process (:mod:`sync.config`):
        the password stays in its file."""
        return {
            "GOVSYNC_SECURITY_PROTOCOL": "SASL_SSL",
            "GOVSYNC_SASL_MECHANISM": MECHANISM,
            "GOVSYNC_SASL_USERNAME": user,
            "GOVSYNC_SASL_PASSWORD_FILE": str(self.password_file(user)),
            "GOVSYNC_SSL_CA_LOCATION": str(self.ca_file),
        }

    def provision(self, admin_config: Mapping[str, str]) -> None:
        """Create (or update) every principal's SCRAM credential and ACLs, as the admin.
        ACLs of principals no longer in the manifest are left for an operator to remove."""
        admin = AdminClient({**admin_config})
        mechanism = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
        upserts: list[UserScramCredentialAlteration] = [
            UserScramCredentialUpsertion(p.user, mechanism, self.password(p.user).encode())
            for p in self.principals
        ]
        bindings = [_binding(p, g) for p in self.principals for g in sorted(p.grants)]
        try:
            if upserts:
                for future in admin.alter_user_scram_credentials(upserts).values():
                    future.result(timeout=30)
            if bindings:
                for future in admin.create_acls(bindings, request_timeout=30).values():
                    future.result(timeout=30)
        except KafkaException as exc:
            raise StackError(f"creating the Kafka principals and their ACLs failed: {exc}") from exc


def _binding(principal: PrincipalAcls, grant: Grant) -> AclBinding:
    return AclBinding(
        ResourceType[grant.resource.name],
        grant.name,
        ResourcePatternType.LITERAL,
        principal.principal,
        "*",
        AclOperation[grant.operation.name],
        AclPermissionType.ALLOW,
    )


def _certificate(
    name: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    days: int,
) -> x509.Certificate:
    """The CA's self-signed certificate (``issuer`` None), or a node's for 127.0.0.1 and
    localhost, valid as a server and as a client (brokers connect to each other)."""
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject if issuer is None else issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is None:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=True, path_length=0), critical=True
        ).add_extension(_key_usage(signs_certificates=True), critical=True)
    else:
        builder = (
            builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(signs_certificates=False), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address(LOOPBACK)), x509.DNSName("localhost")]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                critical=False,
            )
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _key_usage(*, signs_certificates: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=not signs_certificates,
        key_cert_sign=signs_certificates,
        crl_sign=signs_certificates,
        encipher_only=False,
        decipher_only=False,
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """PKCS#8, unencrypted: Kafka's PEM key store reads it without ``ssl.key.password``; the
    file's mode protects it."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_private(path: Path, data: bytes) -> None:
    """Create ``path`` readable by its owner only, before anything is written into it."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
