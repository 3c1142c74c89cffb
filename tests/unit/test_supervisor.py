"""The stack's process supervisor, with real child processes (no mocks): readiness, restart
after a crash, stopping whole process groups, and the errors a failed start gives."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sync.errors import StackError
from sync.stack.supervisor import ProcessSpec, Supervisor

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="process groups are POSIX")

DEADLINE = 5.0


def wait_until(condition: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting until {what}")
        time.sleep(0.02)


def is_gone(pid: int) -> bool:
    """True once ``pid`` no longer runs. An orphan that was killed may linger as a zombie until
    init reaps it; a zombie runs nothing, so it counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def spec(
    tmp_path: Path,
    name: str,
    code: str,
    *,
    role: str = "processor",
    ready: Callable[[], bool] | None = None,
    ready_timeout: float = DEADLINE,
    stop_timeout: float = 2.0,
) -> ProcessSpec:
    return ProcessSpec(
        name=name,
        role=role,
        argv=python(code),
        log_path=tmp_path / "logs" / f"{name}.log",
        ready=ready,
        ready_timeout=ready_timeout,
        stop_timeout=stop_timeout,
        cwd=tmp_path,
    )


SLEEPER = "import time\nwhile True: time.sleep(0.1)"


class Counter:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


@pytest.fixture
def changes() -> Counter:
    return Counter()


@pytest.fixture
def supervisor(changes: Counter) -> Iterator[Supervisor]:
    owner = Supervisor(on_change=changes)
    yield owner
    owner.stop_all(drain_timeout=0)


# ---- start -------------------------------------------------------------------------------


def test_start_waits_for_the_ready_check(
    tmp_path: Path, supervisor: Supervisor, changes: Counter
) -> None:
    marker = tmp_path / "ready"
    code = f"import pathlib, time\ntime.sleep(0.3)\npathlib.Path({str(marker)!r}).touch()\n"
    code += SLEEPER
    managed = supervisor.start(spec(tmp_path, "registry", code, ready=marker.exists))
    assert marker.exists()
    assert managed.popen.poll() is None
    assert supervisor.processes["registry"] is managed
    assert changes.calls == 1


def test_ready_check_that_raises_is_retried(tmp_path: Path, supervisor: Supervisor) -> None:
    marker = tmp_path / "ready"
    code = f"import pathlib, time\ntime.sleep(0.2)\npathlib.Path({str(marker)!r}).touch()\n"
    code += SLEEPER

    def ready() -> bool:
        return marker.read_text() == ""  # FileNotFoundError until the child writes it

    managed = supervisor.start(spec(tmp_path, "registry", code, ready=ready))
    assert managed.popen.poll() is None


def test_child_runs_in_its_own_session_with_its_environment(
    tmp_path: Path, supervisor: Supervisor
) -> None:
    out = tmp_path / "out"
    code = (
        "import os, pathlib\n"
        f"pathlib.Path({str(out)!r}).write_text("
        "f\"{os.getsid(0)}|{os.environ['GOVSYNC_TEST']}|{os.getcwd()}\")\n" + SLEEPER
    )
    process = spec(tmp_path, "env", code, ready=out.exists)
    process.env = {"GOVSYNC_TEST": "xin chào"}
    managed = supervisor.start(process)
    wait_until(lambda: out.read_text() != "", "the child wrote its session")
    sid, value, cwd = out.read_text().split("|")
    assert int(sid) == managed.pid != os.getsid(0)
    assert value == "xin chào"
    assert Path(cwd) == tmp_path


def test_output_goes_to_the_log_file(tmp_path: Path, supervisor: Supervisor) -> None:
    code = "import sys\nprint('to stdout', flush=True)\nprint('to stderr', file=sys.stderr)\n"
    process = spec(tmp_path, "chatty", code + SLEEPER)
    supervisor.start(process)
    wait_until(
        lambda: process.log_path.exists() and "to stderr" in process.log_path.read_text(),
        "both streams reached the log",
    )
    assert "to stdout" in process.log_path.read_text()


def test_process_dying_while_starting_raises_with_its_log_tail(
    tmp_path: Path, supervisor: Supervisor
) -> None:
    code = "import sys\nprint('FATAL: could not bind to port 5432', file=sys.stderr)\nsys.exit(2)"
    with pytest.raises(StackError) as caught:
        supervisor.start(spec(tmp_path, "postgres", code, role="database", ready=lambda: False))
    message = str(caught.value)
    assert "postgres (database) exited with code 2 while starting" in message
    assert "FATAL: could not bind to port 5432" in message


def test_log_tail_is_only_the_end_of_a_long_log(tmp_path: Path, supervisor: Supervisor) -> None:
    code = "print('x' * 10_000)\nprint('the last words', flush=True)\nraise SystemExit(1)"
    with pytest.raises(StackError) as caught:
        supervisor.start(spec(tmp_path, "noisy", code, ready=lambda: False))
    message = str(caught.value)
    assert message.rstrip().endswith("the last words")
    assert len(message) < 2_500


def test_process_not_ready_in_time_is_stopped_and_reported(
    tmp_path: Path, supervisor: Supervisor
) -> None:
    pid_file = tmp_path / "slow.pid"
    code = f"import os, pathlib\npathlib.Path({str(pid_file)!r}).write_text(str(os.getpid()))\n"
    process = spec(tmp_path, "slow", code + SLEEPER, ready=lambda: False, ready_timeout=1.0)
    with pytest.raises(StackError, match=r"slow was not ready within 1 s") as caught:
        supervisor.start(process)
    assert str(process.log_path) in str(caught.value)
    assert is_gone(int(pid_file.read_text()))


# ---- crash and restart -------------------------------------------------------------------


