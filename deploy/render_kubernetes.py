"""The Kubernetes resources that follow from the federation: Strimzi topics and users, the
connector and processor workloads, the federation file as the processors' ConfigMap, the
PrometheusRule and the dashboard ConfigMap. ``deploy/render.py`` calls these with the
federation it loaded and writes what they return."""

from __future__ import annotations

import json
from typing import Any

CLUSTER = "govsync"  # the Strimzi Kafka cluster, and the prefix of its Secrets and Services
NAMESPACE_LABELS = {"app.kubernetes.io/name": "govsync", "app.kubernetes.io/part-of": "govsync"}
AGENCY_LABEL = "govsync/agency"
IMAGE = "govsync"
CONNECTOR_METRICS_PORT = 9400
PROCESSOR_WEB_PORT = 6066


def _typed(value: str) -> int | str:
    """A topic config value as Strimzi wants it: numbers as numbers."""
    return int(value) if value.lstrip("-").isdigit() else value


def k8s_name(topic: str) -> str:
    """A Kubernetes object name for a topic (no underscores there)."""
    return topic.replace("_", "-")


def labels(component: str, agency: str = "") -> dict[str, str]:
    result = {**NAMESPACE_LABELS, "app.kubernetes.io/component": component}
    if agency:
        result[AGENCY_LABEL] = agency
    return result


def kafka_topics(
    federation: Any, topics: dict[str, tuple[int, dict[str, str]]]
) -> list[dict[str, Any]]:
    documents = []
    names: dict[str, str] = {}
    for topic, (partitions, config) in topics.items():
        name = k8s_name(topic)
        if name in names:
            raise ValueError(f"topics {names[name]!r} and {topic!r} map to one object name")
        names[name] = topic
        documents.append(
            {
                "apiVersion": "kafka.strimzi.io/v1beta2",
                "kind": "KafkaTopic",
                "metadata": {
                    "name": name,
                    "labels": {"strimzi.io/cluster": CLUSTER, **NAMESPACE_LABELS},
                },
                "spec": {
                    "topicName": topic,
                    "partitions": partitions,
                    "replicas": federation.layout.replicas,
                    "config": {k: _typed(v) for k, v in config.items()},
                },
            }
        )
    return documents


def kafka_users(federation: Any) -> list[dict[str, Any]]:
    documents = []
    for principal in federation.principals:
        acls = [
            {
                "resource": {
                    "type": acl.resource_type,
                    "name": acl.name,
                    "patternType": acl.pattern_type,
                },
                "operations": list(acl.operations),
                "host": "*",
            }
            for acl in principal.acls
        ]
        documents.append(
            {
                "apiVersion": "kafka.strimzi.io/v1beta2",
                "kind": "KafkaUser",
                "metadata": {
                    "name": principal.name,
                    "labels": {
                        "strimzi.io/cluster": CLUSTER,
                        **labels(principal.role, principal.agency),
                    },
                },
                "spec": {
                    "authentication": {"type": "scram-sha-512"},
                    "authorization": {"type": "simple", "acls": acls},
                },
            }
        )
    return documents


