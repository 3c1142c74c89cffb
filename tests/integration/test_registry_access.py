"""Access to the registry: users and roles scoped by subject prefix, HTTP Basic, the TLS
listener and client certificates, the guard on /metrics, and the append-only record of every
write, read back through ``govsync registry audit``.

Each test runs a registry process of its own, with its own users file, on its own store.
"""

from __future__ import annotations

import base64
import datetime
import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient, SchemaRegistryError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sync.stack.ports import port_open
from sync.stack.providers import StackProvider
from sync.stack.supervisor import Supervisor
from tests.fixtures.registry import own_registry, supervisor_fixture  # noqa: F401

pytestmark = [pytest.mark.integration, pytest.mark.brokerless]

SCHEMA = json.dumps(
    {
        "type": "record",
        "name": "Row",
        "namespace": "govsync.access",
        "fields": [{"name": "id", "type": "long"}],
    }
)
USERS = """# registry users
ops:c0rrect:horse:admin
pop:pop-pw:reviewer=population.,finance.
viewer:view-pw:readonly
scraper:scrape-pw:metrics
"""


def request_status(
    url: str, method: str = "GET", body: Any = None, auth: str = "", context: Any = None
) -> int:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/vnd.schemaregistry.v1+json")
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        with error:
            return int(error.code)


def start_registry(
    stack: StackProvider,
    tmp_path: Path,
    supervisor: Supervisor,
    users: str,
    **settings: str,
) -> tuple[str, str]:
    """A registry with ``users``: (its URL, its store's DSN)."""
    users_file = tmp_path / "users"
    users_file.write_text(users, encoding="utf-8")
    users_file.chmod(0o600)
    spec, url, dsn = own_registry(stack, tmp_path, "registry-access", **settings)
    spec.env["GOVSYNC_REGISTRY_USERS"] = str(users_file)
    spec.ready = lambda: port_open(int(url.rsplit(":", 1)[1]))  # /subjects now needs auth
    spec.ready_timeout = 30
    supervisor.start(spec)
    return url, dsn


def test_basic_auth(stack: StackProvider, tmp_path: Path, supervisor: Supervisor) -> None:
    url, _ = start_registry(stack, tmp_path, supervisor, USERS)
    assert request_status(f"{url}/subjects") == 401
    assert request_status(f"{url}/subjects", auth="ops:wrong") == 401
    assert request_status(f"{url}/subjects", auth="nobody:c0rrect:horse") == 401
    assert request_status(f"{url}/subjects", auth="ops:c0rrect:horse") == 200
    with SchemaRegistryClient({"url": url, "max.retries": 0}) as anonymous:
        with pytest.raises(SchemaRegistryError) as refused:
            anonymous.register_schema("auth-value", Schema(SCHEMA, "AVRO"))
        assert refused.value.http_status_code == 401
    right = {"url": url, "max.retries": 0, "basic.auth.user.info": "ops:c0rrect:horse"}
    with SchemaRegistryClient(right) as admin:
        schema_id = admin.register_schema("auth-value", Schema(SCHEMA, "AVRO"))
        assert admin.get_schema(schema_id).schema_str
    log = (tmp_path / "registry-access.log").read_text(errors="replace")
    assert "c0rrect" not in log and "pop-pw" not in log


def test_metrics_have_their_own_guard(
    stack: StackProvider, tmp_path: Path, supervisor: Supervisor
) -> None:
    url, _ = start_registry(stack, tmp_path, supervisor, USERS)
    assert request_status(f"{url}/metrics") == 401
    assert request_status(f"{url}/metrics", auth="viewer:view-pw") == 403
    assert request_status(f"{url}/metrics", auth="scraper:scrape-pw") == 200
    assert request_status(f"{url}/metrics", auth="ops:c0rrect:horse") == 200
    assert request_status(f"{url}/subjects", auth="scraper:scrape-pw") == 403  # metrics only
    supervisor.stop("registry-access")
    url, _ = start_registry(stack, tmp_path, supervisor, USERS, registry_metrics_open="true")
    assert request_status(f"{url}/metrics") == 200
    assert request_status(f"{url}/subjects") == 401


