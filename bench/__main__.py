"""``python -m bench [--quick] [--keep] [--broker tansu|kafka]``: measure, then write the
report."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from bench.output import RESULTS_DIR, write_results
from bench.run import run_benchmark, utc_now
from bench.session import Session, data_directory
from bench.sizes import FULL, QUICK

log = logging.getLogger("bench")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="small sizes (under 2 minutes), for smoke tests"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the servers' data directory and logs"
    )
    parser.add_argument(
        "--broker",
        choices=("tansu", "kafka"),
        default="tansu",
        help="the embedded Tansu broker, or a three-node Apache Kafka cluster (needs Java 17+)",
    )
    parser.add_argument("--results", type=Path, default=RESULTS_DIR, help="report directory")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    sizes = QUICK if args.quick else FULL
    started = utc_now()
    try:
        with (
            data_directory("govsync-bench-", args.keep) as data_dir,
            Session(data_dir, broker=args.broker) as session,
        ):
            results = run_benchmark(session, sizes, started)
        report = write_results(results, started, args.results)
    except KeyboardInterrupt:
        return 130
    print(report.read_text())
    print(f"report: {report}\nplot: {report.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
