"""The processor's CPU per event on a fixed workload, stage by stage: Avro decoding
(``EventCodec.decode``), projection (``Projection.project_event`` and the disclosures an
audited agency records), and the decoding and projection of one message for the N agencies of
one worker (``BatchDecoder.decode`` of each agency, batch by batch, the agencies in step), as
the worker runs them between a fetch and an apply (no server is involved).

The workload is the connector benchmark's (:mod:`bench.connector_stages`) change events,
encoded here once as the connector publishes them and handed to every process as the same
bytes: transactions of inserts, updates and deletes of citizens. The N agencies take the
federation's subscriptions to ``population.citizen`` in turn (tax, social security, the
statistics office's pseudonyms, two provinces' row filters), each under its own name.

``python -m bench.processor_stages`` measures the code it is run from. With ``--baseline DIR``
(another checkout, e.g. ``git archive <commit> | tar -x -C DIR``) it measures both, one after
the other, repetition by repetition, on the same messages, each in a fresh process, and prints
the medians and the ratios of old to new time per event.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
ROOT = HERE.parents[1]
AGENCIES = (1, 10, 85)
STAGES = ("decode", "project", *(f"{n} agencies" for n in AGENCIES))
KEY_ID, VALUE_ID = 1, 2
BATCH = 500  # messages an agency decodes at a time
AGENCY_EVENTS = 1_000  # the first messages, for the N agencies (85 of them take a while)
TOPIC = "population.citizen"
Results = list[tuple[str, dict[str, float]]]  # (checkout: new or old, seconds by stage)


def messages_of(contract: Any, events: int, per_txn: int, key_id: int, value_id: int) -> list[Any]:
    """(key, value) of each change of the connector benchmark's workload, as published."""
    from bench.connector_stages import workload
    from connectors.postgres.changes import ChangeDecoder
    from sync.contracts import EventCodec
    from sync.types import Lsn, TableRef

    name = contract.source_table
    keys = {TableRef("public", name): contract.key_fields}
    peeked = [(Lsn(lsn), data) for lsn, data in workload(name, events, per_txn)]
    decoded = ChangeDecoder("bench", keys).decode(peeked).events
    codec, counts = EventCodec(contract, source_db="bench"), {contract.topic: per_txn}
    return [
        codec.encode(dataclasses.replace(e, tx_events=counts), key_id, value_id) for e in decoded
    ]


def _timed(
    action: Callable[..., Any], inner: int, setup: Callable[[], Any] = lambda: None
) -> float:
    """The least CPU time of ``inner`` runs of ``action(setup())``: this process's CPU time,
    which other work on a loaded machine disturbs less than the wall clock does."""
    import time

    best = float("inf")
    for _ in range(inner):
        prepared = setup()
        started = time.process_time()
        action() if prepared is None else action(prepared)
        best = min(best, time.process_time() - started)
    return best


