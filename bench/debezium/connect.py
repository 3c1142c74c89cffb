"""One Debezium PostgreSQL connector in a Kafka Connect worker of its own (standalone mode):
the worker's and the connector's properties, and the worker as a process of the stack.

The converters are Kafka's own JsonConverter without schemas: Confluent's Avro converter is not
on Maven Central, and JSON without an embedded schema is the cheapest encoding the worker
offers, so Debezium pays no registry and no schema per record. Everything else is left at
Debezium's and Connect's defaults (Connect's producer: ``acks=all``, one request in flight,
the client's 5 ms linger).
"""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

from sync.stack.kafka.jars import classpath
from sync.stack.kafka.properties import GC, log4j2_properties, render_properties
from sync.stack.ports import LOOPBACK, port_open
from sync.stack.supervisor import ProcessSpec

CONNECTOR_CLASS = "io.debezium.connector.postgresql.PostgresConnector"
STANDALONE_MAIN = "org.apache.kafka.connect.cli.ConnectStandalone"
JSON_CONVERTER = "org.apache.kafka.connect.json.JsonConverter"
HEAP = ("-Xms256m", "-Xmx1g")
ROLE = "debezium"  # the sampler's role of the worker's JVM


# the REST server logs every request at INFO, the benchmark's status polls included
_QUIET_REST = (
    "logger.rest.name = org.apache.kafka.connect.runtime.rest.RestServer\n"
    "logger.rest.level = WARN\n"
)


@dataclass(frozen=True)
class DebeziumRun:
    """What one worker is told: where it reads, where it writes, and how it starts.

    ``snapshot``: read the table's rows first (Debezium's ``initial``), or only its schema and
    then stream from the slot (``no_data``). ``heartbeat_ms``: emit heartbeats, whose records
    carry the slot position as the task's offset, so a worker that captured nothing still
    leaves an offset to resume from."""

    name: str
    directory: Path
    bootstrap: str
    dsn: str
    topic_prefix: str
    table: str  # schema.table
    slot: str
    publication: str
    snapshot: bool
    rest_port: int
    heartbeat_ms: int = 0
    partitions: int = 3
    replication: int = 3

    @property
    def topic(self) -> str:
        """Where Debezium writes the table's changes: ``<prefix>.<schema>.<table>``."""
        return f"{self.topic_prefix}.{self.table}"

    @property
    def heartbeat_topic(self) -> str:
        return f"__debezium-heartbeat.{self.topic_prefix}"

    @property
    def offsets_file(self) -> Path:
        return self.directory / "offsets.dat"


def worker_properties(run: DebeziumRun) -> dict[str, str]:
    json_without_schemas = {
        "key.converter": JSON_CONVERTER,
        "key.converter.schemas.enable": "false",
        "value.converter": JSON_CONVERTER,
        "value.converter.schemas.enable": "false",
    }
    return {
        "bootstrap.servers": run.bootstrap,
        "listeners": f"http://{LOOPBACK}:{run.rest_port}",
        **json_without_schemas,
        # every plugin on the class path declares itself: no scan of every jar at start
        "plugin.discovery": "service_load",
        "offset.storage.file.filename": str(run.offsets_file),
        # the slot is confirmed up to the committed offsets: every second, as govsync's
        # connector advances its slot after each acknowledged batch
        "offset.flush.interval.ms": "1000",
    }


def connector_properties(run: DebeziumRun) -> dict[str, str]:
    source = conninfo_to_dict(run.dsn)
    properties = {
        "name": run.name,
        "connector.class": CONNECTOR_CLASS,
        "tasks.max": "1",
        "plugin.name": "pgoutput",
        "database.hostname": str(source.get("host", LOOPBACK)),
        "database.port": str(source.get("port", 5432)),
        "database.user": str(source.get("user", "postgres")),
        "database.dbname": str(source["dbname"]),
        "topic.prefix": run.topic_prefix,
        "table.include.list": run.table,
        "slot.name": run.slot,
        "publication.name": run.publication,
        "publication.autocreate.mode": "filtered",
        "snapshot.mode": "initial" if run.snapshot else "no_data",
        # the topic as govsync's connector creates its own: partitions, replication factor 3
        "topic.creation.default.partitions": str(run.partitions),
        "topic.creation.default.replication.factor": str(run.replication),
    }
    if "password" in source:
        properties["database.password"] = str(source["password"])
    if run.heartbeat_ms:
        properties["heartbeat.interval.ms"] = str(run.heartbeat_ms)
    return properties


def worker_spec(run: DebeziumRun, jars: Path, java: str, logs: Path) -> ProcessSpec:
    """Write the worker's files into ``run.directory``; the worker is ready once its REST
    port listens (the connector starts right after)."""
    run.directory.mkdir(parents=True, exist_ok=True)
    worker, connector = run.directory / "worker.properties", run.directory / "connector.properties"
    log4j = run.directory / "log4j2.properties"
    worker.write_text(render_properties(worker_properties(run)))
    connector.write_text(render_properties(connector_properties(run)))
    log4j.write_text(log4j2_properties() + _QUIET_REST)
    argv = [
        java,
        *HEAP,
        *GC,
        "-Djava.awt.headless=true",
        "-XX:+ExitOnOutOfMemoryError",
        f"-Dlog4j2.configurationFile={log4j}",
        "-cp",
        classpath(jars),
        STANDALONE_MAIN,
        str(worker),
        str(connector),
    ]
    return ProcessSpec(
        name=run.name,
        role=ROLE,
        argv=argv,
        log_path=logs / f"{run.name}.log",
        ready=lambda: port_open(run.rest_port),
        ready_timeout=120,
        stop_timeout=30,
    )


def failure(run: DebeziumRun) -> str | None:
    """The trace of the connector or its task when the worker reports it failed, else None
    (also while the worker is still starting it)."""
    url = f"http://{LOOPBACK}:{run.rest_port}/connectors/{run.name}/status"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            status = json.load(response)
    except (OSError, ValueError):  # not created yet, or the worker is busy
        return None
    for state in [status.get("connector", {}), *status.get("tasks", [])]:
        if state.get("state") == "FAILED":
            return str(state.get("trace", "no trace"))
    return None
