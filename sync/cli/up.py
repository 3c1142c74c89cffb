"""``govsync up``: start the embedded federation and keep it running until Ctrl-C."""

from __future__ import annotations

import signal
import tempfile
from pathlib import Path
from types import FrameType
from typing import Literal

import click
from rich.console import Console
from rich.table import Table

from sync.stack.description import StackDescription
from sync.stack.federation import EmbeddedFederation, FederationOptions
from sync.stack.kafka.security import ADMIN, KafkaSecurity

console = Console()


@click.command()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the stack keeps its state; a temporary directory if omitted.",
)
@click.option(
    "--citizens",
    default=3_000,
    show_default=True,
    help="Demo citizens loaded into a new population database.",
)
@click.option(
    "--broker-storage",
    type=click.Choice(["memory", "s3"]),
    default="memory",
    show_default=True,
    help="Where the Tansu broker keeps topics. s3: on a local S3 server (moto, from the s3 "
    "extra), so they outlive a broker restart (a batch in flight may still be lost, see "
    "docs/operations.md); they are forgotten when the stack stops.",
)
@click.option(
    "--broker",
    type=click.Choice(["tansu", "kafka"]),
    default="tansu",
    show_default=True,
    help="tansu: one embedded broker, no JVM. kafka: the production-like mode, a three-node "
    "Apache Kafka cluster (KRaft, replication factor 3, min.insync.replicas=2); needs Java 17+ "
    "and, on first use, Maven to fetch its jars.",
)
@click.option(
    "--secure",
    is_flag=True,
    help="With --broker kafka: clients connect with SCRAM-SHA-512 over TLS, each connector and "
    "processor as its own principal, allowed only the topics and group the federation "
    "manifest gives it.",
)
def up(
    data_dir: Path | None,
    citizens: int,
    broker_storage: Literal["memory", "s3"],
    broker: Literal["tansu", "kafka"],
    secure: bool,
) -> None:
    """Start the embedded federation -- PostgreSQL with the five demo sources and a replica
    per subscribing agency, the broker, the registry, a connector per source, a processor
    per subscribing agency and the web console -- and stop them all on Ctrl-C."""
    data_dir = data_dir or Path(tempfile.mkdtemp(prefix="govsync-"))
    stopping = {"now": False}

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stopping["now"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    options = FederationOptions(
        data_dir, citizens, broker_storage=broker_storage, broker=broker, secure=secure
    )
    federation = EmbeddedFederation(options)
    with console.status("starting the embedded federation…"):
        description = federation.start()
    try:
        _print(description, data_dir, federation.security)
        federation.supervise(lambda: stopping["now"], lambda m: console.print(f"[yellow]{m}"))
    finally:
        with console.status("stopping…"):
            federation.stop()
        console.print("[green]stopped every process of the stack")


def _print(description: StackDescription, data_dir: Path, security: KafkaSecurity | None) -> None:
    table = Table(title="govsync embedded federation")
    for column in ("name", "role", "pid", "metrics"):
        table.add_column(column)
    for process in description.processes:
        table.add_row(process.name, process.role, str(process.pid), process.metrics_url or "")
    console.print(table)
    console.print(
        f"broker      {description.broker} {description.bootstrap} ({description.broker_storage})"
    )
    if security is not None:
        console.print(
            f"security    SASL_SSL, SCRAM-SHA-512; CA {security.ca_file}; "
            f"the admin's password in {security.password_file(ADMIN)}"
        )
    admin = data_dir / "registry" / "passwords" / "admin"
    console.print(
        f"registry    {description.registry_url} (every client authenticates; "
        f"user admin, password in {admin})"
    )
    if description.console_url:
        passwords = data_dir / "console" / "passwords"
        console.print(
            f"console     {description.console_url} (users reviewer and dpo, passwords in "
            f"{passwords})"
        )
    for db in description.databases:
        console.print(f"{db.role:<11} {db.agency}: {db.dsn}")
    console.print(f"stack.json  {data_dir / 'stack.json'}")
    console.print("Ctrl-C stops everything.")