def _pod_security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _container_security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def _kafka_client(user: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[Any]]:
    """Env, volume mounts and volumes that let a pod log in as ``user``: to Kafka with the
    password from the Secret the User Operator creates and the cluster CA from the Cluster
    Operator's; to the schema registry with the password in the Secret ``registry-<user>``
    (key ``password``; the registry's users file holds the same)."""
    env = [
        {"name": "GOVSYNC_SASL_USERNAME", "value": user},
        {"name": "GOVSYNC_SASL_PASSWORD_FILE", "value": "/etc/govsync/kafka-user/password"},
        {"name": "GOVSYNC_REGISTRY_USERNAME", "value": user},
        {"name": "GOVSYNC_REGISTRY_PASSWORD_FILE", "value": "/etc/govsync/registry-user/password"},
    ]
    mounts = [
        {"name": "kafka-user", "mountPath": "/etc/govsync/kafka-user", "readOnly": True},
        {"name": "kafka-ca", "mountPath": "/etc/govsync/kafka-ca", "readOnly": True},
        {"name": "registry-user", "mountPath": "/etc/govsync/registry-user", "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    password = [{"key": "password", "path": "password"}]
    volumes = [
        {"name": "kafka-user", "secret": {"secretName": user, "items": password}},
        {
            "name": "kafka-ca",
            "secret": {
                "secretName": f"{CLUSTER}-cluster-ca-cert",
                "items": [{"key": "ca.crt", "path": "ca.crt"}],
            },
        },
        {"name": "registry-user", "secret": {"secretName": f"registry-{user}", "items": password}},
        {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
    ]
    return env, mounts, volumes


def _secret_env(name: str, secret: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": "dsn"}}}


def _deployment(
    name: str,
    component: str,
    agency: str,
    replicas: int,
    strategy: dict[str, Any],
    container: dict[str, Any],
    volumes: list[Any],
) -> dict[str, Any]:
    pod_labels = labels(component, agency)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": pod_labels},
        "spec": {
            "replicas": replicas,
            "strategy": strategy,
            "selector": {"matchLabels": pod_labels},
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": 60,
                    "securityContext": _pod_security(),
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


def connector_deployments(federation: Any) -> list[dict[str, Any]]:
    """One connector per source, one replica, recreated rather than rolled: a replication slot
    has a single reader, and two connectors on one slot would interleave their advances."""
    documents = []
    for source in federation.sources:
        user = f"govsync-connector-{source.name}"
        env, mounts, volumes = _kafka_client(user)
        container = {
            "name": "connector",
            "image": IMAGE,
            "args": ["connector", "run"],
            "envFrom": [{"configMapRef": {"name": "govsync-kafka"}}],
            "env": [
                {"name": "GOVSYNC_SOURCE", "value": source.name},
                _secret_env("GOVSYNC_SOURCE_DSN", f"govsync-source-{source.name}"),
                {"name": "GOVSYNC_METRICS_PORT", "value": str(CONNECTOR_METRICS_PORT)},
                {"name": "GOVSYNC_METRICS_HOST", "value": "0.0.0.0"},
                *env,
            ],
            "ports": [{"name": "metrics", "containerPort": CONNECTOR_METRICS_PORT}],
            **_metrics_probes(),
            "resources": {
                "requests": {"cpu": "250m", "memory": "256Mi"},
                "limits": {"memory": "1Gi"},
            },
            "securityContext": _container_security(),
            "volumeMounts": mounts,
        }
        documents.append(
            _deployment(
                f"connector-{source.name}",
                "connector",
                source.name,
                1,
                {"type": "Recreate"},
                container,
                volumes,
            )
        )
    return documents


def _metrics_probes() -> dict[str, Any]:
    """Ready and alive while /metrics accepts connections."""
    return {
        "readinessProbe": {"tcpSocket": {"port": "metrics"}, "periodSeconds": 10},
        "livenessProbe": {
            "tcpSocket": {"port": "metrics"},
            "periodSeconds": 20,
            "failureThreshold": 6,
        },
    }


FEDERATION_MOUNT = "/etc/govsync/federation"
SECRETS_MOUNT = "/etc/govsync/secrets"


def federation_config(federation: Any) -> list[dict[str, Any]]:
    """The federation file, as every processor reads it (``GOVSYNC_MANIFEST``)."""
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "govsync-federation", "labels": NAMESPACE_LABELS},
            "data": {"federation.yaml": federation.text},
        }
    ]


def processor_deployments(federation: Any) -> list[dict[str, Any]]:
    """Per subscribing agency, two workers in its consumer group: one active, one hot standby
    (a worker applies an agency's partitions only while it holds the agency's lock in the
    replica, so source transactions stay whole). Each enforces the federation file, records
    every disclosure in the audit as its agency's writer role and signs the audit with its own
    key: the Secret ``govsync-audit-<agency>`` holds ``dsn`` and ``signing-key.pem``, and
    ``govsync-hash-keys-<agency>`` the agency's hash keys: its remembered deletes' and its
    pseudonyms'."""
    documents: list[dict[str, Any]] = []
    for agency in federation.subscribers:
        user = f"govsync-processor-{agency.name}"
        env, mounts, volumes = _kafka_client(user)
        audit_secret = f"govsync-audit-{agency.name}"
        secret_items = [{"key": "signing-key.pem", "path": "signing-key.pem"}]
        policy_env = [
            {"name": "GOVSYNC_MANIFEST", "value": f"{FEDERATION_MOUNT}/federation.yaml"},
            {
                "name": "GOVSYNC_AUDIT_DSN",
                "valueFrom": {"secretKeyRef": {"name": audit_secret, "key": "dsn"}},
            },
            {"name": "GOVSYNC_AUDIT_SIGNING_KEY_FILE", "value": f"{SECRETS_MOUNT}/signing-key.pem"},
        ]
        projected: list[dict[str, Any]] = [
            {"secret": {"name": audit_secret, "items": secret_items}}
        ]
        if agency.hash_keys:
            policy_env.append(
                {"name": "GOVSYNC_HASH_KEYS_FILE", "value": f"{SECRETS_MOUNT}/hash-keys.json"}
            )
            projected.append(
                {
                    "secret": {
                        "name": f"govsync-hash-keys-{agency.name}",
                        "items": [{"key": "hash-keys.json", "path": "hash-keys.json"}],
                    }
                }
            )
        container = {
            "name": "processor",
            "image": IMAGE,
            "args": ["processor", "run"],
            "envFrom": [{"configMapRef": {"name": "govsync-kafka"}}],
            "env": [
                {"name": "GOVSYNC_AGENCY", "value": agency.name},
                _secret_env("GOVSYNC_REPLICA_DSN", f"govsync-replica-{agency.name}"),
                {"name": "GOVSYNC_TOPICS", "value": json.dumps(list(agency.topics))},
                *policy_env,
                {"name": "GOVSYNC_WEB_PORT", "value": str(PROCESSOR_WEB_PORT)},
                {"name": "GOVSYNC_WEB_HOST", "value": "0.0.0.0"},
                {"name": "GOVSYNC_DATA_DIR", "value": "/var/lib/govsync"},
                *env,
            ],
            "ports": [{"name": "metrics", "containerPort": PROCESSOR_WEB_PORT}],
            **_metrics_probes(),
            "resources": {
                "requests": {"cpu": "250m", "memory": "384Mi"},
                "limits": {"memory": "1Gi"},
            },
            "securityContext": _container_security(),
            "volumeMounts": [
                *mounts,
                {"name": "data", "mountPath": "/var/lib/govsync"},
                {"name": "federation", "mountPath": FEDERATION_MOUNT, "readOnly": True},
                {"name": "policy-secrets", "mountPath": SECRETS_MOUNT, "readOnly": True},
            ],
        }
        volumes.extend(
            [
                {"name": "data", "emptyDir": {"sizeLimit": "1Gi"}},
                {"name": "federation", "configMap": {"name": "govsync-federation"}},
                {
                    "name": "policy-secrets",
                    "projected": {"sources": projected, "defaultMode": 0o400},
                },
            ]
        )
        rolling = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
        documents.append(
            _deployment(
                f"processor-{agency.name}", "processor", agency.name, 2, rolling, container, volumes
            )
        )
        documents.append(
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": {
                    "name": f"processor-{agency.name}",
                    "labels": labels("processor", agency.name),
                },
                "spec": {
                    "maxUnavailable": 1,
                    "selector": {"matchLabels": labels("processor", agency.name)},
                },
            }
        )
    return documents


