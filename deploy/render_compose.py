"""The parts of the compose deployment that follow from the federation file.

Compose files stay hand-written where nothing depends on the federation (the Kafka nodes, the
registry, monitoring); every part that names a source or a subscribing agency sits between a
``# >>> rendered: <region>`` line and a ``# <<< rendered: <region>`` line, and
``deploy/render.py`` rewrites it. A rendered processor enforces the federation file
(``GOVSYNC_MANIFEST``, mounted read-only), records every disclosure in the audit store
(database ``audit`` of postgres-replicas, as its own replica role, which ``audit-init`` makes
the writer of its agency's chain and nothing else) and signs its chain heads with its own key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

COMPOSE = Path("deploy") / "compose"
MARKER = re.compile(
    r"(?P<indent>[ ]*)# >>> rendered: (?P<name>[\w-]+)\n.*?(?P=indent)# <<< rendered: (?P=name)\n",
    re.DOTALL,
)
FEDERATION_MOUNT = "/etc/govsync/federation.yaml"


def fill(text: str, regions: dict[str, str], where: str) -> str:
    """``text`` with each marked region replaced; every region must be marked exactly once."""
    seen: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name, indent = match["name"], match["indent"]
        if name not in regions:
            raise ValueError(f"{where}: no renderer for the region {name!r}")
        seen.append(name)
        body = regions[name]
        return f"{indent}# >>> rendered: {name}\n{body}{indent}# <<< rendered: {name}\n"

    result = MARKER.sub(replace, text)
    missing = sorted(set(regions) - set(seen))
    if missing or len(seen) != len(set(seen)):
        raise ValueError(f"{where}: regions missing or repeated: {missing or seen}")
    return result


def _lines(indent: int, items: Iterable[str]) -> str:
    return "".join(" " * indent + item + "\n" for item in items)


def _sources(federation: Any) -> list[str]:
    return [s.name for s in federation.sources]


def _agencies(federation: Any) -> list[str]:
    return [a.name for a in federation.subscribers]


def _port(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None  # the federation file's model checks it
    return port


def client_env(federation: Any) -> str:
    deployment = federation.deployment
    return _lines(
        2,
        [
            f"GOVSYNC_BOOTSTRAP: {deployment.kafka.bootstrap}",
            f"GOVSYNC_REGISTRY_URL: {deployment.registry}",
            'GOVSYNC_TOPIC_PREFIX: ""',
            "# equal to the partitions kafka-init gives the topics (deployment.kafka)",
            f'GOVSYNC_PARTITIONS: "{deployment.kafka.partitions}"',
        ],
    )


def _postgres(variable: str, names: list[str], secrets: list[str]) -> str:
    """A PostgreSQL service's rendered part: the names its init script loops over, and the
    secrets it reads."""
    return (
        _lines(6, [f"{variable}: {' '.join(names)}"])
        + _lines(4, ["secrets:"])
        + _lines(6, [f"- {secret}" for secret in secrets])
    )


def postgres_sources(federation: Any) -> str:
    sources = _sources(federation)
    secrets = [
        "postgres-sources-superuser",
        *(f"pg-owner-{s}" for s in sources),
        *(f"pg-connector-{s}" for s in sources),
    ]
    return _postgres("SOURCES", sources, secrets)


def postgres_replicas(federation: Any) -> str:
    agencies = _agencies(federation)
    secrets = [
        "postgres-replicas-superuser",
        *(f"pg-replica-{a}" for a in agencies),
        "pg-registry",
        "pg-dpo",
    ]
    return _postgres("REPLICA_AGENCIES", agencies, secrets)


def demo_secrets(federation: Any) -> str:
    return _lines(4, ["secrets:"]) + _lines(6, [f"- pg-owner-{s}" for s in _sources(federation)])


def audit_init(federation: Any) -> str:
    return _lines(6, [f"AUDIT_WRITERS: {' '.join(_agencies(federation))}"])


def workloads(federation: Any) -> str:
    """A connector per source, a processor per subscribing agency."""
    deployment = federation.deployment
    connector_port = _port(deployment.metrics.connector)
    processor_port = _port(deployment.metrics.processor)
    out = ["  # one connector per source (federation.yaml: sources)\n"]
    for source in _sources(federation):
        source_dsn = deployment.postgres.sources.format(source=source)
        out.append(
            f"""  connector-{source}:
    <<: *govsync
    command: [connector, run]
    depends_on: *connector-depends
    networks: [bus, sources, monitoring]
    secrets: [pg-connector-{source}, registry-govsync-connector-{source}]
    environment:
      <<: *kafka-client-env
      GOVSYNC_REGISTRY_USERNAME: govsync-connector-{source}
      GOVSYNC_REGISTRY_PASSWORD_FILE: /run/secrets/registry-govsync-connector-{source}
      GOVSYNC_SOURCE: {source}
      GOVSYNC_SOURCE_DSN: {source_dsn}
      GOVSYNC_METRICS_PORT: "{connector_port}"
      GOVSYNC_METRICS_HOST: 0.0.0.0
      DB_PASSWORD_FILE: /run/secrets/pg-connector-{source}