def measure_once(messages_file: Path, inner: int = 3) -> dict[str, float]:
    """Seconds of each stage in this process (the least of ``inner`` runs)."""
    import sync
    from sync.contracts import EventCodec, load_contracts
    from sync.policy import Projection, load_manifest
    from sync.processor import decoding

    tree = Path(sync.__file__).resolve().parents[1]  # the checkout being measured
    if os.environ.get("PYTHONPATH") and tree != Path(os.environ["PYTHONPATH"]).resolve():
        raise RuntimeError(f"measuring {tree}, not the checkout asked for")
    contracts = load_contracts(tree / "schemas/avro")
    contract = contracts[TOPIC]
    writers = {KEY_ID: contract.key_schema, VALUE_ID: EventCodec(contract).value_schema}
    lookup = writers.__getitem__
    raw: list[tuple[bytes | None, bytes]] = pickle.loads(messages_file.read_bytes())
    manifest = load_manifest(tree / "federation.yaml", contracts)
    subscriptions = [s for a in manifest.agencies for s in manifest.subscriptions_of(a.code)]
    citizen = [s for s in subscriptions if s.topic == TOPIC]
    secrets = {
        t.key: b"k" * 32 for s in citizen for t in s.transforms.values() if hasattr(t, "key")
    }
    projections = [Projection(contract, s, secrets) for s in citizen]
    codec = EventCodec(contract)
    decode_s = _timed(lambda: [codec.decode(k, v, lookup) for k, v in raw], inner)
    events = [codec.decode(k, v, lookup) for k, v in raw]
    messages = [decoding.RawMessage(TOPIC, 0, i, k, v) for i, (k, v) in enumerate(raw)]
    each = [  # an audited agency of each subscription: its projection and disclosures
        decoding.BatchDecoder(f"agency-{i}", {TOPIC: contract}, {TOPIC: p}, True)
        for i, p in enumerate(projections)
    ]

    def project() -> None:
        batch = decoding.DecodedBatch()
        for message, event in zip(messages, events, strict=True):
            decoder = each[message.offset % len(each)]
            decoder._project(message, event, decoder.projections[TOPIC], batch)

    result = {"decode": decode_s, "project": _timed(project, inner), "events": len(raw)}
    result["agency events"] = min(len(raw), AGENCY_EVENTS)
    cache_class: Any = getattr(decoding, "DecodeCache", None)  # absent before decoding once

    def agencies(n: int) -> Callable[[], list[Any]]:
        def build() -> list[Any]:
            # shared as the worker shares it: among two agencies or more, ten batches deep
            shared = cache_class is not None and n > 1
            options = {"cache": cache_class(10 * BATCH)} if shared else {}
            return [
                decoding.BatchDecoder(
                    f"agency-{i}",
                    {TOPIC: contract},
                    {TOPIC: projections[i % len(projections)]},
                    True,
                    **options,
                )
                for i in range(n)
            ]

        return build

    in_step = messages[:AGENCY_EVENTS]

    def run(decoders: list[Any]) -> None:
        for start in range(0, len(in_step), BATCH):
            batch = in_step[start : start + BATCH]
            for decoder in decoders:
                decoder.decode(batch, lookup)

    for n in AGENCIES:
        result[f"{n} agencies"] = _timed(run, inner, agencies(n))
    return result


def _run_worker(tree: Path, messages: Path) -> dict[str, float]:
    """One repetition in a fresh interpreter importing ``tree``'s code."""
    command = [sys.executable, str(HERE), "--worker", str(messages)]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(done.stdout)
    return result


def _repetitions(
    args: argparse.Namespace, messages: Path
) -> Iterator[tuple[str, dict[str, float]]]:
    trees = [("new", ROOT)] + ([("old", Path(args.baseline))] if args.baseline else [])
    for _ in range(args.repeat):
        for label, tree in trees:
            yield label, _run_worker(tree, messages)


def per_event(results: Results, label: str, stage: str) -> list[float]:
    """µs of CPU per event of ``stage`` in each run of ``label``; for N agencies, per message
    (decoded and projected N times)."""
    events = "agency events" if stage.endswith("agencies") else "events"
    return [r[stage] / r[events] * 1e6 for lab, r in results if lab == label]


def report(results: Results, args: argparse.Namespace) -> list[str]:
    lines = [
        f"µs of CPU per event: medians (and ranges) of {args.repeat} fresh processes, each the "
        "least of 3 runs; old and new alternate",
        f"citizen: {args.events} events in transactions of {args.per_txn}; N agencies: per "
        f"message (the first {AGENCY_EVENTS}), for all N, in batches of {BATCH}",
    ]
    for stage in STAGES:
        medians, spans = {}, {}
        for label in ("new", "old"):
            runs = per_event(results, label, stage)
            if runs:
                medians[label] = statistics.median(runs)
                spans[label] = f"({min(runs):.1f}-{max(runs):.1f})"
        line = f"  {stage:<12} new {medians['new']:8.2f} {spans['new']:<15}"
        if "old" in medians:
            ratio = medians["old"] / medians["new"]
            line += f" old {medians['old']:8.2f} {spans['old']:<15} old/new {ratio:.2f}x"
        lines.append(line)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.processor_stages", description=__doc__)
    parser.add_argument("--baseline", help="a checkout of the code to compare with")
    parser.add_argument("--events", type=int, default=5_000)
    parser.add_argument("--per-txn", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(measure_once(Path(args.worker))))
        return 0
    from sync.contracts import load_contracts

    contract = load_contracts(ROOT / "schemas/avro")[TOPIC]
    with tempfile.TemporaryDirectory() as scratch:
        messages = Path(scratch) / "messages.pickle"
        encoded = messages_of(contract, args.events, args.per_txn, KEY_ID, VALUE_ID)
        messages.write_bytes(pickle.dumps(encoded))
        print("\n".join(report(list(_repetitions(args, messages)), args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