def test_roles_are_scoped_by_subject_prefix(
    stack: StackProvider, tmp_path: Path, supervisor: Supervisor
) -> None:
    url, _ = start_registry(stack, tmp_path, supervisor, USERS)
    schema = {"schema": SCHEMA}
    admin, reviewer, viewer = "ops:c0rrect:horse", "pop:pop-pw", "viewer:view-pw"

    def status(method: str, path: str, auth: str, body: Any = None) -> int:
        return request_status(f"{url}{path}", method, body, auth)

    assert status("POST", "/subjects/land.parcel-value/versions", admin, schema) == 200
    # a reviewer writes their domain's subjects, and only those
    assert status("POST", "/subjects/population.citizen-value/versions", reviewer, schema) == 200
    assert status("POST", "/subjects/finance.tax-value/versions", reviewer, schema) == 200
    assert status("POST", "/subjects/land.parcel-value/versions", reviewer, schema) == 403
    assert (
        status("PUT", "/config/population.citizen-value", reviewer, {"compatibility": "FULL"})
        == 200
    )
    assert status("PUT", "/config/land.parcel-value", reviewer, {"compatibility": "NONE"}) == 403
    assert status("DELETE", "/subjects/land.parcel-value", reviewer) == 403
    assert status("DELETE", "/subjects/finance.tax-value", reviewer) == 200
    # ... reads everything, but sets no mode and no registry-wide config
    assert status("GET", "/subjects/land.parcel-value/versions/1", reviewer) == 200
    assert status("POST", "/subjects/land.parcel-value", reviewer, schema) == 200
    assert (
        status("POST", "/compatibility/subjects/land.parcel-value/versions", reviewer, schema)
        == 200
    )
    assert status("PUT", "/config", reviewer, {"compatibility": "NONE"}) == 403
    assert status("PUT", "/mode/population.citizen-value", reviewer, {"mode": "READONLY"}) == 403
    # a reader reads, lookups and compatibility tests included
    assert status("GET", "/subjects", viewer) == 200
    assert status("POST", "/subjects/population.citizen-value", viewer, schema) == 200
    assert status("POST", "/subjects/population.citizen-value/versions", viewer, schema) == 403
    assert (
        status("PUT", "/config/population.citizen-value", viewer, {"compatibility": "NONE"}) == 403
    )
    # an admin changes the registry-wide config and mode
    assert status("PUT", "/config", admin, {"compatibility": "FULL"}) == 200
    assert status("PUT", "/mode", admin, {"mode": "READONLY"}) == 200
    assert status("PUT", "/mode", admin, {"mode": "READWRITE"}) == 200


def test_users_file_errors_name_the_line_not_the_password(tmp_path: Path) -> None:
    from click import BadParameter

    from sync.cli.registry import read_users

    path = tmp_path / "users"
    cases = {
        "ops:s3cret-value:superuser\n": "line 1",
        "ops-without-password\n": "line 1: expected name:password:role",
        "a:x:admin\na:y:admin\n": "appears twice",
        "# only a comment\n": "no users",
        "rev:s3cret-value:reviewer\n": "a reviewer has prefixes",
        "ops:s3cret-value:admin=population.\n": "a reviewer has prefixes",
    }
    for text, expected in cases.items():
        path.write_text(text, encoding="utf-8")
        with pytest.raises(BadParameter) as refused:
            read_users(path)
        assert expected in str(refused.value) and "s3cret-value" not in str(refused.value)
    path.write_text("ops:pass:with:colons:admin\nrev:pw:reviewer=a., b.\ncert::readonly\n")
    ops, rev, cert = read_users(path)
    assert (ops.name, ops.password, ops.role) == ("ops", "pass:with:colons", "admin")
    assert rev.prefixes == ("a.", "b.") and cert.password == ""
    assert "pass:with" not in repr(ops)