def verify_cronjob(federation: Any) -> list[dict[str, Any]]:
    """Every hour, ``govsync --federation FILE verify`` of every replica against its sources,
    one run at a time, its outcome pushed to the Pushgateway (the drift and stale-verify
    alerts read it). The databases are the federation file's ``deployment.postgres``; the
    Secret ``govsync-verify`` holds ``pgpass`` (a libpq password file with every connector
    and replica role) and ``hash-keys.json`` (every pseudonymising agency's hash keys)."""
    container = {
        "name": "verify",
        "image": IMAGE,
        "args": [
            "--federation",
            f"{FEDERATION_MOUNT}/federation.yaml",
            "verify",
            "--pushgateway",
            "http://pushgateway.monitoring:9091",
        ],
        "env": [
            {"name": "PGPASSFILE", "value": f"{SECRETS_MOUNT}/pgpass"},
            {"name": "GOVSYNC_HASH_KEYS_FILE", "value": f"{SECRETS_MOUNT}/hash-keys.json"},
        ],
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
        "securityContext": _container_security(),
        "volumeMounts": [
            {"name": "federation", "mountPath": FEDERATION_MOUNT, "readOnly": True},
            {"name": "verify", "mountPath": SECRETS_MOUNT, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    pod = {
        "metadata": {"labels": labels("verify")},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": _pod_security(),
            "containers": [container],
            "volumes": [
                {"name": "federation", "configMap": {"name": "govsync-federation"}},
                # libpq refuses a password file others may read
                {
                    "name": "verify",
                    "secret": {"secretName": "govsync-verify", "defaultMode": 0o400},
                },
                {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
            ],
        },
    }
    return [
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "govsync-verify", "labels": labels("verify")},
            "spec": {
                "schedule": "17 * * * *",
                "concurrencyPolicy": "Forbid",
                "startingDeadlineSeconds": 600,
                "successfulJobsHistoryLimit": 3,
                "failedJobsHistoryLimit": 3,
                "jobTemplate": {"spec": {"backoffLimit": 0, "template": pod}},
            },
        }
    ]


def prometheus_rule(federation: Any) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PrometheusRule",
            "metadata": {"name": "govsync", "labels": {**NAMESPACE_LABELS, "role": "alert-rules"}},
            "spec": {"groups": federation.alerts["groups"]},
        }
    ]


def grafana_dashboard(federation: Any) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "govsync-grafana-dashboard",
                # the label Grafana's dashboard sidecar watches for
                "labels": {**NAMESPACE_LABELS, "grafana_dashboard": "1"},
            },
            "data": {"govsync.json": federation.dashboard},
        }
    ]
