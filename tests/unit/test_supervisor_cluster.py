"""Members of one cluster (the Kafka nodes) start together and stop together: a member that
can only finish its shutdown while its peers run (a KRaft node needs a quorum) is not left
alone to be SIGKILLed."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from sync.errors import StackError
from sync.stack.supervisor import ProcessSpec, Supervisor

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="process groups are POSIX")

# On SIGTERM, says so in a file, then exits cleanly only once every peer has said so too.
PEER = textwrap.dedent(
    """
    import pathlib, signal, sys, time
    here, peers = pathlib.Path(sys.argv[1]), sys.argv[2:]
    def on_term(*_):
        (here / (peers[0] + ".term")).touch()
        while not all((here / (p + ".term")).exists() for p in peers):
            time.sleep(0.01)
        sys.exit(0)
    signal.signal(signal.SIGTERM, on_term)
    (here / (peers[0] + ".up")).touch()
    while True:
        time.sleep(1)
    """
)


def member(
    tmp_path: Path, name: str, names: list[str], cluster: str | None, stop_timeout: float = 3
) -> ProcessSpec:
    own_first = [name, *(n for n in names if n != name)]
    return ProcessSpec(
        name=name,
        role="broker",
        argv=[sys.executable, "-c", PEER, str(tmp_path), *own_first],
        log_path=tmp_path / f"{name}.log",
        ready=lambda: (tmp_path / f"{name}.up").exists(),
        ready_timeout=10,
        stop_timeout=stop_timeout,
        cluster=cluster,
    )


def test_members_of_a_cluster_stop_together_and_cleanly(tmp_path: Path) -> None:
    names = ["node-1", "node-2", "node-3"]
    supervisor = Supervisor()
    started = supervisor.start_together([member(tmp_path, n, names, "kafka") for n in names])
    assert [m.spec.name for m in started] == names
    supervisor.stop_all(drain_timeout=0)
    assert [m.popen.returncode for m in started] == [0, 0, 0]  # none needed a SIGKILL
    assert supervisor.processes == {}


def test_processes_of_no_cluster_still_stop_one_by_one(tmp_path: Path) -> None:
    names = ["node-1", "node-2"]
    supervisor = Supervisor()
    started = [supervisor.start(member(tmp_path, n, names, None, 0.5)) for n in names]
    supervisor.stop_all(drain_timeout=0)
    # the last started stops first and alone: its peer never got SIGTERM, so it was killed
    assert started[1].popen.returncode == -9
    assert started[0].popen.returncode == 0


def test_a_member_that_dies_while_starting_stops_the_others(tmp_path: Path) -> None:
    broken = ProcessSpec(
        name="node-2",
        role="broker",
        argv=[sys.executable, "-c", "raise SystemExit('bad configuration')"],
        log_path=tmp_path / "node-2.log",
        ready=lambda: False,
        cluster="kafka",
    )
    supervisor = Supervisor()
    good = member(tmp_path, "node-1", ["node-1"], "kafka")
    with pytest.raises(StackError, match=r"node-2 .* exited with code 1 while starting"):
        supervisor.start_together([good, broken])
    assert supervisor.processes == {}
    assert (tmp_path / "node-1.term").exists()  # it was asked to stop, not left behind


def test_kill_all_leaves_nothing_and_waits_for_no_shutdown(tmp_path: Path) -> None:
    names = ["node-1", "node-2"]
    supervisor = Supervisor()
    started = supervisor.start_together([member(tmp_path, n, names, "kafka", 30) for n in names])
    supervisor.kill_all()
    assert [m.popen.returncode for m in started] == [-9, -9]
    assert supervisor.processes == {}
    assert not any((tmp_path / f"{n}.term").exists() for n in names)  # no SIGTERM first