# -- TLS and client certificates ----------------------------------------------------------------


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _certificate(
    name: str, key: Any, issuer: tuple[x509.Name, Any] | None = None, *, ca: bool = False
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_name, issuer_key = issuer or (subject, key)
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if name == "127.0.0.1":
        import ipaddress

        san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(name))])
        builder = builder.add_extension(san, critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(directory: Path, name: str, certificate: x509.Certificate, key: Any) -> tuple[str, str]:
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


def test_tls_listener_and_client_certificates(
    stack: StackProvider, tmp_path: Path, supervisor: Supervisor
) -> None:
    pki = tmp_path / "pki"
    pki.mkdir()
    ca_key, rogue_key = _key(), _key()
    ca = _certificate("govsync test CA", ca_key, ca=True)
    rogue_ca = _certificate("rogue CA", rogue_key, ca=True)
    ca_path, _ = _write(pki, "ca", ca, ca_key)
    issuer = (ca.subject, ca_key)
    server_key, alice_key, mallory_key = _key(), _key(), _key()
    server = _write(pki, "server", _certificate("127.0.0.1", server_key, issuer), server_key)
    alice = _write(pki, "alice", _certificate("alice", alice_key, issuer), alice_key)
    mallory = _write(pki, "mallory", _certificate("mallory", mallory_key, issuer), mallory_key)
    forged = _write(
        pki, "forged", _certificate("alice", alice_key, (rogue_ca.subject, rogue_key)), alice_key
    )
    users = "ops:ops-pw:admin\nalice::reviewer=population.\n"
    url, _ = start_registry(
        stack,
        tmp_path,
        supervisor,
        users,
        registry_tls_cert=server[0],
        registry_tls_key=server[1],
        registry_tls_client_ca=ca_path,
    )
    https = url.replace("http://", "https://")
    schema = Schema(SCHEMA, "AVRO")

    def client(cert: tuple[str, str] | None = None, auth: str = "") -> SchemaRegistryClient:
        conf: dict[str, Any] = {"url": https, "max.retries": 0, "ssl.ca.location": ca_path}
        if cert:
            conf |= {"ssl.certificate.location": cert[0], "ssl.key.location": cert[1]}
        if auth:
            conf["basic.auth.user.info"] = auth
        return SchemaRegistryClient(conf)

    with client(alice) as as_alice:
        assert as_alice.register_schema("population.citizen-value", schema) > 0
        with pytest.raises(SchemaRegistryError) as refused:
            as_alice.register_schema("land.parcel-value", schema)
        assert (refused.value.http_status_code, refused.value.error_code) == (403, 40301)
    with client(auth="ops:ops-pw") as as_ops:  # Basic over TLS, no certificate
        assert as_ops.register_schema("land.parcel-value", schema) > 0
    for cert, auth in ((mallory, ""), (None, "alice:"), (None, "")):
        with client(cert, auth) as stranger, pytest.raises(SchemaRegistryError) as refused:
            stranger.get_subjects()
        assert refused.value.http_status_code == 401, (cert, auth)
    plain = ssl.create_default_context(cafile=ca_path)
    assert request_status(f"{https}/subjects", auth="ops:ops-pw", context=plain) == 200
    signed_elsewhere = ssl.create_default_context(cafile=ca_path)
    signed_elsewhere.load_cert_chain(*forged)
    with pytest.raises(OSError):  # the handshake refuses a certificate of another CA
        request_status(f"{https}/subjects", context=signed_elsewhere)
    with pytest.raises(OSError):  # plain HTTP gets no answer from an HTTPS-only listener
        urllib.request.urlopen(f"{url}/subjects", timeout=10)


# -- the record of writes -----------------------------------------------------------------------


def test_every_write_is_recorded_and_the_record_only_grows(
    stack: StackProvider, tmp_path: Path, supervisor: Supervisor
) -> None:
    from sync.cli.registry import registry

    url, dsn = start_registry(stack, tmp_path, supervisor, USERS)
    schema = {"schema": SCHEMA}
    ops, pop = "ops:c0rrect:horse", "pop:pop-pw"
    subject = "population.citizen-value"
    writes = [
        ("POST", f"/subjects/{subject}/versions", pop, schema, 200),
        ("POST", f"/subjects/{subject}/versions", pop, schema, 200),  # already there: no write
        ("PUT", f"/config/{subject}", pop, {"compatibility": "FULL"}, 200),
        ("POST", "/subjects/land.parcel-value/versions", pop, schema, 403),  # refused: no write
        ("PUT", "/mode", ops, {"mode": "READONLY"}, 200),
        ("PUT", "/mode", ops, {"mode": "READWRITE"}, 200),
        ("DELETE", f"/subjects/{subject}", ops, None, 200),
    ]
    for method, path, auth, body, expected in writes:
        assert request_status(f"{url}{path}", method, body, auth) == expected, path

    result = CliRunner().invoke(registry, ["audit", "--dsn", dsn, "--json"])
    assert result.exit_code == 0, result.output
    entries = json.loads(result.output)
    assert [(e["principal"], e["action"], e["subject"]) for e in entries] == [
        ("pop", "register", subject),
        ("pop", "set_compatibility", subject),
        ("ops", "set_mode", None),
        ("ops", "set_mode", None),
        ("ops", "delete_subject", subject),
    ]
    assert entries[0]["detail"] == {"version": 1, "id": 1}
    assert entries[2]["detail"] == {"mode": "READONLY", "force": False}
    assert entries[4]["detail"] == {"versions": [1], "permanent": False}
    assert all(e["address"] == "127.0.0.1" for e in entries)
    assert entries == sorted(entries, key=lambda e: e["at"])

    mine = CliRunner().invoke(registry, ["audit", "--dsn", dsn, "--json", "--user", "pop"])
    assert [e["action"] for e in json.loads(mine.output)] == ["register", "set_compatibility"]
    wide = CliRunner(env={"COLUMNS": "250"})
    table = wide.invoke(registry, ["audit", "--dsn", dsn, "--subject", "population."])
    assert (
        table.exit_code == 0 and "delete_subject" in table.output and "set_mode" not in table.output
    )

    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in (
            "UPDATE registry.audit SET principal = 'someone else'",
            "DELETE FROM registry.audit",
            "TRUNCATE registry.audit",
        ):
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                conn.execute(statement)
        count = conn.execute("SELECT count(*) FROM registry.audit").fetchone()
        assert count == (5,)
