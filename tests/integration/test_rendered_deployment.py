"""The production deployment rendered from federation.yaml, started on this machine with real
processes, each with exactly its rendered settings (tests/fixtures/rendered.py says what is
mapped: host names to 127.0.0.1 ports, mounted files and secrets to their files, nothing else):

PostgreSQL for the sources and the replicas (SCRAM passwords, the roles of the init scripts;
without TLS, which the server the tests run lacks),
the Apache Kafka cluster with SASL/SCRAM over TLS and the rendered ACLs, govsync's registry with
its rendered users, the audit store made by audit-init, the demo sources, the five connectors
and the five subscribing agencies' processors. It proves the deployment enforces the federation
file: the statistics office's replica holds no names and no raw ids, Hanoi's only its
province, every applied record is in the disclosure audit, the registry refuses an anonymous
DELETE, and ``govsync --federation FILE verify`` passes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from cryptography.hazmat.primitives import serialization

from sync.errors import StackError
from sync.stack.kafka import KafkaCluster
from sync.stack.ports import free_port
from tests.fixtures.registry import http
from tests.fixtures.rendered import (
    COMPOSE_DIR,
    ROOT,
    Hosts,
    RenderedDeployment,
    create_topics,
    generate_secrets,
    load_services,
    principals_of,
    redirect_secrets,
    start_postgres,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.kafka, pytest.mark.timeout(900)]

CITIZENS = 300  # the demo profile loads 3,000; the scale is not a setting of the product
HBA = COMPOSE_DIR / "postgres" / "pg_hba.conf"


@pytest.fixture(scope="module")
def deployment(server_dir: Path) -> Iterator[RenderedDeployment]:
    root = server_dir / "rendered"
    secrets = root / "secrets"
    generate_secrets(secrets)
    services, secret_files = load_services()
    secret_files = redirect_secrets(secret_files, secrets)

    principals = principals_of(COMPOSE_DIR / "kafka" / "acls.txt")
    cluster = KafkaCluster.create(root / "kafka", security=principals)
    assert cluster.security is not None
    passwords = cluster.security.directory / "passwords"
    passwords.mkdir(parents=True, mode=0o700)
    for principal in principals:  # each principal logs in with the password generate.sh wrote
        path = passwords / principal.user
        path.write_text(secret_files[f"kafka-{principal.user}"].read_text().strip())
        path.chmod(0o600)
    cluster.prepare()
    # the brokers' certificates name 127.0.0.1, so the CA that issued them is the `ca` secret
    secret_files["ca"].write_bytes(cluster.security.ca_file.read_bytes())

    hosts = Hosts(
        {f"kafka-{node.node_id}:9092": node.address for node in cluster.nodes},
        registry_port=free_port(),
        sources_port=free_port(),
        replicas_port=free_port(),
    )
    deployment = RenderedDeployment(root, services, secret_files, hosts)
    deployment.ports["govsync-registry"] = hosts.registry_port
    try:
        for name, port in (
            ("postgres-sources", hosts.sources_port),
            ("postgres-replicas", hosts.replicas_port),
        ):
            superuser = f"{name}-superuser"
            start_postgres(deployment, name, port, superuser, HBA)
            script = services[name].volumes["/docker-entrypoint-initdb.d/10-govsync.sh"]
            deployment.run_job(
                ["bash", str(script)], services[name], deployment.psql_env(port, superuser)
            )
        cluster.start(deployment.supervisor, root / "logs")
        create_topics(cluster.client_config(), COMPOSE_DIR / "kafka" / "topics.txt")
        deployment.start("govsync-registry")
        audit_init = services["audit-init"]
        deployment.run_job(
            ["sh", str(audit_init.volumes["/etc/govsync/audit-init.sh"])], audit_init, {}
        )
        demo = services["demo"]
        deployment.run_job(
            [sys.executable, str(demo.volumes["/etc/govsync/demo/load.py"])],
            demo,
            {
                "SOURCES_PORT": str(hosts.sources_port),
                "SECRETS_DIR": str(secrets),
                "DEMO_CITIZENS": str(CITIZENS),
            },
        )
        for name in services:
            if name.startswith(("connector-", "processor-")):
                deployment.start(name)
        yield deployment
    finally:
        deployment.supervisor.kill_all()


def superuser_dsn(deployment: RenderedDeployment, server: str, dbname: str) -> str:
    port = {"sources": deployment.hosts.sources_port, "replicas": deployment.hosts.replicas_port}
    password = deployment.secret(f"postgres-{server}-superuser").read_text().strip()
    return psycopg.conninfo.make_conninfo(
        host="127.0.0.1",
        port=port[server],
        dbname=dbname,
        user="postgres",
        password=password,
    )


def rows(dsn: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query).fetchall()


@pytest.fixture(scope="module")
def operator(deployment: RenderedDeployment) -> tuple[list[str], dict[str, str]]:
    """How an operator runs ``govsync --federation FILE``: the federation file with its host
    names mapped; libpq's password file with the connectors', the replica writers' and the
    data protection officer's roles; the statistics office's hash keys (its replica is
    pseudonymised)."""
    root = deployment.root / "operator"
    root.mkdir(exist_ok=True)
    federation = root / "federation.yaml"
    text = (ROOT / "federation.yaml").read_text(encoding="utf-8")
    federation.write_text(deployment.hosts.map(text), encoding="utf-8")
    sources, replicas = deployment.hosts.sources_port, deployment.hosts.replicas_port
    lines = {f"127.0.0.1:{replicas}:audit:govsync_dpo:{deployment.secret('pg-dpo').read_text()}"}
    for service in deployment.services.values():
        for secret in service.secrets.values():
            if secret.startswith(("pg-connector-", "pg-replica-")):
                port = sources if secret.startswith("pg-connector-") else replicas
                role = secret.replace("pg-", "govsync_", 1).replace("-", "_")
                password = deployment.secret(secret).read_text().strip()
                lines.add(f"127.0.0.1:{port}:*:{role}:{password}")
    passfile = root / "pgpass"
    passfile.write_text("".join(f"{line.strip()}\n" for line in sorted(lines)))
    passfile.chmod(0o600)
    environment = {
        **os.environ,
        "PGPASSFILE": str(passfile),
        "GOVSYNC_HASH_KEYS_FILE": str(deployment.secret("hash-keys-gso")),
    }
    return [sys.executable, "-m", "sync.cli", "--federation", str(federation)], environment


@pytest.fixture(scope="module")
def verified(operator: tuple[list[str], dict[str, str]]) -> str:
    """``govsync --federation FILE verify`` until it passes."""
    command, environment = operator
    outcome: list[subprocess.CompletedProcess[str]] = []

    def passes() -> bool:
        run = subprocess.run([*command, "verify"], env=environment, capture_output=True, text=True)
        outcome[:] = [run]
        return run.returncode == 0

    try:
        wait_for(passes, "govsync --federation verify to pass", timeout=300)
    except StackError as exc:
        last = outcome[0] if outcome else None
        output = last.stdout + last.stderr if last else ""
        raise AssertionError(f"verify never passed: {output}") from exc
    return outcome[0].stdout


def test_govsync_federation_verify_passes_on_every_replica(verified: str) -> None:
    for agency in ("gdt", "vss", "gso", "hanoi", "hcmc"):
        assert agency in verified


def test_the_statistics_office_holds_no_names_and_no_raw_ids(
    deployment: RenderedDeployment, verified: str
) -> None:
    replica = superuser_dsn(deployment, "replicas", "replica_gso")
    columns = {
        name
        for (name,) in rows(
            replica,
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = 'population' AND table_name = 'citizen'",
        )
    }
    assert "personal_id" in columns and not columns & {"full_name", "ethnicity", "religion"}
    held = {pid for (pid,) in rows(replica, "SELECT personal_id FROM population.citizen")}
    source = superuser_dsn(deployment, "sources", "population")
    raw = {pid for (pid,) in rows(source, "SELECT personal_id FROM public.citizen")}
    assert len(held) == len(raw) == CITIZENS and not held & raw


def test_hanoi_holds_only_its_own_province(deployment: RenderedDeployment, verified: str) -> None:
    replica = superuser_dsn(deployment, "replicas", "replica_hanoi")
    held = rows(replica, "SELECT province_code, count(*) FROM population.citizen GROUP BY 1")
    source = superuser_dsn(deployment, "sources", "population")
    (residents,) = rows(source, "SELECT count(*) FROM public.citizen WHERE province_code = '01'")
    count = int(str(residents[0]))
    assert held == [("01", count)] and count > 0


def test_every_applied_record_is_in_the_disclosure_audit(
    deployment: RenderedDeployment, verified: str
) -> None:
    audit = superuser_dsn(deployment, "replicas", "audit")
    disclosed = {
        (agency, topic, lsn, index)
        for agency, topic, lsn, index in rows(
            audit,
            "SELECT agency, topic, source_lsn::pg_lsn::text, source_index "
            "FROM govsync_audit.disclosure",
        )
    }
    checked = 0
    for agency, topic, schema, table in (
        ("gso", "population.citizen", "population", "citizen"),
        ("hanoi", "population.citizen", "population", "citizen"),
        ("hanoi", "land.land_parcel", "land", "land_parcel"),
        ("vss", "business.enterprise", "business", "enterprise"),
    ):
        replica = superuser_dsn(deployment, "replicas", f"replica_{agency}")
        for lsn, index in rows(
            replica, f"SELECT _source_lsn::text, _source_index FROM {schema}.{table}"
        ):
            assert (agency, topic, lsn, index) in disclosed, (agency, topic, lsn, index)
            checked += 1
    assert checked > CITIZENS


def registry_request(
    deployment: RenderedDeployment, method: str, path: str, user: str | None = None
) -> int:
    credentials = None
    if user is not None:
        credentials = (user, deployment.secret(f"registry-{user}").read_text().strip())
    url = f"http://127.0.0.1:{deployment.hosts.registry_port}"
    return http(url, method, path, basic_auth=credentials)[0]


def test_the_registry_refuses_anonymous_and_foreign_writes(
    deployment: RenderedDeployment, verified: str
) -> None:
    subject = "/subjects/population.citizen-value"
    assert registry_request(deployment, "GET", subject + "/versions") == 401
    assert registry_request(deployment, "DELETE", subject) == 401
    processor = "govsync-processor-gso"
    assert registry_request(deployment, "GET", subject + "/versions", processor) == 200
    assert registry_request(deployment, "DELETE", subject, processor) == 403
    # a connector reviews its own source's subjects, not another's
    assert registry_request(deployment, "DELETE", subject, "govsync-connector-land") == 403
    assert registry_request(deployment, "PUT", "/mode", "govsync-connector-population") == 403
    versions = registry_request(deployment, "GET", subject + "/versions", processor)
    assert versions == 200, "the subject is still there"


def test_the_data_protection_officer_verifies_the_audit_through_the_federation_file(
    deployment: RenderedDeployment, operator: tuple[list[str], dict[str, str]], verified: str
) -> None:
    """Every chain walks whole and ends signed by its processor's key (generate.sh wrote the
    keys; the officer trusts their public halves)."""
    command, environment = operator
    trusted = deployment.root / "operator" / "trusted-keys.pem"
    public = []
    for agency in ("gdt", "vss", "gso", "hanoi", "hcmc"):
        pem = deployment.secret(f"audit-signing-{agency}").read_bytes()
        key = serialization.load_pem_private_key(pem, None)
        public.append(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    trusted.write_bytes(b"".join(public))
    audited = subprocess.run(
        [*command, "audit", "verify", "--trusted-keys", str(trusted)],
        env=environment,
        capture_output=True,
        text=True,
    )
    assert audited.returncode == 0, audited.stdout + audited.stderr
    for agency in ("gdt", "vss", "gso", "hanoi", "hcmc"):
        assert agency in audited.stdout