def crash_once(tmp_path: Path) -> str:
    """Exits with code 3 the first time, stays up when restarted."""
    marker = tmp_path / "crashed-once"
    return (
        "import pathlib, sys, time\n"
        f"marker = pathlib.Path({str(marker)!r})\n"
        "if not marker.exists():\n"
        "    marker.touch()\n"
        "    sys.exit(3)\n" + SLEEPER
    )


def test_exited_process_is_reported_then_restarted_after_its_backoff(
    tmp_path: Path, supervisor: Supervisor, changes: Counter
) -> None:
    managed = supervisor.start(spec(tmp_path, "connector-a", crash_once(tmp_path)))
    first_pid = managed.pid
    assert changes.calls == 1
    wait_until(lambda: managed.popen.poll() is not None, "the first run exited")

    messages: list[str] = []
    reported_at = time.monotonic()
    messages += supervisor.poll()
    assert len(messages) == 1
    assert "connector-a (processor) exited with code 3" in messages[0]
    assert "restarting in 0.5 s" in messages[0]
    assert str(managed.spec.log_path) in messages[0]
    assert managed.restarts == 0

    def restarted() -> bool:
        messages.extend(supervisor.poll())
        return managed.restarts == 1

    wait_until(restarted, "the supervisor restarted it")
    assert time.monotonic() - reported_at >= 0.5
    assert managed.pid != first_pid
    assert messages[-1] == f"connector-a restarted as pid {managed.pid}"
    assert managed.popen.poll() is None
    assert changes.calls == 2
    assert is_gone(first_pid)


def test_poll_reports_nothing_while_processes_run(
    tmp_path: Path, supervisor: Supervisor, changes: Counter
) -> None:
    supervisor.start(spec(tmp_path, "steady", SLEEPER))
    for _ in range(5):
        assert supervisor.poll() == []
    assert changes.calls == 1


def test_backoff_doubles_when_a_restart_dies_at_once(
    tmp_path: Path, supervisor: Supervisor
) -> None:
    managed = supervisor.start(spec(tmp_path, "doomed", "raise SystemExit(9)"))
    messages: list[str] = []

    def restarted_twice_and_dead_again() -> bool:
        if managed.popen.poll() is None:
            return False
        messages.extend(supervisor.poll())
        return managed.restarts == 2 and managed.next_restart_at is not None

    wait_until(restarted_twice_and_dead_again, "two restarts", timeout=8)
    exits = [m for m in messages if "exited with code 9" in m]
    assert [m.split("restarting in ")[1].split(" s")[0] for m in exits] == ["0.5", "1.0", "2.0"]


# ---- stop --------------------------------------------------------------------------------


def spawn_grandchild(pid_file: Path) -> str:
    return (
        "import pathlib, subprocess, sys\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"pathlib.Path({str(pid_file)!r}).write_text(str(child.pid))\n" + SLEEPER
    )


def test_stop_all_leaves_no_process_or_grandchild_alive(
    tmp_path: Path, supervisor: Supervisor
) -> None:
    pid_file = tmp_path / "grandchild.pid"

    def grandchild_started() -> bool:
        return pid_file.exists() and pid_file.read_text() != ""

    parent = supervisor.start(spec(tmp_path, "forker", spawn_grandchild(pid_file)))
    wait_until(grandchild_started, "the child spawned its grandchild")
    grandchild = int(pid_file.read_text())
    other = supervisor.start(spec(tmp_path, "other", SLEEPER, role="connector"))
    assert not is_gone(grandchild)

    supervisor.stop_all(drain_timeout=0)

    assert supervisor.processes == {}
    for pid in (parent.pid, other.pid):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    wait_until(lambda: is_gone(grandchild), "the grandchild is gone")


def test_process_ignoring_sigterm_is_killed(
    tmp_path: Path, supervisor: Supervisor, changes: Counter
) -> None:
    marker = tmp_path / "ignoring"
    code = (
        "import pathlib, signal\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        f"pathlib.Path({str(marker)!r}).touch()\n" + SLEEPER
    )
    process = spec(tmp_path, "stubborn", code, ready=marker.exists, stop_timeout=0.3)
    managed = supervisor.start(process)
    started = time.monotonic()
    supervisor.stop("stubborn")
    assert time.monotonic() - started < 3
    assert managed.popen.returncode == -9
    assert "stubborn" not in supervisor.processes
    assert changes.calls == 2
    with pytest.raises(ProcessLookupError):
        os.kill(managed.pid, 0)


def test_stopping_an_unknown_name_does_nothing(supervisor: Supervisor, changes: Counter) -> None:
    supervisor.stop("nobody")
    assert changes.calls == 0


def test_stop_all_stops_connectors_before_waiting_for_processors_to_drain(
    tmp_path: Path, supervisor: Supervisor
) -> None:
    connector = supervisor.start(spec(tmp_path, "connector", SLEEPER, role="connector"))
    connector_alive_at_drain_checks: list[bool] = []

    def drained() -> bool:
        connector_alive_at_drain_checks.append(connector.popen.poll() is None)
        return True

    processor = spec(tmp_path, "processor", SLEEPER)
    processor.drained = drained
    processor_managed = supervisor.start(processor)

    supervisor.stop_all(drain_timeout=2)

    assert connector_alive_at_drain_checks == [False]
    assert processor_managed.popen.poll() is not None
    assert supervisor.processes == {}


def test_stop_all_gives_up_on_a_processor_that_never_drains(
    tmp_path: Path, supervisor: Supervisor
) -> None:
    processor = spec(tmp_path, "processor", SLEEPER)
    processor.drained = lambda: False
    managed = supervisor.start(processor)
    started = time.monotonic()
    supervisor.stop_all(drain_timeout=0.3)
    assert time.monotonic() - started < 3
    assert managed.popen.poll() is not None
