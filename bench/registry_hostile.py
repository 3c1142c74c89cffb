"""``python -m bench.registry_hostile [--url URL]``: does hostile schema input starve the
registry? ``GET /subjects`` latency, quiet and then while hostile requests are in flight.

The hostile requests, sent back to back from several threads: schemas of 100,000 fields and
schemas nested 100,000 levels deep (both refused under the registry's limits, after decoding
them), and the most expensive schemas the limits accept: 2,000-field records registered and
checked for compatibility against a 2,000-field version. Lookups and compatibility tests are
among them, since a read-only user may send those.

Without ``--url`` it starts PostgreSQL and a registry of its own (an embedded stack in a
temporary directory) and stops them at the end. The reliability test
``tests/reliability/test_registry_hostile.py`` runs the same measurement and bounds the ratio.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

WIDE = 100_000  # fields of the widest hostile schema
DEEP = 100_000  # nesting of the deepest
AT_LIMIT = 2_000  # fields: the registry's default limit
CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


@dataclass(frozen=True, slots=True)
class Outcome:
    """One hostile request: what it was, how it was answered, when it ran (monotonic)."""

    kind: str
    status: int
    error_code: int | None
    started: float
    ended: float


@dataclass
class Measurement:
    quiet: list[float]  # seconds per GET /subjects, nothing else running
    loaded: list[float]  # the same, hostile requests in flight
    loaded_starts: list[float] = field(default_factory=list)  # monotonic start of each
    hostile: list[Outcome] = field(default_factory=list)

    def in_flight_at(self, moment: float) -> int:
        return sum(1 for o in self.hostile if o.started <= moment <= o.ended)

    def summary(self) -> dict[str, object]:
        quiet, loaded = statistics.median(self.quiet), statistics.median(self.loaded)
        kinds: dict[str, dict[str, int]] = {}
        for o in self.hostile:
            answer = f"{o.status}/{o.error_code}"
            kinds.setdefault(o.kind, {}).setdefault(answer, 0)
            kinds[o.kind][answer] += 1
        return {
            "quiet_median_ms": round(quiet * 1000, 2),
            "quiet_p90_ms": round(_p90(self.quiet) * 1000, 2),
            "loaded_median_ms": round(loaded * 1000, 2),
            "loaded_p90_ms": round(_p90(self.loaded) * 1000, 2),
            "ratio": round(loaded / quiet, 2),
            "hostile_answers": kinds,
            "hostile_median_s": round(
                statistics.median(o.ended - o.started for o in self.hostile), 3
            ),
        }


def _p90(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.9)]


def record(name: str, fields: int) -> dict[str, object]:
    columns = [{"name": f"f{i}", "type": "long"} for i in range(fields)]
    return {"type": "record", "name": name, "namespace": "bench.hostile", "fields": columns}


def nested(depth: int) -> str:
    return '{"type":"array","items":' * depth + '"long"' + "}" * depth


def body(schema_text: str) -> bytes:
    return json.dumps({"schema": schema_text}).encode()


class Client:
    """One keep-alive HTTP connection to the registry."""

    def __init__(self, url: str, timeout: float = 120) -> None:
        parts = urllib.parse.urlsplit(url)
        self.connection = http.client.HTTPConnection(parts.netloc, timeout=timeout)

    def request(self, method: str, path: str, data: bytes | None = None) -> tuple[int, object]:
        headers = {"Content-Type": CONTENT_TYPE} if data is not None else {}
        self.connection.request(method, path, body=data, headers=headers)
        response = self.connection.getresponse()
        return response.status, json.loads(response.read() or b"null")

    def close(self) -> None:
        self.connection.close()


def subjects_latency(url: str, samples: int) -> tuple[list[float], list[float]]:
    """(seconds, monotonic start) of ``samples`` sequential ``GET /subjects``."""
    client = Client(url)
    timings, starts = [], []
    try:
        for _ in range(samples):
            started = time.monotonic()
            status, _ = client.request("GET", "/subjects")
            if status != 200:
                raise RuntimeError(f"GET /subjects answered {status}")
            timings.append(time.monotonic() - started)
            starts.append(started)
    finally:
        client.close()
    return timings, starts


def hostile_requests(url: str) -> list[tuple[str, str, str, bytes]]:
    """(kind, method, path, body) of each hostile request; sets up the subject they target."""
    tag = uuid.uuid4().hex[:8]
    subject = f"hostile-{tag}-value"
    base = Client(url)
    try:
        base.request("PUT", f"/config/{subject}", json.dumps({"compatibility": "FULL"}).encode())
        status, answer = base.request(
            "POST", f"/subjects/{subject}/versions", body(json.dumps(record("Wide", AT_LIMIT)))
        )
        if status != 200:
            raise RuntimeError(f"the {AT_LIMIT}-field base schema was refused: {answer}")
    finally:
        base.close()
    wide, deep = body(json.dumps(record("Wider", WIDE))), body(nested(DEEP))
    # differs from the base in every field: Avro's checker compares all 2,000 pairs
    at_limit = record("Wide", AT_LIMIT)
    at_limit["fields"] = [{"name": f"f{i}", "type": "int"} for i in range(AT_LIMIT)]
    heavy = body(json.dumps(at_limit))
    compatibility = f"/compatibility/subjects/{subject}/versions/latest?verbose=true"
    return [
        ("wide register", "POST", f"/subjects/{subject}/versions", wide),
        ("deep lookup", "POST", f"/subjects/{subject}", deep),
        ("at-limit compatibility", "POST", compatibility, heavy),
        ("wide compatibility", "POST", compatibility, wide),
        ("deep register", "POST", f"/subjects/{subject}/versions", deep),
        ("at-limit register", "POST", f"/subjects/{subject}/versions", heavy),
    ]


@contextmanager
def hostile_load(url: str, threads: int) -> Iterator[list[Outcome]]:
    """Hostile requests sent back to back from ``threads`` threads while the block runs."""
    requests = hostile_requests(url)
    outcomes: list[Outcome] = []
    stop = threading.Event()

    def send(first: int) -> None:
        client = Client(url)
        try:
            index = first
            while not stop.is_set():
                kind, method, path, data = requests[index % len(requests)]
                started = time.monotonic()
                status, answer = client.request(method, path, data)
                code = answer.get("error_code") if isinstance(answer, dict) else None
                outcomes.append(Outcome(kind, status, code, started, time.monotonic()))
                index += 1
        finally:
            client.close()

    workers = [threading.Thread(target=send, args=(n,), daemon=True) for n in range(threads)]
    for worker in workers:
        worker.start()
    try:
        yield outcomes
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=300)


def measure(url: str, *, samples: int = 60, threads: int = 6, settle: float = 30) -> Measurement:
    """Quiet latency, then latency once every hostile thread has a request in flight (or
    ``settle`` seconds have passed), measured until the same number of samples is taken."""
    subjects_latency(url, 5)  # connections and caches warm
    quiet, _ = subjects_latency(url, samples)
    with hostile_load(url, threads) as outcomes:
        deadline = time.monotonic() + settle
        while time.monotonic() < deadline and not _all_busy(outcomes, threads):
            time.sleep(0.05)  # the load only needs a head start; the test asserts the overlap
        loaded, starts = subjects_latency(url, samples)
    return Measurement(quiet, loaded, starts, list(outcomes))


def _all_busy(outcomes: list[Outcome], threads: int) -> bool:
    """True once each thread's first request has been answered: all kinds have been sent."""
    return len(outcomes) >= threads


@contextmanager
def own_registry() -> Iterator[str]:
    """PostgreSQL and a registry process of their own, in a temporary directory."""
    from sync.stack.providers import EmbeddedProvider
    from sync.stack.specs import registry_spec
    from sync.stack.supervisor import Supervisor

    data_dir = Path(tempfile.mkdtemp(prefix="govsync-bench-registry-"))
    provider = EmbeddedProvider(data_dir / "stack")
    supervisor = Supervisor()
    try:
        dsn = provider.create_database(f"bench_registry_{uuid.uuid4().hex[:8]}")
        spec, url = registry_spec(dsn, data_dir)
        supervisor.start(spec)
        yield url
    finally:
        supervisor.stop_all(drain_timeout=0)
        provider.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.registry_hostile", description=__doc__)
    parser.add_argument("--url", help="a running registry (default: start one)")
    parser.add_argument("--samples", type=int, default=100, help="GET /subjects per phase")
    parser.add_argument("--threads", type=int, default=6, help="hostile request threads")
    args = parser.parse_args(argv)
    if args.url:
        result = measure(args.url, samples=args.samples, threads=args.threads)
    else:
        with own_registry() as url:
            result = measure(url, samples=args.samples, threads=args.threads)
    print(json.dumps(result.summary(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