"""
        )
    out.append(
        "  # one processor per subscribing agency (federation.yaml: subscriptions); a second\n"
        "  # worker (`--scale processor-<agency>=2`) is a hot standby\n"
    )
    for agency in federation.subscribers:
        name = agency.name
        replica_dsn = deployment.postgres.replicas.format(agency=name)
        audit_dsn = deployment.postgres.audit.format(agency=name)
        secrets = [f"pg-replica-{name}", f"registry-govsync-processor-{name}"]
        secrets.append(f"audit-signing-{name}")
        hash_keys = []
        if agency.hash_keys:
            secrets.append(f"hash-keys-{name}")
            hash_keys = [f"GOVSYNC_HASH_KEYS_FILE: /run/secrets/hash-keys-{name}"]
        topics = ", ".join(f'"{t}"' for t in agency.topics)
        out.append(
            f"""  processor-{name}:
    <<: *govsync
    command: [processor, run]
    depends_on: *processor-depends
    networks: [bus, replicas, monitoring]
    tmpfs: [/tmp, /var/lib/govsync]
    secrets: [{", ".join(secrets)}]
    volumes:
      - ./govsync/entrypoint.sh:/etc/govsync/entrypoint.sh:ro
      - ../../federation.yaml:{FEDERATION_MOUNT}:ro
    environment:
      <<: *kafka-client-env
      GOVSYNC_REGISTRY_USERNAME: govsync-processor-{name}
      GOVSYNC_REGISTRY_PASSWORD_FILE: /run/secrets/registry-govsync-processor-{name}
      GOVSYNC_AGENCY: {name}
      GOVSYNC_REPLICA_DSN: {replica_dsn}
      GOVSYNC_TOPICS: '[{topics}]'
      GOVSYNC_MANIFEST: {FEDERATION_MOUNT}
      GOVSYNC_AUDIT_DSN: {audit_dsn}
      GOVSYNC_AUDIT_SIGNING_KEY_FILE: /run/secrets/audit-signing-{name}
"""
            + "".join(f"      {line}\n" for line in hash_keys)
            + f"""      GOVSYNC_WEB_PORT: "{processor_port}"
      GOVSYNC_WEB_HOST: 0.0.0.0
      GOVSYNC_DATA_DIR: /var/lib/govsync
      DB_PASSWORD_FILE: /run/secrets/pg-replica-{name}

