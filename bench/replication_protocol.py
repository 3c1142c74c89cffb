"""Two ways for the connector to read pgoutput, measured one after the other on an embedded
PostgreSQL: ``python -m bench.replication_protocol``. A prototype to choose by, not the
product's path; it needs psycopg2 (``pip install psycopg2-binary``), which speaks the streaming
replication protocol that psycopg 3 cannot.

- *peek*: the connector's loop without encoding and producing: ``SlotReader.peek``, the slot
  advanced to what was read, a restart point every 0.1 s while changes flow, 10 ms after an
  empty peek doubling up to 0.4 s;
- *stream*: psycopg2's ``LogicalReplicationConnection``, messages read one by one as the server
  sends them, each commit's end confirmed as flushed (the product would confirm it after the
  broker's acknowledgement).

Each runs on its own slot: first a backlog (citizens inserted in transactions of 1,000 before
the reader starts, timed until the reader holds every commit), then a paced load of 1,000
changes/s (10 citizens every 10 ms) while it reads. Latency is from the commit time pgoutput
carries in each transaction's Begin to the moment the reader holds that Begin. CPU is the
reader's thread and the PostgreSQL server's processes, over each measurement.
"""

from __future__ import annotations

import argparse
import select
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import psycopg

from bench.data import insert_rows, prepare_source
from bench.latency import paced_write
from bench.probe import exact_percentiles
from connectors.postgres import pgoutput
from connectors.postgres.slot import SlotReader
from sync.contracts import Contract, load_contracts
from sync.stack.ports import free_port
from sync.stack.postgres import EmbeddedPostgres
from sync.stack.supervisor import ProcessSpec, Supervisor
from sync.types import Lsn

PUBLICATION = "bench_protocol"
RESTART_POINT_INTERVAL = 0.1
FIRST_WAIT, LONGEST_WAIT = 0.01, 0.4


class Tally:
    """What a reader received: commits, and the latency of each transaction's Begin, for the
    transactions committed from ``since`` (epoch seconds) on. Earlier ones are sent again
    where a reader resumes from an older confirmed position (psycopg2 sends feedback with the
    next read, so the last one before a connection closes may never leave)."""

    def __init__(self, commits: int, deadline: float, since: float = 0.0) -> None:
        self.expected, self.deadline, self.since = commits, deadline, since
        self.commits = 0
        self.latencies: list[float] = []
        self.end_lsn: Lsn | None = None
        self._counted = True  # whether the open transaction counts

    @property
    def done(self) -> bool:
        return self.commits >= self.expected or time.monotonic() > self.deadline

    def add(self, data: bytes, received: float) -> None:
        kind = data[:1]
        if kind == b"B":
            begin = pgoutput.decode_message(data)
            assert isinstance(begin, pgoutput.Begin)
            committed = begin.commit_time.timestamp()
            self._counted = committed >= self.since
            if self._counted:
                self.latencies.append(received - committed)
        elif kind == b"C":
            commit = pgoutput.decode_message(data)
            assert isinstance(commit, pgoutput.Commit)
            self.commits += self._counted
            self.end_lsn = commit.end_lsn


def read_by_peek(dsn: str, slot: str, tally: Tally) -> None:
    with SlotReader(dsn, slot, PUBLICATION, "bench") as reader:
        wait, offered_at = FIRST_WAIT, 0.0
        while not tally.done:
            peeked = reader.peek(20_000)
            received = time.time()
            for _, data in peeked.messages:
                tally.add(data, received)
            target = max((p for p in (tally.end_lsn, peeked.complete_upto) if p), default=None)
            if target is not None:
                reader.advance(target)
            if peeked.messages:
                if time.monotonic() - offered_at > RESTART_POINT_INTERVAL:
                    reader.offer_restart_point()
                    offered_at = time.monotonic()
                wait = FIRST_WAIT
                continue
            time.sleep(wait)
            wait = min(wait * 2, LONGEST_WAIT)


def read_by_stream(dsn: str, slot: str, tally: Tally) -> None:
    import psycopg2
    import psycopg2.extras

    factory = psycopg2.extras.LogicalReplicationConnection
    conn = psycopg2.connect(dsn, connection_factory=factory)
    try:
        cursor = conn.cursor()
        options = {"proto_version": "1", "publication_names": PUBLICATION}
        cursor.start_replication(slot_name=slot, decode=False, options=options)
        while not tally.done:
            message = cursor.read_message()
            if message is None:
                select.select([cursor], [], [], 0.1)
                continue
            tally.add(message.payload, time.time())
            if message.payload[:1] == b"C" and tally.end_lsn is not None:
                cursor.send_feedback(flush_lsn=int(tally.end_lsn))
        if tally.end_lsn is not None:  # the next reader starts after what this one read
            cursor.send_feedback(flush_lsn=int(tally.end_lsn), force=True)
    finally:
        conn.close()


Reader = Callable[[str, str, Tally], None]
READERS: dict[str, Reader] = {"peek": read_by_peek, "stream": read_by_stream}


