"""The connector's CPU per event on a fixed workload, stage by stage: pgoutput decoding
(:class:`ChangeDecoder`), Avro encoding (:class:`EventCodec`), and both in a row, as the
connector's loop runs them between a peek and a produce (no server is involved).

The connector loop is what the connector does per peek short of its servers: parse the peeked
LSNs, decode, count the transactions and encode (``Publisher._encode`` of the checkout), and
hand each message to a producer (without a broker, which only queues it). The peek's SQL, the
broker's acknowledgements and the slot's advance are not in it.

The workload is pgoutput bytes built here, as a PostgreSQL server with the connector's session
settings prints them: transactions of inserts, updates and key-only deletes of citizens (the
project benchmark's table) or of the every-type sample table, with a few edge values.

``python -m bench.connector_stages`` measures the code it is run from. With ``--baseline DIR``
(another checkout, e.g. ``git archive <commit> | tar -x -C DIR``) it measures both, one after
the other, repetition by repetition, on the same workload, each in a fresh process, and prints
the medians and the ratios of old to new time per event.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import statistics
import struct
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
ROOT = HERE.parents[1]
WORKLOADS = ("citizen", "sample")
STAGES = ("decode", "encode", "connector loop")
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_COMMIT_TIME = datetime(2026, 12, 2, 3, 4, 5, 678901, tzinfo=UTC)

# (name, type oid) of each source table's columns; the first one is the key
_TABLES: dict[str, list[tuple[str, int]]] = {
    "citizen": [
        ("personal_id", 25), ("full_name", 25), ("date_of_birth", 1082), ("sex", 25),
        ("ethnicity", 25), ("province_code", 25), ("district_code", 25), ("ward_code", 25),
        ("updated_at", 1184),
    ],
    "sample": [
        ("id", 20), ("t_text", 25), ("t_varchar", 1043), ("t_char", 1042), ("t_int2", 21),
        ("t_int4", 23), ("t_int8", 20), ("t_numeric", 1700), ("t_real", 700),
        ("t_double", 701), ("t_bool", 16), ("t_date", 1082), ("t_time", 1083),
        ("t_timestamp", 1114), ("t_timestamptz", 1184), ("t_uuid", 2950), ("t_jsonb", 3802),
        ("t_bytea", 17), ("t_text_array", 1009), ("t_int_array", 1007),
    ],
}  # fmt: skip
_FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng")
_GIVEN = ("Văn An", "Thị Bình", "Hữu Cường", "Thị Dung", "Minh Đức", "Ngọc Hà", "Quốc Huy")


def _pg_time(moment: datetime, zone: str = "+07") -> str:
    """``moment`` as PostgreSQL prints a timestamptz in a +07 session (ISO DateStyle)."""
    local = moment + timedelta(hours=7)
    text = local.strftime("%Y-%m-%d %H:%M:%S")
    if local.microsecond:
        text += f".{local.microsecond:06d}".rstrip("0")
    return text + zone


def _citizen(rng: random.Random, n: int) -> list[str | None]:
    born = datetime(1940, 1, 1) + timedelta(days=rng.randrange(365 * 84))
    return [
        f"{n:012d}",
        f"{rng.choice(_FAMILY)} {rng.choice(_GIVEN)}",
        born.date().isoformat(),
        rng.choice(("nam", "nu")),
        rng.choice(("Kinh", "Tày", "Khmer", None)),
        f"{rng.randrange(1, 97):02d}",
        f"{rng.randrange(1, 999):03d}",
        f"{rng.randrange(1, 99999):05d}",
        _pg_time(_COMMIT_TIME - timedelta(microseconds=rng.randrange(10**12))),
    ]


def _sample(rng: random.Random, n: int) -> list[str | None]:
    edge = rng.random() < 0.02  # now and then a value beyond Python's dates
    return [
        str(n),
        f"Thừa Thiên Huế {n}",
        "Đà Nẵng",
        "ab   ",
        str(rng.randrange(-32768, 32768)),
        str(rng.randrange(-(2**31), 2**31)),
        str(rng.randrange(-(2**63), 2**63)),
        f"{rng.randrange(10**11)}.{rng.randrange(1000):03d}",
        repr(rng.random())[:9],
        repr(rng.random() * 1e6),
        rng.choice("tf"),
        "infinity" if edge else f"{rng.randrange(1900, 2100)}-02-28",
        f"{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}.5",
        "0044-03-15 12:00:00 BC" if edge else "2000-01-01 00:00:00.000001",
        _pg_time(_COMMIT_TIME - timedelta(seconds=rng.randrange(10**9))),
        f"{rng.getrandbits(128):032x}"[:8] + "-9c0b-4ef8-bb6d-6bb9bd380a11",
        '{"ward": "Phường Bến Nghé", "codes": [1, 2]}',
        "\\x" + rng.randbytes(16).hex(),
        '{"a \\"quoted\\"",NULL,"x,y"}',
        "{1,NULL,-3}",
    ]


def _tuple(values: list[str | None]) -> bytes:
    out = [struct.pack("!h", len(values))]
    for value in values:
        if value is None:
            out.append(b"n")
        else:
            encoded = value.encode()
            out.append(b"t" + struct.pack("!i", len(encoded)) + encoded)
    return b"".join(out)


def _relation(oid: int, name: str) -> bytes:
    columns = _TABLES[name]
    head = b"R" + struct.pack("!I", oid) + b"public\0" + name.encode() + b"\0d"
    body = b"".join(
        struct.pack("!B", int(i == 0)) + col.encode() + b"\0" + struct.pack("!Ii", type_oid, -1)
        for i, (col, type_oid) in enumerate(columns)
    )
    return head + struct.pack("!h", len(columns)) + body


def workload(name: str, events: int, per_txn: int, seed: int = 17) -> list[tuple[int, bytes]]:
    """(LSN, message) pairs as a peek returns them: 70% inserts, 20% updates, 10% deletes."""
    rng, oid, make = random.Random(seed), 16385, _citizen if name == "citizen" else _sample
    micros = (_COMMIT_TIME - _PG_EPOCH) // timedelta(microseconds=1)
    messages: list[bytes] = [_relation(oid, name)]
    for first in range(0, events, per_txn):
        lsn = 0x16_0000_0000 + first * 1000
        messages.append(b"B" + struct.pack("!QqI", lsn, micros, 1000 + first))
        for n in range(first, min(first + per_txn, events)):
            roll, row = rng.random(), make(rng, n)
            if roll < 0.7:
                messages.append(b"I" + struct.pack("!I", oid) + b"N" + _tuple(row))
            elif roll < 0.9:
                messages.append(b"U" + struct.pack("!I", oid) + b"N" + _tuple(row))
            else:
                old = [row[0]] + [None] * (len(row) - 1)
                messages.append(b"D" + struct.pack("!I", oid) + b"K" + _tuple(old))
        messages.append(b"C" + struct.pack("!BQQq", 0, lsn, lsn + 48, micros))
    return [(0x16_0000_0000 + i, message) for i, message in enumerate(messages)]


def _timed(action: Callable[[], Any], inner: int) -> tuple[Any, float]:
    """The result of ``action`` and the least CPU time of ``inner`` runs: this process's CPU
    time, which other work on a loaded machine disturbs less than the wall clock does."""
    best = float("inf")
    for _ in range(inner):
        started = time.process_time()
        result = action()
        best = min(best, time.process_time() - started)
    return result, best


def measure_once(name: str, events: int, per_txn: int, inner: int = 3) -> dict[str, float]:
    """Seconds of each stage in this process (the least of ``inner`` runs)."""
    from confluent_kafka import Producer

    import sync
    from connectors.postgres.changes import ChangeDecoder
    from connectors.postgres.delivery import PRODUCER_DEFAULTS, Publisher, _Route
    from sync.contracts import EventCodec, load_contracts
    from sync.types import Lsn, TableRef

    tree = Path(sync.__file__).resolve().parents[1]  # the checkout being measured
    if os.environ.get("PYTHONPATH") and tree != Path(os.environ["PYTHONPATH"]).resolve():
        raise RuntimeError(f"measuring {tree}, not the checkout asked for")
    schemas = tree / ("schemas/avro" if name == "citizen" else "tests/fixtures/contracts_types")
    contract = next(c for c in load_contracts(schemas).values() if c.source_table == name)
    keys = {TableRef("public", name): contract.key_fields}
    peeked = [(str(Lsn(lsn)), data) for lsn, data in workload(name, events, per_txn)]
    messages = [(Lsn.parse(lsn), data) for lsn, data in peeked]
    codec = EventCodec(contract, source_db="bench")
    # no broker: produce() only queues, which is the producer's share of the connector's CPU
    producer = Producer({**PRODUCER_DEFAULTS, "bootstrap.servers": "127.0.0.1:9", "log_level": 0})
    # the publisher's own encoding step, without its registry and producer
    publisher = Publisher.__new__(Publisher)
    publisher._routes = {TableRef("public", name): _Route(contract.topic, codec, 1, 2)}

    def decode(messages: list[tuple[Any, bytes]]) -> list[Any]:
        return ChangeDecoder("bench", keys).decode(messages).events

    def counted(events: list[Any]) -> list[Any]:
        """The transaction counts the publisher adds before encoding."""
        counts: dict[int, dict[str, int]] = {}
        for lsn, per_lsn in Counter(e.position.lsn for e in events).items():
            counts[lsn] = {contract.topic: per_lsn}
        return [dataclasses.replace(e, tx_events=counts[e.position.lsn]) for e in events]

    def encode(events: list[Any]) -> list[Any]:
        return [codec.encode(event, 1, 2) for event in events]

    def connector_loop() -> None:
        """What the connector's loop does with a peek's rows, short of the servers: parse the
        LSNs, decode, count and encode (the publisher's code), hand each message over."""
        batch = decode([(Lsn.parse(lsn), bytes(data)) for lsn, data in peeked])
        encoded, _ = publisher._encode(batch)
        for _event, topic, key, value in encoded:
            producer.produce(topic, value=value, key=key, on_delivery=_delivered)
        producer.purge()

    decoded, decode_s = _timed(lambda: decode(messages), inner)
    ready = counted(decoded)
    _, encode_s = _timed(lambda: encode(ready), inner)
    _, loop_s = _timed(connector_loop, inner)
    return {"decode": decode_s, "encode": encode_s, "connector loop": loop_s, "events": len(ready)}


def _delivered(error: object, message: object) -> None:
    """Never called here: nothing is delivered without a broker."""


def _run_worker(tree: Path, name: str, args: argparse.Namespace) -> dict[str, float]:
    """One repetition in a fresh interpreter importing ``tree``'s code."""
    command = [sys.executable, str(HERE), "--worker", name, "--events", str(args.events)]
    command += ["--per-txn", str(args.per_txn)]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(done.stdout)
    return result


def _repetitions(args: argparse.Namespace) -> Iterator[tuple[str, str, dict[str, float]]]:
    trees = [("new", ROOT)] + ([("old", Path(args.baseline))] if args.baseline else [])
    for _ in range(args.repeat):
        for name in args.workloads:
            for label, tree in trees:
                yield name, label, _run_worker(tree, name, args)


def _report(results: list[tuple[str, str, dict[str, float]]], args: argparse.Namespace) -> None:
    print(
        f"µs of CPU per event: medians (and ranges) of {args.repeat} fresh processes, each the "
        "least of 3 runs; old and new alternate"
    )
    for name in args.workloads:
        print(f"\n{name}: {args.events} events in transactions of {args.per_txn}")
        for stage in STAGES:
            medians, spans = {}, {}
            for label in ("new", "old"):
                runs = [r for w, lab, r in results if w == name and lab == label]
                if runs:
                    per_event = [r[stage] / r["events"] * 1e6 for r in runs]
                    medians[label] = statistics.median(per_event)
                    spans[label] = f"({min(per_event):.1f}-{max(per_event):.1f})"
            line = f"  {stage:<14} new {medians['new']:7.2f} {spans['new']:<13}"
            if "old" in medians:
                ratio = medians["old"] / medians["new"]
                line += f" old {medians['old']:7.2f} {spans['old']:<13} old/new {ratio:.2f}x"
            print(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.connector_stages", description=__doc__)
    parser.add_argument("--baseline", help="a checkout of the code to compare with")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--per-txn", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workloads", nargs="+", choices=WORKLOADS, default=list(WORKLOADS))
    parser.add_argument("--worker", choices=WORKLOADS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(measure_once(args.worker, args.events, args.per_txn)))
        return 0
    _report(list(_repetitions(args)), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