"""
        )
    return "".join(out)


def secrets(federation: Any) -> str:
    names = [
        *(f"pg-owner-{s}" for s in _sources(federation)),
        *(f"pg-connector-{s}" for s in _sources(federation)),
        *(f"pg-replica-{a}" for a in _agencies(federation)),
        *(f"audit-signing-{a}" for a in _agencies(federation)),
        *(f"registry-{p}" for p in kafka_principals(federation)),
        *(f"hash-keys-{a.name}" for a in federation.subscribers if a.hash_keys),
    ]
    return _lines(2, [f"{n}: {{file: ./secrets/{n}}}" for n in names])


def kafka_principals(federation: Any) -> list[str]:
    return [p.name for p in federation.principals]


def secure_init_secrets(federation: Any) -> str:
    return _lines(6, [f"- kafka-{p}" for p in kafka_principals(federation)])


def secure_workloads(federation: Any) -> str:
    out = []
    for principal in federation.principals:
        service = principal.name.removeprefix("govsync-")
        out.append(
            f"""  {service}:
    secrets: [kafka-{principal.name}, {{source: ca, target: ca.crt}}]
    environment:
      <<: *kafka-client-secure-env
      GOVSYNC_SASL_USERNAME: {principal.name}
      GOVSYNC_SASL_PASSWORD_FILE: /run/secrets/kafka-{principal.name}

"""
        )
    return "".join(out)


def secure_secrets(federation: Any) -> str:
    return _lines(
        2, [f"kafka-{p}: {{file: ./secrets/kafka-{p}}}" for p in kafka_principals(federation)]
    )


def scrape_targets(federation: Any, job: str) -> str:
    metrics = federation.deployment.metrics
    if job == "connector":
        names, template, key = _sources(federation), metrics.connector, "source"
    else:
        names, template, key = _agencies(federation), metrics.processor, "agency"
    targets = [(urlsplit(template.format(**{key: n})).netloc, n) for n in names]
    return "".join(
        f'      - targets: ["{target}"]\n        labels: {{agency: {agency}}}\n'
        for target, agency in targets
    )


def hash_key_names(federation: Any, header: str) -> str:
    """``<agency> <key> ...`` per subscribing agency (its remembered deletes' key and its
    pseudonyms'), for secrets/generate.sh (one JSON file of random keys per agency)."""
    lines = [header, "# agency hash-key-names\n"]
    lines += [f"{a.name} {' '.join(a.hash_keys)}\n" for a in federation.subscribers if a.hash_keys]
    return "".join(lines)


def registry_roles(federation: Any, header: str) -> str:
    """``<user> <role>`` of every govsync process on the registry, for secrets/generate.sh
    (which writes the users file with their passwords): a connector reviews the subjects of
    its own source's topics and nothing else, a processor reads."""
    lines = [header, "# user role (sync/registry/access.py)\n"]
    for source in federation.sources:
        lines.append(f"govsync-connector-{source.name} reviewer={source.name}.\n")
    lines += [f"govsync-processor-{a} readonly\n" for a in _agencies(federation)]
    return "".join(lines)


def render(root: Path, federation: Any, header: str) -> dict[Path, str]:
    """Every compose file the federation shapes, by path relative to ``root``."""
    by_file = {
        COMPOSE / "compose.yaml": {
            "client-env": client_env(federation),
            "postgres-sources": postgres_sources(federation),
            "postgres-replicas": postgres_replicas(federation),
            "demo": demo_secrets(federation),
            "audit-init": audit_init(federation),
            "workloads": workloads(federation),
            "secrets": secrets(federation),
        },
        COMPOSE / "compose.secure.yaml": {
            "kafka-init": secure_init_secrets(federation),
            "workloads": secure_workloads(federation),
            "secrets": secure_secrets(federation),
        },
        COMPOSE / "prometheus" / "prometheus.yml": {
            "connectors": scrape_targets(federation, "connector"),
            "processors": scrape_targets(federation, "processor"),
        },
    }
    outputs = {
        path: fill((root / path).read_text(encoding="utf-8"), regions, str(path))
        for path, regions in by_file.items()
    }
    outputs[COMPOSE / "govsync" / "hash-keys.txt"] = hash_key_names(federation, header)
    outputs[COMPOSE / "govsync" / "registry-roles.txt"] = registry_roles(federation, header)
    return outputs
