"""How to run govsync's own processes: the command line and the ``GOVSYNC_*`` environment a
connector, processor or registry gets, the same way a container would get it. Used by the
embedded federation and by the test suite, whichever stack provider runs the servers."""

from __future__ import annotations

import json
import sys
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sync.contracts import load_contracts
from sync.kafka import group_lag
from sync.policy import load_manifest
from sync.stack.ports import free_port, port_open
from sync.stack.supervisor import ProcessSpec


def govsync_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "sync.cli", *args]


@dataclass(frozen=True)
class KafkaEndpoints:
    """What every pipeline process needs to reach the broker and the registry."""

    bootstrap: str
    registry_url: str
    partitions: int = 3
    topic_prefix: str = ""
    replication: int | None = None  # of the topics govsync creates; None: the broker's default

    def env(self) -> dict[str, str]:
        env = {
            "GOVSYNC_BOOTSTRAP": self.bootstrap,
            "GOVSYNC_REGISTRY_URL": self.registry_url,
            "GOVSYNC_TOPIC_PREFIX": self.topic_prefix,
            "GOVSYNC_PARTITIONS": str(self.partitions),
        }
        if self.replication is not None:
            env["GOVSYNC_REPLICATION_FACTOR"] = str(self.replication)
        return env


def connector_spec(
    kafka: KafkaEndpoints,
    source: str,
    dsn: str,
    logs: Path,
    *,
    name: str = "",
    slot: str = "",
    tables: Sequence[str] = (),
) -> ProcessSpec:
    """``tables``: the entities to capture; every contract of the source when empty."""
    name = name or f"connector-{source}"
    port = free_port()
    env = {
        **kafka.env(),
        "GOVSYNC_SOURCE": source,
        "GOVSYNC_SOURCE_DSN": dsn,
        "GOVSYNC_METRICS_PORT": str(port),
        "GOVSYNC_SLOT": slot,
        "GOVSYNC_TABLES": json.dumps(list(tables)),
    }
    return ProcessSpec(
        name=name,
        role="connector",
        argv=govsync_command("connector", "run"),
        log_path=logs / f"{name}.log",
        env=env,
        metrics_url=f"http://127.0.0.1:{port}/metrics",
        ready=lambda: port_open(port),
    )


def processor_spec(
    kafka: KafkaEndpoints,
    agency: str,
    replica_dsn: str,
    topics: Sequence[str],
    logs: Path,
    state_dir: Path,
    *,
    name: str = "",
    manifest: Path | None = None,
    hash_keys_file: Path | None = None,
    audit_dsn: str | None = None,
) -> ProcessSpec:
    """Without a manifest the agency receives every field of ``topics`` (the processor is told
    ``GOVSYNC_UNRESTRICTED``: development and tests only); with one, what its subscriptions
    allow (``topics`` then only names what to drain before stopping), recorded in the audit at
    ``audit_dsn`` (without one, ``GOVSYNC_UNAUDITED``). ``agency`` may name several agencies
    (see ``GOVSYNC_AGENCY``); each drains."""
    name = name or f"processor-{agency}"
    port = free_port()
    state_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **kafka.env(),
        "GOVSYNC_AGENCY": agency,
        "GOVSYNC_REPLICA_DSN": replica_dsn,
        "GOVSYNC_TOPICS": json.dumps(list(topics)),
        "GOVSYNC_WEB_PORT": str(port),
        "GOVSYNC_DATA_DIR": str(state_dir),
    }
    if manifest is None:
        env["GOVSYNC_UNRESTRICTED"] = "true"
    else:
        env["GOVSYNC_MANIFEST"] = str(manifest)
        if audit_dsn is None:
            env["GOVSYNC_UNAUDITED"] = "true"
    if hash_keys_file is not None:
        env["GOVSYNC_HASH_KEYS_FILE"] = str(hash_keys_file)
    if audit_dsn is not None:
        env["GOVSYNC_AUDIT_DSN"] = audit_dsn
    groups = [f"{kafka.topic_prefix}govsync-replica-{a}" for a in _hosted(agency, manifest)]
    prefixed = [kafka.topic_prefix + t for t in topics]
    return ProcessSpec(
        name=name,
        role="processor",
        argv=govsync_command("processor", "run"),
        log_path=logs / f"{name}.log",
        env=env,
        metrics_url=f"http://127.0.0.1:{port}/metrics",
        ready=lambda: port_open(port),
        drained=lambda: (
            not any(any(group_lag(kafka.bootstrap, group, prefixed).values()) for group in groups)
        ),
    )


def _hosted(agency: str, manifest: Path | None) -> list[str]:
    """The agencies a processor hosts: ``*`` is every subscriber of the manifest."""
    if agency.strip() != "*":
        return [a.strip() for a in agency.split(",") if a.strip()]
    if manifest is None:
        return []
    loaded = load_manifest(manifest, load_contracts())
    return [a.code for a in loaded.agencies if loaded.subscriptions_of(a.code)]


def registry_spec(
    store_dsn: str, logs: Path, users_file: Path | None = None
) -> tuple[ProcessSpec, str]:
    """The registry's spec and its URL. With ``users_file`` every request but ``/metrics``
    needs credentials."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "GOVSYNC_REGISTRY_DSN": store_dsn,
        "GOVSYNC_HOST": "127.0.0.1",
        "GOVSYNC_PORT": str(port),
    }
    argv = govsync_command("registry", "serve")
    ready = f"{url}/subjects"
    if users_file is not None:
        argv += ["--users", str(users_file)]
        env["GOVSYNC_REGISTRY_METRICS_OPEN"] = "true"  # govsync status scrapes it
        ready = f"{url}/metrics"
    spec = ProcessSpec(
        name="registry",
        role="registry",
        argv=argv,
        log_path=logs / "registry.log",
        env=env,
        metrics_url=f"{url}/metrics",
        ready=lambda: http_ok(ready),
    )
    return spec, url


def console_spec(
    registry_url: str,
    users_file: Path,
    logs: Path,
    *,
    manifest: Path | None = None,
    audit_dsn: str = "",
) -> tuple[ProcessSpec, str]:
    """The web console's spec and its URL; the caller adds its registry credentials."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "GOVSYNC_REGISTRY_URL": registry_url,
        "GOVSYNC_HOST": "127.0.0.1",
        "GOVSYNC_PORT": str(port),
        "GOVSYNC_CONSOLE_USERS": str(users_file),
        "GOVSYNC_AUDIT_DSN": audit_dsn,
    }
    if manifest is not None:
        env["GOVSYNC_MANIFEST"] = str(manifest)
    spec = ProcessSpec(
        name="console",
        role="console",
        argv=govsync_command("console"),
        log_path=logs / "console.log",
        env=env,
        ready=lambda: http_ok(f"{url}/login"),
    )
    return spec, url


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return bool(response.status == 200)
