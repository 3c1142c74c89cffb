"""One benchmark session: the embedded stack on the broker asked for (Tansu, or a three-node
Apache Kafka cluster), the pipeline processes started on it, and the sampler watching them.
Leaving the session (normally, on error or on Ctrl-C) stops every process it started: pipeline
processes first, then the registry, the broker and PostgreSQL."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import FrameType, TracebackType

from bench.sampler import Sampler
from sync.contracts import Contract, load_contracts
from sync.errors import StackError
from sync.stack.broker import Broker
from sync.stack.providers import BrokerChoice, EmbeddedProvider
from sync.stack.specs import KafkaEndpoints, connector_spec, processor_spec
from sync.stack.supervisor import Managed, ProcessSpec, Supervisor

log = logging.getLogger(__name__)

TOPIC = "population.citizen"
SOURCE = "population"
PARTITIONS = 3
# the stack's process role -> the sampler's role, and whether its children count (a tree); the
# broker is one process (Tansu) or one per node (Kafka), watched as one
INFRASTRUCTURE = {
    "database": ("postgres", True),
    "broker": ("broker", False),
    "registry": ("registry", False),
}


@contextlib.contextmanager
def data_directory(prefix: str, keep: bool) -> Iterator[Path]:
    """A new directory for the servers' data and logs, removed at the end unless ``keep``, or
    after an error (the processes' logs say what went wrong). SIGTERM stops the run as Ctrl-C
    does, and Ctrl-C is taken even where the parent shell started it ignoring it (a
    background job); an interrupted run removes its directory unless ``keep``."""
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    except KeyboardInterrupt:
        log.warning("interrupted: every process the benchmark started has been stopped")
        raise
    except BaseException:
        keep = True
        raise
    finally:
        if keep:
            log.info("the servers' data and logs are kept in %s", path)
        else:
            shutil.rmtree(path, ignore_errors=True)


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


class BenchError(RuntimeError):
    """A measurement could not be taken (a process died, a run did not converge)."""


class Session:
    """Use as a context manager."""

    def __init__(self, data_dir: Path, broker: BrokerChoice = "tansu") -> None:
        self.data_dir = data_dir
        self.broker_name: BrokerChoice = broker
        self.logs = data_dir / "logs"
        self.run_id = uuid.uuid4().hex[:6]
        self.contract: Contract = load_contracts()[TOPIC]
        self.supervisor = Supervisor()
        self.sampler = Sampler()
        self.provider: EmbeddedProvider | None = None

    def __enter__(self) -> Session:
        try:
            self.provider = EmbeddedProvider(self.data_dir / "stack", broker=self.broker_name)
            self._watch_infrastructure()
            self.sampler.watch("bench", os.getpid())  # its polls and probes cost CPU too
            self.sampler.start()
        except BaseException:
            self.close()
            raise
        return self

    def _watch_infrastructure(self) -> None:
        for role, (name, tree) in INFRASTRUCTURE.items():
            pids = self.infrastructure_pids(role)
            if not pids:
                raise BenchError(f"the stack runs no {role} process")
            self.sampler.watch(name, *pids, tree=tree)

    def infrastructure_pids(self, role: str) -> list[int]:
        """The stack's processes of ``role`` (``database``, ``broker``, ``registry``)."""
        processes = self.stack.federation.supervisor.processes.values()
        return [managed.pid for managed in processes if managed.spec.role == role]

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.supervisor.stop_all(drain_timeout=0)
        finally:
            self.sampler.stop()
            if self.provider is not None:
                self.provider.close()
                self.provider = None

    @property
    def stack(self) -> EmbeddedProvider:
        if self.provider is None:
            raise BenchError("the stack is not running")
        return self.provider

    @property
    def broker(self) -> Broker:
        return self.stack.federation.broker

    def database(self, name: str) -> str:
        """A new empty database; returns its DSN."""
        return self.stack.create_database(f"bench_{name}")

    def postgres_dsn(self) -> str:
        return self.stack.federation.postgres.dsn()

    def kafka(self, phase: str) -> KafkaEndpoints:
        """Endpoints with a topic prefix no other phase or run uses."""
        prefix = f"bench{self.run_id}.{phase}."
        return KafkaEndpoints(
            self.stack.bootstrap,
            self.stack.registry_url,
            PARTITIONS,
            prefix,
            replication=self.broker.replication,
        )

    def topic(self, phase: str) -> str:
        return self.kafka(phase).topic_prefix + TOPIC

    def start_connector(self, phase: str, source_dsn: str) -> Managed:
        spec = connector_spec(
            self.kafka(phase),
            SOURCE,
            source_dsn,
            self.logs,
            name=f"connector-{phase}",
            slot=f"bench_{phase}",
            tables=[self.contract.entity],
        )
        return self._start(spec, "connector")

    def replica_template(self, prefix: str) -> str:
        """The replica DSN of every agency a worker hosts: ``{agency}`` stands for its code
        (databases made by :meth:`database` with ``prefix`` + agency)."""
        return self.stack.federation.postgres.dsn(f"bench_{prefix}{{agency}}")

    def start_processor(
        self, phase: str, agency: str, replica_dsn: str, name: str = "", **env: str
    ) -> Managed:
        """``env``: more GOVSYNC_* settings, by name without the prefix."""
        name = name or f"processor-{phase}-{agency}"
        spec = processor_spec(
            self.kafka(phase), agency, replica_dsn, [TOPIC], self.logs, self.logs / name, name=name
        )
        spec.env.update({f"GOVSYNC_{key.upper()}": value for key, value in env.items()})
        return self._start(spec, "processor")

    def _start(self, spec: ProcessSpec, role: str) -> Managed:
        try:
            managed = self.supervisor.start(spec)
        except StackError as exc:
            raise BenchError(str(exc)) from exc
        self.sampler.watch(role, managed.pid)
        return managed

    def stop(self, *processes: Managed) -> None:
        for managed in processes:
            self.supervisor.stop(managed.spec.name)

    def check_alive(self) -> None:
        """Fail the measurement if a pipeline process exited: a benchmark reports crashes,
        it does not hide them behind restarts."""
        for managed in self.supervisor.processes.values():
            code = managed.popen.poll()
            if code is not None:
                raise BenchError(
                    f"{managed.spec.name} exited with code {code} during the measurement; "
                    f"see {managed.spec.log_path}"
                )
