"""Peak memory and CPU time of the stack's processes, by role, sampled in a thread.

Every 0.5 s each watched process is read with psutil. A role (``connector``, ``processor``,
``broker``, ``postgres``…) may hold several processes over a run; its peak is the highest any
one of them reached. Processes watched together count as one: the nodes of a Kafka cluster are
the broker, their memory summed. ``postgres`` is watched as a tree (the postmaster and its
backends, summed): RSS counts shared buffers once per backend, so the proportional set size
(PSS, shared pages split between the processes that map them) is kept as well. CPU seconds are
summed by role.
"""

from __future__ import annotations

import contextlib
import threading
from collections import defaultdict
from dataclasses import dataclass, field

import psutil

INTERVAL = 0.5
MACHINE = "machine"  # every process on the machine, not only the stack's


@dataclass
class _Watched:
    role: str
    process: psutil.Process
    tree: bool
    peers: tuple[psutil.Process, ...] = ()  # watched with it, as one
    cpu_seconds: float = 0.0  # last reading, kept after the process is gone


@dataclass
class Sampler:
    """Start with :meth:`start`, stop with :meth:`stop`; :meth:`watch` any time."""

    interval: float = INTERVAL
    peak_rss: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    peak_pss: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    _watched: list[_Watched] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def watch(self, role: str, pid: int, *peers: int, tree: bool = False) -> None:
        """Watch ``pid`` (with ``peers``: those processes as one, memory summed) as ``role``."""
        with contextlib.suppress(psutil.NoSuchProcess), self._lock:
            others = tuple(psutil.Process(peer) for peer in peers)
            self._watched.append(_Watched(role, psutil.Process(pid), tree, others))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds used so far by each role's processes (children included), and under
        ``MACHINE`` by every process on the machine, ours or not."""
        self.sample()
        totals: dict[str, float] = defaultdict(float)
        with self._lock:
            for watched in self._watched:
                totals[watched.role] += watched.cpu_seconds
        times = psutil.cpu_times()
        totals[MACHINE] = sum(times) - times.idle - getattr(times, "iowait", 0.0)
        return dict(totals)

    def peaks(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {
                role: {"rss": self.peak_rss[role], "pss": self.peak_pss.get(role, 0)}
                for role in self.peak_rss
            }

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        with self._lock:
            for watched in self._watched:
                with contextlib.suppress(psutil.Error):
                    members = _members(watched)
                    watched.cpu_seconds = _cpu(watched.process, members)
                    rss = pss = 0
                    for member in members:
                        memory = member.memory_full_info()
                        rss += memory.rss
                        pss += getattr(memory, "pss", memory.rss)
                    role = watched.role
                    self.peak_rss[role] = max(self.peak_rss[role], rss)
                    self.peak_pss[role] = max(self.peak_pss[role], pss)


def _members(watched: _Watched) -> list[psutil.Process]:
    if not watched.process.is_running():
        return []
    members = [watched.process]
    if watched.tree:
        members += watched.process.children(recursive=True)
    return members + [peer for peer in watched.peers if peer.is_running()]


def _cpu(root: psutil.Process, members: list[psutil.Process]) -> float:
    """CPU of the live members, plus what the root's reaped children used (a postmaster reaps
    the backends that exit, so their time is not lost)."""
    if not members:
        raise psutil.NoSuchProcess(root.pid)
    times = root.cpu_times()
    seconds = times.user + times.system + times.children_user + times.children_system
    for member in members[1:]:
        with contextlib.suppress(psutil.Error):
            child = member.cpu_times()
            seconds += child.user + child.system
    return float(seconds)
