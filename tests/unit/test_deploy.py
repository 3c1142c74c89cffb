"""The deployment files under deploy/, checked by the tools that read them.

- Compose files parse. Everything they mount or build exists. Their GOVSYNC_* variables are
  settings of sync/config.py. They agree with the federation (federation.yaml).
  `docker compose config` accepts them where the docker CLI has compose.
- The alert rules pass `promtool check rules` and their unit tests, and the compose Prometheus
  config passes `promtool check config`.
- Every metric name in the alerts and in the dashboard is exported by the code.
- The Kubernetes manifests parse, render with kustomize where kubectl exists, and match what
  deploy/render.py renders. Every contract topic has a KafkaTopic, and every KafkaUser may touch
  only its own agency's topics, group and dead-letter topic.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from sync.config import (
    AuditSettings,
    ConnectorSettings,
    KafkaSettings,
    ProcessorSettings,
    RegistrySettings,
)
from sync.metrics import ConnectorMetrics, ProcessorMetrics, VerifyMetrics
from sync.registry.metrics import RegistryMetrics

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_DIR = DEPLOY / "compose"
COMPOSE = COMPOSE_DIR / "compose.yaml"
COMPOSE_SECURE = COMPOSE_DIR / "compose.secure.yaml"
K8S = DEPLOY / "kubernetes"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
ALERT_TESTS = DEPLOY / "prometheus" / "alerts.test.yml"
DASHBOARD = DEPLOY / "grafana" / "govsync.json"
PROMETHEUS_CONFIG = COMPOSE_DIR / "prometheus" / "prometheus.yml"
README = DEPLOY / "README.md"

SEVERITIES = {"warning", "critical"}


def load_module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


render = load_module(DEPLOY / "render.py", "govsync_deploy_render")


def read_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def k8s_documents() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(K8S.rglob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if document is not None:
                yield path, document


def k8s_kind(kind: str) -> list[dict[str, Any]]:
    return [d for _, d in k8s_documents() if d.get("kind") == kind]


def federation() -> Any:
    return render.load_federation(ROOT)


def contract_topics() -> set[str]:
    """``<domain>.<entity>`` for every row contract of schemas/avro."""
    return {
        f"{path.parent.name}.{path.stem}"
        for path in (ROOT / "schemas" / "avro").glob("*/*.avsc")
        if not path.stem.endswith("-key")
    }


def cli_variables() -> set[str]:
    """The GOVSYNC_* variables govsync's command line options read (``envvar``)."""
    from sync.cli.main import cli

    return {
        str(envvar)
        for param in cli.params
        for envvar in ([param.envvar] if isinstance(param.envvar, str) else param.envvar or [])
    }


def known_settings() -> set[str]:
    names = cli_variables()
    for model in (
        KafkaSettings,
        ConnectorSettings,
        ProcessorSettings,
        RegistrySettings,
        AuditSettings,
    ):
        prefix = model.model_config.get("env_prefix", "")
        assert prefix == "GOVSYNC_"
        names |= {prefix + field.upper() for field in model.model_fields}
    return names


def exported_metric_names() -> set[str]:
    """Every sample name the code can export, built on a fresh registry."""
    registry = CollectorRegistry()
    ConnectorMetrics.create(registry)
    ProcessorMetrics.create(registry)
    VerifyMetrics.create(registry)
    RegistryMetrics(registry)
    suffixes = {
        "counter": ("_total", "_created"),
        "gauge": ("",),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("", "_sum", "_count", "_created"),
    }
    names = set()
    for family in registry.collect():
        names |= {family.name + suffix for suffix in suffixes.get(family.type, ("",))}
        names |= {sample.name for sample in family.samples}
    return names


PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
PROMQL_WORDS |= {"and", "or", "unless", "bool", "offset", "inf", "nan"}


