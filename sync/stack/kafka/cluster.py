"""The embedded Apache Kafka cluster: three combined KRaft controller+broker JVMs on 127.0.0.1.

Each node gets a directory under the cluster's root (its ``server.properties``, its log4j2
configuration, its log directory), is formatted once with the storage tool and a cluster id
kept beside the nodes, and then runs ``kafka.Kafka server.properties`` under the stack's
supervisor like any other process. The cluster is ready when all its brokers are registered
and unfenced, as the cluster's own metadata says.

By default clients connect in plaintext and may do anything. A secure cluster
(:mod:`sync.stack.kafka.security`) takes only SCRAM principals over TLS and enforces their ACLs.
"""

from __future__ import annotations

import base64
import json
import logging
import subprocess
import time
import uuid
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient

from sync.errors import StackError
from sync.stack.kafka.acls import PrincipalAcls
from sync.stack.kafka.jars import classpath, ensure_jars, java_binary, kafka_version
from sync.stack.kafka.properties import (
    Durability,
    KafkaNode,
    jvm_options,
    log4j2_properties,
    render_properties,
    server_properties,
)
from sync.stack.kafka.security import ADMIN, KafkaSecurity
from sync.stack.ports import free_port, port_open, wait_until
from sync.stack.supervisor import ProcessSpec, Supervisor

log = logging.getLogger(__name__)

CLUSTER = "kafka"  # the supervisor stops the nodes of one cluster together
BROKER_MAIN = "kafka.Kafka"
OFFSETS_TOPIC = "__consumer_offsets"
# where the storage tool lives moved between Kafka versions: the first the jars hold is used
STORAGE_TOOLS = ("kafka.tools.StorageTool", "org.apache.kafka.tools.StorageTool")


