"""Supervision of the stack's child processes.

Each process runs in its own session (process group) with its output in a log file. A process
that exits on its own is reported and restarted with exponential backoff; ``on_change`` is
called after every (re)start so ``stack.json`` always names live pids. Stopping sends SIGTERM to
the whole group, waits, then SIGKILLs what is left, so nothing is left behind.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sync.errors import StackError
from sync.stack.description import ProcessEntry

log = logging.getLogger(__name__)

ReadyCheck = Callable[[], bool]


@dataclass
class ProcessSpec:
    """How to run one process of the stack."""

    name: str
    role: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    metrics_url: str | None = None
    ready: ReadyCheck | None = None
    ready_timeout: float = 60.0
    stop_timeout: float = 20.0
    cwd: Path | None = None
    # for processors: true once everything on their topics is consumed and committed
    drained: ReadyCheck | None = None
    # members of one cluster stop together: a KRaft node left alone without a quorum cannot
    # finish its controlled shutdown and would wait for its SIGKILL
    cluster: str | None = None


@dataclass
class Managed:
    spec: ProcessSpec
    popen: subprocess.Popen[bytes]
    restarts: int = 0
    next_restart_at: float | None = None
    backoff: float = 0.5
    started_at: float = field(default_factory=time.monotonic)

    @property
    def pid(self) -> int:
        return self.popen.pid


class Supervisor:
    """Starts, watches and stops the stack's processes. Not thread-safe: one owner drives it."""

    MAX_BACKOFF = 30.0
    STABLE_AFTER = 10.0  # seconds up before earlier crashes are forgiven

    def __init__(self, on_change: Callable[[], None] = lambda: None) -> None:
        self.processes: dict[str, Managed] = {}
        self._on_change = on_change

    def start(self, spec: ProcessSpec) -> Managed:
        """Start ``spec`` and wait until it is ready."""
        managed = Managed(spec, self._spawn(spec))
        self.processes[spec.name] = managed
        try:
            self._wait_ready(managed)
        except BaseException:
            del self.processes[spec.name]  # a process that never started is not supervised
            _terminate_group(managed.popen, 5)
            raise
        self._on_change()
        return managed

    def start_together(self, specs: Sequence[ProcessSpec]) -> list[Managed]:
        """Start ``specs`` at once, then wait until each is ready: the members of a cluster
        that needs several of them up before any is of use."""
        started = [Managed(spec, self._spawn(spec)) for spec in specs]
        self.processes.update((m.spec.name, m) for m in started)
        try:
            for managed in started:
                self._wait_ready(managed)
        except BaseException:
            for managed in started:
                del self.processes[managed.spec.name]
            _terminate_groups([m.popen for m in started], 5)
            raise
        self._on_change()
        return started

    def poll(self) -> list[str]:
        """Restart what died, when its backoff has passed. Returns messages for the operator."""
        events: list[str] = []
        now = time.monotonic()
        for managed in self.processes.values():
            code = managed.popen.poll()
            if code is None:
                if managed.restarts and now - managed.started_at > self.STABLE_AFTER:
                    managed.backoff = 0.5  # it stayed up: forget earlier trouble
                continue
            if managed.next_restart_at is None:
                managed.next_restart_at = now + managed.backoff
                events.append(
                    f"{managed.spec.name} ({managed.spec.role}) exited with code {code}; "
                    f"restarting in {managed.backoff:.1f} s (log: {managed.spec.log_path})"
                )
            elif now >= managed.next_restart_at:
                self._restart(managed)
                events.append(f"{managed.spec.name} restarted as pid {managed.pid}")
        return events

    def _restart(self, managed: Managed) -> None:
        managed.popen = self._spawn(managed.spec)
        managed.started_at = time.monotonic()
        managed.restarts += 1
        managed.next_restart_at = None
        managed.backoff = min(managed.backoff * 2, self.MAX_BACKOFF)
        self._on_change()

    def entries(self) -> list[ProcessEntry]:
        """The supervised processes as ``stack.json`` describes them."""
        return [
            ProcessEntry(
                m.spec.name,
                m.spec.role,
                m.pid,
                m.spec.metrics_url,
                str(m.spec.log_path),
                m.restarts,
            )
            for m in self.processes.values()
        ]

    def stop(self, name: str) -> None:
        managed = self.processes.pop(name, None)
        if managed is not None:
            _terminate_group(managed.popen, managed.spec.stop_timeout)
            self._on_change()

    def stop_all(self, drain_timeout: float = 30.0) -> None:
        """Stop every process, the last started first. Sources stop first, then the
        processors get ``drain_timeout`` seconds to consume what the sources published."""
        for name in [n for n, m in self.processes.items() if m.spec.role == "connector"]:
            self.stop(name)
        self._wait_drained(drain_timeout)
        while self.processes:
            last = self.processes[next(reversed(self.processes))].spec
            members = [n for n, m in self.processes.items() if m.spec.cluster == last.cluster]
            self.stop_together(members if last.cluster else [last.name])

    def kill_all(self) -> None:
        """SIGKILL every process group at once: for a stack whose state is thrown away, where
        a graceful stop (a Kafka node moving leaders and closing thousands of logs) buys
        nothing."""
        popens = [m.popen for m in self.processes.values()]
        self.processes.clear()
        for popen in popens:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(popen.pid, signal.SIGKILL)
        for popen in popens:
            popen.wait()
        self._on_change()

    def stop_together(self, names: Sequence[str]) -> list[ProcessSpec]:
        """Stop ``names`` at once (the members of a cluster) and stop supervising them; their
        specs, for :meth:`start_together` to bring them back."""
        stopping = [self.processes.pop(name) for name in names]
        timeout = max(m.spec.stop_timeout for m in stopping)
        _terminate_groups([m.popen for m in stopping], timeout)
        self._on_change()
        return [m.spec for m in stopping]

    def _wait_drained(self, timeout: float) -> None:
        if timeout <= 0:
            return
        checks = [m.spec for m in self.processes.values() if m.spec.drained is not None]
        deadline = time.monotonic() + timeout
        pending = checks
        while pending and time.monotonic() < deadline:
            pending = [spec for spec in pending if not _true(spec.drained)]
            if pending:
                time.sleep(0.2)
        for spec in pending:
            log.warning("%s did not drain within %.0f s", spec.name, timeout)

    def _spawn(self, spec: ProcessSpec) -> subprocess.Popen[bytes]:
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(spec.log_path, "ab") as log_file:
            return subprocess.Popen(
                spec.argv,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **spec.env},
                user=spec.user,
                cwd=spec.cwd,
                start_new_session=True,
            )

    def _wait_ready(self, managed: Managed) -> None:
        check = managed.spec.ready
        if check is None:
            return
        deadline = time.monotonic() + managed.spec.ready_timeout
        while time.monotonic() < deadline:
            if managed.popen.poll() is not None:
                raise StackError(_died_message(managed.spec, managed.popen.returncode))
            try:
                if check():
                    return
            except Exception:
                log.debug("%s not ready yet", managed.spec.name, exc_info=True)
            time.sleep(0.1)
        _terminate_group(managed.popen, 5)
        raise StackError(
            f"{managed.spec.name} was not ready within {managed.spec.ready_timeout:.0f} s; "
            f"see {managed.spec.log_path}"
        )


def _true(check: ReadyCheck | None) -> bool:
    try:
        return check is None or check()
    except Exception:
        log.debug("drain check failed", exc_info=True)
        return False


def _died_message(spec: ProcessSpec, code: int | None) -> str:
    tail = ""
    with contextlib.suppress(OSError):
        tail = spec.log_path.read_text(errors="replace")[-2000:]
    return f"{spec.name} ({spec.role}) exited with code {code} while starting:\n{tail}"


def _terminate_group(popen: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM the process group, wait up to ``timeout``, then SIGKILL whatever is left."""
    _terminate_groups([popen], timeout)


def _terminate_groups(popens: Sequence[subprocess.Popen[bytes]], timeout: float) -> None:
    """SIGTERM every process group at once, wait up to ``timeout`` in all, then SIGKILL
    whatever is left of each."""
    for popen in popens:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(popen.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for popen in popens:
        try:
            popen.wait(max(deadline - time.monotonic(), 0))
        except subprocess.TimeoutExpired:
            log.warning("pid %s did not stop within %.0f s; killing it", popen.pid, timeout)
        try:
            os.killpg(popen.pid, signal.SIGKILL)  # children that outlived their parent, too
        except ProcessLookupError:
            pass
        popen.wait()
