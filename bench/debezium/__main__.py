"""``python -m bench.debezium [--changes N]``: govsync's connector and Debezium's on the same
rows, on the three-node Apache Kafka cluster, one after the other; writes
``bench/results/<UTC timestamp>-debezium.md`` and its ``.json``."""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.debezium.jars import connect_version, debezium_version, ensure_jars
from bench.debezium.report import render
from bench.debezium.workloads import Comparison, snapshot_workload, streaming_workload
from bench.machine import describe_machine, load_average
from bench.output import RESULTS_DIR
from bench.run import utc_now
from bench.session import Session, data_directory
from sync.stack.kafka.jars import java_binary

log = logging.getLogger("bench")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.debezium", description=__doc__)
    parser.add_argument("--changes", type=int, default=200_000, help="changes per workload")
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="seconds a connector gets per workload"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the servers' data directory and logs"
    )
    parser.add_argument("--results", type=Path, default=RESULTS_DIR, help="report directory")
    return parser.parse_args(argv)


def compare(session: Session, jars: Path, args: argparse.Namespace) -> dict[str, Any]:
    clock = time.perf_counter()
    java = java_binary()
    results: dict[str, Any] = {
        "mode": "debezium",
        "broker": session.broker_name,
        "started": utc_now().strftime("%Y-%m-%d %H:%M UTC"),
        "changes": args.changes,
        "machine": describe_machine(session.postgres_dsn(), session.broker),
        "versions": {
            "govsync": _govsync_revision(),
            "debezium": debezium_version(),
            "kafka_connect": connect_version(),
            "java": _java_version(java),
        },
    }
    comparison = Comparison(session, jars, java, args.timeout)
    results["workloads"] = {
        "snapshot": snapshot_workload(comparison, args.changes),
        "streaming": streaming_workload(comparison, args.changes),
    }
    peaks = session.sampler.peaks()
    results["memory"] = {
        "govsync": peaks.get("connector", {}).get("rss"),
        "debezium": peaks.get("debezium", {}).get("rss"),
    }
    results["machine"]["load_average_end"] = load_average()
    results["duration_s"] = round(time.perf_counter() - clock, 1)
    return results


def _govsync_revision() -> str:
    """The commit of the code measured, ``-dirty`` when its checkout has uncommitted
    changes."""
    done = subprocess.run(
        ["git", "describe", "--always", "--dirty", "--abbrev=7"],
        cwd=Path(__file__).parent,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return done.stdout.strip() if done.returncode == 0 else "unknown"


def _java_version(java: str) -> str:
    done = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    lines = done.stderr.strip().splitlines()
    return lines[0].replace('"', "") if lines else "Java, version unknown"


def write(results: dict[str, Any], directory: Path, stem: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{stem}.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    report = directory / f"{stem}.md"
    report.write_text(render(results))
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stem = f"{utc_now().strftime('%Y%m%dT%H%M%SZ')}-debezium"
    jars = ensure_jars()  # before any server starts: a first fetch takes minutes
    try:
        with (
            data_directory("govsync-bench-debezium-", args.keep) as data_dir,
            Session(data_dir, broker="kafka") as session,
        ):
            results = compare(session, jars, args)
        report = write(results, args.results, stem)
    except KeyboardInterrupt:
        return 130
    print(report.read_text())
    print(f"report: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