@dataclass
class KafkaCluster:
    """Configures, formats and describes the nodes; the supervisor runs them."""

    root: Path
    nodes: tuple[KafkaNode, ...]
    durability: Durability = field(default_factory=Durability)
    ready_timeout: float = 120.0
    security: KafkaSecurity | None = None
    _java: str = field(init=False, default="")
    _jars: Path | None = field(init=False, default=None)

    @classmethod
    def create(
        cls, root: Path, size: int = 3, *, security: Iterable[PrincipalAcls] | None = None
    ) -> KafkaCluster:
        """A cluster of ``size`` nodes on free loopback ports. With ``security`` (the
        principals and their ACLs, possibly none) it is secure: clients authenticate with
        SCRAM over TLS and may do what their ACLs allow; the admin may do anything."""
        secure = security is not None
        nodes = tuple(
            KafkaNode(i, free_port(), free_port(), root / f"node-{i}", free_port() if secure else 0)
            for i in range(1, size + 1)
        )
        if security is None:
            return cls(root, nodes)
        return cls(root, nodes, security=KafkaSecurity(root / "security", tuple(security)))

    @property
    def bootstrap(self) -> str:
        return ",".join(node.address for node in self.nodes)

    def client_config(self, user: str = ADMIN) -> dict[str, str]:
        """confluent-kafka settings to connect as ``user`` (a secure cluster's principal;
        any client of a plaintext one)."""
        if self.security is None:
            return {"bootstrap.servers": self.bootstrap}
        return self.security.client_config(self.bootstrap, user)

    @property
    def storage(self) -> str:
        """For ``stack.json``: where the nodes keep their logs."""
        return self.root.as_uri()

    @property
    def replication(self) -> int:
        return self.durability.replication

    @property
    def version(self) -> str:
        return kafka_version()

    @property
    def cluster_id(self) -> str:
        """Made once per cluster root: every node is formatted with it."""
        path = self.root / "cluster.id"
        if not path.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            path.write_text(_new_cluster_id())
        return path.read_text().strip()

    def prepare(self) -> None:
        """Fetch the jars on first use, write every node's configuration (ports may be new),
        and format the nodes that were never formatted."""
        self._jars = ensure_jars()
        self._java = java_binary()
        if self.security is not None:
            self.security.prepare(self.nodes)
        for node in self.nodes:
            node.directory.mkdir(parents=True, exist_ok=True)
            properties = server_properties(node, self.nodes, self.durability)
            if self.security is not None:
                properties |= self.security.node_properties(node, self.nodes)
            node.config_file.write_text(render_properties(properties))
            node.log4j_file.write_text(log4j2_properties())
        self._format([node for node in self.nodes if not node.formatted])

    def _format(self, nodes: Sequence[KafkaNode]) -> None:
        assert self._jars is not None
        tool = _main_class(self._jars, STORAGE_TOOLS)
        bootstrap = [] if self.security is None else self.security.format_arguments()
        running = [
            subprocess.Popen(
                [
                    self._java,
                    "-Xmx256m",
                    f"-Dlog4j2.configurationFile={node.log4j_file}",
                    "-cp",
                    classpath(self._jars),
                    tool,
                    "format",
                    "--cluster-id",
                    self.cluster_id,
                    "--config",
                    str(node.config_file),
                    "--ignore-formatted",
                    *bootstrap,
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for node in nodes
        ]
        for node, process in zip(nodes, running, strict=True):
            output, _ = process.communicate(timeout=120)
            if process.returncode != 0:
                raise StackError(
                    f"formatting {node.name} in {node.log_dir} failed "
                    f"(exit code {process.returncode}):\n{output[-2000:]}"
                )

    def argv(self, node: KafkaNode) -> list[str]:
        if self._jars is None:
            self.prepare()
        assert self._jars is not None
        return [
            self._java,
            *jvm_options(node),
            "-cp",
            classpath(self._jars),
            BROKER_MAIN,
            str(node.config_file),
        ]

    def specs(self, logs: Path) -> list[ProcessSpec]:
        """One process per node. A node is started once its controller port listens; the
        cluster as a whole is ready only when :meth:`wait_ready` says so."""
        self.prepare()
        return [
            ProcessSpec(
                name=node.name,
                role="broker",
                argv=self.argv(node),
                log_path=logs / f"{node.name}.log",
                ready=lambda port=node.controller_port: port_open(port),  # type: ignore[misc]
                ready_timeout=60,
                stop_timeout=30,
                cluster=CLUSTER,
            )
            for node in self.nodes
        ]

    def start(self, supervisor: Supervisor, logs: Path) -> None:
        """Start every node at once (none is of use before a quorum of them runs), then wait
        for all the brokers; a secure cluster's principals and ACLs are created then."""
        began = time.monotonic()
        specs = self.specs(logs)
        prepared = time.monotonic()
        supervisor.start_together(specs)
        self.wait_ready()
        if self.security is not None:
            self.security.provision(self.client_config())
        log.info(
            "Kafka %s: %d brokers at %s ready in %.1f s (%.1f s to prepare)",
            self.version,
            len(self.nodes),
            self.bootstrap,
            time.monotonic() - began,
            prepared - began,
        )

    def live_brokers(self) -> set[int]:
        """The ids of the brokers the cluster's metadata lists (registered and unfenced)."""
        admin = AdminClient({**self.client_config(), "socket.timeout.ms": 5000})
        described = admin.describe_cluster(request_timeout=5).result(timeout=10)
        return {int(node.id) for node in described.nodes}

    def wait_ready(self) -> None:
        wanted = {node.node_id for node in self.nodes}
        wait_until(
            lambda: self.live_brokers() == wanted,
            self.ready_timeout,
            f"the Kafka cluster ({len(wanted)} brokers at {self.bootstrap})",
            interval=0.25,
        )

    def wait_group_coordinators(self, timeout: float = 120.0) -> None:
        """Wait until every partition of the offsets topic has a leader. A group's first
        coordinator lookup creates that topic; a consumer that assigns its partitions while it
        is being created may be told NOT_COORDINATOR when it fetches its committed offsets, and
        then never fetch at all (seen with librdkafka 2.16 on this cluster)."""
        # a consumer with a group id looks up its coordinator as soon as it is created
        probe = Consumer({**self.client_config(), "group.id": "govsync-coordinator-probe"})

        def led() -> bool:
            topic = probe.list_topics(OFFSETS_TOPIC, timeout=10).topics.get(OFFSETS_TOPIC)
            partitions = [] if topic is None else list(topic.partitions.values())
            return bool(partitions) and all(p.leader >= 0 for p in partitions)

        try:
            wait_until(led, timeout, "the Kafka cluster's group coordinators", interval=0.5)
        finally:
            probe.close()

    def under_replicated(self) -> list[str]:
        """Partitions whose in-sync replicas are fewer than their replicas, as topic-partition
        names: empty once every node has caught up (a rolling restart waits for that before it
        takes the next node down)."""
        admin = AdminClient({**self.client_config(), "socket.timeout.ms": 5000})
        metadata = admin.list_topics(timeout=10)
        return [
            f"{topic.topic}-{partition.id}"
            for topic in metadata.topics.values()
            for partition in topic.partitions.values()
            if len(partition.isrs) < len(partition.replicas) or partition.leader < 0
        ]

    def in_sync(self) -> bool:
        """Every broker registered and every partition with all its replicas in sync, as the
        cluster's metadata says: what a rolling restart waits for before the next node."""
        return self.live_brokers() == {n.node_id for n in self.nodes} and not (
            self.under_replicated()
        )

    def active_controller(self) -> KafkaNode:
        """The node leading the KRaft quorum, as the newest epoch recorded in the nodes'
        ``quorum-state`` files says (brokers do not tell clients who the controller is)."""
        best: tuple[int, int] | None = None
        for node in self.nodes:
            path = node.log_dir / "__cluster_metadata-0" / "quorum-state"
            try:
                state = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # not written yet, or being replaced
            leader, epoch = int(state.get("leaderId", -1)), int(state.get("leaderEpoch", -1))
            if leader >= 0 and (best is None or epoch > best[0]):
                best = (epoch, leader)
        if best is None:
            raise StackError(f"no node of the Kafka cluster at {self.root} knows its leader")
        return self.node(f"kafka-{best[1]}")

    def node(self, name: str) -> KafkaNode:
        for node in self.nodes:
            if node.name == name:
                return node
        raise StackError(f"the Kafka cluster has no node named {name!r}")


def _new_cluster_id() -> str:
    """Kafka's Uuid text form: URL-safe base64 of 16 random bytes, without padding. Like
    Kafka's own ``Uuid.randomUuid`` it never starts with '-', which a command line would take
    for an option."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def _main_class(jars: Path, candidates: Sequence[str]) -> str:
    path = {c: c.replace(".", "/") + ".class" for c in candidates}
    for jar in sorted(jars.glob("kafka*.jar")):
        with zipfile.ZipFile(jar) as archive:
            names = set(archive.namelist())
        for candidate in candidates:
            if path[candidate] in names:
                return candidate
    raise StackError(f"none of {', '.join(candidates)} is in the Kafka jars of {jars}")