def promql_metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects: identifiers that are not functions,
    aggregations, keywords, label names or parts of numbers and durations."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        before = text[match.start() - 1] if match.start() else " "
        if before.isdigit() or before in ".$":
            continue
        if text[match.end() :].lstrip().startswith("("):
            continue  # a function or an aggregation
        if match.group() not in PROMQL_WORDS:
            names.add(match.group())
    return names


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in read_yaml(ALERTS)["groups"] for rule in group["rules"]]


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))

    def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))

    queries = [t["expr"] for p in panels(dashboard["panels"]) for t in p.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        query = query.get("query") if isinstance(query, dict) else query
        if variable["type"] == "query":
            # label_values(<selector>, <label>): only the selector names a metric
            match = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", query)
            queries.append(match.group(1) if match else query)
    return queries


def slug(heading: str) -> str:
    """The anchor a Markdown renderer gives a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def env_of(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {str(k): "" if v is None else str(v) for k, v in environment.items()}


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not on PATH")
    return path


# ------------------------------------------------------------------------------------------
# rendered files


def test_rendered_files_are_current() -> None:
    stale = [str(p) for p in render.stale(ROOT)]
    assert not stale, f"stale rendered files, run `python deploy/render.py`: {stale}"


def test_promql_metric_names_finds_metrics_only() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le) (rate(a_bucket{x="y", z=~"$agency"}[5m]))) > 1e9 '
        "and on (agency) time() - max by (agency) (b) > 300 or sum(c) by (topic) unless up == 0"
    )
    assert promql_metric_names(expr) == {"a_bucket", "b", "c", "up"}


# ------------------------------------------------------------------------------------------
# compose


@pytest.fixture(scope="module")
def compose_files() -> dict[Path, dict[str, Any]]:
    return {path: read_yaml(path) for path in (COMPOSE, COMPOSE_SECURE)}


def test_compose_files_parse(compose_files: dict[Path, dict[str, Any]]) -> None:
    base = compose_files[COMPOSE]
    assert base["services"], "compose.yaml defines no service"
    for service in base["services"].values():
        assert "image" in service or "build" in service
    overlay = set(compose_files[COMPOSE_SECURE]["services"])
    assert overlay <= set(base["services"]), "the overlay only amends services of compose.yaml"


def test_compose_references_exist(compose_files: dict[Path, dict[str, Any]]) -> None:
    declared: dict[str, set[str]] = {"volumes": set(), "networks": set(), "secrets": set()}
    for document in compose_files.values():
        for kind in declared:
            declared[kind] |= set(document.get(kind) or {})
    missing = []
    for path, document in compose_files.items():
        for name, service in document["services"].items():
            build = service.get("build")
            if build:
                context = (COMPOSE_DIR / build["context"]).resolve()
                if not (context / build.get("dockerfile", "Dockerfile")).is_file():
                    missing.append(f"{name}: build {build}")
            image = service.get("image")
            if image and (":" not in image or image.endswith(":latest")):
                missing.append(f"{name}: image {image} has no pinned tag")
            for volume in service.get("volumes") or []:
                source = volume.split(":", 1)[0] if isinstance(volume, str) else volume["source"]
                if source.startswith((".", "/")):
                    if not (COMPOSE_DIR / source).exists():
                        missing.append(f"{path.name} {name}: mounts missing {source}")
                elif source not in declared["volumes"]:
                    missing.append(f"{path.name} {name}: undeclared volume {source}")
            for secret in service.get("secrets") or []:
                source = secret if isinstance(secret, str) else secret["source"]
                if source not in declared["secrets"]:
                    missing.append(f"{path.name} {name}: undeclared secret {source}")
            networks = service.get("networks") or []
            for network in networks if isinstance(networks, list) else networks.keys():
                if network not in declared["networks"]:
                    missing.append(f"{path.name} {name}: undeclared network {network}")
    assert not missing, missing


def test_compose_secrets_are_written_by_generate_script(
    compose_files: dict[Path, dict[str, Any]], tmp_path: Path
) -> None:
    """Secret files are not in the repository: secrets/generate.sh writes every one of them."""
    tool("bash")
    tool("openssl")
    script = COMPOSE_DIR / "secrets" / "generate.sh"
    subprocess.run(["bash", str(script), str(tmp_path / "out")], check=True, capture_output=True)
    written = {p.name for p in (tmp_path / "out").iterdir()}
    wanted = {
        Path(secret["file"]).name
        for document in compose_files.values()
        for secret in (document.get("secrets") or {}).values()
    }
    for document in compose_files.values():
        for secret in (document.get("secrets") or {}).values():
            assert Path(secret["file"]).parent == Path("secrets"), secret
    assert wanted - written == set()


def test_compose_govsync_variables_are_settings(compose_files: dict[Path, dict[str, Any]]) -> None:
    known = known_settings()
    unknown = {
        f"{path.name} {name}: {variable}"
        for path, document in compose_files.items()
        for name, service in document["services"].items()
        for variable in env_of(service)
        if variable.startswith("GOVSYNC_") and variable not in known
    }
    assert not unknown, unknown


def test_registry_cli_variables_are_settings() -> None:
    """`govsync registry serve` reads GOVSYNC_REGISTRY_DSN/HOST/PORT through click."""
    assert {"GOVSYNC_REGISTRY_DSN", "GOVSYNC_HOST", "GOVSYNC_PORT"} <= known_settings()


def test_compose_matches_the_federation(compose_files: dict[Path, dict[str, Any]]) -> None:
    fed = federation()
    services = compose_files[COMPOSE]["services"]
    secure = compose_files[COMPOSE_SECURE]["services"]
    connectors = {n: env_of(s) for n, s in services.items() if n.startswith("connector-")}
    processors = {n: env_of(s) for n, s in services.items() if n.startswith("processor-")}
    assert {e["GOVSYNC_SOURCE"] for e in connectors.values()} == {s.name for s in fed.sources}
    assert {e["GOVSYNC_AGENCY"]: json.loads(e["GOVSYNC_TOPICS"]) for e in processors.values()} == {
        a.name: list(a.topics) for a in fed.subscribers
    }
    for name, env in {**connectors, **processors}.items():
        assert env["GOVSYNC_PARTITIONS"] == str(fed.partitions), name
        agency = env.get("GOVSYNC_SOURCE") or env["GOVSYNC_AGENCY"]
        assert name.endswith(f"-{agency}")
        role = name.split("-")[0]
        principal = f"govsync-{role}-{agency}"
        assert env_of(secure[name])["GOVSYNC_SASL_USERNAME"] == principal, name
        assert f"kafka-{principal}" in secure[name]["secrets"], name
        # the registry knows every process by the name Kafka knows it by
        assert env["GOVSYNC_REGISTRY_USERNAME"] == principal, name
        assert f"registry-{principal}" in services[name]["secrets"], name
    registry = services["govsync-registry"]
    assert registry["command"] == ["registry", "serve", "--users", "/run/secrets/registry-users"]
    assert "profiles" not in registry, "the registry runs in every deployment, authenticated"
    roles = dict(
        line.split()
        for line in (COMPOSE_DIR / "govsync" / "registry-roles.txt").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert roles == {
        **{f"govsync-connector-{s.name}": f"reviewer={s.name}." for s in fed.sources},
        **{f"govsync-processor-{a.name}": "readonly" for a in fed.subscribers},
    }
    # deny by default, kept: every processor enforces the federation file and is audited
    for subscriber in fed.subscribers:
        service = services[f"processor-{subscriber.name}"]
        env = env_of(service)
        assert "GOVSYNC_UNRESTRICTED" not in env and "GOVSYNC_UNAUDITED" not in env
        assert env["GOVSYNC_MANIFEST"] == "/etc/govsync/federation.yaml"
        assert "../../federation.yaml:/etc/govsync/federation.yaml:ro" in service["volumes"]
        assert "dbname=audit" in env["GOVSYNC_AUDIT_DSN"]
        assert env["GOVSYNC_AUDIT_SIGNING_KEY_FILE"].endswith(f"audit-signing-{subscriber.name}")
        assert ("GOVSYNC_HASH_KEYS_FILE" in env) == bool(subscriber.hash_keys)
        assert "audit-init" in service["depends_on"]
    assert env_of(services["audit-init"])["AUDIT_WRITERS"].split() == [
        a.name for a in fed.subscribers
    ]
    sources = env_of(services["postgres-sources"])["SOURCES"].split()
    assert sources == [s.name for s in fed.sources]
    replicas = env_of(services["postgres-replicas"])["REPLICA_AGENCIES"].split()
    assert replicas == [a.name for a in fed.subscribers]
    targets = {
        target
        for job in read_yaml(PROMETHEUS_CONFIG)["scrape_configs"]
        for config in job.get("static_configs", [])
        for target in config["targets"]
    }
    assert {f"{n}:{e['GOVSYNC_METRICS_PORT']}" for n, e in connectors.items()} <= targets
    assert {f"{n}:{e['GOVSYNC_WEB_PORT']}" for n, e in processors.items()} <= targets


def test_docker_compose_config_accepts_the_files() -> None:
    docker = tool("docker")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("the docker CLI has no compose plugin (`docker compose version` failed)")
    for files in ([COMPOSE], [COMPOSE, COMPOSE_SECURE]):
        args = [docker, "compose"]
        for path in files:
            args += ["-f", str(path)]
        done = subprocess.run([*args, "config", "-q"], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr


def test_kafka_init_creates_topics_users_and_acls(tmp_path: Path) -> None:
    """init.sh against stand-in Kafka tools that record their arguments."""
    bash = tool("bash")
    calls = tmp_path / "calls"
    for name in ("kafka-topics", "kafka-configs", "kafka-acls"):
        stub = tmp_path / f"{name}.sh"
        stub.write_text(f'#!/bin/sh\necho {name} "$@" >> {calls}\n')
        stub.chmod(0o755)
    brokers = tmp_path / "kafka-broker-api-versions.sh"
    brokers.write_text(
        '#!/bin/sh\nfor i in 1 2 3; do echo "kafka-$i:19092 (id: $i rack: null) -> ("; done\n'
    )
    brokers.chmod(0o755)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    acls = (COMPOSE_DIR / "kafka" / "acls.txt").read_text(encoding="utf-8")
    principals = {line.split()[0] for line in acls.splitlines() if not line.startswith("#")}
    for principal in principals:
        (secrets / f"kafka-{principal}").write_text("0123abcd\n")
    (secrets / "admin.password").write_text("admin-password\n")
    env = {
        "PATH": os.environ["PATH"],
        "TMPDIR": str(tmp_path),
        "KAFKA_BIN": str(tmp_path),
        "BOOTSTRAP": "kafka-1:19092",
        "TOPICS_FILE": str(COMPOSE_DIR / "kafka" / "topics.txt"),
        "ACLS_FILE": str(COMPOSE_DIR / "kafka" / "acls.txt"),
        "USER_SECRETS_DIR": str(secrets),
        "ADMIN_KEYSTORE": "/run/secrets/kafka-admin.p12",
        "ADMIN_KEYSTORE_PASSWORD_FILE": str(secrets / "admin.password"),
        "CA_FILE": "/run/secrets/ca.crt",
    }
    script = COMPOSE_DIR / "kafka" / "init.sh"
    subprocess.run([bash, str(script)], check=True, env=env, capture_output=True, timeout=60)
    lines = calls.read_text().splitlines()
    created = {line.split("--topic ")[1].split()[0] for line in lines if "--create" in line}
    fed = federation()
    expected = {a.dlq for a in fed.subscribers} | {s.dlq for s in fed.sources}
    assert created == contract_topics() | expected | {"govsync.audit.checkpoints"}
    for line in (x for x in lines if x.startswith("kafka-topics")):
        assert "--replication-factor 3" in line and "min.insync.replicas=2" in line, line
    scram = {line.split("--entity-name ")[1].split()[0] for line in lines if "SCRAM" in line}
    assert scram == principals
    acl_calls = [line for line in lines if line.startswith("kafka-acls")]
    assert len(acl_calls) == sum(1 for x in acls.splitlines() if x and not x.startswith("#"))
    assert all("--command-config" in line for line in lines)
    assert "ssl.keystore.password=admin-password" in (tmp_path / "admin.properties").read_text()


def test_shell_scripts_pass_shellcheck() -> None:
    shellcheck = tool("shellcheck")
    scripts = sorted(str(p) for p in COMPOSE_DIR.rglob("*.sh"))
    done = subprocess.run([shellcheck, "-x", *scripts], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_demo_loader_imports() -> None:
    module = load_module(COMPOSE_DIR / "demo" / "load.py", "govsync_deploy_demo")
    sources = module.contracts_by_source()
    assert set(sources) == {s.name for s in federation().sources}


def test_grafana_provisioning_points_at_the_dashboard(
    compose_files: dict[Path, dict[str, Any]],
) -> None:
    provider = read_yaml(COMPOSE_DIR / "grafana" / "provisioning" / "dashboards" / "govsync.yaml")
    folder = provider["providers"][0]["options"]["path"]
    mounts = compose_files[COMPOSE]["services"]["grafana"]["volumes"]
    assert f"../grafana/govsync.json:{folder}/govsync.json:ro" in mounts
    datasources = read_yaml(
        COMPOSE_DIR / "grafana" / "provisioning" / "datasources" / "prometheus.yaml"
    )
    assert datasources["datasources"][0]["type"] == "prometheus"


# ------------------------------------------------------------------------------------------
# image


def test_dockerfile_builds_one_non_root_image() -> None:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    instructions = [line for line in text.splitlines() if line and not line.startswith("#")]
    froms = [line.split()[1] for line in instructions if line.startswith("FROM ")]
    assert froms and all(f.startswith("python:3.11-slim") for f in froms)
    assert re.search(r"pip install \.(\s|$)", text), "installs the project without extras"
    assert "embedded" not in re.sub(r"#.*", "", text)
    users = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert instructions[-2] == 'ENTRYPOINT ["govsync"]'
    for line in instructions:
        if line.startswith("COPY ") and "--from=" not in line:
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source
    variables = set(re.findall(r"\b(GOVSYNC_\w+)=", text))
    assert variables <= known_settings()


# ------------------------------------------------------------------------------------------
# alerts, Prometheus, dashboard


def test_alert_rules_pass_promtool() -> None:
    promtool = tool("promtool")
    for args in (["check", "rules", str(ALERTS)], ["test", "rules", str(ALERT_TESTS)]):
        done = subprocess.run([promtool, *args], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr


def test_compose_prometheus_config_passes_promtool() -> None:
    config = read_yaml(PROMETHEUS_CONFIG)
    for rule_file in config["rule_files"]:
        assert (PROMETHEUS_CONFIG.parent / rule_file).resolve() == ALERTS
    promtool = tool("promtool")
    done = subprocess.run(
        [promtool, "check", "config", str(PROMETHEUS_CONFIG)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_alert_rules_carry_severity_for_and_runbook() -> None:
    headings = {
        slug(line.lstrip("#"))
        for line in README.read_text(encoding="utf-8").splitlines()
        if line.startswith("#")
    }
    rules = alert_rules()
    assert rules
    for rule in rules:
        name = rule["alert"]
        assert rule.get("for"), name
        assert rule["labels"]["severity"] in SEVERITIES, name
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], name
        runbook = annotations["runbook_url"]
        assert runbook.startswith("deploy/README.md#"), name
        assert f"Runbook: {runbook}" in annotations["description"], name
        assert runbook.split("#")[1] in headings, f"{name}: no README section {runbook}"


def test_alerts_cover_what_operators_must_know() -> None:
    used = " ".join(rule["expr"] for rule in alert_rules())
    for metric in (
        "govsync_processor_consumer_lag",
        "govsync_processor_newest_applied_commit_timestamp_seconds",
        "govsync_processor_events_dead_lettered_total",
        "govsync_connector_slot_lag_bytes",
        "govsync_processor_subscription_state",
        "govsync_connector_produce_errors_total",
    ):
        assert metric in used
    assert 'up{job="govsync-connector"}' in used and 'up{job="govsync-processor"}' in used


def test_every_metric_used_is_exported() -> None:
    exported = exported_metric_names() | {"up"}
    used: dict[str, set[str]] = {}
    for rule in alert_rules():
        used[f"alert {rule['alert']}"] = promql_metric_names(rule["expr"])
    for query in dashboard_queries():
        used[f"dashboard {query}"] = promql_metric_names(query)
    for test in read_yaml(ALERT_TESTS)["tests"]:
        for series in test["input_series"]:
            used[f"alert test {series['series']}"] = {series["series"].split("{")[0]}
    unknown = {where: names - exported for where, names in used.items() if names - exported}
    assert not unknown, unknown
    # the alerts on a stopped subscription and on lag really use what the processor exports
    assert {
        "govsync_processor_subscription_state",
        "govsync_processor_consumer_lag",
    } <= set().union(*used.values())


def test_dashboard_queries_parse(tmp_path: Path) -> None:
    """Prometheus's own parser reads every dashboard query, as recording rules with Grafana's
    variables filled in."""
    promtool = tool("promtool")
    grafana = {"$__rate_interval": "5m", "$__range": "1h", "$agency": "population"}
    rules = []
    for number, query in enumerate(dashboard_queries()):
        for variable, value in grafana.items():
            query = query.replace(variable, value)
        assert "$" not in query, query
        rules.append({"record": f"dashboard:query_{number}", "expr": query})
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_dashboard_is_per_agency() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"agency", "datasource"} <= variables
    queries = " ".join(dashboard_queries())
    for metric in (
        "govsync_processor_events_applied_total",
        "govsync_connector_events_produced_total",
        "govsync_processor_end_to_end_latency_seconds_bucket",
        "govsync_processor_consumer_lag",
        "govsync_processor_newest_applied_commit_timestamp_seconds",
        "govsync_processor_events_dead_lettered_total",
        "govsync_connector_snapshot_rows_total",
        "govsync_processor_apply_batch_duration_seconds_bucket",
    ):
        assert metric in queries, metric
    for quantile in ("0.5", "0.95", "0.99"):
        assert f"histogram_quantile({quantile}, " in queries


# ------------------------------------------------------------------------------------------
# Kubernetes


def test_kubernetes_manifests_parse_and_are_all_applied() -> None:
    documents = list(k8s_documents())
    assert documents
    for path, document in documents:
        assert document.get("apiVersion") and document.get("kind"), path
        if document["kind"] != "Kustomization":
            assert document.get("metadata", {}).get("name"), f"{path}: {document['kind']}"
    kustomization = read_yaml(K8S / "kustomization.yaml")
    listed = {K8S / r for r in kustomization["resources"]}
    manifests = {p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml"}
    assert listed == manifests


def test_kustomize_builds_the_manifests() -> None:
    kubectl = tool("kubectl")
    done = subprocess.run([kubectl, "kustomize", str(K8S)], capture_output=True, text=True)
    if done.returncode != 0 and "unknown command" in done.stderr:
        pytest.skip("this kubectl has no kustomize")
    assert done.returncode == 0, done.stderr
    kinds = [d["kind"] for d in yaml.safe_load_all(done.stdout) if d]
    assert kinds.count("KafkaTopic") == len(k8s_kind("KafkaTopic"))


def test_prometheus_rule_embeds_the_alert_rules() -> None:
    (rule,) = k8s_kind("PrometheusRule")
    assert rule["spec"]["groups"] == read_yaml(ALERTS)["groups"]


def test_every_contract_topic_has_a_kafka_topic() -> None:
    topics = {t["spec"]["topicName"]: t for t in k8s_kind("KafkaTopic")}
    fed = federation()
    assert contract_topics() <= set(topics)
    assert {a.dlq for a in fed.subscribers} | {s.dlq for s in fed.sources} <= set(topics)
    # the audit's signed chain heads: one partition, one order, kept for good
    checkpoints = topics.pop("govsync.audit.checkpoints")["spec"]
    assert checkpoints["partitions"] == 1 and checkpoints["config"]["retention.ms"] == -1
    for topic in topics.values():
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "govsync"
        assert topic["spec"]["partitions"] == fed.partitions
        assert topic["spec"]["replicas"] == 3
        assert topic["spec"]["config"]["min.insync.replicas"] == 2
    (config,) = (c for c in k8s_kind("ConfigMap") if c["metadata"]["name"] == "govsync-kafka")
    assert config["data"]["GOVSYNC_PARTITIONS"] == str(fed.partitions)


def test_dead_letters_and_logs_are_kept_at_least_12_months() -> None:
    year_ms = 365 * 24 * 3600 * 1000
    fed = federation()
    dead_letter_topics = {a.dlq for a in fed.subscribers} | {s.dlq for s in fed.sources}
    strimzi = {t["spec"]["topicName"]: t["spec"]["config"] for t in k8s_kind("KafkaTopic")}
    listed = {
        line.split()[0]: dict(item.split("=") for item in line.split()[3].split(","))
        for line in (COMPOSE_DIR / "kafka" / "topics.txt").read_text().splitlines()
        if line and not line.startswith("#")
    }
    for topic in dead_letter_topics:
        for kept in (int(strimzi[topic]["retention.ms"]), int(listed[topic]["retention.ms"])):
            assert kept == -1 or kept >= year_ms, topic
    services = read_yaml(COMPOSE)["services"]
    for name, service in services.items():
        if name in {"pushgateway", "prometheus", "grafana"}:
            continue  # metrics, not logs of what was done with personal data
        assert service["logging"]["driver"] == "journald", name


def test_every_processor_has_the_key_of_its_remembered_deletes() -> None:
    for subscriber in federation().subscribers:
        assert f"remembered-deletes.{subscriber.name}" in subscriber.hash_keys
    names = (COMPOSE_DIR / "govsync" / "hash-keys.txt").read_text()
    for subscriber in federation().subscribers:
        assert f"remembered-deletes.{subscriber.name}" in names


def test_kafka_cluster_is_replicated() -> None:
    (kafka,) = k8s_kind("Kafka")
    (pool,) = k8s_kind("KafkaNodePool")
    assert pool["spec"]["replicas"] == 3
    assert set(pool["spec"]["roles"]) == {"controller", "broker"}
    config = kafka["spec"]["kafka"]["config"]
    assert config["default.replication.factor"] == 3
    assert config["min.insync.replicas"] == 2
    assert config["auto.create.topics.enable"] is False
    for listener in kafka["spec"]["kafka"]["listeners"]:
        assert listener["tls"] is True
        assert listener["authentication"]["type"] == "scram-sha-512"
    assert kafka["spec"]["kafka"]["authorization"]["type"] == "simple"


def test_kafka_users_may_touch_only_their_own_agency() -> None:
    fed = federation()
    sources = {s.name: s for s in fed.sources}
    subscribers = {a.name: a for a in fed.subscribers}
    users = k8s_kind("KafkaUser")
    assert {u["metadata"]["name"] for u in users} == {
        *(f"govsync-connector-{s}" for s in sources),
        *(f"govsync-processor-{a}" for a in subscribers),
    }
    for user in users:
        name = user["metadata"]["name"]
        match = re.fullmatch(r"govsync-(connector|processor)-(\w+)", name)
        assert match, name
        role, owner = match.groups()
        assert user["spec"]["authentication"]["type"] == "scram-sha-512"
        acls = user["spec"]["authorization"]["acls"]
        topics: dict[str, set[str]] = {}
        for acl in acls:
            resource, operations = acl["resource"], set(acl["operations"])
            assert resource["patternType"] == "literal", name
            assert operations <= {"Create", "Describe", "Read", "Write"}, name
            if resource["type"] == "group":
                assert role == "processor" and resource["name"] == subscribers[owner].group
                assert operations == {"Read"}, name
            else:
                assert resource["type"] == "topic", name
                topics[resource["name"]] = operations
        if role == "connector":
            source = sources[owner]
            assert set(topics) == {*source.topics, source.dlq}, name
            assert all("Read" not in ops for ops in topics.values()), name
        else:
            agency = subscribers[owner]
            assert set(topics) == {*agency.topics, agency.dlq, "govsync.audit.checkpoints"}
            for topic in agency.topics:
                assert topics[topic] == {"Describe", "Read"}, (name, topic)


def test_compose_acls_equal_the_kafka_users() -> None:
    lines = (COMPOSE_DIR / "kafka" / "acls.txt").read_text(encoding="utf-8").splitlines()
    compose = {
        (p, r, n, frozenset(ops.split(",")))
        for p, r, _, n, ops in (line.split() for line in lines if not line.startswith("#"))
    }
    users = {
        (
            u["metadata"]["name"],
            a["resource"]["type"],
            a["resource"]["name"],
            frozenset(a["operations"]),
        )
        for u in k8s_kind("KafkaUser")
        for a in u["spec"]["authorization"]["acls"]
    }
    assert compose == users


def test_kubernetes_workloads() -> None:
    fed = federation()
    users = {u["metadata"]["name"] for u in k8s_kind("KafkaUser")}
    deployments = {d["metadata"]["name"]: d for d in k8s_kind("Deployment")}
    known = known_settings()
    for source in fed.sources:
        connector = deployments[f"connector-{source.name}"]["spec"]
        assert connector["replicas"] == 1 and connector["strategy"]["type"] == "Recreate"
    for agency in fed.subscribers:
        processor = deployments[f"processor-{agency.name}"]["spec"]
        assert processor["replicas"] == 2
        (container,) = processor["template"]["spec"]["containers"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert json.loads(env["GOVSYNC_TOPICS"]) == list(agency.topics)
        # the federation file, the audit and its signing key, the hash keys: from the
        # rendered ConfigMap and the agency's Secrets
        assert env["GOVSYNC_MANIFEST"] == "/etc/govsync/federation/federation.yaml"
        secret_envs = {e["name"] for e in container["env"] if "valueFrom" in e}
        assert {"GOVSYNC_REPLICA_DSN", "GOVSYNC_AUDIT_DSN"} <= secret_envs
        assert "GOVSYNC_AUDIT_SIGNING_KEY_FILE" in env
        assert ("GOVSYNC_HASH_KEYS_FILE" in env) == bool(agency.hash_keys)
        assert "GOVSYNC_UNRESTRICTED" not in env and "GOVSYNC_UNAUDITED" not in env
    (config,) = (c for c in k8s_kind("ConfigMap") if c["metadata"]["name"] == "govsync-federation")
    assert config["data"]["federation.yaml"] == (ROOT / "federation.yaml").read_text("utf-8")
    assert "govsync-registry" in deployments
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        for container in pod["containers"]:
            assert container["image"] == "govsync", name
            assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
            env = {e["name"]: e.get("value") for e in container.get("env", [])}
            assert {v for v in env if v.startswith("GOVSYNC_")} <= known, name
            if "GOVSYNC_SASL_USERNAME" in env:
                user = env["GOVSYNC_SASL_USERNAME"]
                assert user in users and name.endswith(user.removeprefix("govsync-")), name
                secrets = {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
                assert user in secrets, name
    for config in k8s_kind("ConfigMap"):
        data = config.get("data", {})
        assert {k for k in data if k.startswith("GOVSYNC_")} <= known
    kustomization = read_yaml(K8S / "kustomization.yaml")
    assert [i["name"] for i in kustomization["images"]] == ["govsync"]


def test_verify_runs_on_a_schedule_in_both_deployments(
    compose_files: dict[Path, dict[str, Any]],
) -> None:
    """Drift is found without anyone asking: hourly, one run at a time, pushed for the alerts."""
    services = compose_files[COMPOSE]["services"]
    verify = services["verify"]
    env = env_of(verify)
    assert env["GOVSYNC_FEDERATION"] == "/etc/govsync/federation.yaml"
    assert "../../federation.yaml:/etc/govsync/federation.yaml:ro" in verify["volumes"]
    assert env["PUSHGATEWAY"] == "http://pushgateway:9091" and "pushgateway" in services
    jobs = {j["job_name"]: j for j in read_yaml(PROMETHEUS_CONFIG)["scrape_configs"]}
    assert jobs["pushgateway"]["honor_labels"] is True
    (cronjob,) = k8s_kind("CronJob")
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    (container,) = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["args"][:3] == [
        "--federation",
        "/etc/govsync/federation/federation.yaml",
        "verify",
    ]
    assert "--pushgateway" in container["args"]
