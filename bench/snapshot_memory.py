"""``python -m bench.snapshot_memory [--rows N] [--broker tansu|kafka]``: one snapshot of N
rows (10,000,000 by default) from source to replica, with the memory of every process read
against the rows done, to show whether memory stays flat as the snapshot grows.

The source table holds N citizens before the pipeline starts; the processor runs first, then
the connector snapshots the table in key-ordered chunks between watermarks. Every
``--interval`` seconds the resident set (RSS) of the connector, the processor and the broker
is read with the connector's produced and the processor's applied counts. The report gives
each process's RSS at every tenth of the rows, its peak, and its growth from the first tenth
to the end; the run ends when the replica holds N rows. Writes
``bench/results/<UTC timestamp>-snapshot-<N>.md`` and its ``.json``.

The broker keeps what it is sent: Tansu holds its topics in memory, so its RSS grows with the
topic by design (the figure says how much per million events); Apache Kafka keeps them on disk.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import psutil
import psycopg

from bench.data import count_rows, insert_rows, prepare_source
from bench.endtoend import AGENCY, LOAD_ROWS_PER_TXN, metric_total, wait_assigned
from bench.machine import describe_machine, load_average
from bench.markdown import table
from bench.output import RESULTS_DIR
from bench.run import utc_now
from bench.session import BenchError, Session, data_directory
from sync.stack.supervisor import Managed

log = logging.getLogger("bench")

PRODUCED = "govsync_connector_events_produced_total"
APPLIED = "govsync_processor_events_applied_total"
MIB = 1 << 20
ROLES = ("connector", "processor", "broker")


def _rss(processes: Iterable[psutil.Process]) -> int:
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.Error:
            pass
    return total


def run(session: Session, rows: int, interval: float, timeout: float) -> dict[str, Any]:
    phase = "snapshot10m"
    source, replica = session.database(f"{phase}_source"), session.database(f"{phase}_replica")
    with psycopg.connect(source, autocommit=True) as conn:
        prepare_source(conn, session.contract)
        clock = time.perf_counter()
        insert_rows(conn, session.contract, 0, rows, LOAD_ROWS_PER_TXN)
        load_s = time.perf_counter() - clock
    log.info("%d rows loaded in %.1f s", rows, load_s)
    processor = session.start_processor(phase, AGENCY, replica)
    wait_assigned(processor, session)
    connector = session.start_connector(phase, source)
    samples = _follow(session, connector, processor, rows, interval, timeout)
    held = count_rows(replica, session.contract)
    if held != rows:
        raise BenchError(f"the replica holds {held} rows, not {rows}")
    session.stop(connector, processor)
    return {"rows": rows, "load_seconds": round(load_s, 1), "samples": samples}


def _follow(
    session: Session,
    connector: Managed,
    processor: Managed,
    rows: int,
    interval: float,
    timeout: float,
) -> list[dict[str, float]]:
    """Sample until the processor has applied ``rows`` events."""
    watched = {
        "connector": [psutil.Process(connector.pid)],
        "processor": [psutil.Process(processor.pid)],
        "broker": [psutil.Process(pid) for pid in session.infrastructure_pids("broker")],
    }
    counts = {  # sample name -> (metrics URL, metric)
        "produced": (connector.spec.metrics_url, PRODUCED),
        "applied": (processor.spec.metrics_url, APPLIED),
    }
    started = time.perf_counter()
    samples: list[dict[str, float]] = []
    while True:
        session.check_alive()
        sample: dict[str, float] = {"t": round(time.perf_counter() - started, 1)}
        for name, (url, metric) in counts.items():
            assert url is not None
            try:
                sample[name] = metric_total(url, metric)
            except OSError:
                sample[name] = samples[-1][name] if samples else 0.0
        for role, processes in watched.items():
            sample[f"{role}_rss"] = _rss(processes)
        samples.append(sample)
        if len(samples) % 30 == 1:
            log.info(
                "%.0f s: produced %d, applied %d, processor RSS %.0f MiB",
                sample["t"],
                sample["produced"],
                sample["applied"],
                sample["processor_rss"] / MIB,
            )
        if sample["applied"] >= rows:
            return samples
        if sample["t"] > timeout:
            raise BenchError(f"{sample['applied']:.0f} of {rows} rows applied in {timeout:.0f} s")
        time.sleep(interval)


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    """RSS at each tenth of the rows applied, the peaks, the growth from the first tenth to
    the end, and the rate."""
    rows, samples = results["rows"], results["samples"]
    tenths = []
    for tenth in range(1, 11):
        reached = next(s for s in samples if s["applied"] >= rows * tenth / 10)
        tenths.append({"tenth": tenth, **reached})
    first_row = next((s["t"] for s in samples if s["applied"] > 0), 0.0)
    seconds = samples[-1]["t"]
    summary: dict[str, Any] = {
        "seconds": seconds,
        "rate": rows / seconds if seconds else None,
        "drain_rate": rows / (seconds - first_row) if seconds > first_row else None,
        "tenths": tenths,
        "peak_rss": {role: max(s[f"{role}_rss"] for s in samples) for role in ROLES},
        "growth_rss": {
            role: tenths[-1][f"{role}_rss"] - tenths[0][f"{role}_rss"] for role in ROLES
        },
    }
    return summary


def render(results: dict[str, Any]) -> str:
    summary, rows = results["summary"], results["rows"]
    machine = results["machine"]
    lines = [
        f"# govsync snapshot of {rows:,} rows: memory against rows done",
        "",
        f"Started {results['started']} on {results['broker']}; {machine.get('cores')} cores, "
        f"{machine.get('cpu', '')}; load average {results['load_average']} at the start, "
        f"{results['load_average_end']} at the end. Rows loaded into the source in "
        f"{results['load_seconds']} s before the pipeline started.",
        "",
        f"The replica held all {rows:,} rows after {summary['seconds']:.0f} s: "
        f"{summary['rate']:,.0f} rows/s end to end"
        + (
            f" ({summary['drain_rate']:,.0f} rows/s from the first row applied)."
            if summary["drain_rate"]
            else "."
        ),
        "",
        "Resident memory (MiB) when the processor had applied each tenth of the rows:",
        "",
    ]
    header = ["rows applied", "seconds", "produced", *(f"{role} RSS" for role in ROLES)]
    body = [
        [
            f"{t['applied']:,.0f}",
            f"{t['t']:.0f}",
            f"{t['produced']:,.0f}",
            *(f"{t[f'{role}_rss'] / MIB:,.0f}" for role in ROLES),
        ]
        for t in summary["tenths"]
    ]
    lines += table(header, body)
    lines += [
        "| process | peak RSS (MiB) | growth, first tenth to the end (MiB) | per million rows |",
        "| --- | --- | --- | --- |",
    ]
    span = rows * 0.9 / 1_000_000
    for role in ROLES:
        growth = summary["growth_rss"][role] / MIB
        lines.append(
            f"| {role} | {summary['peak_rss'][role] / MIB:,.0f} | {growth:+,.0f} "
            f"| {growth / span:+,.1f} |"
        )
    lines += [
        "",
        "A flat process grows by a few MiB at most from the first tenth to the end; the "
        "broker grows with the topic where it keeps topics in memory (Tansu).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.snapshot_memory", description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--broker", choices=("tansu", "kafka"), default="tansu")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between samples")
    parser.add_argument("--timeout", type=float, default=4 * 3600.0)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--results", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    started = utc_now()
    try:
        with (
            data_directory("govsync-bench-", args.keep) as data_dir,
            Session(data_dir, broker=args.broker) as session,
        ):
            results: dict[str, Any] = {
                "mode": "snapshot-memory",
                "broker": args.broker,
                "started": started.strftime("%Y-%m-%d %H:%M UTC"),
                "machine": describe_machine(session.postgres_dsn(), session.broker),
                "load_average": load_average(),
            }
            results |= run(session, args.rows, args.interval, args.timeout)
            results["load_average_end"] = load_average()
    except KeyboardInterrupt:
        return 130
    results["summary"] = summarise(results)
    args.results.mkdir(parents=True, exist_ok=True)
    stem = f"{started.strftime('%Y%m%dT%H%M%SZ')}-snapshot-{args.rows}"
    (args.results / f"{stem}.json").write_text(json.dumps(results, indent=1) + "\n")
    report = args.results / f"{stem}.md"
    report.write_text(render(results))
    print(report.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