class Bench:
    def __init__(self, dsn: str, server: psutil.Process, contract: Contract) -> None:
        self.dsn, self.server, self.contract = dsn, server, contract
        self.next_citizen = 0
        self._seen: dict[int, float] = {}  # pid -> CPU seconds

    def server_cpu(self) -> float:
        """CPU seconds of the server's processes, each as last seen: a connection's backend
        (or walsender) ends with it, so :meth:`_watch` samples them every 0.1 s meanwhile."""
        for process in [self.server, *self.server.children(recursive=True)]:
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            self._seen[process.pid] = times.user + times.system
        return float(sum(self._seen.values()))

    def _watch(self, stop: threading.Event) -> None:
        while not stop.wait(0.1):
            self.server_cpu()

    def measure(self, name: str, backlog: int, seconds: float) -> dict[str, Any]:
        slot = f"bench_{name}"
        with SlotReader(self.dsn, slot, PUBLICATION, "bench") as reader:
            reader.ensure_slot()
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            insert_rows(conn, self.contract, self.next_citizen, backlog, 1_000)
        self.next_citizen += backlog
        read = READERS[name]
        stop = threading.Event()
        watcher = threading.Thread(target=self._watch, args=(stop,), daemon=True)
        watcher.start()
        try:
            return self._measure(read, slot, backlog, seconds)
        finally:
            stop.set()
            watcher.join()
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))

    def _measure(self, read: Reader, slot: str, backlog: int, seconds: float) -> dict[str, Any]:
        figure = {"backlog": self._timed(read, slot, Tally(backlog // 1_000, _deadline(120)))}
        tally = Tally(round(seconds * 100), _deadline(seconds + 30), since=time.time())
        writer = threading.Thread(target=self._write, args=(seconds,))
        cpu = self._cpu()
        writer.start()
        read(self.dsn, slot, tally)
        writer.join()
        latencies = sorted(tally.latencies)
        figure["paced"] = {
            "transactions": len(latencies),
            **{k: round(v * 1000, 1) for k, v in exact_percentiles(latencies).items()},
            **{k: round(v, 2) for k, v in self._cpu_since(cpu).items()},
        }
        return figure

    def _write(self, seconds: float) -> None:
        paced_write(self.dsn, self.contract, self.next_citizen, 1_000, seconds)
        self.next_citizen += round(seconds * 1_000) + 10

    def _timed(self, read: Reader, slot: str, tally: Tally) -> dict[str, Any]:
        cpu, started = self._cpu(), time.perf_counter()
        read(self.dsn, slot, tally)
        elapsed = time.perf_counter() - started
        return {"commits": tally.commits, "seconds": round(elapsed, 2), **self._cpu_since(cpu)}

    def _cpu(self) -> tuple[float, float]:
        return time.thread_time(), self.server_cpu()

    def _cpu_since(self, before: tuple[float, float]) -> dict[str, float]:
        reader, server = self._cpu()
        return {
            "reader_cpu_s": round(reader - before[0], 2),
            "server_cpu_s": round(server - before[1], 2),
        }


def _deadline(seconds: float) -> float:
    return time.monotonic() + seconds


@contextmanager
def embedded_postgres(data_dir: Path) -> Iterator[tuple[str, psutil.Process]]:
    postgres = EmbeddedPostgres(data_dir / "postgres", free_port())
    postgres.initialise()
    supervisor = Supervisor()
    managed = supervisor.start(
        ProcessSpec(
            name="postgres",
            role="database",
            argv=postgres.argv(),
            log_path=data_dir / "postgres.log",
            user=postgres.run_as,
            ready=lambda: _connects(postgres.dsn()),
        )
    )
    try:
        yield postgres.dsn(), psutil.Process(managed.pid)
    finally:
        supervisor.stop_all()


def _connects(dsn: str) -> bool:
    try:
        with psycopg.connect(dsn, connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.replication_protocol")
    parser.add_argument("--backlog", type=int, default=50_000, help="rows, in 1,000s")
    parser.add_argument("--seconds", type=float, default=10.0, help="of the paced load")
    parser.add_argument("--repeat", type=int, default=2, help="rounds of both readers")
    args = parser.parse_args(argv)
    contract = load_contracts()["population.citizen"]
    with (
        tempfile.TemporaryDirectory(prefix="govsync-protocol-") as tmp,
        embedded_postgres(Path(tmp)) as (dsn, server),
    ):
        with psycopg.connect(dsn, autocommit=True) as conn:
            prepare_source(conn, contract)
            conn.execute("CREATE TABLE bench_mark (id int)")
        with SlotReader(dsn, "setup", PUBLICATION, "bench") as reader:
            reader.ensure_publication([("public", contract.source_table)])
            reader.ensure_watermark_publication(("public", "bench_mark"))
        bench = Bench(dsn, server, contract)
        for round_ in range(args.repeat):
            for name in READERS:
                figure = bench.measure(name, args.backlog, args.seconds)
                print(f"round {round_ + 1} {name}: {figure}", flush=True)


if __name__ == "__main__":
    main()
